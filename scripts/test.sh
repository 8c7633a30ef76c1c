#!/usr/bin/env bash
# Every test: Rust unit, property and integration tests (real make, ninja,
# CMake), then the Nix end-to-end cases in the real sandbox with the static
# release binary. Installs what it needs on a fresh Debian 12 machine (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

echo "== cargo test (unit, property, integration)"
# Here every tool is installed: a test that would skip for want of one fails.
NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS=1 INSTA_UPDATE=no cargo test --locked --all-targets
# rust-version in Cargo.toml is true: no std API newer than it (clippy.toml: tests too).
cargo clippy --locked --all-targets -- -D clippy::incompatible_msrv
# The tests that need root (mount, setpriv), ignored in an unprivileged run.
NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS=1 cargo test --locked --test it -- --ignored hardening::root_

echo "== static release binary"
bin=$(./scripts/build-static.sh)

echo "== the stand-in stdenv behaves as nixpkgs' where a checkpoint can see it"
./tests/nix/standin-selftest.sh

echo "== Nix end-to-end tests (sandboxed nix-build)"
NIX_CHECKPOINT_BIN=$bin ./tests/nix/run.sh
