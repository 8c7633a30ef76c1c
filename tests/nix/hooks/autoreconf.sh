# Stand-in for nixpkgs' autoreconfHook: a phase autoreconfPhase, appended to
# preConfigurePhases (so it runs after unpack and patch, in the source root),
# that regenerates the build system with the host's autoconf, automake and
# libtool (/usr/bin; nixpkgs propagates its own autoconf, automake, gettext
# and libtool). autoreconfFlags, when not empty, replaces the default flags; it
# may be a string or, with structured attrs, an array.
appendToVar preConfigurePhases autoreconfPhase

autoreconfPhase() {
  runHook preAutoreconf
  local -a flagsArray=()
  concatTo flagsArray autoreconfFlags
  # nixpkgs: an empty autoreconfFlags means the defaults.
  [ "${#flagsArray[@]}" -gt 0 ] || flagsArray=(--install --force --verbose)
  echoCmd 'autoreconf flags' "${flagsArray[@]}"
  autoreconf "${flagsArray[@]}"
  runHook postAutoreconf
}
