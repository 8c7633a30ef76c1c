# Stand-in for nixpkgs' ninja setup hook: build, check and install with ninja
# when the derivation does not set those phases itself. Like nixpkgs: ninja
# runs in parallel unless enableParallelBuilding (enableParallelChecking,
# enableParallelInstalling) is set empty; the flags are ninjaFlags and
# ninjaFlagsArray (strings or arrays), not buildFlags; TERM=dumb.
_ninjaJobs() { if [ -n "${!1-1}" ]; then echo "-j$NIX_BUILD_CORES"; else echo -j1; fi; }

ninjaBuildPhase() {
  runHook preBuild
  local -a flagsArray=("$(_ninjaJobs enableParallelBuilding)")
  concatTo flagsArray ninjaFlags ninjaFlagsArray
  echoCmd 'build flags' "${flagsArray[@]}"
  TERM=dumb ninja "${flagsArray[@]}"
  runHook postBuild
}
ninjaCheckPhase() {
  runHook preCheck
  if [ -z "${checkTarget:-}" ] && ninja -t query test >/dev/null 2>&1; then checkTarget=test; fi
  if [ -z "${checkTarget:-}" ]; then
    echo "no test target found in ninja, doing nothing"
  else
    local -a flagsArray=("$(_ninjaJobs enableParallelChecking)")
    concatTo flagsArray ninjaFlags ninjaFlagsArray checkTarget
    echoCmd 'check flags' "${flagsArray[@]}"
    TERM=dumb ninja "${flagsArray[@]}"
  fi
  runHook postCheck
}
ninjaInstallPhase() {
  runHook preInstall
  local -a flagsArray=("$(_ninjaJobs enableParallelInstalling)")
  concatTo flagsArray ninjaFlags ninjaFlagsArray installTargets=install
  echoCmd 'install flags' "${flagsArray[@]}"
  TERM=dumb ninja "${flagsArray[@]}"
  runHook postInstall
}
if [ -z "${dontUseNinjaBuild:-}" ] && [ -z "${buildPhase:-}" ]; then buildPhase=ninjaBuildPhase; fi
if [ -z "${dontUseNinjaCheck:-}" ] && [ -z "${checkPhase:-}" ]; then checkPhase=ninjaCheckPhase; fi
if [ -z "${dontUseNinjaInstall:-}" ] && [ -z "${installPhase:-}" ]; then installPhase=ninjaInstallPhase; fi
