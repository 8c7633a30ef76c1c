# nix-checkpoint setup hook: incremental builds inside the Nix sandbox.
#
# Sourced from $pkg/nix-support/setup-hook when nix-checkpoint is in
# nativeBuildInputs; expects `nix-checkpoint` on PATH ($pkg/bin). It does
# nothing unless the derivation asks for it:
#
#   output `checkpoint`        snapshot the build tree before the build step,
#                              save the products to $checkpoint after install
#   nixCheckpointRestore=PATH  restore that checkpoint (a directory holding
#                              checkpoint.nckp, or the pack file itself)
#                              before the build step
#   nixCheckpointRestoreFlags  extra flags for `restore` (e.g. --force)
#   nixCheckpointState         state file (default
#                              $NIX_BUILD_TOP/.nix-checkpoint-state)
#
# When each step runs:
#   preBuildHooks    snapshot, then restore: after the derivation's own
#                    preBuild (runHook runs the variable before the array).
#                    The snapshot comes first so that a chained build
#                    (checkpoint output + restore) stores every product.
#   preInstallHooks  the same, if the build phase was skipped (dontBuild).
#   postInstallHooks save to $checkpoint.
#   postPhases       nixCheckpointSavePhase saves if postInstall did not run
#                    (dontInstall): the checkpoint output is always produced.
#
# Exit code 3 of `restore` (fell back on purpose, tree untouched) continues
# the build in full with a loud message; any other failure fails the build
# with nix-checkpoint's exit code.

if [ -z "${_nixCheckpointHookSourced:-}" ]; then
_nixCheckpointHookSourced=1
_nixCheckpointPrepared=
_nixCheckpointSaved=

_nixCheckpointIsAssocOutputs() {
  [[ "$(declare -p outputs 2>/dev/null)" == "declare -A"* ]]
}

_nixCheckpointOutputNames() {
  if _nixCheckpointIsAssocOutputs; then
    echo "${!outputs[@]}"
  else
    echo "${outputs:-out}"
  fi
}

_nixCheckpointHasOutput() {
  [[ " $(_nixCheckpointOutputNames) " == *" checkpoint "* ]]
}

# Runs nix-checkpoint with `outputs` and every output variable in its
# environment (with __structuredAttrs, `outputs` is an associative array).
_nixCheckpoint() {
  if _nixCheckpointIsAssocOutputs; then
    local o vars=()
    for o in "${!outputs[@]}"; do vars+=("$o=${outputs[$o]}"); done
    env "outputs=${!outputs[*]}" "${vars[@]}" nix-checkpoint "$@"
  else
    nix-checkpoint "$@"
  fi
}

_nixCheckpointExplain() {
  case "$1" in
    4) echo "no snapshot state (save without snapshot)" ;;
    5) echo "checkpoint missing" ;;
    6) echo "checkpoint corrupt (truncated or failing a checksum)" ;;
    7) echo "not a checkpoint, or an unsupported format version" ;;
    8) echo "unsafe checkpoint (nothing was written)" ;;
    9) echo "build tree unreadable" ;;
    10) echo "write failed" ;;
    11) echo "an earlier restore into this tree was interrupted" ;;
    *) echo "error" ;;
  esac
}

_nixCheckpointFail() { # STEP CODE
  echo "nix-checkpoint: $1 failed with exit code $2: $(_nixCheckpointExplain "$2")" >&2
  exit "$2"
}

_nixCheckpointStateFile() {
  echo "${nixCheckpointState:-${NIX_BUILD_TOP:?NIX_BUILD_TOP is not set}/.nix-checkpoint-state}"
}

nixCheckpointPreBuild() {
  [ -z "$_nixCheckpointPrepared" ] || return 0
  _nixCheckpointPrepared=1
  local rc=0 state
  state=$(_nixCheckpointStateFile)
  if _nixCheckpointHasOutput; then
    echo "nix-checkpoint: snapshot of $NIX_BUILD_TOP"
    _nixCheckpoint snapshot --root "$NIX_BUILD_TOP" --state "$state" || rc=$?
    [ "$rc" = 0 ] || _nixCheckpointFail snapshot "$rc"
  fi
  if [ -n "${nixCheckpointRestore:-}" ]; then
    echo "nix-checkpoint: restoring $nixCheckpointRestore into $NIX_BUILD_TOP"
    # shellcheck disable=SC2086
    _nixCheckpoint restore --root "$NIX_BUILD_TOP" ${nixCheckpointRestoreFlags:-} "$nixCheckpointRestore" || rc=$?
    case "$rc" in
      0) ;;
      3)
        echo "********************************************************************" >&2
        echo "nix-checkpoint: NOT RESTORING the checkpoint (reason above)." >&2
        echo "nix-checkpoint: the build tree is untouched; building IN FULL." >&2
        echo "********************************************************************" >&2
        ;;
      *) _nixCheckpointFail restore "$rc" ;;
    esac
  fi
}

nixCheckpointSave() {
  _nixCheckpointHasOutput || return 0
  [ -z "$_nixCheckpointSaved" ] || return 0
  # dontBuild and dontInstall: snapshot now, so the checkpoint holds the tree.
  [ -n "$_nixCheckpointPrepared" ] || nixCheckpointPreBuild
  _nixCheckpointSaved=1
  local rc=0 dest
  if _nixCheckpointIsAssocOutputs; then dest=${outputs[checkpoint]}; else dest=$checkpoint; fi
  mkdir -p "$dest"
  echo "nix-checkpoint: saving the build tree to $dest"
  _nixCheckpoint save --root "$NIX_BUILD_TOP" --state "$(_nixCheckpointStateFile)" --output "$dest" || rc=$?
  [ "$rc" = 0 ] || _nixCheckpointFail save "$rc"
}

nixCheckpointSavePhase() {
  nixCheckpointSave
}

preBuildHooks+=(nixCheckpointPreBuild)
preInstallHooks+=(nixCheckpointPreBuild)
postInstallHooks+=(nixCheckpointSave)
if _nixCheckpointHasOutput; then
  if [[ "$(declare -p postPhases 2>/dev/null)" == "declare -a"* ]]; then
    postPhases+=(nixCheckpointSavePhase)
  else
    postPhases="${postPhases:-} nixCheckpointSavePhase"
  fi
fi
fi
