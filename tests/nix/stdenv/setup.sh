# Stand-in for nixpkgs' stdenv/generic/setup.sh, written from the documented
# protocol (nixpkgs manual, "The standard environment"), for tests only.
# Host tools (/usr/bin) play the toolchain; $stdenv/bin holds a logging cc.
set -eu
set -o pipefail
shopt -s nullglob

: "${outputs:=out}"
export PATH="$stdenv/bin:/usr/bin:/bin"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
export LC_ALL=C
export NIX_BUILD_CORES=${NIX_BUILD_CORES:-1}
[ "$NIX_BUILD_CORES" -gt 0 ] 2>/dev/null || NIX_BUILD_CORES=1

# --- hooks ---------------------------------------------------------------
# runHook NAME: runs the implicit hook (the variable or function NAME), then
# every entry of the array NAMEHooks, in order.
runHook() {
  local hookName=$1; shift
  local hooksSlice="${hookName%Hook}Hooks[@]"
  _callImplicitHook "$hookName" "$@"
  local hook
  for hook in ${!hooksSlice+"${!hooksSlice}"}; do
    _eval "$hook" "$@"
  done
}

_callImplicitHook() {
  local hookName=$1; shift
  case "$(type -t "$hookName")" in
    function|alias|builtin) "$hookName" "$@" ;;
    file) source "$hookName" ;;
    keyword) : ;;
    *) if [ -n "${!hookName:-}" ]; then eval "${!hookName}"; fi ;;
  esac
}

_eval() {
  if declare -F "$1" >/dev/null 2>&1; then "$@"; else eval "$1"; fi
}

addToSearchPath() {
  local var=$1 dir=$2
  [ -d "$dir" ] || return 0
  export "$var=$dir${!var:+:${!var}}"
}

# --- inputs: PATH and setup hooks ---------------------------------------
declare -A _activated=()
activatePackage() {
  local pkg=$1
  [ -z "${_activated[$pkg]:-}" ] || return 0
  _activated[$pkg]=1
  [ -d "$pkg/bin" ] && export PATH="$pkg/bin:$PATH"
  if [ -f "$pkg/nix-support/propagated-build-inputs" ]; then
    local p
    for p in $(< "$pkg/nix-support/propagated-build-inputs"); do activatePackage "$p"; done
  fi
  [ -d "$pkg/include" ] && export NIX_CFLAGS_COMPILE="${NIX_CFLAGS_COMPILE:-} -isystem $pkg/include"
  [ -d "$pkg/lib" ] && export NIX_LDFLAGS="${NIX_LDFLAGS:-} -L$pkg/lib"
  if [ -f "$pkg/nix-support/setup-hook" ]; then
    source "$pkg/nix-support/setup-hook"
  fi
}
for _pkg in ${nativeBuildInputs:-} ${buildInputs:-} ${propagatedNativeBuildInputs:-} ${propagatedBuildInputs:-}; do
  activatePackage "$_pkg"
done
unset _pkg

# --- multiple outputs (nixpkgs' multiple-outputs.sh protocol) -------------
_firstOutput() { # VAR CANDIDATE...: first candidate that is an output
  local var=$1; shift
  [ -z "${!var:-}" ] || return 0
  local c
  for c in "$@"; do
    if [[ " $outputs " == *" $c "* ]]; then declare -g "$var=$c"; return 0; fi
  done
}
_firstOutput outputDev dev out
_firstOutput outputBin bin out
_firstOutput outputInclude "$outputDev"
_firstOutput outputLib lib out
_firstOutput outputDoc doc out
_firstOutput outputMan man "$outputBin"
_firstOutput outputInfo info "$outputBin"

# With more than one output, configure gets one directory flag per output
# kind, unless setOutputFlags is set to "" (false).
_multioutConfig() {
  if [ "$outputs" = out ] || [ -z "${setOutputFlags-1}" ]; then return 0; fi
  configureFlags="--bindir=${!outputBin}/bin --sbindir=${!outputBin}/sbin \
--includedir=${!outputInclude}/include --oldincludedir=${!outputInclude}/include \
--mandir=${!outputMan}/share/man --infodir=${!outputInfo}/share/info \
--docdir=${!outputDoc}/share/doc/${pname:-$name} \
--libdir=${!outputLib}/lib --libexecdir=${!outputLib}/libexec \
--localedir=${!outputLib}/share/locale ${configureFlags:-}"
}
preConfigureHooks+=(_multioutConfig)

moveToOutput() { # PATTERN-UNDER-$out DEST-PATH
  local pattern=$1 dst=$2 f
  [ "$dst" != "$out" ] || return 0
  for f in "$out"/$pattern; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    local rel=${f#"$out"/}
    mkdir -p "$dst/$(dirname "$rel")"
    mv "$f" "$dst/$rel"
  done
}
_multioutFixup() {
  [ "$outputs" != out ] || return 0
  moveToOutput include "${!outputInclude}"
  moveToOutput lib/pkgconfig "${!outputDev}"
  moveToOutput share/man "${!outputMan}"
  moveToOutput share/info "${!outputInfo}"
  moveToOutput share/doc "${!outputDoc}"
}
preFixupHooks+=(_multioutFixup)

# --- phases --------------------------------------------------------------
stripHash() { local b; b=$(basename "$1"); if [[ "$b" =~ ^[a-z0-9]{32}- ]]; then echo "${b:33}"; else echo "$b"; fi; }

unpackFile() {
  local f=$1
  echo "unpacking source archive $f"
  if [ -d "$f" ]; then
    cp -pr --reflink=auto -- "$f" "$(stripHash "$f")"
  else
    case "$f" in
      *.tar|*.tar.*|*.tgz|*.tbz2|*.txz) tar xf "$f" --mode=+w --warning=no-timestamp ;;
      *.zip) unzip -qq "$f" ;;
      *) echo "don't know how to unpack $f" >&2; return 1 ;;
    esac
  fi
}

unpackPhase() {
  runHook preUnpack
  local srcsList=${srcs:-${src:-}}
  [ -n "$srcsList" ] || { echo "variable \$src or \$srcs should point to the source" >&2; return 1; }
  local before after i
  before=$(ls -A)
  for i in $srcsList; do unpackFile "$i"; done
  if [ -z "${sourceRoot:-}" ]; then
    for i in $(ls -A); do
      if [[ $'\n'"$before"$'\n' != *$'\n'"$i"$'\n'* ]] && [ -d "$i" ]; then
        [ -z "${sourceRoot:-}" ] || { echo "unpacker produced multiple directories" >&2; return 1; }
        sourceRoot=$i
      fi
    done
  fi
  [ -n "${sourceRoot:-}" ] || { echo "unpacker appears to have produced no directories" >&2; return 1; }
  echo "source root is $sourceRoot"
  [ -n "${dontMakeSourcesWritable:-}" ] || chmod -R u+w -- "$sourceRoot"
  cd "$sourceRoot"
  runHook postUnpack
}

patchPhase() {
  runHook prePatch
  local p
  for p in ${patches:-}; do
    echo "applying patch $p"
    case "$p" in
      *.gz) gzip -d < "$p" ;; *.xz) xz -d < "$p" ;; *) cat "$p" ;;
    esac | patch ${patchFlags:--p1}
  done
  runHook postPatch
}

configurePhase() {
  runHook preConfigure
  : "${configureScript:=}"
  if [ -z "$configureScript" ] && [ -x ./configure ]; then configureScript=./configure; fi
  if [ -n "$configureScript" ]; then
    local prefixFlag=
    [ -n "${dontAddPrefix:-}" ] || prefixFlag="${prefixKey:---prefix=}${prefix:-$out}"
    # shellcheck disable=SC2086
    echo "configure flags: $prefixFlag ${configureFlags:-}"
    $configureScript $prefixFlag ${configureFlags:-}
  else
    echo "no configure script, doing nothing"
  fi
  runHook postConfigure
}

_hasMakefile() { [ -n "${makefile:-}" ] || [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]; }

buildPhase() {
  runHook preBuild
  if [ -z "${makeFlags:-}${buildFlags:-}" ] && ! _hasMakefile; then
    echo "no Makefile or custom buildPhase, doing nothing"
  else
    local par=
    [ -z "${enableParallelBuilding:-}" ] || par="-j$NIX_BUILD_CORES"
    # shellcheck disable=SC2086
    make ${makefile:+-f $makefile} $par SHELL=/bin/bash ${makeFlags:-} ${buildFlags:-}
  fi
  runHook postBuild
}

checkPhase() {
  runHook preCheck
  if [ -z "${checkTarget:-}" ]; then
    if make ${makefile:+-f $makefile} -n check >/dev/null 2>&1; then checkTarget=check
    elif make ${makefile:+-f $makefile} -n test >/dev/null 2>&1; then checkTarget=test; fi
  fi
  if [ -z "${checkTarget:-}" ]; then
    echo "no check/test target found, doing nothing"
  else
    make ${makefile:+-f $makefile} SHELL=/bin/bash ${makeFlags:-} ${checkFlags:-} $checkTarget
  fi
  runHook postCheck
}

installPhase() {
  runHook preInstall
  mkdir -p "${prefix:-$out}"
  # shellcheck disable=SC2086
  make ${makefile:+-f $makefile} SHELL=/bin/bash ${makeFlags:-} ${installFlags:-} ${installTargets:-install}
  runHook postInstall
}

# patchShebangs DIR...: point interpreters of executable scripts at the ones
# found in PATH (here: host tools, so /usr/bin/env python -> /usr/bin/python).
patchShebangs() {
  local f first interp rest new
  while IFS= read -r -d '' f; do
    IFS= read -r first < "$f" || true
    [[ "$first" == '#!'* ]] || continue
    read -r interp rest <<< "${first#\#!}"
    if [ "$(basename "$interp")" = env ] && [ -n "$rest" ]; then
      read -r interp rest <<< "$rest"
    fi
    new=$(command -v "$(basename "$interp")" || true)
    [ -n "$new" ] || continue
    [ "#!$new${rest:+ $rest}" != "$first" ] || continue
    echo "patching script interpreter paths in $f: $first -> #!$new${rest:+ $rest}"
    local tmp; tmp=$(mktemp)
    { printf '%s\n' "#!$new${rest:+ $rest}"; tail -n +2 "$f"; } > "$tmp"
    cat "$tmp" > "$f"; rm -f "$tmp"
  done < <(find "$@" -type f -perm -0100 -print0)
}

_isElf() { [ "$(head -c 4 "$1" 2>/dev/null | tr -d '\0')" = $'\x7fELF' ]; }

stripDirs() {
  local d f
  for d in "$@"; do
    [ -d "$d" ] || continue
    while IFS= read -r -d '' f; do
      if _isElf "$f"; then strip ${stripFlags:--S} "$f" 2>/dev/null || true; fi
    done < <(find "$d" -type f -print0)
  done
}

fixupPhase() {
  local output
  for output in $outputs; do
    [ -e "${!output}" ] && chmod -R u+w "${!output}"
  done
  runHook preFixup
  for output in $outputs; do
    local prefix=${!output}
    [ -e "$prefix" ] || continue
    if [ -z "${dontStrip:-}" ]; then
      stripDirs "$prefix/bin" "$prefix/sbin" "$prefix/lib" "$prefix/libexec"
    fi
    [ -n "${dontPatchShebangs:-}" ] || patchShebangs "$prefix"
  done
  runHook postFixup
}

installCheckPhase() { runHook preInstallCheck; runHook postInstallCheck; }
distPhase() { runHook preDist; runHook postDist; }

showPhaseHeader() { echo "@nix { \"action\": \"setPhase\", \"phase\": \"$1\" }"; echo "=== $1"; }

genericBuild() {
  if [ -n "${buildCommand:-}" ]; then eval "$buildCommand"; return; fi
  local phases=${phases:-"${prePhases[*]:-} unpackPhase patchPhase ${preConfigurePhases[*]:-} configurePhase ${preBuildPhases[*]:-} buildPhase checkPhase ${preInstallPhases[*]:-} installPhase ${preFixupPhases[*]:-} fixupPhase installCheckPhase ${preDistPhases[*]:-} distPhase ${postPhases[*]:-}"}
  local curPhase
  for curPhase in $phases; do
    case "$curPhase" in
      unpackPhase) [ -z "${dontUnpack:-}" ] || continue ;;
      patchPhase) [ -z "${dontPatch:-}" ] || continue ;;
      configurePhase) [ -z "${dontConfigure:-}" ] || continue ;;
      buildPhase) [ -z "${dontBuild:-}" ] || continue ;;
      checkPhase) [ -n "${doCheck:-}" ] || continue ;;
      installPhase) [ -z "${dontInstall:-}" ] || continue ;;
      fixupPhase) [ -z "${dontFixup:-}" ] || continue ;;
      installCheckPhase) [ -n "${doInstallCheck:-}" ] || continue ;;
      distPhase) [ -n "${doDist:-}" ] || continue ;;
    esac
    showPhaseHeader "$curPhase"
    local t0=${EPOCHREALTIME/[,.]/}
    # A phase may be overridden by a variable of the same name (a script).
    if [ -n "${!curPhase:-}" ]; then eval "${!curPhase}"; else "$curPhase"; fi
    local t1=${EPOCHREALTIME/[,.]/}
    printf '=== %s done in %d.%03ds\n' "$curPhase" $(((t1 - t0) / 1000000)) $((((t1 - t0) / 1000) % 1000))
    # unpackPhase changes directory; later phases run in the source root.
  done
}

# The derivation's own setup hook(s) and attributes may redefine phases.
