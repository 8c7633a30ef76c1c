# Stand-in for nixpkgs' cmake setup hook: configure out of source in
# $cmakeBuildDir (default build/), with Ninja when the ninja hook is active.
cmakeConfigurePhase() {
  runHook preConfigure
  : "${cmakeBuildDir:=build}"
  mkdir -p "$cmakeBuildDir"
  cd "$cmakeBuildDir"
  local gen=()
  [ "${buildPhase:-}" != ninjaBuildPhase ] || gen=(-G Ninja)
  echo "cmake flags: ${gen[*]} -DCMAKE_INSTALL_PREFIX=${prefix:-$out} ${cmakeFlags:-}"
  cmake "${cmakeDir:-..}" "${gen[@]}" -DCMAKE_BUILD_TYPE=${cmakeBuildType:-Release} \
    -DCMAKE_INSTALL_PREFIX="${prefix:-$out}" -DCMAKE_SKIP_BUILD_RPATH=ON ${cmakeFlags:-}
  runHook postConfigure
}
if [ -z "${dontUseCmakeConfigure:-}" ] && [ -z "${configurePhase:-}" ]; then
  configurePhase=cmakeConfigurePhase
fi
