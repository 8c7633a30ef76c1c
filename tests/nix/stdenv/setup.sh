# Stand-in for nixpkgs' stdenv/generic/setup.sh, written from its documented
# and observed behaviour (no code copied), for tests only. Host tools
# (/usr/bin) play the toolchain; $stdenv/bin holds a logging cc. Every
# behaviour that can change a build tree, or the flags given to configure
# and make, follows nixpkgs; each carries a comment naming what it mirrors.
set -eu
set -o pipefail
shopt -s nullglob

# --- structured attrs (nixpkgs: setup.sh's .attrs.sh detection) ----------
# With __structuredAttrs Nix passes no attribute through the environment:
# the builder sourced .attrs.sh (every attribute a shell variable, lists as
# arrays, `outputs` an associative array name -> path). Like nixpkgs, only
# the outputs and the members of `env` are exported.
if [ -f .attrs.sh ] || [ -n "${NIX_ATTRS_JSON_FILE:-}" ]; then
  __structuredAttrs=1
  echo "structuredAttrs is enabled"
  for _o in "${!outputs[@]}"; do export "$_o=${outputs[$_o]}"; done
  # Nix before 2.13 sets no NIX_ATTRS_*_FILE: the files sit in the build top.
  [ -e "${NIX_ATTRS_JSON_FILE:-}" ] || export NIX_ATTRS_JSON_FILE="$NIX_BUILD_TOP/.attrs.json"
  [ -e "${NIX_ATTRS_SH_FILE:-}" ] || export NIX_ATTRS_SH_FILE="$NIX_BUILD_TOP/.attrs.sh"
  # nixpkgs: `env.FOO = "..."` becomes an exported FOO.
  if [[ "$(declare -p env 2>/dev/null)" == "declare -A"* ]]; then
    for _o in "${!env[@]}"; do export "$_o=${env[$_o]}"; done
  fi
  unset _o
else
  __structuredAttrs=
  : "${outputs:=out}"
fi

# nixpkgs' getAllOutputNames: output names, as one space-separated word list.
getAllOutputNames() {
  if [ -n "$__structuredAttrs" ]; then echo "${!outputs[*]}"; else echo "$outputs"; fi
}

# --- variables that may be arrays or strings (nixpkgs' helpers) ----------
# concatTo TARGET VAR[=DEFAULT]...: appends each VAR to the array TARGET;
# arrays element by element, strings split on whitespace (unquoted, as
# nixpkgs does); DEFAULT when VAR is unset or empty.
concatTo() {
  local -n _ctTarget=$1; shift
  local spec name dflt decl
  local -a _ctItems
  for spec in "$@"; do
    name=${spec%%=*}; dflt=; [[ "$spec" != *=* ]] || dflt=${spec#*=}
    _ctItems=()
    if decl=$(declare -p "$name" 2>/dev/null); then
      case "${decl#declare -}" in
        A*) echo "concatTo: $name is an associative array" >&2; return 1 ;;
        a*) eval "_ctItems=(\"\${${name}[@]}\")" ;;
        # shellcheck disable=SC2206
        *) _ctItems=(${!name-}) ;;
      esac
    fi
    if [ -z "${_ctItems[*]}" ] && [ -n "$dflt" ]; then _ctItems=("$dflt"); fi
    _ctTarget+=("${_ctItems[@]}")
  done
}

# prependToVar / appendToVar VAR WORD...: array when VAR is one (or, if VAR
# is unset, under structured attrs), else a space-separated string.
_varIsArray() {
  local decl
  if decl=$(declare -p "$1" 2>/dev/null); then
    case "${decl#declare -}" in
      A*) echo "$2: $1 is an associative array" >&2; return 2 ;;
      a*) return 0 ;;
      *) return 1 ;;
    esac
  fi
  [ -n "$__structuredAttrs" ]
}
prependToVar() {
  local -n _pvRef=$1; local rc=0; _varIsArray "$1" prependToVar || rc=$?; shift
  case $rc in
    0) _pvRef=("$@" ${_pvRef+"${_pvRef[@]}"}) ;;
    1) _pvRef="$* ${_pvRef-}" ;;
    *) return 1 ;;
  esac
}
appendToVar() {
  local -n _avRef=$1; local rc=0; _varIsArray "$1" appendToVar || rc=$?; shift
  case $rc in
    0) _avRef=(${_avRef+"${_avRef[@]}"} "$@") ;;
    1) _avRef="${_avRef-} $*" ;;
    *) return 1 ;;
  esac
}

# nixpkgs' echoCmd: "LABEL: arg arg", each argument shell-quoted.
echoCmd() { printf '%s:' "$1"; shift; printf ' %q' "$@"; echo; }

# --- the initial environment (nixpkgs: setup.sh initialisation) ----------
export PATH="$stdenv/bin:/usr/bin:/bin"
HOST_PATH=$PATH                        # nixpkgs: patchShebangs --host looks here
# nixpkgs' stdenv writes `export SHELL=<its bash>` at the top of $stdenv/setup:
# the bash that PATH finds (so patchShebangs keeps `#!$SHELL` scripts).
# configure scripts then use CONFIG_SHELL, so generated Makefiles and the
# libtool script name this shell; make gets SHELL=$SHELL.
SHELL=$(type -P bash); export SHELL
BASH=$SHELL
export CONFIG_SHELL="$SHELL"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}  # nixpkgs: fallback 1980-01-01
export TZ=UTC                          # nixpkgs: setup.sh sets TZ
export LC_ALL=C
# nixpkgs: NIX_BUILD_CORES 0 (or unset) means: detect, at least 1.
NIX_BUILD_CORES=${NIX_BUILD_CORES:-1}
if ! [ "$NIX_BUILD_CORES" -gt 0 ] 2>/dev/null; then NIX_BUILD_CORES=$(nproc 2>/dev/null || echo 1); fi
export NIX_BUILD_CORES

# nixpkgs' cc-wrapper and bintools-wrapper setup hooks (gcc stdenv) export
# the tool names, which configure, CMake and Makefiles (`$(CC)`) pick up.
export CC=gcc CXX=g++
for _t in ar as ld nm objcopy objdump readelf ranlib strip strings size; do export "${_t^^}=$_t"; done
unset _t

# nixpkgs declares these hook arrays before any setup hook runs.
declare -a preConfigureHooks postConfigureHooks preFixupHooks postFixupHooks postUnpackHooks

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
  [ -d "$pkg/bin" ] && export PATH="$pkg/bin:$PATH" && HOST_PATH="$pkg/bin:$HOST_PATH"
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
# Inputs are lists: strings, or arrays under structured attrs.
_activateInputs() {
  local -a pkgs=()
  concatTo pkgs nativeBuildInputs buildInputs propagatedNativeBuildInputs propagatedBuildInputs
  local pkg
  for pkg in "${pkgs[@]}"; do activatePackage "$pkg"; done
}
_activateInputs

# nixpkgs: the prefix is $out unless set (useTempPrefix: a scratch prefix).
if [ -z "${prefix:-}" ]; then prefix=$out; fi
if [ "${useTempPrefix:-}" = 1 ]; then prefix="$NIX_BUILD_TOP/tmp_prefix"; fi

# --- multiple outputs (nixpkgs' multiple-outputs.sh) ----------------------
_firstOutput() { # VAR CANDIDATE...: first candidate that is an output
  local var=$1; shift
  [ -z "${!var:-}" ] || return 0
  local c
  for c in "$@"; do
    if [[ " $(getAllOutputNames) " == *" $c "* ]]; then declare -g "$var=$c"; return 0; fi
  done
}
_firstOutput outputDev dev out
_firstOutput outputBin bin out
_firstOutput outputInclude "$outputDev"
_firstOutput outputLib lib out
_firstOutput outputDoc doc out
_firstOutput outputMan man "$outputBin"
_firstOutput outputInfo info "$outputBin"

# nixpkgs' _multioutConfig: with more than one output, prepend one directory
# flag per output kind to configureFlags and the pkgconfig/aclocal dirs to
# installFlags, unless setOutputFlags is set to "" (false). The doc dir is
# named after configure's PACKAGE_TARNAME, else the name without version.
_multioutConfig() {
  if [ "$(getAllOutputNames)" = out ] || [ -z "${setOutputFlags-1}" ]; then return 0; fi
  local docName=${shareDocName:-} conf=${configureScript:-}
  if [ -z "$docName" ]; then
    if [ -z "$conf" ] && [ -x ./configure ]; then conf=./configure; fi
    if [ -f "$conf" ]; then docName=$(sed -n "s/^PACKAGE_TARNAME='\(.*\)'$/\1/p" < "$conf"); fi
    if [ -z "$docName" ] || [[ "$docName" == *[!a-zA-Z0-9_-]* ]]; then
      docName=$(echo "$name" | sed 's/-[^a-zA-Z].*//')
    fi
  fi
  prependToVar configureFlags \
    --bindir="${!outputBin}/bin" --sbindir="${!outputBin}/sbin" \
    --includedir="${!outputInclude}/include" --oldincludedir="${!outputInclude}/include" \
    --mandir="${!outputMan}/share/man" --infodir="${!outputInfo}/share/info" \
    --docdir="${!outputDoc}/share/doc/$docName" \
    --libdir="${!outputLib}/lib" --libexecdir="${!outputLib}/libexec" \
    --localedir="${!outputLib}/share/locale"
  prependToVar installFlags \
    pkgconfigdir="${!outputDev}/lib/pkgconfig" \
    m4datadir="${!outputDev}/share/aclocal" aclocaldir="${!outputDev}/share/aclocal"
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
  [ "$(getAllOutputNames)" != out ] || return 0
  moveToOutput include "${!outputInclude}"
  moveToOutput lib/pkgconfig "${!outputDev}"
  moveToOutput share/man "${!outputMan}"
  moveToOutput share/info "${!outputInfo}"
  moveToOutput share/doc "${!outputDoc}"
}
preFixupHooks+=(_multioutFixup)

# --- phases --------------------------------------------------------------
stripHash() { local b; b=$(basename -- "$1"); if [[ "$b" =~ ^[a-z0-9]{32}- ]]; then echo "${b:33}"; else echo "$b"; fi; }

unpackFile() {
  local f=$1
  echo "unpacking source archive $f"
  if [ -d "$f" ]; then
    cp -pr --reflink=auto -- "$f" "$(stripHash "$f")"
  else
    case "$f" in
      *.tar|*.tar.*|*.tgz|*.tbz2|*.tbz|*.txz) tar xf "$f" --mode=+w --warning=no-timestamp ;;
      *.zip) unzip -qq "$f" ;;
      *) echo "don't know how to unpack $f" >&2; return 1 ;;
    esac
  fi
}

unpackPhase() {
  runHook preUnpack
  if [ -z "${srcs:-}" ]; then
    [ -n "${src:-}" ] || { echo "variable \$src or \$srcs should point to the source" >&2; return 1; }
    srcs=$src
  fi
  local -a srcsArray=()
  concatTo srcsArray srcs
  # nixpkgs: the source root is the one new directory (not dot-directories:
  # it globs `*`).
  local before=" " i
  for i in *; do [ ! -d "$i" ] || before+="$i "; done
  for i in "${srcsArray[@]}"; do unpackFile "$i"; done
  : "${sourceRoot=}"
  if [ -z "$sourceRoot" ]; then
    for i in *; do
      if [ -d "$i" ] && [[ "$before" != *" $i "* ]]; then
        [ -z "$sourceRoot" ] || { echo "unpacker produced multiple directories" >&2; return 1; }
        sourceRoot=$i
      fi
    done
  fi
  [ -n "$sourceRoot" ] || { echo "unpacker appears to have produced no directories" >&2; return 1; }
  echo "source root is $sourceRoot"
  [ "${dontMakeSourcesWritable:-0}" = 1 ] || chmod -R u+w -- "$sourceRoot"
  # nixpkgs: postUnpack still runs in the build top; genericBuild cds after.
  runHook postUnpack
}

patchPhase() {
  runHook prePatch
  local -a patchesArray=() flagsArray=()
  concatTo patchesArray patches
  concatTo flagsArray patchFlags=-p1
  local p
  for p in "${patchesArray[@]}"; do
    echo "applying patch $p"
    case "$p" in
      *.gz) gzip -d < "$p" ;; *.bz2) bzip2 -d < "$p" ;; *.xz) xz -d < "$p" ;; *) cat "$p" ;;
    esac | patch "${flagsArray[@]}"
  done
  runHook postPatch
}

# nixpkgs' fixLibtool: libtool's link-time library search path becomes the
# -L directories of NIX_LDFLAGS instead of the compiler's idea of it (sed -i,
# so ltmain.sh gets a new mtime). nixpkgs' second expression
# (`eval sys_lib_.+search_path`) is a basic regex with a literal `+` and
# never matches; it is left out.
fixLibtool() {
  local dirs= flag
  for flag in ${NIX_LDFLAGS:-}; do
    case "$flag" in -L*) dirs+=" ${flag#-L}" ;; esac
  done
  sed -i "$1" -e "s^eval \(sys_lib_search_path=\).*^\1'${dirs}'^"
}

configurePhase() {
  runHook preConfigure
  : "${configureScript=}"
  if [ -z "$configureScript" ] && [ -x ./configure ]; then configureScript=./configure; fi
  if [ -z "${dontFixLibtool:-}" ]; then
    # nixpkgs: libtool's deplibs check passes everything (no `file` probing).
    export lt_cv_deplibs_check_method="${lt_cv_deplibs_check_method-pass_all}"
    local f
    while IFS= read -r -d '' f; do
      echo "fixing libtool script $f"
      fixLibtool "$f"
    done < <(find . -iname ltmain.sh -print0)
    # nixpkgs: configure scripts carrying libtool code call `file`, not
    # /usr/bin/file; their mtime is kept (so make sees no newer configure).
    while IFS= read -r -d '' f; do
      grep -q 'GNU Libtool is free software; you can redistribute it and/or modify' "$f" || continue
      local stamp; stamp=$(stat -c %y -- "$f")
      sed -i s_/usr/bin/file_file_g "$f"
      touch -d "$stamp" -- "$f"
    done < <(find . -executable -type f -name configure -print0)
  fi
  # nixpkgs prepends to configureFlags itself (the variable keeps them):
  # last prepended comes first, so the order is --disable-static
  # --disable-dependency-tracking --prefix=... [output dirs] flags... array.
  if [ -z "${dontAddPrefix:-}" ] && [ -n "$prefix" ]; then
    prependToVar configureFlags "${prefixKey:---prefix=}$prefix"
  fi
  if [ -f "$configureScript" ]; then
    # nixpkgs: --disable-dependency-tracking when configure knows it.
    if [ -z "${dontAddDisableDepTrack:-}" ] && grep -q dependency-tracking "$configureScript"; then
      prependToVar configureFlags --disable-dependency-tracking
    fi
    # nixpkgs: --disable-static when configure knows --enable-static.
    if [ -z "${dontDisableStatic:-}" ] && grep -q enable-static "$configureScript"; then
      prependToVar configureFlags --disable-static
    fi
    # nixpkgs: patchShebangs --build on the configure script (mtime kept).
    [ -n "${dontPatchShebangsInConfigure:-}" ] || patchShebangs --build "$configureScript"
  fi
  if [ -n "$configureScript" ]; then
    local -a flagsArray=()
    concatTo flagsArray configureFlags configureFlagsArray
    echoCmd 'configure flags' "${flagsArray[@]}"
    $configureScript "${flagsArray[@]}"
  else
    echo "no configure script, doing nothing"
  fi
  runHook postConfigure
}

# nixpkgs: a build/install phase runs make only with makeFlags, $makefile or
# a Makefile/makefile/GNUmakefile in the current directory.
_hasMakefile() { [ -n "${makeFlags-}" ] || [ -n "${makefile:-}" ] || [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]; }

buildPhase() {
  runHook preBuild
  if ! _hasMakefile; then
    echo "no Makefile or custom buildPhase, doing nothing"
  else
    foundMakefile=1
    # nixpkgs: -jN only with enableParallelBuilding; SHELL= always; then
    # makeFlags makeFlagsArray buildFlags buildFlagsArray.
    local -a flagsArray=(${enableParallelBuilding:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
    concatTo flagsArray makeFlags makeFlagsArray buildFlags buildFlagsArray
    echoCmd 'build flags' "${flagsArray[@]}"
    make ${makefile:+-f $makefile} "${flagsArray[@]}"
  fi
  runHook postBuild
}

checkPhase() {
  runHook preCheck
  # nixpkgs: nothing when the build phase found no Makefile.
  if [ -z "${foundMakefile:-}" ]; then
    echo "no Makefile or custom checkPhase, doing nothing"
    runHook postCheck
    return 0
  fi
  if [ -z "${checkTarget:-}" ]; then
    if make -n ${makefile:+-f $makefile} check >/dev/null 2>&1; then checkTarget=check
    elif make -n ${makefile:+-f $makefile} test >/dev/null 2>&1; then checkTarget=test; fi
  fi
  if [ -z "${checkTarget:-}" ]; then
    echo "no check/test target in ${makefile:-Makefile}, doing nothing"
  else
    # nixpkgs: enableParallelChecking; checkFlags defaults to VERBOSE=y.
    local -a flagsArray=(${enableParallelChecking:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
    concatTo flagsArray makeFlags makeFlagsArray checkFlags=VERBOSE=y checkFlagsArray checkTarget
    echoCmd 'check flags' "${flagsArray[@]}"
    make ${makefile:+-f $makefile} "${flagsArray[@]}"
  fi
  runHook postCheck
}

installPhase() {
  runHook preInstall
  if ! _hasMakefile; then
    echo "no Makefile or custom installPhase, doing nothing"
    runHook postInstall
    return 0
  fi
  foundMakefile=1
  [ -z "$prefix" ] || mkdir -p "$prefix"
  # nixpkgs: enableParallelInstalling; installTargets defaults to install.
  local -a flagsArray=(${enableParallelInstalling:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
  concatTo flagsArray makeFlags makeFlagsArray installFlags installFlagsArray installTargets=install
  echoCmd 'install flags' "${flagsArray[@]}"
  make ${makefile:+-f $makefile} "${flagsArray[@]}"
  runHook postInstall
}

# patchShebangs [--build|--host|--update] PATH...: nixpkgs' patch-shebangs.sh.
# The interpreter of every executable `#!` file is looked up by name in PATH
# (--build) or HOST_PATH (--host); `/usr/bin/env X` becomes X's path
# (`env -S X` keeps env); an empty interpreter means /bin/sh; interpreters
# already in the store are kept unless --update; the mtime is kept.
patchShebangs() {
  local pathName=PATH update= f line old arg0 args new
  while [ $# -gt 0 ]; do
    case "$1" in
      --host) pathName=HOST_PATH; shift ;;
      --build) pathName=PATH; shift ;;
      --update) update=1; shift ;;
      --) shift; break ;;
      -*) echo "Unknown option $1 supplied to patchShebangs" >&2; return 1 ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || return 0
  echo "patching script interpreter paths in $*"
  while IFS= read -r -d '' f; do
    [ "$(head -c 2 -- "$f")" = '#!' ] || continue
    IFS= read -r line < "$f" || [ -n "$line" ]
    read -r old arg0 args <<< "${line:2}" || true
    if [[ "$old" == */bin/env ]]; then
      if [ "$arg0" = -S ]; then
        arg0=${args%% *}; [[ "$args" == *" "* ]] && args=${args#* } || args=
        new=$(PATH=${!pathName} type -P env || true)
        args="-S $(PATH=${!pathName} type -P "$arg0" || true) $args"
      elif [[ "$arg0" == -* || "$arg0" == *=* ]]; then
        echo "$f: unsupported interpreter directive \"$line\"" >&2; return 1
      else
        new=$(PATH=${!pathName} type -P "$arg0" || true)
      fi
    else
      [ -n "$old" ] || old=/bin/sh
      new=$(PATH=${!pathName} type -P "$(basename "$old")" || true)
      args="$arg0 $args"
    fi
    local newLine="$new $args"
    newLine=${newLine%"${newLine##*[![:space:]]}"}
    [ -n "$update" ] || [[ "$old" != "${NIX_STORE:-/nix/store}"/* ]] || continue
    [ -n "$new" ] && [ "$new" != "$old" ] || continue
    echo "$f: interpreter directive changed from \"$line\" to \"#!$newLine\""
    local stamp tmp; stamp=$(stat -c %y -- "$f"); tmp=$(mktemp)
    { printf '#!%s\n' "$newLine"; tail -n +2 -- "$f"; } > "$tmp"
    cat "$tmp" > "$f"; rm -f "$tmp"
    touch -d "$stamp" -- "$f"
  done < <(find "$@" -type f -perm -0100 -print0)
}

_isElf() { [ "$(head -c 4 "$1" 2>/dev/null | tr -d '\0')" = $'\x7fELF' ]; }

stripDirs() {
  local -a flags=(); concatTo flags stripFlags=-S
  local d f
  for d in "$@"; do
    [ -d "$d" ] || continue
    while IFS= read -r -d '' f; do
      if _isElf "$f"; then strip "${flags[@]}" "$f" 2>/dev/null || true; fi
    done < <(find "$d" -type f -print0)
  done
}

fixupPhase() {
  local output
  # nixpkgs: outputs made writable, set-id bits dropped.
  for output in $(getAllOutputNames); do
    if [ -e "${!output}" ]; then chmod -R u+w,u-s,g-s "${!output}"; fi
  done
  runHook preFixup
  for output in $(getAllOutputNames); do
    local prefix=${!output}
    [ -e "$prefix" ] || continue
    if [ -z "${dontStrip:-}" ]; then
      stripDirs "$prefix/bin" "$prefix/sbin" "$prefix/lib" "$prefix/libexec"
    fi
    [ -n "${dontPatchShebangs:-}" ] || patchShebangs --host "$prefix"
  done
  runHook postFixup
}

installCheckPhase() {
  runHook preInstallCheck
  if [ -z "${foundMakefile:-}" ]; then
    echo "no Makefile or custom installCheckPhase, doing nothing"
  elif [ -z "${installCheckTarget:-}" ] && ! make -n ${makefile:+-f $makefile} installcheck >/dev/null 2>&1; then
    echo "no installcheck target in ${makefile:-Makefile}, doing nothing"
  else
    local -a flagsArray=(${enableParallelChecking:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
    concatTo flagsArray makeFlags makeFlagsArray installCheckFlags installCheckFlagsArray installCheckTarget=installcheck
    echoCmd 'installcheck flags' "${flagsArray[@]}"
    make ${makefile:+-f $makefile} "${flagsArray[@]}"
  fi
  runHook postInstallCheck
}

distPhase() {
  runHook preDist
  local -a flagsArray=()
  concatTo flagsArray distFlags distFlagsArray distTarget=dist
  make ${makefile:+-f $makefile} "${flagsArray[@]}"
  if [ "${dontCopyDist:-0}" != 1 ]; then
    mkdir -p "$out/tarballs"
    # shellcheck disable=SC2086
    cp -pvd ${tarballs[*]:-*.tar.gz} "$out/tarballs"
  fi
  runHook postDist
}

showPhaseHeader() { echo "@nix { \"action\": \"setPhase\", \"phase\": \"$1\" }"; echo "=== $1"; }

# nixpkgs' runPhase: skips a phase its dont*/do* flag turns off, runs the
# variable of the phase's name if set (a script), else the function, and
# enters the source root after unpackPhase. Like nixpkgs, the phase sees
# runPhase's locals startTime and endTime (whole seconds).
runPhase() {
  local curPhase=$*
  case "$curPhase" in
    unpackPhase) [ -z "${dontUnpack:-}" ] || return 0 ;;
    patchPhase) [ -z "${dontPatch:-}" ] || return 0 ;;
    configurePhase) [ -z "${dontConfigure:-}" ] || return 0 ;;
    buildPhase) [ -z "${dontBuild:-}" ] || return 0 ;;
    checkPhase) [ -n "${doCheck:-}" ] || return 0 ;;
    installPhase) [ -z "${dontInstall:-}" ] || return 0 ;;
    fixupPhase) [ -z "${dontFixup:-}" ] || return 0 ;;
    installCheckPhase) [ -n "${doInstallCheck:-}" ] || return 0 ;;
    distPhase) [ -n "${doDist:-}" ] || return 0 ;;
  esac
  showPhaseHeader "$curPhase"
  # nixpkgs' runPhase has these locals too (in whole seconds; here in
  # microseconds, for the demo's and the benchmarks' phase timings).
  local startTime endTime
  startTime=${EPOCHREALTIME/[.,]/}
  eval "${!curPhase:-$curPhase}"
  endTime=${EPOCHREALTIME/[.,]/}
  printf '=== %s done in %d.%03ds\n' "$curPhase" $(((endTime - startTime) / 1000000)) $((((endTime - startTime) / 1000) % 1000))
  if [ "$curPhase" = unpackPhase ]; then
    [ -z "${sourceRoot:-}" ] || chmod +x -- "$sourceRoot"
    cd -- "${sourceRoot:-.}"
  fi
}

genericBuild() {
  export GZIP_NO_TIMESTAMPS=1          # nixpkgs: read by its gzip wrapper
  if [ -f "${buildCommandPath:-}" ]; then source "$buildCommandPath"; return; fi
  if [ -n "${buildCommand:-}" ]; then eval "$buildCommand"; return; fi
  # nixpkgs: the default list is stored in the global `phases`; it and the
  # *Phases lists may be strings or arrays (${x[*]}); curPhase is global.
  if [ -z "${phases[*]:-}" ]; then
    phases="${prePhases[*]:-} unpackPhase patchPhase ${preConfigurePhases[*]:-} configurePhase ${preBuildPhases[*]:-} buildPhase checkPhase ${preInstallPhases[*]:-} installPhase ${preFixupPhases[*]:-} fixupPhase installCheckPhase ${preDistPhases[*]:-} distPhase ${postPhases[*]:-}"
  fi
  for curPhase in ${phases[*]}; do
    runPhase "$curPhase"
  done
}

# The derivation's own setup hook(s) and attributes may redefine phases.
