#!/usr/bin/env bash
# Peak RSS of inspect / verify / restore on crafted packs (#12, finding 3):
# the largest pack the format limits allow (2 x 8 388 608 directory
# entries), and the largest one the memory budget accepts. Prints one line
# per command: exit code and peak RSS (GNU time's %M, KiB).
# Usage: bench/memory.sh [BINARY]   (default: target/release/nix-checkpoint)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/nix-checkpoint}
[ -x "$bin" ] || cargo build --release
cargo build --quiet --example craft_pack
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/build"
budget_entries=${BUDGET_ENTRIES:-420000}
echo "binary: $bin"
for spec in "limits 8388608 8388608" "budget $budget_entries $budget_entries"; do
  set -- $spec
  name=$1
  size=$(target/debug/examples/craft_pack "$work/$name" "$work/build" "$2" "$3")
  echo "pack '$name': $2 + $3 entries, $size"
  for cmd in "inspect" "verify" "restore --dry-run" "restore" "restore --fallback-on-error"; do
    set +e
    case $cmd in
      inspect|verify) (ulimit -v 2097152; /usr/bin/time -f %M -o "$work/rss" "$bin" $cmd "$work/$name" >/dev/null 2>"$work/err") ;;
      *) (ulimit -v 2097152; /usr/bin/time -f %M -o "$work/rss" "$bin" ${cmd%% *} --root "$work/build" "$work/$name" ${cmd#restore} >/dev/null 2>"$work/err") ;;
    esac
    code=$?
    set -e
    printf '  %-28s exit %3d  peak RSS %8s KiB  (2 GiB address-space limit)\n' "$cmd" "$code" "$(tail -1 "$work/rss")"
  done
done
