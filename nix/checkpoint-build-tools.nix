# checkpointBuildTools: incremental builds with nix-checkpoint.
# A drop-in replacement for nixpkgs' checkpointBuildTools; builtins and
# drv.overrideAttrs only. See docs/nix-api.md.
#
# `lib` and `config` are optional (callPackage passes them): with them, the
# deprecated alias warns through lib.warn and exists only when
# config.allowAliases, as in nixpkgs.
{ nix-checkpoint, lib ? null, config ? { } }:
let
  inherit (builtins) elem isAttrs trace concatMap;
  warn = if lib != null && lib ? warn then lib.warn else msg: trace "warning: ${msg}";

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
  # - a single-output package stays a single-output package, although a
  #   prepared build has a second output: nixpkgs' multiple-outputs.sh adds
  #   --bindir, --libdir, ... to configure as soon as there are two
  #   (setOutputFlags), and rewrites `includedir` in .pc files (moveToDev).
  #   separateDebugInfo makes nixpkgs append a `debug` output after this
  #   override: such a package has two outputs in its plain build too.
  singleOutput = old: (old.outputs or [ "out" ]) == [ "out" ] && !(old.separateDebugInfo or false);
  common = old: {
    nativeBuildInputs = addTool old;
    dontAddDisableDepTrack = true;
    nixCheckpointCheckInputs = checkInputsOf old;
  } // (if singleOutput old then { setOutputFlags = false; moveToDev = false; } else { });

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
    });

  mkCheckpointBuild = drv: checkpoint: drv.overrideAttrs (old:
    common old // {
      nixCheckpointRestore = checkpointPath checkpoint;
    });

  # mkCheckpointBuild that also produces a checkpoint of its own, so that
  # builds chain: v1 -> v2 -> v3, each incremental over the one before.
  mkCheckpointBuildWithCheckpoint = drv: checkpoint:
    prepareCheckpointBuild (mkCheckpointBuild drv checkpoint);

  mkCheckpointedBuild = warn
    "checkpointBuildTools.mkCheckpointedBuild is deprecated, use mkCheckpointBuild"
    mkCheckpointBuild;
in
{
  inherit prepareCheckpointBuild mkCheckpointBuild mkCheckpointBuildWithCheckpoint;
}
// (if config.allowAliases or true then { inherit mkCheckpointedBuild; } else { })
// {
  # The package whose setup hook does the work, for custom derivations.
  inherit nix-checkpoint;
}
