#!/usr/bin/env bash
# Profile nix-checkpoint on a synthetic tree with perf (cpu-clock sampling:
# the VM has no hardware counters). Builds a symbolised copy of the release
# binary (same profile, symbols not stripped) into $CACHE/prof-target
# without touching Cargo.toml, then records snapshot, save and restore.
#
#   bench/profile.sh [NFILES]      default 30000
#
# Writes $RESULTS_DIR/profile.md (included by bench/report.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-30000}
PT=$CACHE/prof-target
(cd "$REPO_DIR" && CARGO_PROFILE_RELEASE_STRIP=false \
  cargo build --release --quiet --target-dir "$PT")
BIN=$PT/release/nix-checkpoint
W=$CACHE/profile; T=$W/tree
rmtree "$W"; mkdir -p "$W"
GEN="python3 $BENCH_DIR/gen_tree.py --seed 42 --files $N"
$GEN --part sources "$T" >/dev/null
out=$RESULTS_DIR/profile.md
mkdir -p "$RESULTS_DIR"
{
  echo "perf record -e cpu-clock -F 2000 (no hardware counters in this VM; flat self time, no call graphs),"
  echo "symbolised release build, synthetic tree of $N files, warm."
  echo
} >"$out"

prof() { # STEP cmd...
  local step=$1; shift
  warm "$T" "$W"
  perf record -q -e cpu-clock -F 2000 -o "$W/$step.data" -- "$TIME_BIN" -f '%e s wall, %U s user, %S s sys, %M KB max RSS' -o "$W/$step.time" "$@" >/dev/null 2>&1
  {
    echo "### $step"
    echo
    echo "$(cat "$W/$step.time") (under perf); samples by object:"
    echo
    echo '```'
    perf report -i "$W/$step.data" --no-children --sort dso --stdio 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -6
    echo '```'
    echo
    echo "hottest symbols (self time, >= 1.5 %):"
    echo
    echo '```'
    perf report -i "$W/$step.data" --no-children --sort dso,symbol --percent-limit 1.5 --stdio 2>/dev/null |
      grep -v '^#' | grep -v '^$' | sed -E 's/ +- +- +$//' | head -25
    echo '```'
    echo
  } >>"$out"
}
prof snapshot "$BIN" snapshot --root "$T" --state "$W/state"
$GEN --part products "$T" >/dev/null
prof save "$BIN" save --root "$T" --state "$W/state" --output "$W/ckpt"
rmtree "$T"
$GEN --part sources --edit 1 "$T" >/dev/null
prof restore "$BIN" restore --root "$T" "$W/ckpt/checkpoint.nckp"
[[ ${KEEP:-0} == 1 ]] || rmtree "$W"
cat "$out"
