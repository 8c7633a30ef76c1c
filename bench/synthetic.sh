#!/usr/bin/env bash
# Workload 3 (and the engine issue's closing note): synthetic trees.
#
#   bench/synthetic.sh scaling [N...]     default N: 1000 3000 10000 30000 100000
#   bench/synthetic.sh generated          6,000 sources + 6,000 products
#   bench/synthetic.sh snapshot-1g        snapshot of a warm 1 GB / 70,000-file tree
#
# Per tree, for BOTH tools on the same tree and page-cache state (the tree
# and the checkpoint are read once before every step; the order of the two
# tools alternates from one size to the next):
#   before the build  ours: snapshot        nixpkgs: cp -r ./* $out/sources
#   the build         gen_tree.py --part products (not measured)
#   after the build   ours: save            nixpkgs: cp -r ./* $out/outputs + store
#   later build       fresh sources with 1 edited file, then restore
# TOOLS="ours nixpkgs" selects the tools (ours needs target/release/nix-checkpoint).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TOOLS=${TOOLS:-ours nixpkgs}
SEED=${SEED:-42}
LEVEL=${NCKP_LEVEL:-}          # empty: the engine's default zstd level
GEN="python3 $BENCH_DIR/gen_tree.py --seed $SEED"

has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

ordered_tools() { # alternate which tool goes first
  local i=$1 t=()
  has_tool ours && t+=(ours)
  has_tool nixpkgs && t+=(nixpkgs)
  if ((i % 2)) && ((${#t[@]} == 2)); then t=(nixpkgs ours); fi
  echo "${t[@]}"
}

run_tree() { # WORKLOAD CASE NFILES ORDER-INDEX [gen args...]
  local wl=$1 case=$2 n=$3 i=$4; shift 4
  local W=$CACHE/synthetic/$case T tools t
  T=$W/tree
  rmtree "$W"; mkdir -p "$W"
  tools=$(ordered_tools "$i")
  log "$wl/$case: $n files, order: $tools"

  $GEN --files "$n" --part sources "$@" "$T" >"$W/gen-sources.json"
  record "$wl" "$case" tree files_count "$n"
  record "$wl" "$case" tree sources_bytes "$(size_bytes "$T")"

  for t in $tools; do
    warm "$T"
    case $t in
      ours) measure "$wl" "$case" ours snapshot -- "$NCKP" snapshot --root "$T" --state "$W/ours.state" ;;
      nixpkgs) measure "$wl" "$case" nixpkgs snapshot -- "$NIXPKGS_CKPT" prepare-sources "$T" "$W/nixout" ;;
    esac
  done

  $GEN --files "$n" --part products "$@" "$T" >"$W/gen-products.json"
  record "$wl" "$case" tree built_bytes "$(size_bytes "$T")"

  for t in $tools; do
    warm "$T"
    case $t in
      ours)
        warm "$W/ours.state"
        measure "$wl" "$case" ours save -- "$NCKP" save --root "$T" --state "$W/ours.state" \
          --output "$W/ours-ckpt" ${LEVEL:+--level "$LEVEL"}
        record "$wl" "$case" ours checkpoint_bytes "$(size_bytes "$W/ours-ckpt")"
        ;;
      nixpkgs)
        warm "$W/nixout"
        measure "$wl" "$case" nixpkgs save -- "$NIXPKGS_CKPT" prepare-outputs "$T" "$W/nixout"
        measure "$wl" "$case" nixpkgs store -- "$NIXPKGS_CKPT" store "$W/nixout"
        record "$wl" "$case" nixpkgs checkpoint_bytes "$(size_bytes "$W/nixout")"
        ;;
    esac
  done

  for t in $tools; do
    rmtree "$T"
    $GEN --files "$n" --part sources --edit 1 "$@" "$T" >/dev/null
    # RESTORE_SETTLE=N: wait N s before the restore. On an ext4 without a
    # journal, creating files within dirty_expire_centisecs (30 s) of deleting
    # many makes the inode allocator skip "recently deleted" inodes one by one.
    sync; sleep "${RESTORE_SETTLE:-0}"
    case $t in
      ours)
        warm "$T" "$W/ours-ckpt"
        MEASURE_ALLOW_FAIL=1 measure "$wl" "$case" ours restore -- "$NCKP" restore --root "$T" "$W/ours-ckpt/checkpoint.nckp"
        ;;
      nixpkgs)
        warm "$T" "$W/nixout"
        MEASURE_ALLOW_FAIL=1 measure "$wl" "$case" nixpkgs restore -- "$NIXPKGS_CKPT" restore "$T" "$W/nixout"
        ;;
    esac
    [[ $LAST_RC -eq 0 ]] || record "$wl" "$case" "$t" restore_failed "$LAST_RC"
    record "$wl" "$case" "$t" restored_digest "$(tree_digest "$T")"
  done
  # The expected tree: the edited sources plus the products.
  $GEN --files "$n" --part products "$@" "$T.expected" >/dev/null
  $GEN --files "$n" --part sources --edit 1 "$@" "$T.expected" >/dev/null
  record "$wl" "$case" expected restored_digest "$(tree_digest "$T.expected")"
  [[ ${KEEP:-0} == 1 ]] || rmtree "$W"
}

main() {
  local mode=${1:-scaling} n i sizes W T r; shift || true
  case $mode in
    scaling)
      sizes=("$@")
      ((${#sizes[@]})) || sizes=(1000 3000 10000 30000 100000)
      i=0
      for n in "${sizes[@]}"; do run_tree scaling "n$n" "$n" $((i++)); done
      ;;
    generated)
      run_tree generated 6k+6k 12000 0
      ;;
    snapshot-1g)
      W=$CACHE/synthetic/1g; T=$W/tree
      rmtree "$W"; mkdir -p "$W"
      $GEN --files 70000 --total-bytes 1e9 --part all "$T" >"$W/gen.json"
      record snapshot-1g 70k tree files_count 70000
      record snapshot-1g 70k tree built_bytes "$(size_bytes "$T")"
      warm "$T"
      for r in 1 2 3; do
        if has_tool ours; then
          warm "$T"
          measure snapshot-1g 70k ours "snapshot#$r" -- "$NCKP" snapshot --root "$T" --state "$W/ours.state"
        fi
        if has_tool nixpkgs; then
          rmtree "$W/nixout"; warm "$T"
          measure snapshot-1g 70k nixpkgs "snapshot#$r" -- "$NIXPKGS_CKPT" prepare-sources "$T" "$W/nixout"
        fi
      done
      [[ ${KEEP:-0} == 1 ]] || rmtree "$W"
      ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
}

# Parsed whole before it runs: editing this file during a run is harmless.
main "$@"; exit $?
