#!/usr/bin/env bash
# End-to-end tests of the Nix integration: real sandboxed nix-builds with the
# stand-in stdenv (tests/nix/stdenv) and the engine binary.
#
#   tests/nix/run.sh [CASE...]      CASE: hello cmake make meson chain transfer
#                                         fallback phases flake (default: all)
#
# Environment: NIX_CHECKPOINT_BIN (default target/release/nix-checkpoint),
# NIX_CHECKPOINT_HELLO_SRC (default: the tarball scripts/setup.sh caches).
# Each incremental build is compared with a clean build of the same change
# (equal modulo each result's own store hash) and the compiled units (logged
# by the stand-in's cc wrapper during the build phase) are asserted.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=${NIX_CHECKPOINT_BIN:-$repo/target/release/nix-checkpoint}
CACHE=${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}
HELLO_SRC=${NIX_CHECKPOINT_HELLO_SRC:-$CACHE/hello/hello_2.10.orig.tar.gz}
WORK=${NIX_CHECKPOINT_E2E_DIR:-${TMPDIR:-/tmp}/nix-checkpoint-e2e}
export NIX_REMOTE=${NIX_REMOTE:-}
NIX_OPTS=(--option substituters '' --option sandbox true
          --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives')
CASES=$here/cases.nix

[ -x "$BIN" ] || { echo "run.sh: no engine binary at $BIN (cargo build --release)" >&2; exit 2; }
[ -f "$HELLO_SRC" ] || { echo "run.sh: no hello tarball at $HELLO_SRC (scripts/setup.sh)" >&2; exit 2; }
BIN=$(realpath "$BIN")
mkdir -p "$WORK/logs"

passed=0 failed=0 failures=()
pass() { echo "PASS  $1"; passed=$((passed + 1)); }
fail() { echo "FAIL  $1: $2"; failed=$((failed + 1)); failures+=("$1"); }
check() { # NAME CONDITION-MESSAGE COMMAND...
  local name=$1 msg=$2; shift 2
  if "$@"; then pass "$name"; else fail "$name" "$msg"; fi
}

# build ATTR [nix-build args...]: prints the (first) output path; the whole
# nix-build output goes to $WORK/logs/ATTR.log.
build() {
  local attr=$1; shift
  nix-build "${NIX_OPTS[@]}" "$CASES" --no-out-link \
    --argstr nixCheckpointBin "$BIN" --argstr helloSrc "$HELLO_SRC" \
    -A "$attr" "$@" > "$WORK/logs/$attr.out" 2> "$WORK/logs/$attr.log"
  local rc=$?
  [ $rc = 0 ] || { echo "      (nix-build -A $attr failed, see $WORK/logs/$attr.log)" >&2; tail -n 15 "$WORK/logs/$attr.log" | sed 's/^/      | /' >&2; return $rc; }
  head -n 1 "$WORK/logs/$attr.out"
}

# The build log of a store path (STORE optional: a --store URI).
buildlog() { nix-store ${2:+--store "$2"} -l "$1" 2>/dev/null; }

# Units compiled during the build phase (and later), relative to the source root.
compiled() {
  buildlog "$@" | awk '/^=== buildPhase$/ { p = 1 } p && /^nix-checkpoint-test: compiled / { print $3 }' \
    | sed 's|^[^/]*/||' | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//'
}

# A listing of a result with every occurrence of its own hash masked:
# type, mode, symlink target or masked content hash, per entry.
# Compilers split constant strings into overlapping 16-byte chunks, so a
# fragment of the hash can appear apart from it: "/nix/store/HASH-hell" +
# "4-hello-2.10/lib". Fragments next to the store directory or to the
# path's name are masked too.
masked() { # PATH [PHYSICAL-PATH]
  local path=$1 phys=${2:-$1} h name z=00000000000000000000000000000000 k script
  h=$(basename "$path" | cut -c1-32)
  name=$(basename "$path" | cut -c34- | sed 's/[.[\*^$/]/\\&/g')
  script="s/$h/$z/g"
  for k in $(seq 31 -1 1); do
    script+=";s/${h: -k}-$name/${z:0:k}-$name/g;s|/nix/store/${h:0:k}|/nix/store/${z:0:k}|g"
  done
  (cd "$phys" && find . | LC_ALL=C sort | while IFS= read -r f; do
    if [ -L "$f" ]; then echo "L $f -> $(readlink "$f" | sed "s/$h/@HASH@/g")"
    elif [ -d "$f" ]; then echo "D $f $(stat -c %a "$f")"
    else echo "F $f $(stat -c %a "$f") $(LC_ALL=C sed "$script" "$f" | sha256sum | cut -c1-16)"
    fi
  done)
}
same() { # A B [PHYS-A]: equal modulo own hashes
  local d
  d=$(diff <(masked "$1" "${3:-$1}") <(masked "$2")) && return 0
  echo "$d" | head -n 20 | sed 's/^/      /' >&2
  return 1
}
expect_compiled() { # NAME PATH EXPECTED [STORE]
  local got; got=$(compiled "$2" "${4:-}")
  if [ "$got" = "$3" ]; then pass "$1 compiled [$3]"; else fail "$1" "compiled [$got], expected [$3]"; fi
}
logs_have() { buildlog "$1" "${3:-}" | grep -q -- "$2"; }

# An incremental case: ATTR.inc vs ATTR.clean, expected compiled units.
incremental_case() { # ATTR EXPECTED
  local attr=$1 expected=$2 inc clean
  inc=$(build "$attr.inc") || { fail "$attr" "incremental build failed"; return; }
  clean=$(build "$attr.clean") || { fail "$attr" "clean build failed"; return; }
  check "$attr restored" "no restore in the build log" logs_have "$inc" "nix-checkpoint: restoring"
  expect_compiled "$attr" "$inc" "$expected"
  check "$attr equals clean build" "result differs from a clean build" same "$inc" "$clean"
}

test_hello() {
  local plain inc clean ck prepared
  plain=$(build hello.plain) || { fail hello "plain build failed"; return; }
  prepared=$(build hello.prepared) || { fail hello "prepareCheckpointBuild failed"; return; }
  check "hello prepared out equals plain build" "prepareCheckpointBuild changed the package" same "$prepared" "$plain"
  check "hello prepared has a checkpoint" "no checkpoint.nckp" test -f "$(build hello.checkpoint)/checkpoint.nckp"
  incremental_case hello "src/hello.c"
  inc=$(build hello.inc) || return
  check "hello prints Hello, Nix!" "wrong greeting" bash -c "[ \"\$($inc/bin/hello)\" = 'Hello, Nix!' ]"
  ck=$(build hello.checkpoint)
  local refs; refs=$(nix-store -q --references "$inc")
  check "hello references neither checkpoint nor earlier outputs" "references: $refs" \
    bash -c "! grep -qE '$(basename "$ck" | cut -c1-32)|$(basename "$prepared" | cut -c1-32)|$(basename "$plain" | cut -c1-32)' <<< '$refs'"
  incremental_case helloPatch "src/hello.c"
  inc=$(build helloPatch.inc) && check "hello patch prints the patched greeting" "wrong greeting" \
    bash -c "[ \"\$($inc/bin/hello)\" = 'Hello, patched world!' ]"
}

test_cmake() { incremental_case cmake "src/greet.c"; }
test_meson() { incremental_case meson "src/math.c"; }

test_make() {
  incremental_case makeNoChange ""
  incremental_case makeHeader "src/main.c src/plugin_a.c src/plugin_b.c"
  incremental_case makeNewFile "src/plugin_c.c"
  incremental_case makeDeleted ""
  incremental_case makeBinary "build/gen/blob.c"
  incremental_case makeSymlink "src/main.c"
  incremental_case makeMode ""
}

test_chain() {
  local c2 c3 v4 n
  c2=$(build chain.c2) && c3=$(build chain.c3) && v4=$(build chain.v4) \
    || { fail chain "a chained build failed"; return; }
  expect_compiled "chain v2" "$c2" "src/greet.c"
  expect_compiled "chain v3" "$c3" "src/math.c"
  expect_compiled "chain v4" "$v4" "src/main.c"
  n=2; for r in "$c2" "$c3" "$v4"; do
    check "chain v$n equals clean build" "differs" same "$r" "$(build chain.clean$n)"
    n=$((n + 1))
  done
}

test_transfer() {
  local ck store2 inc clean
  ck=$(build makeCheckpoint.checkpoint) || { fail transfer "checkpoint build failed"; return; }
  store2=$WORK/store2
  chmod -R u+w "$store2" 2>/dev/null; rm -rf "$store2"; mkdir -p "$store2"
  nix-store --export $(nix-store -qR "$ck") > "$WORK/checkpoint.export" \
    || { fail transfer "export failed"; return; }
  nix-store --store "$store2" --import < "$WORK/checkpoint.export" > /dev/null \
    || { fail transfer "import into $store2 failed"; return; }
  check "transfer: second store holds only the checkpoint's closure" "store not empty" \
    bash -c "[ \$(ls '$store2/nix/store' | grep -vc '^\\.links\$') -eq $(nix-store -qR "$ck" | wc -l) ]"
  inc=$(build transfer.inc --store "$store2" --argstr transferCheckpoint "$ck") \
    || { fail transfer "build in the second store failed"; return; }
  clean=$(build transfer.clean) || { fail transfer "clean build failed"; return; }
  check "transfer restored" "no restore" logs_have "$inc" "nix-checkpoint: restoring" "$store2"
  expect_compiled "transfer" "$inc" "src/main.c src/plugin_a.c src/plugin_b.c" "$store2"
  check "transfer equals clean build" "differs" same "$inc" "$clean" "$store2$inc"
}

test_fallback() {
  local inc clean
  inc=$(build depChange.inc) || { fail depChange "build failed"; return; }
  clean=$(build depChange.clean) || { fail depChange "clean build failed"; return; }
  check "changed dependency: loud fallback message" "no message" logs_have "$inc" "NOT RESTORING"
  expect_compiled "changed dependency: full build" "$inc" "$(compiled "$clean")"
  check "changed dependency equals clean build" "differs" same "$inc" "$clean"
  if build corrupt >/dev/null 2>&1; then
    fail "corrupt checkpoint" "the build succeeded"
  else
    check "corrupt checkpoint fails with exit code 6" "no 'restore failed with exit code 6'" \
      grep -q "restore failed with exit code 6" "$WORK/logs/corrupt.log"
  fi
}

test_phases() {
  local ck
  ck=$(build noInstall.checkpoint) && check "dontInstall still saves a checkpoint" "no checkpoint" \
    test -f "$ck/checkpoint.nckp" || fail noInstall "build failed"
  ck=$(build noBuild.checkpoint) && check "dontBuild still saves a checkpoint" "no checkpoint" \
    test -f "$ck/checkpoint.nckp" || fail noBuild "build failed"
  ck=$(build multi.checkpoint) || { fail multi "build failed"; return; }
  check "multiple outputs: dev kept, checkpoint added" "missing" \
    test -f "$(build multi.dev)/include/util.h" -a -f "$ck/checkpoint.nckp" -a -x "$(build multi)/bin/app"
  check "multiple outputs: output flags unchanged" "setOutputFlags was touched" \
    [ "$(nix-instantiate --eval "$CASES" --argstr nixCheckpointBin "$BIN" -A multi.drvAttrs.setOutputFlags 2>/dev/null)" = "" ]
  check "single output: setOutputFlags = false" "not set" \
    [ "$(nix-instantiate --eval "$CASES" --argstr nixCheckpointBin "$BIN" -A hello.prepared.drvAttrs.setOutputFlags 2>/dev/null)" = false ]
}

test_flake() {
  local out
  if out=$(nix-instantiate --eval --strict "$here/flake-eval.nix" 2>&1); then
    pass "flake outputs: $out"
  else
    fail flake "$(echo "$out" | tail -n 5)"
  fi
}

all=(hello cmake make meson chain transfer fallback phases flake)
for c in "${@:-${all[@]}}"; do
  echo "--- $c"
  "test_$c"
done
echo
[ "$failed" = 0 ] || printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
