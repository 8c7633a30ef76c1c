# nix-checkpoint: the engine binary plus its setup hook
# ($out/nix-support/setup-hook, installed verbatim: it finds the binary at
# $pkg/nix-support/../bin/nix-checkpoint). callPackage-able; the flake builds
# it with pkgsStatic for a static binary.
#
# The check phase runs the whole `cargo test` in the sandbox: unprivileged,
# no network, HOME=/homeless-shelter. Tests needing root for mount and
# setpriv are #[ignore]d (named root_: scripts/test.sh runs them as root),
# and the special-files test adds device nodes (mknod) only as root.
# Tests needing a build tool get it here (nativeCheckInputs, and make from
# stdenv; skipping is tests/it/util/skip.rs's business); with
# NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS=1 a missing tool fails its test rather
# than skipping it, so these inputs are checked to be enough. No test uses
# meson, and peak RSS is measured without /usr/bin/time
# (tests/it/util/mod.rs), so neither is an input.
{ lib
, rustPlatform
, stdenv ? rustPlatform.stdenv or null
, buildPackages ? null
, cmake ? null
, ninja ? null
}:
let
  cargo = builtins.fromTOML (builtins.readFile ../Cargo.toml);
  # Only what `cargo test` needs (it builds the examples too, and replays
  # proptest's saved failure cases): no target/, results, tests/nix or docs.
  sourceFilter = path: type:
    let rel = lib.removePrefix (toString ../. + "/") (toString path); in
    rel == "Cargo.toml" || rel == "Cargo.lock" || rel == "nix" || rel == "nix/setup-hook.sh"
    || rel == "src" || lib.hasPrefix "src/" rel
    || rel == "examples" || lib.hasPrefix "examples/" rel
    || rel == "proptest-regressions" || lib.hasPrefix "proptest-regressions/" rel
    || rel == "tests" || (lib.hasPrefix "tests/" rel && !(lib.hasPrefix "tests/nix" rel));
  src = builtins.path {
    name = "nix-checkpoint-source";
    path = ../.;
    filter = sourceFilter;
  };
  # Cross builds (pkgsStatic is one: musl) have only prefixed compilers on
  # PATH (x86_64-unknown-linux-musl-cc); the tests call cc, gcc, ld and ar
  # to build their fixture projects, so they get the build platform's.
  isCross = stdenv != null && stdenv.buildPlatform != stdenv.hostPlatform;
  nativeTools = if !(isCross && buildPackages != null) then "" else
    "${buildPackages.stdenv.cc}/bin:${buildPackages.stdenv.cc.bintools}/bin";
in
rustPlatform.buildRustPackage {
  pname = "nix-checkpoint";
  inherit (cargo.package) version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;

  doCheck = true;
  # tests/it/engine.rs builds CMake projects with Ninja; tests/it/hardening.rs
  # builds with ninja too.
  nativeCheckInputs = builtins.filter (p: p != null) [ cmake ninja ];
  # They are for the tests only: their setup hooks must not take over the
  # configure, build, check or install phase from cargo's.
  dontUseCmakeConfigure = true;
  dontUseNinjaBuild = true;
  dontUseNinjaCheck = true;
  dontUseNinjaInstall = true;
  # Every tool a test needs must be here: a missing one fails the test.
  NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS = "1";
  preCheck = if nativeTools == "" then "" else ''
    export PATH="$PATH:${nativeTools}"
  '';

  postInstall = ''
    install -Dm444 ${./setup-hook.sh} $out/nix-support/setup-hook
  '';

  passthru = { inherit sourceFilter; };

  meta = {
    description = cargo.package.description;
    homepage = "https://github.com/nix-checkpoint/nix-checkpoint";
    license = lib.licenses.mit;
    mainProgram = "nix-checkpoint";
    platforms = lib.platforms.linux;
  };
}
