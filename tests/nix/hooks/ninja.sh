# Stand-in for nixpkgs' ninja setup hook: build, check and install with ninja
# when the derivation does not set those phases itself.
ninjaBuildPhase() {
  runHook preBuild
  local par=-j1
  [ -z "${enableParallelBuilding-1}" ] || par="-j$NIX_BUILD_CORES"
  ninja $par ${ninjaFlags:-} ${buildFlags:-}
  runHook postBuild
}
ninjaCheckPhase() {
  runHook preCheck
  if ninja -t query test >/dev/null 2>&1; then ninja ${ninjaFlags:-} test; else echo "no test target"; fi
  runHook postCheck
}
ninjaInstallPhase() {
  runHook preInstall
  mkdir -p "${prefix:-$out}"
  ninja ${ninjaFlags:-} install
  runHook postInstall
}
if [ -z "${dontUseNinjaBuild:-}" ] && [ -z "${buildPhase:-}" ]; then buildPhase=ninjaBuildPhase; fi
if [ -z "${dontUseNinjaCheck:-}" ] && [ -z "${checkPhase:-}" ]; then checkPhase=ninjaCheckPhase; fi
if [ -z "${dontUseNinjaInstall:-}" ] && [ -z "${installPhase:-}" ]; then installPhase=ninjaInstallPhase; fi
