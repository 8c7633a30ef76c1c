# Stand-in for nixpkgs' meson setup hook: `meson setup build`, then the
# ninja hook builds and installs. mesonFlags may be a string or an array.
mesonConfigurePhase() {
  runHook preConfigure
  local -a flagsArray=(--prefix="$prefix" --buildtype="${mesonBuildType:-plain}"
    --libdir=lib --wrap-mode=nodownload)
  concatTo flagsArray mesonFlags mesonFlagsArray
  echoCmd 'meson flags' "${flagsArray[@]}"
  meson setup build "${flagsArray[@]}"
  cd build
  runHook postConfigure
}
if [ -z "${dontUseMesonConfigure:-}" ] && [ -z "${configurePhase:-}" ]; then
  configurePhase=mesonConfigurePhase
fi
