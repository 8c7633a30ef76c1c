# Stand-in for nixpkgs' cmake setup hook: configure out of source in
# $cmakeBuildDir (default build/), with Ninja when the ninja hook is active,
# else CMake's default, Unix Makefiles (built by the stdenv's make phases).
# Each behaviour below mirrors the real hook where it shapes the tree or flags.

# nixpkgs' fixCmakeFiles: /usr and /opt in CMake files become /var/empty;
# every CMakeLists.txt, *.cmake and *.cmake.in is rewritten (new mtime).
fixCmakeFiles() {
  echo "fixing cmake files..."
  local f
  while IFS= read -r -d '' f; do
    sed -e 's^/usr\([ /]\|$\)^/var/empty\1^g' -e 's^/opt\([ /]\|$\)^/var/empty\1^g' < "$f" > "$f.tmp"
    mv "$f.tmp" "$f"
  done < <(find "$1" -type f \( -name "*.cmake" -o -name "*.cmake.in" -o -name CMakeLists.txt \) -print0)
}

cmakeConfigurePhase() {
  runHook preConfigure
  : "${cmakeBuildDir:=build}"
  # nixpkgs: ctest prints failures and runs in parallel.
  export CTEST_OUTPUT_ON_FAILURE=1
  [ -z "${enableParallelChecking-1}" ] || export CTEST_PARALLEL_LEVEL=$NIX_BUILD_CORES
  [ -n "${dontFixCmake-}" ] || fixCmakeFiles .
  if [ -z "${dontUseCmakeBuildDir-}" ]; then
    mkdir -p "$cmakeBuildDir"
    cd "$cmakeBuildDir"
    : "${cmakeDir:=..}"
  else
    : "${cmakeDir:=.}"
  fi
  # nixpkgs' default flags: install dirs per output, Release, no package
  # registry; then the prefix, BUILD_TESTING=OFF without doCheck, Ninja.
  local docName=${shareDocName:-}
  if [ -z "$docName" ] && [ -f "$cmakeDir/CMakeLists.txt" ]; then
    docName=$(grep -oiP '\bproject\s*\(\s*"?\K([^[:space:]")]+)' "$cmakeDir/CMakeLists.txt" | head -n 1 || true)
  fi
  if [ -z "$docName" ] || [[ "$docName" == *[!a-zA-Z0-9_+-]* ]]; then
    docName=${pname:-$(echo "$name" | sed 's/-[^a-zA-Z].*//')}
  fi
  local -a flagsArray=(
    "-DCMAKE_CXX_COMPILER=$CXX" "-DCMAKE_C_COMPILER=$CC"
    "-DCMAKE_AR=$(command -v "$AR")" "-DCMAKE_RANLIB=$(command -v "$RANLIB")" "-DCMAKE_STRIP=$(command -v "$STRIP")"
    -DCMAKE_FIND_FRAMEWORK=LAST -DCMAKE_POLICY_DEFAULT_CMP0025=NEW
    "-DCMAKE_INSTALL_NAME_DIR=${!outputLib}/lib"
    "-DCMAKE_INSTALL_BINDIR=${!outputBin}/bin" "-DCMAKE_INSTALL_SBINDIR=${!outputBin}/sbin"
    "-DCMAKE_INSTALL_INCLUDEDIR=${!outputInclude}/include"
    "-DCMAKE_INSTALL_MANDIR=${!outputMan}/share/man" "-DCMAKE_INSTALL_INFODIR=${!outputInfo}/share/info"
    "-DCMAKE_INSTALL_LIBDIR=${!outputLib}/lib" "-DCMAKE_INSTALL_LIBEXECDIR=${!outputLib}/libexec"
    "-DCMAKE_INSTALL_LOCALEDIR=${!outputLib}/share/locale"
    "-DCMAKE_BUILD_TYPE=${cmakeBuildType:-Release}"
    -DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  )
  [ -n "${dontAddPrefix-}" ] || flagsArray+=("-DCMAKE_INSTALL_PREFIX=$prefix")
  [ -n "${doCheck-}" ] || flagsArray+=(-DBUILD_TESTING=OFF)
  [ "${buildPhase-}" != ninjaBuildPhase ] || flagsArray+=(-GNinja)
  flagsArray+=("-DCMAKE_INSTALL_DOCDIR=${!outputDoc}/share/doc/$docName")
  concatTo flagsArray cmakeFlags cmakeFlagsArray
  echoCmd 'cmake flags' "${flagsArray[@]}"
  cmake "$cmakeDir" "${flagsArray[@]}"
  # nixpkgs: CMake builds and installs in parallel unless told otherwise.
  if ! [[ -v enableParallelBuilding ]]; then enableParallelBuilding=1; echo "cmake: enabled parallel building"; fi
  [ "$enableParallelBuilding" = 0 ] || [ -z "$enableParallelBuilding" ] || export CMAKE_BUILD_PARALLEL_LEVEL=$NIX_BUILD_CORES
  if ! [[ -v enableParallelInstalling ]]; then enableParallelInstalling=1; echo "cmake: enabled parallel installing"; fi
  runHook postConfigure
}

# nixpkgs: the hook takes over configurePhase and turns off the stdenv's
# multiple-output configure flags (setOutputFlags=).
if [ -z "${dontUseCmakeConfigure:-}" ] && [ -z "${configurePhase:-}" ]; then
  setOutputFlags=
  configurePhase=cmakeConfigurePhase
fi
