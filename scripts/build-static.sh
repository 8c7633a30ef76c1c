#!/usr/bin/env bash
# Builds the static release binary: target/x86_64-unknown-linux-gnu/release/nix-checkpoint
# (--target keeps crt-static away from build scripts and proc macros) and
# links it to target/release/nix-checkpoint-static. Prints its size.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
bin="target/$target/release/nix-checkpoint"
file "$bin" 2>/dev/null | grep -q "static" || ldd "$bin" 2>&1 | grep -q "not a dynamic\|statically linked" || {
  echo "build-static: $bin is not static" >&2
  exit 1
}
echo "build-static: $bin ($(stat -c %s "$bin") bytes)" >&2
echo "$bin"
