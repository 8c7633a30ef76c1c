# Evaluates the flake's outputs with a stub nixpkgs (the stand-in package set
# plus a stub rustPlatform) and checks their wiring. Run with
#   nix-instantiate --eval --strict tests/nix/flake-eval.nix
# It evaluates to a summary string, or fails with the first broken assertion.
let
  system = "x86_64-linux";
  flake = import ../../flake.nix;
  standin = import ./. { inherit system; nixCheckpointBin = toString ./flake-eval.nix; helloSrc = toString ./flake-eval.nix; };

  lib = {
    removePrefix = p: s:
      let n = builtins.stringLength p; in
      if builtins.substring 0 n s == p then builtins.substring n (builtins.stringLength s - n) s else s;
    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    licenses.mit = { spdxId = "MIT"; };
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };

  mkPkgs = static: let pkgs = standin // {
    inherit lib;
    stdenv = standin.stdenv // { hostPlatform = { inherit system; }; };
    callPackage = f: args:
      let fn = if builtins.isFunction f then f else import f; in
      fn (builtins.intersectAttrs (builtins.functionArgs fn) pkgs // args);
    rustPlatform.buildRustPackage = args: standin.mkDerivation
      (builtins.removeAttrs args [ "cargoLock" "meta" ] // {
        dontUnpack = true; dontConfigure = true; dontBuild = true;
        installPhase = "mkdir -p $out";
        passthru = { inherit (args) cargoLock; inherit static; stubArgs = args; };
        meta = args.meta;
      });
    pkgsStatic = mkPkgs true;
    mkShell = args: { shell = true; inherit args; };
    cargo = "cargo"; rustc = "rustc"; clippy = "clippy"; rustfmt = "rustfmt"; nix = "nix";
  }; in pkgs;
  stubPkgs = mkPkgs false;
  nixpkgs = { legacyPackages.${system} = stubPkgs; legacyPackages.aarch64-linux = stubPkgs; };

  outputs = flake.outputs { self = outputs; inherit nixpkgs; };
  assert' = msg: cond: if cond then true else throw "flake-eval: ${msg}";

  pkg = outputs.packages.${system}.default;
  overlaid = let final = stubPkgs // outputs.overlays.default final stubPkgs; in final;
  tools = overlaid.checkpointBuildTools;
  checks = outputs.checks.${system};
  inc = checks.hello-incremental;

  results = [
    (assert' "flake has an nixpkgs input" (flake.inputs ? nixpkgs))
    (assert' "packages.default is nix-checkpoint" (pkg.pname == "nix-checkpoint"))
    (assert' "packages.default is static (pkgsStatic)" pkg.static)
    (assert' "cargoLock.lockFile is the repo's Cargo.lock"
      (toString pkg.cargoLock.lockFile == toString ../../Cargo.lock))
    (assert' "the setup hook is installed" (builtins.match ".*nix-support/setup-hook.*" pkg.stubArgs.postInstall != null))
    (assert' "mainProgram" (pkg.meta.mainProgram == "nix-checkpoint"))
    (assert' "version from Cargo.toml" (pkg.version == (builtins.fromTOML (builtins.readFile ../../Cargo.toml)).package.version))
    (assert' "overlay adds nix-checkpoint" (overlaid.nix-checkpoint.pname == "nix-checkpoint" && !overlaid.nix-checkpoint.static))
    (assert' "overlay adds checkpointBuildTools"
      (tools ? prepareCheckpointBuild && tools ? mkCheckpointBuild && tools ? mkCheckpointedBuild
       && tools ? mkCheckpointBuildWithCheckpoint))
    (assert' "lib.checkpointBuildTools is a function" (builtins.isFunction outputs.lib.checkpointBuildTools))
    (assert' "lib.forPkgs uses the static package"
      ((outputs.lib.forPkgs stubPkgs).nix-checkpoint.outPath == pkg.outPath))
    (assert' "checks: the manual's example restores the prepared hello's checkpoint"
      (toString inc.drvAttrs.nixCheckpointRestore == checks.hello-checkpoint.checkpoint.outPath
       && checks.hello-checkpoint.checkpoint.outPath != checks.hello-checkpoint.outPath))
    (assert' "checks: prepared hello keeps `out` first and adds `checkpoint`"
      (checks.hello-checkpoint.drvAttrs.outputs == [ "out" "checkpoint" ]))
    (assert' "checks derivations instantiate"
      (builtins.all (c: builtins.isString c.drvPath) (builtins.attrValues checks)))
    (assert' "devShells.default" outputs.devShells.${system}.default.shell)
  ];
in
assert builtins.all (r: r) results;
"${toString (builtins.length results)} flake checks ok"
