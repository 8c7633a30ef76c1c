# Stand-in for nixpkgs' meson setup hook: `meson setup build`, then the
# ninja hook builds and installs.
mesonConfigurePhase() {
  runHook preConfigure
  echo "meson flags: --prefix=${prefix:-$out} ${mesonFlags:-}"
  meson setup build --prefix="${prefix:-$out}" --buildtype=${mesonBuildType:-plain} \
    --libdir=lib --wrap-mode=nodownload ${mesonFlags:-}
  cd build
  runHook postConfigure
}
if [ -z "${dontUseMesonConfigure:-}" ] && [ -z "${configurePhase:-}" ]; then
  configurePhase=mesonConfigurePhase
fi
