# The test package set on one of two stdenvs: our stand-in (./stdenv), or
# nixpkgs' real setup.sh on host tools (../../../shared/nixpkgs-stdenv, on
# development machines and in CI only); the engine package built from a
# host-built binary, GNU hello 2.10, and fixture projects.
#
#   nixCheckpointBin  the engine binary (default: the repo's release build)
#   helloSrc          GNU hello 2.10 tarball (default: scripts/setup.sh's cache)
#   stdenvName        "standin" or "nixpkgs"
{ system ? builtins.currentSystem
, nixCheckpointBin ? builtins.getEnv "NIX_CHECKPOINT_BIN"
, helloSrc ? builtins.getEnv "NIX_CHECKPOINT_HELLO_SRC"
, stdenvName ? "standin"
}:
let
  nixpkgsStdenvDir = ../../../shared/nixpkgs-stdenv;
  onNixpkgs = stdenvName == "nixpkgs";
  std =
    if !onNixpkgs then import ./stdenv { inherit system; }
    else if builtins.pathExists nixpkgsStdenvDir then import nixpkgsStdenvDir { inherit system; }
    else throw "tests/nix: ../shared/nixpkgs-stdenv is not here (it is on development machines and in CI)";
  inherit (std) stdenv;

  # Logging compilers for nixpkgs' stdenv (the stand-in's cc logs itself),
  # so that the tests can see which units a build compiled.
  compileLogger = derivation {
    name = "compile-logger";
    inherit system;
    builder = "/bin/bash";
    cc = ./compile-logger/cc.sh;
    hook = ./compile-logger/setup-hook.sh;
    args = [ "-ec" ''
      PATH=/usr/bin:/bin
      mkdir -p $out/bin $out/nix-support
      for t in cc gcc c++ g++; do cp $cc $out/bin/$t; chmod +x $out/bin/$t; done
      sed "s|@out@|$out|g" $hook > $out/nix-support/setup-hook
    '' ];
  };
  mkDerivation = if !onNixpkgs then std.mkDerivation
    else attrs: std.mkDerivation (attrs // {
      nativeBuildInputs = (attrs.nativeBuildInputs or [ ]) ++ [ compileLogger ];
    });

  repo = ../..;
  binPath = if nixCheckpointBin != "" then nixCheckpointBin
    else toString repo + "/target/release/nix-checkpoint";
  helloPath = if helloSrc != "" then helloSrc
    else (let c = builtins.getEnv "NIX_CHECKPOINT_CACHE"; in
      (if c != "" then c else builtins.getEnv "HOME" + "/.cache/nix-checkpoint")
      + "/hello/hello_2.10.orig.tar.gz");

  # A package holding only a setup hook (the host tool itself is in /usr/bin).
  hookPackage = name: hook: mkDerivation {
    inherit name;
    dontUnpack = true; dontConfigure = true; dontBuild = true; dontFixup = true;
    installPhase = ''mkdir -p $out/nix-support; cp ${hook} $out/nix-support/setup-hook'';
  };

  fixture = name: builtins.path { inherit name; path = ./fixtures + "/${name}"; };

  self = {
    inherit stdenv mkDerivation system;

    inherit stdenvName onNixpkgs;

    # nix-checkpoint, as nix/package.nix installs it: bin/ + nix-support/setup-hook
    # (the hook verbatim, beside the binary).
    nix-checkpoint = derivation {
      name = "nix-checkpoint-0.1.0";
      inherit system;
      builder = "/bin/bash";
      bin = builtins.path { name = "nix-checkpoint-bin"; path = binPath; };
      hook = ../../nix/setup-hook.sh;
      args = [ "-ec" ''
        PATH=/usr/bin:/bin
        install -Dm755 $bin $out/bin/nix-checkpoint
        install -Dm444 $hook $out/nix-support/setup-hook
      '' ];
    };

    checkpointBuildTools = import ../../nix/checkpoint-build-tools.nix {
      inherit (self) nix-checkpoint;
    };

    cmake = hookPackage "cmake-hook" ./hooks/cmake.sh;
    ninja = hookPackage "ninja-hook" ./hooks/ninja.sh;
    meson = hookPackage "meson-hook" ./hooks/meson.sh;

    # GNU hello 2.10 (Debian's orig tarball), as nixpkgs builds it.
    hello = mkDerivation {
      pname = "hello";
      version = "2.10";
      src = builtins.path { name = "hello-2.10.tar.gz"; path = helloPath; };
      doCheck = true;
      enableParallelBuilding = true;
      meta.mainProgram = "hello";
    };

    # Fixture projects (tests/nix/fixtures/*), one derivation per variant.
    makeProject = src: mkDerivation {
      pname = "make-project"; version = "1";
      inherit src;
      enableParallelBuilding = true;
      makeFlags = [ "PREFIX=$(out)" ];
    };
    cmakeProject = src: mkDerivation {
      pname = "cmake-project"; version = "1";
      inherit src;
      nativeBuildInputs = [ self.cmake self.ninja ];
    };
    mesonProject = src: mkDerivation {
      pname = "meson-project"; version = "1";
      inherit src;
      nativeBuildInputs = [ self.meson self.ninja ];
    };
    inherit fixture;

    # A trivial library, to change a build's dependencies.
    extraDep = mkDerivation {
      name = "extra-dep-1";
      dontUnpack = true; dontConfigure = true; dontBuild = true;
      installPhase = ''mkdir -p $out/include; echo '#define EXTRA 1' > $out/include/extra.h'';
    };

    runCommand = name: env: cmd: mkDerivation ({
      inherit name;
      buildCommand = cmd;
    } // env);
  };
in
self
