# The demo's builds (scripts/demo.sh): the nixpkgs manual's example, with a
# `run` nonce so that every demo run builds from scratch.
{ nixCheckpointBin ? "", helloSrc ? "", run ? "0" }:
let
  pkgs = import ./. { inherit nixCheckpointBin helloSrc; };
  inherit (pkgs.checkpointBuildTools) prepareCheckpointBuild mkCheckpointBuild;
  hello = pkgs.hello.overrideAttrs (_: { demoRun = run; });
  changedHello = hello.overrideAttrs (_: {
    doCheck = false;
    postPatch = ''
      sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
    '';
  });
  helloCheckpoint = prepareCheckpointBuild hello;
in
{
  inherit helloCheckpoint changedHello;
  checkpoint = helloCheckpoint.checkpoint;
  incremental = mkCheckpointBuild changedHello helloCheckpoint;
}
