#!/usr/bin/env bash
# The README's main demo: a real incremental nix-build of GNU hello, the
# nixpkgs manual's example, in the Nix sandbox.
#
#   1. scripts/setup.sh (Nix, build tools, hello 2.10 source)
#   2. the engine as a static release binary
#   3. prepareCheckpointBuild hello, then the changed hello built plain and
#      with mkCheckpointBuild: times (whole build, build phase), what was
#      recompiled, checkpoint size.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

./scripts/setup.sh

echo "== building the engine (static release)"
if [ -n "${NIX_CHECKPOINT_BIN:-}" ]; then
  bin=$NIX_CHECKPOINT_BIN   # a binary built elsewhere
elif [ -x scripts/build-static.sh ]; then
  bin=$(./scripts/build-static.sh)
else
  target=$(rustc -vV | sed -n 's/^host: //p')
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
  bin=target/$target/release/nix-checkpoint
fi
bin=$(realpath "$bin")
echo "engine: $bin"

CACHE=${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}
export NIX_REMOTE=${NIX_REMOTE:-}
run=$(date +%s%N)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nb() { # ATTR: build, log to $work/ATTR.log, print the output path. A builder
  # Nix 2.8 reports "failed due to signal 9 (Killed)" is built again, up to 5
  # times (in this workplace's sessions builders are SIGKILLed at random, a
  # one-line derivation too); the time is the successful attempt's.
  local try t0
  for try in 1 2 3 4 5; do
    t0=$(date +%s.%N)
    if nix-build --option substituters '' --option sandbox true \
      --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives' \
      tests/nix/demo.nix --no-out-link --argstr nixCheckpointBin "$bin" \
      --argstr helloSrc "$CACHE/hello/hello_2.10.orig.tar.gz" --argstr run "$run" \
      -A "$1" 2> "$work/$1.log"; then
      # The time of the attempt that succeeded.
      awk "BEGIN { print $(date +%s.%N) - $t0 }" > "$work/$1.secs"
      return 0
    fi
    grep -q 'failed due to signal 9 (Killed)' "$work/$1.log" || break
  done
  cat "$work/$1.log" >&2
  return 1
}
timed() { # ATTR: build and print the wall time in seconds
  nb "$1" > "$work/$1.out"
  cat "$work/$1.secs"
}
# A phase's time in seconds, or "skipped" when it did not run.
phase() {
  local t; t=$(grep -o "=== $2 done in [0-9.]*s" "$work/$1.log" | awk '{ sub(/s$/, "", $5); print $5 "s" }')
  echo "${t:-skipped}"
}
compiledUnits() {
  awk '/^(=== buildPhase|Running phase: buildPhase)$/ { p = 1 } p && /^nix-checkpoint-test: compiled / { print $3 }' "$work/$1.log" \
    | sed 's|^[^/]*/||' | sort -u | tr '\n' ' '
}

echo "== hello 2.10: first build, with a checkpoint (prepareCheckpointBuild hello)"
t_ck=$(timed helloCheckpoint)
ck=$(nb checkpoint)
echo "== the changed hello (\"Hello, Nix!\"), built plain"
t_plain=$(timed changedHello)
echo "== the changed hello, built with mkCheckpointBuild changedHello helloCheckpoint"
t_inc=$(timed incremental)

plain_out=$(cat "$work/changedHello.out") inc_out=$(cat "$work/incremental.out")
n_plain=$(compiledUnits changedHello | wc -w)
cat <<REPORT

                          whole build   configure   build phase   compiled units
  prepareCheckpointBuild  $(printf '%9.1fs' "$t_ck")   $(printf '%9s' "$(phase helloCheckpoint configurePhase)")   $(printf '%11s' "$(phase helloCheckpoint buildPhase)")   $(compiledUnits helloCheckpoint | wc -w)
  changed hello, plain    $(printf '%9.1fs' "$t_plain")   $(printf '%9s' "$(phase changedHello configurePhase)")   $(printf '%11s' "$(phase changedHello buildPhase)")   $n_plain
  changed hello, restored $(printf '%9.1fs' "$t_inc")   $(printf '%9s' "$(phase incremental configurePhase)")   $(printf '%11s' "$(phase incremental buildPhase)")   $(compiledUnits incremental | wc -w)

  restored build / plain build: $(awk "BEGIN { printf \"%.0f%%\", 100 * $t_inc / $t_plain }")
  $(grep -o 'configure skipped ([^)]*)' "$work/incremental.log" | head -n 1)
  recompiled with the checkpoint: $(compiledUnits incremental)
  checkpoint: $ck/checkpoint.nckp, $(du -h "$ck/checkpoint.nckp" | cut -f1) ($(stat -c %s "$ck/checkpoint.nckp") bytes)
  $inc_out/bin/hello says: $("$inc_out/bin/hello")
  references of the result: $(nix-store -q --references "$inc_out" | xargs -r -n1 basename | tr '\n' ' ')
REPORT

echo
echo "== a generated library of 120 sources with 38 configure checks, for CMake (Ninja) and Meson: one line changed"
for p in cmake meson; do
  timed "${p}Checkpoint" > /dev/null
  eval "t_${p}_plain=\$(timed ${p}Changed)"
  eval "t_${p}_inc=\$(timed ${p}Incremental)"
done
printf '\n                          whole build   configure   build phase   compiled units\n'
for p in cmake meson; do
  for v in Changed Incremental; do
    t_var="t_${p}_$([ $v = Changed ] && echo plain || echo inc)"
    printf '  %-23s %9.1fs   %9s   %11s   %s\n' "$p, $([ $v = Changed ] && echo plain || echo restored)" \
      "${!t_var}" "$(phase "$p$v" configurePhase)" "$(phase "$p$v" buildPhase)" "$(compiledUnits "$p$v" | wc -w)"
  done
  t_plain_var="t_${p}_plain" t_inc_var="t_${p}_inc"
  echo "  $p restored / plain: $(awk "BEGIN { printf \"%.0f%%\", 100 * ${!t_inc_var} / ${!t_plain_var} }")"
done
