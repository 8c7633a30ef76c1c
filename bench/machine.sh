#!/usr/bin/env bash
# Describe the machine and measure its disk and memory bandwidth.
# Writes $RESULTS_DIR/machine.txt (read by bench/report.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$RESULTS_DIR" "$CACHE"
out=$RESULTS_DIR/machine.txt

dd_rate() { # the rate dd prints on its last line
  tail -1 | sed -E 's/.*, ([0-9.,]+ [kMG]?B\/s)$/\1/'
}

{
  echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "kernel:  $(uname -r)"
  lscpu | grep -E '^(Model name|Architecture|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|L2 cache|L3 cache|Hypervisor vendor)' | sed 's/  */ /g'
  echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  dev=$(df --output=source "$CACHE" | tail -1)
  echo "disk:    $dev, $(df -h --output=fstype,size "$CACHE" | tail -1 | xargs), cache dir $CACHE"
  lsblk -dno NAME,ROTA,MODEL 2>/dev/null | sed 's/^/         /' | head -3 || true
  f=$CACHE/.ddtest
  w=$(dd if=/dev/zero of="$f" bs=1M count=1024 oflag=direct conv=fsync 2>&1 | dd_rate)
  r=$(dd if="$f" of=/dev/null bs=1M iflag=direct 2>&1 | dd_rate)
  dd if="$f" of=/dev/null bs=1M 2>/dev/null
  rc=$(dd if="$f" of=/dev/null bs=1M 2>&1 | dd_rate)
  rm -f "$f"
  echo "disk bandwidth (dd, 1 GiB, 1 MiB blocks): write ${w} (O_DIRECT+fsync), read ${r} (O_DIRECT), read ${rc} (page cache)"
  b=$(mktemp -d)
  if cc -O2 -o "$b/membw" "$BENCH_DIR/membw.c" 2>/dev/null; then
    echo "memory bandwidth (memcpy 256 MiB, best of 5): $("$b/membw") GB/s"
  fi
  rm -rf "$b"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "tools:   $(rsync --version | head -1 | cut -d' ' -f1-4); $(diff --version | head -1); $(patch --version | head -1); $(gcc --version | head -1); $(make --version | head -1)"
  if [[ -x $NCKP ]]; then
    echo "engine:  $NCKP ($(git -C "$REPO_DIR" log -1 --format='%h %s' 2>/dev/null))"
  fi
} >"$out"
cat "$out"
