#!/usr/bin/env bash
# Every test: Rust unit, property and integration tests (real make, ninja,
# CMake), then the Nix end-to-end cases in the real sandbox.
# Installs what it needs on a fresh Debian 12 machine (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

echo "== cargo test (unit, property, integration)"
cargo test --release --all-targets 2>&1 | tee /tmp/nix-checkpoint-cargo-test.log
echo "== cargo build (static release binary)"
./scripts/build-static.sh

echo "== Nix end-to-end tests"
./tests/nix/run.sh
