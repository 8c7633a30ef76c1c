#!/usr/bin/env bash
# Workload 1: Linux 6.1 tinyconfig vmlinux (Debian's linux-source-6.1).
#
#   bench/kernel.sh            the whole workload (about 20-30 min on 2 cores)
#   bench/kernel.sh fetch      only install the package + tool chain and extract
#
# Everything happens in one build directory, $CACHE/kernel/linux, so every
# build (the first one, the clean reference builds of the edited trees, the
# restored ones) has the same path and can be compared byte for byte.
# Steps:
#   1. fresh tree, make tinyconfig; before the build: ours `snapshot` and
#      nixpkgs `cp -r ./* $out/sources`; make -j2 vmlinux (the first build);
#      after it: ours `save`, nixpkgs `cp -r ./* $out/outputs` + store.
#   2. the plain incremental make of edit 1 in that tree (what make alone does).
#   3. clean builds of edit 1 and edit 2 (references; cached by content).
#   4. per edit and per tool (order alternates): fresh tree, make tinyconfig,
#      the edit, restore, make -j2 vmlinux; count compiled units; compare
#      vmlinux with the reference.
#   edit 1: one .c file (kernel/panic.c: panic_timeout's initial value)
#   edit 2: config only (scripts/config --enable FUTEX + make olddefconfig)
# TOOLS="ours nixpkgs" selects the tools.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TOOLS=${TOOLS:-ours nixpkgs}
JOBS=${JOBS:-2}
LEVEL=${NCKP_LEVEL:-}
PKG=linux-source-6.1
TARBALL=/usr/src/$PKG.tar.xz
PRISTINE=$CACHE/$PKG
K=$CACHE/kernel
T=$K/linux
WL=kernel

# Reproducible kernel builds.
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
export KBUILD_BUILD_USER=nixbld KBUILD_BUILD_HOST=localhost KBUILD_BUILD_VERSION=1
export LC_ALL=C

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

fetch() {
  local need=()
  [[ -f $TARBALL ]] || need+=("$PKG")
  for b in flex bison bc; do command -v "$b" >/dev/null || need+=("$b"); done
  [[ -f /usr/include/libelf.h ]] || need+=(libelf-dev)
  [[ -f /usr/include/openssl/ssl.h ]] || need+=(libssl-dev)
  command -v rsync >/dev/null || need+=(rsync)
  [[ -x /usr/bin/time ]] || need+=(time)
  if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [[ ! -f $PRISTINE/.extracted ]]; then
    log "extracting $TARBALL into $CACHE"
    rm -rf "$PRISTINE"; mkdir -p "$CACHE"
    tar -C "$CACHE" -xJf "$TARBALL"
    touch "$PRISTINE/.extracted"
  fi
}

fresh_tree() { # a fresh extraction (a copy of the pristine one, same metadata)
  rmtree "$T"
  cp -a "$PRISTINE" "$T"
  rm -f "$T/.extracted"
  make -C "$T" -s tinyconfig >/dev/null
}

edit1() { sed -i 's/^int panic_timeout = CONFIG_PANIC_TIMEOUT;$/int panic_timeout = CONFIG_PANIC_TIMEOUT + 1;/' "$T/kernel/panic.c"
  grep -q 'CONFIG_PANIC_TIMEOUT + 1;' "$T/kernel/panic.c" || die "edit 1 did not apply"; }
edit2() { (cd "$T" && scripts/config --enable FUTEX && make -s olddefconfig >/dev/null)
  grep -q '^CONFIG_FUTEX=y' "$T/.config" || die "edit 2 did not apply"; }

# make -j vmlinux, measured; records the number of compiled units (CC/AS lines).
build() { # CASE TOOL STEP
  measure "$WL" "$1" "$2" "$3" -- make -C "$T" -j"$JOBS" vmlinux
  local logf=$RESULTS_DIR/logs/$WL.$1.$2.$3.log
  LAST_UNITS=$(grep -cE '^\s+(CC|AS)\s' "$logf" || true)
  # head closes the pipe early: under pipefail that SIGPIPE must not end the run
  LAST_UNIT_LIST=$(grep -E '^\s+(CC|AS)\s' "$logf" | awk '{print $2}' | head -8 | paste -sd' ' || true)
  record "$WL" "$1" "$2" "${3}_units_count" "$LAST_UNITS" "" "$LAST_UNIT_LIST"
}

vmlinux_sum() { sha256sum "$T/vmlinux" | cut -c1-16; }

reference() { # EDIT-NUMBER: clean build of the edited tree (cached by source key)
  local e=$1 key ref
  key=$( (sha256sum "$TARBALL"; declare -f fresh_tree "edit$e"; echo "$JOBS") | sha256sum | cut -c1-12)
  ref=$K/ref-edit$e-$key
  if [[ ! -f $ref.sum ]]; then
    fresh_tree
    "edit$e"
    build "edit$e" clean build
    vmlinux_sum >"$ref.sum"
    echo "$LAST_WALL" >"$ref.wall"
    echo "$LAST_RSS" >"$ref.rss"
    echo "$LAST_UNITS" >"$ref.units"
  else
    log "reference for edit $e: cached ($ref.sum)"
    record "$WL" "edit$e" clean build "$(cat "$ref.wall")" "$(cat "$ref.rss")" cached
    record "$WL" "edit$e" clean build_units_count "$(cat "$ref.units")" "" cached
  fi
  record "$WL" "edit$e" clean vmlinux_sum "$(cat "$ref.sum")"
}

first_build() {
  local order=(ours nixpkgs) t
  fresh_tree
  record "$WL" first tree files_count "$(find "$T" | wc -l)"
  record "$WL" first tree sources_bytes "$(size_bytes "$T")"
  rmtree "$K/nixout" "$K/ours-ckpt" "$K/ours.state"
  for t in "${order[@]}"; do
    has_tool "$t" || continue
    warm "$T"
    case $t in
      ours) measure "$WL" first ours snapshot -- "$NCKP" snapshot --root "$T" --state "$K/ours.state" ;;
      nixpkgs) measure "$WL" first nixpkgs snapshot -- "$NIXPKGS_CKPT" prepare-sources "$T" "$K/nixout" ;;
    esac
  done
  build first plain build
  record "$WL" first tree built_files_count "$(find "$T" | wc -l)"
  record "$WL" first tree built_bytes "$(size_bytes "$T")"
  record "$WL" first plain vmlinux_sum "$(vmlinux_sum)"
  for t in nixpkgs ours; do   # the other order after the build
    has_tool "$t" || continue
    warm "$T"
    case $t in
      ours)
        measure "$WL" first ours save -- "$NCKP" save --root "$T" --state "$K/ours.state" \
          --output "$K/ours-ckpt" ${LEVEL:+--level "$LEVEL"}
        record "$WL" first ours checkpoint_bytes "$(size_bytes "$K/ours-ckpt/checkpoint.nckp")"
        "$NCKP" inspect "$K/ours-ckpt/checkpoint.nckp" --json >"$RESULTS_DIR/kernel-inspect.json" 2>/dev/null || true
        ;;
      nixpkgs)
        warm "$K/nixout"
        measure "$WL" first nixpkgs save -- "$NIXPKGS_CKPT" prepare-outputs "$T" "$K/nixout"
        measure "$WL" first nixpkgs store -- "$NIXPKGS_CKPT" store "$K/nixout"
        record "$WL" first nixpkgs checkpoint_bytes "$(size_bytes "$K/nixout")"
        ;;
    esac
  done
  # What plain make does for edit 1 in the tree it built (the ideal).
  edit1
  build edit1 plain build
}

# The snapshot target: a warm snapshot of the built kernel tree (~1.3 GB),
# taken right after the first build, 3 times.
snapshot_warm() {
  has_tool ours || return 0
  local r
  for r in 1 2 3; do
    warm "$T"
    measure "$WL" snapshot-warm ours "snapshot#$r" -- "$NCKP" snapshot --root "$T" --state "$K/warm.state"
  done
  rm -f "$K/warm.state"
}

restore_with() { # EDIT-NUMBER TOOL
  local e=$1 t=$2 ok
  fresh_tree
  "edit$e"
  case $t in
    ours)
      warm "$T" "$K/ours-ckpt"
      MEASURE_ALLOW_FAIL=1 measure "$WL" "edit$e" ours restore -- "$NCKP" restore --root "$T" "$K/ours-ckpt/checkpoint.nckp"
      ;;
    nixpkgs)
      warm "$T" "$K/nixout"
      MEASURE_ALLOW_FAIL=1 measure "$WL" "edit$e" nixpkgs restore -- "$NIXPKGS_CKPT" restore "$T" "$K/nixout"
      ;;
  esac
  if [[ $LAST_RC -ne 0 ]]; then
    record "$WL" "edit$e" "$t" restore_failed "$LAST_RC"
    log "edit $e: $t restore failed ($LAST_RC), building anyway"
  fi
  MEASURE_ALLOW_FAIL=1 build "edit$e" "$t" build
  if [[ $LAST_RC -ne 0 ]]; then
    record "$WL" "edit$e" "$t" vmlinux_sum "build-failed"
    return 0
  fi
  record "$WL" "edit$e" "$t" vmlinux_sum "$(vmlinux_sum)"
}

main() {
  [[ ${1:-} == fetch ]] && { fetch; return 0; }
  fetch
  mkdir -p "$K"
  if has_tool ours; then have_engine || die "no engine at $NCKP (cargo build --release)"; fi
  log "kernel: first build"
  first_build
  snapshot_warm
  # Edit 1's reference first (cached by content across runs), the restores,
  # then edit 2's reference last: the edit-2 check is the one a short run loses.
  reference 1
  log "kernel: restores"
  local t
  for t in ours nixpkgs; do has_tool "$t" && restore_with 1 "$t"; done
  for t in nixpkgs ours; do has_tool "$t" && restore_with 2 "$t"; done
  reference 2
  [[ ${KEEP:-0} == 1 ]] || rmtree "$T" "$K/nixout"
  log "kernel: done"
}

# Parsed whole before it runs: editing this file during a run is harmless.
main "$@"; exit $?
