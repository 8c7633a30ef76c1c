# nix-checkpoint setup hook: incremental builds inside the Nix sandbox.
#
# Sourced from $pkg/nix-support/setup-hook when nix-checkpoint is in
# nativeBuildInputs. Runs $pkg/bin/nix-checkpoint (the binary beside this
# file), or `nix-checkpoint` from PATH when installed elsewhere. It does
# nothing unless the derivation asks for it:
#
#   output `checkpoint`        snapshot the build tree before configure,
#                              record what configure reads, save the
#                              products to $checkpoint after install
#   nixCheckpointRestore=PATH  restore that checkpoint (a directory holding
#                              checkpoint.nckp, or the pack file itself)
#   nixCheckpointRestoreFlags  extra flags for `restore` (e.g. --force)
#   nixCheckpointSkipConfigure set to "" or 0 to always run configure
#   nixCheckpointIgnoreChanges names of variables that may differ from the
#                              checkpoint's build (read by the engine)
#   nixCheckpointState         state file (default
#                              $NIX_BUILD_TOP/.nix-checkpoint-state)
#   dontUseNixCheckpoint       set: the hook does nothing at all
#
# When each step runs:
#   preConfigurePhases  nixCheckpointBeforeConfigurePhase, after unpack,
#                       patch and autoreconf: dump the shell variables (the
#                       recipe), snapshot, then `restore --before-configure`:
#                         0   restored; configure is skipped: the shell state
#                             and working directory the old configure phase
#                             left are re-established from the checkpoint
#                         12  configure must run: restore after it (preBuild)
#                         3   fall back: build in full, loudly
#                       When configure runs and a checkpoint is made, the
#                       files it reads are tracked (access times).
#   postConfigureHooks  record what configure read and the shell state it
#                       left (.nckp-configure/, saved as products); added
#                       last, when configure is about to run.
#   preBuildHooks       the deferred restore; or, when the phase above never
#                       ran (custom `phases`), snapshot and restore here.
#   preInstallHooks     the same, if the build phase was skipped (dontBuild).
#   postInstallHooks    save to $checkpoint.
#   postPhases          nixCheckpointSavePhase saves if postInstall did not
#                       run (dontInstall): the checkpoint output is always made.
#
# Exit code 3 of `restore` (fell back on purpose, tree untouched) continues
# the build in full with a loud message; any other failure fails the build
# with nix-checkpoint's exit code.

if [ -z "${_nixCheckpointHookSourced:-}" ] && [ -z "${dontUseNixCheckpoint:-}" ]; then
_nixCheckpointHookSourced=1
_nixCheckpointPrepared=
_nixCheckpointDeferred=
_nixCheckpointTracking=
_nixCheckpointSaved=

# The binary beside this hook ($pkg/nix-support/../bin), else PATH's.
_nixCheckpointBin=${BASH_SOURCE[0]%/*}/../bin/nix-checkpoint
[ -x "$_nixCheckpointBin" ] || _nixCheckpointBin=nix-checkpoint

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
    local _nckpO _nckpEnv=()
    for _nckpO in "${!outputs[@]}"; do _nckpEnv+=("$_nckpO=${outputs[$_nckpO]}"); done
    env "outputs=${!outputs[*]}" "${_nckpEnv[@]}" "$_nixCheckpointBin" "$@"
  else
    "$_nixCheckpointBin" "$@"
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
    13) echo "checkpoint unreadable (permission or I/O error)" ;;
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

_nixCheckpointVarsFile() {
  echo "${NIX_BUILD_TOP:?NIX_BUILD_TOP is not set}/.nix-checkpoint-vars"
}

# Variables that say nothing about the build: bash's own, and this hook's.
_nixCheckpointIsShellNoise() {
  case "$1" in
    _nixCheckpoint*|_nckp*|BASH*|FUNCNAME|PIPESTATUS|RANDOM|SRANDOM|SECONDS|LINENO|EPOCHREALTIME|EPOCHSECONDS|HISTCMD|PWD|OLDPWD|_|COMP_*|GROUPS|DIRSTACK|PPID|SHELLOPTS|SHLVL|UID|EUID) return 0 ;;
  esac
  return 1
}

# Dumps every shell variable, NUL-separated (`s NAME VALUE`, `a NAME N
# ITEM...`, `A NAME N KEY VALUE...`): the build's recipe, as the engine
# compares it. Under __structuredAttrs this includes all of .attrs.sh.
_nixCheckpointDumpVars() { # FILE
  local _nckpName _nckpDecl _nckpFlags _nckpItems _nckpKeys _nckpKey
  {
    for _nckpName in $(compgen -v); do
      _nixCheckpointIsShellNoise "$_nckpName" && continue
      _nckpDecl=$(declare -p "$_nckpName" 2>/dev/null) || continue
      _nckpFlags=${_nckpDecl#declare -}
      case "${_nckpFlags%% *}" in
        *a*)
          eval "_nckpItems=(\"\${${_nckpName}[@]}\")"
          printf 'a\0%s\0%s\0' "$_nckpName" "${#_nckpItems[@]}"
          [ "${#_nckpItems[@]}" = 0 ] || printf '%s\0' "${_nckpItems[@]}"
          ;;
        *A*)
          eval "_nckpKeys=(\"\${!${_nckpName}[@]}\")"
          printf 'A\0%s\0%s\0' "$_nckpName" "${#_nckpKeys[@]}"
          for _nckpKey in "${_nckpKeys[@]}"; do
            eval "printf '%s\0%s\0' \"\$_nckpKey\" \"\${${_nckpName}[\$_nckpKey]}\""
          done
          ;;
        *) printf 's\0%s\0%s\0' "$_nckpName" "${!_nckpName-}" ;;
      esac
    done
  } > "$1"
}

# The declarations of every variable, to see what configure changes.
declare -gA _nixCheckpointVarsBefore=()
_nixCheckpointRememberVars() {
  local _nckpName
  _nixCheckpointVarsBefore=()
  for _nckpName in $(compgen -v); do
    _nixCheckpointIsShellNoise "$_nckpName" && continue
    _nixCheckpointVarsBefore[$_nckpName]=$(declare -p "$_nckpName" 2>/dev/null) || true
  done
}

# Writes .nckp-configure/shell-state.sh: the variables the configure phase
# set or changed (as globals) and the directory it left the build in, for a
# later build that skips configure.
_nixCheckpointWriteShellState() {
  local _nckpName _nckpDecl _nckpFlags _nckpRel _nckpDir="$NIX_BUILD_TOP/.nckp-configure"
  mkdir -p "$_nckpDir"
  {
    echo "# written by nix-checkpoint's setup hook after configure; sourced instead of it"
    for _nckpName in $(compgen -v); do
      _nixCheckpointIsShellNoise "$_nckpName" && continue
      case "$_nckpName" in curPhase|phase|nixCheckpoint*) continue ;; esac
      _nckpDecl=$(declare -p "$_nckpName" 2>/dev/null) || continue
      _nckpFlags=${_nckpDecl#declare -}
      [[ "${_nckpFlags%% *}" != *r* ]] || continue
      [ "${_nixCheckpointVarsBefore[$_nckpName]-}" != "$_nckpDecl" ] || continue
      echo "declare -g ${_nckpDecl#declare }"
    done
    _nckpRel=${PWD#"$NIX_BUILD_TOP"}
    printf '_nixCheckpointConfiguredDir=%q\n' "${_nckpRel#/}"
  } > "$_nckpDir/shell-state.sh"
}

# The configure phase is skipped: re-establish what it left behind.
_nixCheckpointSkipConfigure() {
  local _nckpState="$NIX_BUILD_TOP/.nckp-configure/shell-state.sh"
  if [ ! -f "$_nckpState" ]; then
    echo "nix-checkpoint: the checkpoint has no record of configure's shell state: configure runs" >&2
    return 1
  fi
  _nixCheckpointConfiguredDir=
  # shellcheck disable=SC1090
  source "$_nckpState"
  dontConfigure=1
  cd "$NIX_BUILD_TOP/${_nixCheckpointConfiguredDir}" || return 1
  return 0
}

_nixCheckpointRestore() { # before-configure | after-configure
  local _nckpRc=0 _nckpFlags=()
  [ "$1" != before-configure ] || _nckpFlags+=(--before-configure)
  echo "nix-checkpoint: restoring $nixCheckpointRestore into $NIX_BUILD_TOP ($1)"
  # shellcheck disable=SC2086
  _nixCheckpoint restore --root "$NIX_BUILD_TOP" --shell-vars "$(_nixCheckpointVarsFile)" "${_nckpFlags[@]}" \
    ${nixCheckpointRestoreFlags:-} "$nixCheckpointRestore" || _nckpRc=$?
  case "$_nckpRc" in
    0)
      if [ "$1" = before-configure ]; then
        _nixCheckpointSkipConfigure || return 0
        _nixCheckpointConfigureSkipped=1
      fi
      ;;
    12) _nixCheckpointDeferred=1 ;;
    3)
      echo "********************************************************************" >&2
      echo "nix-checkpoint: NOT RESTORING the checkpoint (reason above)." >&2
      echo "nix-checkpoint: the build tree is untouched; building IN FULL." >&2
      echo "********************************************************************" >&2
      ;;
    *) _nixCheckpointFail restore "$_nckpRc" ;;
  esac
}

_nixCheckpointPrepare() { # before-configure | after-configure
  [ -z "$_nixCheckpointPrepared" ] || return 0
  _nixCheckpointPrepared=1
  local _nckpRc=0 _nckpStateFile _nckpVars
  _nckpStateFile=$(_nixCheckpointStateFile)
  _nckpVars=$(_nixCheckpointVarsFile)
  # The recipe is only read by snapshot and restore: a build that asks for
  # neither pays nothing.
  if _nixCheckpointHasOutput || [ -n "${nixCheckpointRestore:-}" ]; then
    _nixCheckpointDumpVars "$_nckpVars"
  fi
  if _nixCheckpointHasOutput; then
    echo "nix-checkpoint: snapshot of $NIX_BUILD_TOP"
    _nixCheckpoint snapshot --root "$NIX_BUILD_TOP" --state "$_nckpStateFile" --shell-vars "$_nckpVars" || _nckpRc=$?
    [ "$_nckpRc" = 0 ] || _nixCheckpointFail snapshot "$_nckpRc"
  fi
  _nixCheckpointConfigureSkipped=
  if [ -n "${nixCheckpointRestore:-}" ]; then
    _nixCheckpointRestore "$1"
  fi
  # Configure will run and a checkpoint is made: see what it reads.
  if [ "$1" = before-configure ] && [ -z "$_nixCheckpointConfigureSkipped" ] && _nixCheckpointHasOutput; then
    _nixCheckpoint track-configure --start --root "$NIX_BUILD_TOP" --state "$_nckpStateFile" || _nckpRc=$?
    [ "$_nckpRc" = 0 ] || _nixCheckpointFail track-configure "$_nckpRc"
    _nixCheckpointTracking=1
    # Registered now, after every setup hook was sourced: the last of the
    # postConfigure hooks, so that what the others leave is recorded too.
    postConfigureHooks+=(_nixCheckpointAfterConfigure)
    _nixCheckpointRememberVars
    # No configure phase at all: nothing to read, nothing to re-establish.
    [ -z "${dontConfigure:-}" ] || _nixCheckpointAfterConfigure
  fi
}

nixCheckpointBeforeConfigurePhase() {
  _nixCheckpointPrepare before-configure
}

_nixCheckpointAfterConfigure() {
  [ -n "$_nixCheckpointTracking" ] || return 0
  _nixCheckpointTracking=
  local _nckpRc=0
  _nixCheckpoint track-configure --finish --root "$NIX_BUILD_TOP" --state "$(_nixCheckpointStateFile)" || _nckpRc=$?
  [ "$_nckpRc" = 0 ] || _nixCheckpointFail track-configure "$_nckpRc"
  _nixCheckpointWriteShellState
}

nixCheckpointPreBuild() {
  if [ -n "$_nixCheckpointDeferred" ]; then
    _nixCheckpointDeferred=
    _nixCheckpointRestore after-configure
  else
    _nixCheckpointPrepare after-configure
  fi
}

nixCheckpointSave() {
  _nixCheckpointHasOutput || return 0
  [ -z "$_nixCheckpointSaved" ] || return 0
  # dontBuild and dontInstall: snapshot now, so the checkpoint holds the tree.
  [ -n "$_nixCheckpointPrepared" ] || _nixCheckpointPrepare after-configure
  _nixCheckpointSaved=1
  local _nckpRc=0 _nckpDest
  if _nixCheckpointIsAssocOutputs; then _nckpDest=${outputs[checkpoint]}; else _nckpDest=$checkpoint; fi
  mkdir -p "$_nckpDest"
  echo "nix-checkpoint: saving the build tree to $_nckpDest"
  _nixCheckpoint save --root "$NIX_BUILD_TOP" --state "$(_nixCheckpointStateFile)" --output "$_nckpDest" || _nckpRc=$?
  [ "$_nckpRc" = 0 ] || _nixCheckpointFail save "$_nckpRc"
}

nixCheckpointSavePhase() {
  nixCheckpointSave
}

_nixCheckpointAppendTo() { # VAR WORD: arrays and plain strings alike
  if [[ "$(declare -p "$1" 2>/dev/null)" == "declare -a"* ]]; then
    eval "$1+=(\"\$2\")"
  else
    eval "$1=\"\${$1:-} \$2\""
  fi
}

_nixCheckpointAppendTo preConfigurePhases nixCheckpointBeforeConfigurePhase
preBuildHooks+=(nixCheckpointPreBuild)
preInstallHooks+=(nixCheckpointPreBuild)
postInstallHooks+=(nixCheckpointSave)
if _nixCheckpointHasOutput; then
  _nixCheckpointAppendTo postPhases nixCheckpointSavePhase
fi
fi
