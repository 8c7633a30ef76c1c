# checkpointBuildTools: incremental builds with nix-checkpoint.
# A drop-in replacement for nixpkgs' checkpointBuildTools; builtins and
# drv.overrideAttrs only. See docs/nix-api.md.
{ nix-checkpoint }:
let
  inherit (builtins) elem isAttrs trace;

  addTool = old: (old.nativeBuildInputs or [ ]) ++ [ nix-checkpoint ];

  # A checkpoint argument: a prepareCheckpointBuild result (its `checkpoint`
  # output), a checkpoint output itself, or a path to a checkpoint directory
  # or pack file (give store paths with their context, e.g. builtins.storePath,
  # so that the sandbox can see them).
  checkpointPath = checkpoint:
    if isAttrs checkpoint && checkpoint ? checkpoint then checkpoint.checkpoint
    else checkpoint;

  prepareCheckpointBuild = drv: drv.overrideAttrs (old:
    let outputs = old.outputs or [ "out" ]; in
    {
      # The package stays the default (first) output.
      outputs = if elem "checkpoint" outputs then outputs else outputs ++ [ "checkpoint" ];
      nativeBuildInputs = addTool old;
    }
    # A second output must not change how the package is built: nixpkgs'
    # multiple-outputs.sh adds --bindir, --libdir, ... to configureFlags as
    # soon as there is more than one output.
    // (if outputs == [ "out" ] then { setOutputFlags = false; } else { }));

  mkCheckpointBuild = drv: checkpoint: drv.overrideAttrs (old: {
    nativeBuildInputs = addTool old;
    nixCheckpointRestore = checkpointPath checkpoint;
  });

  # mkCheckpointBuild that also produces a checkpoint of its own, so that
  # builds chain: v1 -> v2 -> v3, each incremental over the one before.
  mkCheckpointBuildWithCheckpoint = drv: checkpoint:
    prepareCheckpointBuild (mkCheckpointBuild drv checkpoint);

  mkCheckpointedBuild = trace
    "warning: checkpointBuildTools.mkCheckpointedBuild is deprecated, use mkCheckpointBuild"
    mkCheckpointBuild;
in
{
  inherit prepareCheckpointBuild mkCheckpointBuild mkCheckpointBuildWithCheckpoint mkCheckpointedBuild;
  # The package whose setup hook does the work, for custom derivations.
  inherit nix-checkpoint;
}
