#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60), one at a time, one job
# each, and prints executions and crashes per target.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz and a nightly toolchain (cargo install cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pack_reader merge_plan)
mkdir -p logs
# Build once, then run the binaries directly (a `cargo fuzz run` per target
# could rebuild in between if the sources changed).
[ -n "${NO_BUILD:-}" ] || cargo +nightly fuzz build -O >/dev/null
bindir=target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  log="logs/$t.log"
  : >"$log"
  # libFuzzer stops at the first crash: run again (keeping the corpus)
  # until the time is spent, so one crash does not end the session.
  start=$(date +%s); execs=0; runs=0
  while :; do
    left=$(( secs - ($(date +%s) - start) ))
    [ "$left" -gt 0 ] || break
    set +e
    "$bindir/$t" "corpus/$t" \
      -max_total_time="$left" -rss_limit_mb=512 -max_len=65536 -timeout=20 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >>"$log" 2>&1
    set -e
    runs=$((runs + 1))
    n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    execs=$((execs + ${n:-0}))
    sed -i 's/stat::number_of_executed_units/stat::counted_units/' "$log"
  done
  crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  echo "$t: $execs executions in ${secs}s ($runs runs), $crashes crash/oom/timeout artifacts in fuzz/artifacts/$t, log fuzz/$log"
done
