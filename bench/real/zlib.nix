# zlib (Debian's source package) on nixpkgs' own setup.sh: prepared vs
# plain, and three changes built incrementally and clean (bench/real/zlib.sh).
{ nixCheckpointBin, src, stdenvName ? "nixpkgs", run ? "0" }:
let
  pkgs = import ../../tests/nix { inherit nixCheckpointBin stdenvName; };
  inherit (pkgs.checkpointBuildTools) prepareCheckpointBuild mkCheckpointBuild;
  zlib = pkgs.mkDerivation {
    pname = "zlib";
    version = "1.2.13";
    inherit src;
    enableParallelBuilding = true;
    benchRun = run; # a nonce: every bench run builds from scratch
  };
  edited = edit: zlib.overrideAttrs { postPatch = edit; };
  changes = {
    source = edited "sed -i 's/deflate 1.2.13 Copyright/deflate 1.2.13 (edited) Copyright/' deflate.c";
    header = edited "echo '/* edited */' >> zutil.h";
    flags = zlib.overrideAttrs { makeFlags = [ "CFLAGS=-O1" ]; };
  };
  checkpoint = prepareCheckpointBuild zlib;
in
{
  plain = zlib;
  prepared = checkpoint;
} // builtins.mapAttrs (_: changed: {
  inc = mkCheckpointBuild changed checkpoint;
  clean = changed;
}) changes
