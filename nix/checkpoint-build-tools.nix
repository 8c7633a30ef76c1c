# checkpointBuildTools: incremental builds with nix-checkpoint.
# A drop-in replacement for nixpkgs' checkpointBuildTools; builtins and
# drv.overrideAttrs only. See docs/nix-api.md.
{ nix-checkpoint }:
let
  inherit (builtins) elem isAttrs trace concatMap;

  addTool = old: (old.nativeBuildInputs or [ ]) ++ [ nix-checkpoint ];

  # Every output of every input that only the check phases use: the engine
  # ignores them when it compares the recipe, so that `doCheck = false` in
  # the changed build (which drops them from nixpkgs' nativeBuildInputs)
  # does not cost the checkpoint.
  checkInputsOf = old: concatMap
    (d: if isAttrs d && d ? outputs then map (o: d.${o}) d.outputs else [ d ])
    ((old.nativeCheckInputs or [ ]) ++ (old.checkInputs or [ ])
      ++ (old.nativeInstallCheckInputs or [ ]) ++ (old.installCheckInputs or [ ]));

  # What every build of the checkpoint family has in common, prepared or
  # restored, so that their recipes compare equal:
  # - automake's dependency tracking stays on: nixpkgs turns it off for
  #   one-shot builds, but without it make cannot see that a header changed.
  #   It changes no compiled code.
  # - a single-output package keeps single-output configure flags, although
  #   a prepared build has a second output (nixpkgs' multiple-outputs.sh
  #   adds --bindir, --libdir, ... as soon as there are two).
  common = old: {
    nativeBuildInputs = addTool old;
    dontAddDisableDepTrack = true;
    nixCheckpointCheckInputs = checkInputsOf old;
  } // (if (old.outputs or [ "out" ]) == [ "out" ] then { setOutputFlags = false; } else { });

  # A checkpoint argument: a prepareCheckpointBuild result (its `checkpoint`
  # output), a checkpoint output itself, or a path to a checkpoint directory
  # or pack file (give store paths with their context, e.g. builtins.storePath,
  # so that the sandbox can see them).
  checkpointPath = checkpoint:
    if isAttrs checkpoint && checkpoint ? checkpoint then checkpoint.checkpoint
    else checkpoint;

  prepareCheckpointBuild = drv: drv.overrideAttrs (old:
    let outputs = old.outputs or [ "out" ]; in
    common old // {
      # The package stays the default (first) output.
      outputs = if elem "checkpoint" outputs then outputs else outputs ++ [ "checkpoint" ];
    }
    // (if outputs == [ "out" ] || outputs == [ "out" "checkpoint" ]
        then { setOutputFlags = false; } else { }));

  mkCheckpointBuild = drv: checkpoint: drv.overrideAttrs (old:
    common old // {
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
