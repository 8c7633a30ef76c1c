# shellcheck shell=bash
# Shared helpers for the benchmark scripts (sourced, not executed).
#
# Every measured step goes through `measure`, which runs the command under
# GNU time -v and appends one TSV row to $RESULTS:
#   workload  case  tool  step  value  maxrss_kb  extra  load1  cpu_s
# (load1: the 1-minute load average when the step started; the machine is
# shared, so a high load flags a noisy number; cpu_s: user+sys seconds)
# The report generator (bench/report.py) reads only that file.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
REPO_DIR=${REPO_DIR:-$(cd "$BENCH_DIR/.." && pwd)}
CACHE=${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
RESULTS=${RESULTS:-$RESULTS_DIR/results.tsv}
NCKP=${NCKP:-$REPO_DIR/target/release/nix-checkpoint}
NIXPKGS_CKPT=${NIXPKGS_CKPT:-$BENCH_DIR/nixpkgs-checkpoint.sh}
TIME_BIN=${TIME_BIN:-/usr/bin/time}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Wall seconds from GNU time's "h:mm:ss" or "m:ss.xx".
_time_wall() {
  awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0
      for (i = 1; i <= n; i++) s = s * 60 + p[i]
      printf "%.3f", s }' "$1"
}
_time_rss() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
_time_cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$1"; }

# measure WORKLOAD CASE TOOL STEP -- cmd...
# Runs cmd (stdout+stderr to $RESULTS_DIR/logs/...), records wall and peak RSS.
# Sets LAST_WALL and LAST_RSS. Fails the script if cmd fails, unless
# MEASURE_ALLOW_FAIL=1 (then LAST_RC holds the code).
measure() {
  local wl=$1 case=$2 tool=$3 step=$4; shift 5
  local tf logf
  mkdir -p "$RESULTS_DIR/logs"
  tf=$(mktemp)
  logf="$RESULTS_DIR/logs/$wl.$case.$tool.$step.log"
  sync  # flush earlier writes so they are not billed to this step
  local t0 t1
  MEASURE_LOAD=$(cut -d' ' -f1 /proc/loadavg)
  set +e
  t0=$(date +%s%N)
  "$TIME_BIN" -v -o "$tf" "$@" >"$logf" 2>&1
  LAST_RC=$?
  t1=$(date +%s%N)
  set -e
  # GNU time's own wall clock has 10 ms resolution; use ns timestamps
  # (the difference is the fork/exec of time itself, well under 1 ms).
  LAST_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  LAST_RSS=$(_time_rss "$tf")
  LAST_CPU=$(_time_cpu "$tf")
  rm -f "$tf"
  if [[ $LAST_RC -ne 0 && ${MEASURE_ALLOW_FAIL:-0} != 1 ]]; then
    tail -20 "$logf" >&2
    die "$tool $step ($wl/$case) failed with $LAST_RC; log: $logf"
  fi
  record "$wl" "$case" "$tool" "$step" "$LAST_WALL" "$LAST_RSS" "${MEASURE_EXTRA:-}" "$MEASURE_LOAD" "$LAST_CPU"
  log "$wl/$case $tool $step: ${LAST_WALL}s, ${LAST_RSS} KB, cpu ${LAST_CPU}s (load $MEASURE_LOAD)"
}

# record WORKLOAD CASE TOOL STEP VALUE [RSS] [EXTRA] (non-timed values too:
# sizes in bytes use step names ending in _bytes, counts in _count).
record() {
  mkdir -p "$RESULTS_DIR"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" "${7:-}" "${8:-}" "${9:-}" >>"$RESULTS"
}

# Read every regular file of the given trees once: both tools always start
# from the same (warm) page-cache state; nothing is ever dropped.
warm() {
  local d
  for d in "$@"; do
    [[ -e $d ]] || continue
    find "$d" -type f -print0 | xargs -0 -r -P2 -n 512 cat >/dev/null
  done
}

# Apparent size in bytes of a file or tree.
size_bytes() { du -sb "$1" | cut -f1; }

# Delete a tree, including read-only "store" copies.
rmtree() {
  local d
  for d in "$@"; do
    [[ -e $d ]] || continue
    chmod -R u+w "$d" 2>/dev/null || true
    rm -rf "$d"
  done
}

# Content digest of a tree (paths, types, symlink targets, file contents;
# not mtimes or modes) to check that two restores gave the same tree.
tree_digest() {
  (cd "$1" && find . \( -type f -o -type l \) ! -name '*.nckp-state' -print0 | LC_ALL=C sort -z |
    xargs -0 -r sha256sum | sha256sum | cut -c1-16)
}

have_engine() { [[ -x $NCKP ]] && "$NCKP" --help >/dev/null 2>&1 && "$NCKP" --help 2>&1 | grep -q snapshot; }
