#!/usr/bin/env bash
# A real package nobody here wrote: Debian's zlib 1.2.13 (fetched with
# apt-get source into the cache), on ../shared/nixpkgs-stdenv. Prints, per
# change, what restore did, the units compiled, the times, and whether the
# result equals a clean build. Not a test: a check against reality.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
CACHE=${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}
[ -f ../shared/nixpkgs-stdenv/default.nix ] || { echo "zlib.sh: needs ../shared/nixpkgs-stdenv" >&2; exit 2; }
bin=$(realpath "${NIX_CHECKPOINT_BIN:-$(./scripts/build-static.sh)}")
mkdir -p "$CACHE/zlib"
ls "$CACHE"/zlib/zlib_*.orig.tar.* >/dev/null 2>&1 || (cd "$CACHE/zlib" && apt-get source --download-only zlib >&2)
src=$(ls "$CACHE"/zlib/zlib_*.orig.tar.* | head -n 1)
run=$(date +%s%N)
logs=$(mktemp -d "${TMPDIR:-/tmp}/zlib-bench.XXXXXX")
nb() { # ATTR: output path (builds Nix reports killed by signal 9 are retried)
  local try
  for try in 1 2 3 4 5; do
    nix-build --option substituters '' --option sandbox true \
      --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives' \
      bench/real/zlib.nix --no-out-link --argstr nixCheckpointBin "$bin" --arg src "$src" --argstr run "$run" \
      -A "$1" 2> "$logs/$1.log" && return 0
    grep -q 'failed due to signal 9 (Killed)' "$logs/$1.log" || break
  done
  cat "$logs/$1.log" >&2; return 1
}
same=tests/nix/same-modulo-hash.py
plain=$(nb plain) prepared=$(nb prepared)
python3 "$same" "$prepared" "$plain" && echo "prepared out == plain out" || echo "prepared out DIFFERS from plain"
for c in source header flags; do
  t0=$(date +%s.%N); inc=$(nb "$c.inc"); t1=$(date +%s.%N); clean=$(nb "$c.clean"); t2=$(date +%s.%N)
  units=$(nix-store -l "$inc" | awk '/^Running phase: buildPhase$/ { p = 1 } p && /^nix-checkpoint-test: compiled / { print $3 }' | sed 's|^[^/]*/||' | sort -u | wc -l)
  echo "== $c: $(nix-store -l "$inc" | grep -o 'nix-checkpoint: restore: [^;(]*' | head -n 1 | cut -c26-)"
  printf '   incremental %.1f s (%s units), clean %.1f s, %s\n' "$(python3 -c "print($t1 - $t0)")" "$units" "$(python3 -c "print($t2 - $t1)")" \
    "$(python3 "$same" "$inc" "$clean" >/dev/null && echo 'equal to the clean build' || echo 'DIFFERENT from the clean build')"
done
