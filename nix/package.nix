# nix-checkpoint: the engine binary plus its setup hook
# ($out/nix-support/setup-hook, installed verbatim). callPackage-able; the
# flake builds it with pkgsStatic for a static binary.
{ lib, rustPlatform }:
let
  cargo = builtins.fromTOML (builtins.readFile ../Cargo.toml);
  # Only what cargo needs: no target/, results, tests/nix or docs.
  src = builtins.path {
    name = "nix-checkpoint-source";
    path = ../.;
    filter = path: type:
      let rel = lib.removePrefix (toString ../. + "/") (toString path); in
      rel == "Cargo.toml" || rel == "Cargo.lock" || rel == "nix" || rel == "nix/setup-hook.sh"
      || rel == "src" || lib.hasPrefix "src/" rel
      || rel == "benches" || lib.hasPrefix "benches/" rel
      || rel == "tests" || (lib.hasPrefix "tests/" rel && !(lib.hasPrefix "tests/nix" rel));
  };
in
rustPlatform.buildRustPackage {
  pname = "nix-checkpoint";
  inherit (cargo.package) version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;

  postInstall = ''
    install -Dm444 ${./setup-hook.sh} $out/nix-support/setup-hook
  '';

  meta = {
    description = cargo.package.description;
    homepage = "https://github.com/nix-checkpoint/nix-checkpoint";
    license = lib.licenses.mit;
    mainProgram = "nix-checkpoint";
    platforms = lib.platforms.linux;
  };
}
