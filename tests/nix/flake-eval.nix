# Evaluates the flake's outputs with a stub nixpkgs (the stand-in package set
# plus a stub rustPlatform) and checks their wiring. The stub
# rustPlatform.buildRustPackage is only a stub: it builds nothing and runs no
# cargo (there is no nixpkgs here), so it cannot show that the package's
# check phase (`cargo test` in the sandbox) passes; it passes every argument
# through, and the assertions below check what that phase is given: doCheck,
# nativeCheckInputs (merged into the inputs as make-derivation.nix does),
# the strict-tools variable and, for the static (cross) package, the build
# platform's cc on PATH. To see the real wiring, evaluate nix/package.nix
# against a nixpkgs (docs/nix-api.md). Run with
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

  platform = config: { inherit system config; isStatic = config == "x86_64-unknown-linux-musl"; };
  mkPkgs = static: let pkgs = standin // {
    inherit lib;
    stdenv = standin.stdenv // {
      hostPlatform = platform (if static then "x86_64-unknown-linux-musl" else "x86_64-unknown-linux-gnu");
      buildPlatform = platform "x86_64-unknown-linux-gnu";
      cc = { outPath = "/stub/native-cc"; bintools.outPath = "/stub/native-bintools"; };
    };
    buildPackages = mkPkgs false;
    extend = overlay: let final = pkgs // overlay final pkgs; in final;
    callPackage = f: args:
      let fn = if builtins.isFunction f then f else import f; in
      fn (builtins.intersectAttrs (builtins.functionArgs fn) pkgs // args);
    # The stub (see the top): a stand-in derivation with every argument.
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
    (assert' "the setup hook is installed verbatim"
      (builtins.match ".*install -Dm444 /nix/store/[a-z0-9]{32}-setup-hook.sh \\$out/nix-support/setup-hook.*" pkg.stubArgs.postInstall != null))
    (assert' "the check phase runs (doCheck)" (pkg.stubArgs.doCheck && pkg.doCheck && overlaid.nix-checkpoint.doCheck))
    (assert' "nativeCheckInputs: cmake and ninja (tests/it/engine.rs, tests/it/hardening.rs)"
      (builtins.all (p: builtins.elem p pkg.stubArgs.nativeCheckInputs) [ stubPkgs.cmake stubPkgs.ninja ]))
    (assert' "nativeCheckInputs join the inputs when checking"
      (builtins.all (p: builtins.elem p pkg.nativeBuildInputs) [ stubPkgs.cmake stubPkgs.ninja ]))
    (assert' "cmake's and ninja's setup hooks leave cargo's phases alone"
      (pkg.dontUseCmakeConfigure && pkg.dontUseNinjaBuild && pkg.dontUseNinjaCheck && pkg.dontUseNinjaInstall))
    (assert' "a missing test tool fails the check phase (NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS)"
      (pkg.drvAttrs.NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS == "1"))
    (assert' "static (cross) package: the build platform's cc and bintools on PATH for the tests"
      (builtins.match ".*/stub/native-cc/bin:/stub/native-bintools/bin.*" pkg.stubArgs.preCheck != null))
    (assert' "native package: nothing added to PATH" (overlaid.nix-checkpoint.stubArgs.preCheck == ""))
    (assert' "source: what cargo test needs, no tests/nix, target or docs"
      (let
        keep = rel: pkg.stubArgs.passthru.sourceFilter (toString ../.. + "/${rel}") "regular";
      in builtins.all keep [ "Cargo.toml" "Cargo.lock" "nix" "nix/setup-hook.sh" "src/main.rs" "tests/it/util/skip.rs" "examples/craft_pack.rs"
                                 "proptest-regressions/plan/tests.txt" ]
        && !builtins.any keep [ "tests/nix" "tests/nix/run.sh" "target" "docs" "nix/package.nix" "benches" "flake.nix" ]))
    (assert' "mainProgram" (pkg.meta.mainProgram == "nix-checkpoint"))
    (assert' "version from Cargo.toml" (pkg.version == (builtins.fromTOML (builtins.readFile ../../Cargo.toml)).package.version))
    (assert' "overlay adds nix-checkpoint" (overlaid.nix-checkpoint.pname == "nix-checkpoint" && !overlaid.nix-checkpoint.static))
    (assert' "overlay adds checkpointBuildTools"
      (tools ? prepareCheckpointBuild && tools ? mkCheckpointBuild && tools ? mkCheckpointedBuild
       && tools ? mkCheckpointBuildWithCheckpoint))
    (assert' "lib.checkpointBuildTools is a function" (builtins.isFunction outputs.lib.checkpointBuildTools))
    (assert' "lib.forPkgs uses the static package"
      ((outputs.lib.forPkgs stubPkgs).nix-checkpoint.outPath == pkg.outPath))
    (assert' "lib.forPkgs and the overlay follow config.allowAliases"
      (let noAliases = stubPkgs // { config.allowAliases = false; }; in
       !(outputs.lib.forPkgs noAliases ? mkCheckpointedBuild)
       && !((let final = noAliases // outputs.overlays.default final noAliases; in final)
              .checkpointBuildTools ? mkCheckpointedBuild)))
    (assert' "checks: the manual's example restores the prepared hello's checkpoint"
      (toString inc.drvAttrs.nixCheckpointRestore == checks.hello-checkpoint.checkpoint.outPath
       && checks.hello-checkpoint.checkpoint.outPath != checks.hello-checkpoint.outPath))
    (assert' "checks: prepared hello keeps `out` first and adds `checkpoint`"
      (checks.hello-checkpoint.drvAttrs.outputs == [ "out" "checkpoint" ]))
    (assert' "checks: the static package, the overlay's, and the example through both"
      (builtins.all (n: checks ? ${n}) [ "package" "overlay-package" "hello-incremental-output" "overlay-hello-incremental-output" ]
       && checks.package.static && !checks.overlay-package.static
       && checks.overlay-hello-checkpoint.checkpoint.outPath == toString checks.overlay-hello-incremental.drvAttrs.nixCheckpointRestore))
    (assert' "checks derivations instantiate"
      (builtins.all (c: builtins.isString c.drvPath) (builtins.attrValues checks)))
    (assert' "devShells.default" outputs.devShells.${system}.default.shell)
  ];
in
assert builtins.all (r: r) results;
"${toString (builtins.length results)} flake checks ok"
