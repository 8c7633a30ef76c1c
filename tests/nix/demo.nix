# The demo's builds (scripts/demo.sh): the nixpkgs manual's example, and the
# CMake (Ninja) and Meson fixtures edited the same way, each with a `run`
# nonce so that every demo run builds from scratch.
{ nixCheckpointBin ? "", helloSrc ? "", run ? "0", stdenvName ? "standin" }:
let
  pkgs = import ./. { inherit nixCheckpointBin helloSrc stdenvName; };
  inherit (pkgs.checkpointBuildTools) prepareCheckpointBuild mkCheckpointBuild;
  hello = pkgs.hello.overrideAttrs (_: { demoRun = run; });
  changedHello = hello.overrideAttrs (_: {
    doCheck = false;
    postPatch = ''
      sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
    '';
  });
  helloCheckpoint = prepareCheckpointBuild hello;

  # A fixture project, and the same with one source line changed.
  fixtureDemo = mk: name: file: edit:
    let
      base = (mk (pkgs.fixture name)).overrideAttrs (_: { demoRun = run; });
      changed = base.overrideAttrs (old: { postPatch = "sed -i '${edit}' ${file}"; });
      checkpoint = prepareCheckpointBuild base;
    in {
      inherit checkpoint changed;
      incremental = mkCheckpointBuild changed checkpoint;
    };
  cmake = fixtureDemo pkgs.cmakeProject "cmake-project" "src/greet.c" "s/hello from cmake/hello again from cmake/";
  meson = fixtureDemo pkgs.mesonProject "meson-project" "src/math.c" "s/a + b/a * b/";
in
{
  inherit helloCheckpoint changedHello;
  checkpoint = helloCheckpoint.checkpoint;
  incremental = mkCheckpointBuild changedHello helloCheckpoint;
  cmakeCheckpoint = cmake.checkpoint;
  cmakeChanged = cmake.changed;
  cmakeIncremental = cmake.incremental;
  mesonCheckpoint = meson.checkpoint;
  mesonChanged = meson.changed;
  mesonIncremental = meson.incremental;
}
