#!/usr/bin/env bash
# End-to-end tests of the Nix integration: real sandboxed nix-builds with the
# engine binary, on two stdenvs: our stand-in (tests/nix/stdenv) and nixpkgs'
# own setup.sh on host tools (../shared/nixpkgs-stdenv, present on development
# machines and in CI; skipped with a message where it is absent).
#
#   tests/nix/run.sh [CASE...]      CASE: hello recipe make static autotools
#                                         cmake meson chain transfer fallback
#                                         phases flake (default: all)
#
# Environment: NIX_CHECKPOINT_BIN (default target/release/nix-checkpoint),
# NIX_CHECKPOINT_HELLO_SRC (default: the tarball scripts/setup.sh caches),
# NIX_CHECKPOINT_STDENVS (default: "standin nixpkgs").
# Each incremental build is compared with a clean build of the same change
# (equal modulo each result's own store hash), the compiled units (logged by
# the compiler wrappers during the build phase) are asserted, and so is what
# happened to configure: skipped, run before a deferred restore, or a loud
# fallback with its reason. Prints "N passed, N failed" and exits non-zero on
# any failure.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BIN=${NIX_CHECKPOINT_BIN:-$repo/target/release/nix-checkpoint}
CACHE=${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}
HELLO_SRC=${NIX_CHECKPOINT_HELLO_SRC:-$CACHE/hello/hello_2.10.orig.tar.gz}
WORK=${NIX_CHECKPOINT_E2E_DIR:-${TMPDIR:-/tmp}/nix-checkpoint-e2e}
STDENVS=${NIX_CHECKPOINT_STDENVS:-standin nixpkgs}
export NIX_REMOTE=${NIX_REMOTE:-}
NIX_OPTS=(--option substituters '' --option sandbox true
          --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives')
CASES=$here/cases.nix

[ -x "$BIN" ] || { echo "run.sh: no engine binary at $BIN (cargo build --release)" >&2; exit 2; }
[ -f "$HELLO_SRC" ] || { echo "run.sh: no hello tarball at $HELLO_SRC (scripts/setup.sh)" >&2; exit 2; }
BIN=$(realpath "$BIN")

passed=0 failed=0 failures=()
SE=standin   # the stdenv of the cases running now
pass() { echo "PASS  [$SE] $1"; passed=$((passed + 1)); }
fail() { echo "FAIL  [$SE] $1: $2"; failed=$((failed + 1)); failures+=("[$SE] $1"); }
check() { # NAME CONDITION-MESSAGE COMMAND...
  local name=$1 msg=$2; shift 2
  if "$@"; then pass "$name"; else fail "$name" "$msg"; fi
}

nixargs() {
  echo --argstr nixCheckpointBin "$BIN" --argstr helloSrc "$HELLO_SRC" --argstr stdenvName "$SE"
}

# build ATTR [nix-build args...]: prints the (first) output path; the whole
# nix-build output goes to $WORK/logs/$SE/ATTR.log. A builder that Nix 2.8
# reports "failed due to signal 9 (Killed)" is built again (up to 5 times):
# in this workplace's sessions builders get SIGKILLed at random (a one-line
# derivation too, with or without sandbox and build users); it says nothing
# about the build.
build() {
  local attr=$1 try rc; shift
  mkdir -p "$WORK/logs/$SE"
  for try in 1 2 3 4 5; do
    # shellcheck disable=SC2046
    nix-build "${NIX_OPTS[@]}" "$CASES" --no-out-link $(nixargs) \
      -A "$attr" "$@" > "$WORK/logs/$SE/$attr.out" 2> "$WORK/logs/$SE/$attr.log"
    rc=$?
    [ $rc != 0 ] && grep -q 'failed due to signal 9 (Killed)' "$WORK/logs/$SE/$attr.log" || break
  done
  [ $rc = 0 ] || { echo "      (nix-build -A $attr failed, see $WORK/logs/$SE/$attr.log)" >&2; tail -n 15 "$WORK/logs/$SE/$attr.log" | sed 's/^/      | /' >&2; return $rc; }
  head -n 1 "$WORK/logs/$SE/$attr.out"
}

# prebuild ATTR...: builds them all in one nix-build, two at a time, so that
# the checks below find them built. Failures show up in those checks, whose
# `build` builds again what failed here (and retries a killed builder).
prebuild() {
  local args=() a
  for a in "$@"; do args+=(-A "$a"); done
  mkdir -p "$WORK/logs/$SE"
  # shellcheck disable=SC2046
  nix-build "${NIX_OPTS[@]}" "$CASES" --no-out-link $(nixargs) --max-jobs 2 --cores 1 \
    --keep-going "${args[@]}" > /dev/null 2>> "$WORK/logs/$SE/prebuild.log" || true
}

# The build log of a store path (STORE optional: a --store URI).
buildlog() { nix-store ${2:+--store "$2"} -l "$1" 2>/dev/null; }

# Units compiled during the build phase (and later), relative to the source root.
compiled() {
  buildlog "$@" | awk '/^(=== buildPhase|Running phase: buildPhase)$/ { p = 1 } p && /^nix-checkpoint-test: compiled / { print $3 }' \
    | sed 's|^[^/]*/||' | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//'
}

# Equal modulo each result's own hash, pieces of it included (compilers
# split strings into immediates): tests/nix/same-modulo-hash.py.
same() { # A B [PHYS-A]
  local d
  d=$(python3 "$here/same-modulo-hash.py" "$1" "$2" ${3:+"$3"}) && return 0
  echo "$d" | head -n 20 | sed 's/^/      /' >&2
  return 1
}
expect_compiled() { # NAME PATH EXPECTED [STORE]
  local got; got=$(compiled "$2" "${4:-}")
  if [ "$got" = "$3" ]; then pass "$1 compiled [$3]"; else fail "$1" "compiled [$got], expected [$3]"; fi
}
logs_have() { buildlog "$1" "${3:-}" | grep -q -- "$2"; }
logs_lack() { ! logs_have "$@"; }
configure_ran() { logs_have "$1" "^=== configurePhase$" || logs_have "$1" "^Running phase: configurePhase$"; }
no_references() { [ -z "$(nix-store -q --references "$1")" ]; }
skipped_configure() { logs_have "$1" 'configure skipped (checkpoint: nothing configure read changed)' && ! configure_ran "$1"; }
deferred() { logs_have "$1" 'restore: nothing restored yet: configure runs' && logs_have "$1" 'restore: restoring after configure'; }
fell_back() { logs_have "$1" 'NOT RESTORING' && logs_have "$1" "$2"; }

# An incremental case: ATTR.inc vs ATTR.clean. EXPECTED: the units the
# incremental build compiles, or FULL (all of the clean build's). MODE: what
# must happen to the restore and configure:
#   skip           restored before configure, configure skipped (default)
#   defer          configure ran, then the restore
#   fallback:TEXT  nothing restored, the reason contains TEXT
incremental_case() { # ATTR EXPECTED [MODE]
  local attr=$1 expected=$2 mode=${3:-skip} inc clean
  inc=$(build "$attr.inc") || { fail "$attr" "incremental build failed"; return; }
  clean=$(build "$attr.clean") || { fail "$attr" "clean build failed"; return; }
  [ "$expected" != FULL ] || expected=$(compiled "$clean")
  case "$mode" in
    skip) check "$attr: configure skipped" "no 'configure skipped' line, or configure ran" skipped_configure "$inc" ;;
    defer) check "$attr: configure ran, then the restore" "no deferred restore" deferred "$inc" ;;
    fallback:*) check "$attr: falls back loudly (${mode#fallback:})" "no fallback with that reason" fell_back "$inc" "${mode#fallback:}" ;;
  esac
  expect_compiled "$attr" "$inc" "$expected"
  check "$attr equals clean build" "result differs from a clean build" same "$inc" "$clean"
  local ck; ck=$(buildlog "$inc" | sed -n 's|^nix-checkpoint: restoring \(/nix/store/[^ ]*\) into .*|\1|p' | head -n 1)
  [ -z "$ck" ] || check "$attr: its checkpoint refers to no store path" \
    "references: $(nix-store -q --references "$ck" 2>&1 | tr '\n' ' ')" no_references "$ck"
}

test_hello() {
  prebuild hello.plain hello.prepared hello.inc hello.clean helloPatch.inc helloPatch.clean \
    helloHeader.inc helloHeader.clean
  local plain inc prepared ck
  plain=$(build hello.plain) || { fail hello "plain build failed"; return; }
  prepared=$(build hello.prepared) || { fail hello "prepareCheckpointBuild failed"; return; }
  check "hello prepared out equals plain build" "prepareCheckpointBuild changed the package" same "$prepared" "$plain"
  check "hello prepared has a checkpoint" "no checkpoint.nckp" test -f "$(build hello.checkpoint)/checkpoint.nckp"
  check "hello prepared build tracked configure's reads" "no track-configure line" \
    logs_have "$prepared" "track-configure: configure read [1-9][0-9]* files"
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
  # A header: exactly its includers (automake's dependency tracking is on).
  incremental_case helloHeader "lib/basename.c lib/dirname.c lib/quotearg.c lib/xalloc-die.c lib/xmalloc.c lib/xstrndup.c src/hello.c"
  # The configured tree came back in order: make did not re-run config.status.
  inc=$(build helloHeader.inc) && check "hello: no config.status re-run in the build" "config.status ran" \
    logs_lack "$inc" "config.status: creating"
}

test_recipe() {
  prebuild helloConfigureFlag.inc helloConfigureFlag.clean helloConfigureScript.inc \
    helloConfigureScript.clean makeCflags.inc makeCflags.clean helloStructured.inc \
    helloStructured.clean makeStructuredFlag.inc makeStructuredFlag.clean
  incremental_case helloConfigureFlag FULL "fallback:configure must run (its variables changed: configureFlags"
  incremental_case helloConfigureScript FULL "fallback:a build description changed (hello-2.10/configure)"
  incremental_case makeCflags FULL "fallback:the build's recipe changed: NIX_CFLAGS_COMPILE"
  incremental_case helloStructured "src/hello.c"
  incremental_case makeStructuredFlag FULL "fallback:the build's recipe changed: makeFlags"
}

test_make() {
  prebuild makeNoChange.inc makeNoChange.clean makeHeader.inc makeHeader.clean makeNewFile.inc \
    makeNewFile.clean makeDeleted.inc makeDeleted.clean makeBinary.inc makeBinary.clean \
    makeSymlink.inc makeSymlink.clean makeMode.inc makeMode.clean makeFlagsChange.inc \
    makeFlagsChange.clean makeBuildFile.inc makeBuildFile.clean makeCheckInput.inc makeCheckInput.clean \
    makeConfigureState.inc makeConfigureState.clean
  incremental_case makeNoChange ""
  incremental_case makeHeader "src/main.c src/plugin_a.c src/plugin_b.c"
  incremental_case makeNewFile "src/plugin_c.c"
  incremental_case makeDeleted ""
  incremental_case makeBinary "build/gen/blob.c"
  incremental_case makeSymlink "src/main.c"
  incremental_case makeMode ""
  incremental_case makeFlagsChange FULL "fallback:the build's recipe changed: makeFlags"
  incremental_case makeBuildFile FULL "fallback:a build description changed (make-project/Makefile)"
  incremental_case makeCheckInput "src/main.c"
  incremental_case makeConfigureState "src/main.c"
}

test_static() {
  prebuild staticNewSource.inc staticNewSource.clean staticEdit.inc staticEdit.clean
  # The archive is left to make, which writes it fresh in rule order.
  incremental_case staticNewSource "d.c"
  incremental_case staticEdit "b.c"
}

test_autotools() {
  prebuild autotoolsSource.inc autotoolsSource.clean autotoolsHeader.inc autotoolsHeader.clean \
    autotoolsMakefileAm.inc autotoolsMakefileAm.clean autotoolsConfigureAc.inc \
    autotoolsConfigureAc.clean autotoolsConfigureFlag.inc autotoolsConfigureFlag.clean
  incremental_case autotoolsSource "src/math.c"
  incremental_case autotoolsHeader "src/greet.c src/main.c src/math.c"
  incremental_case autotoolsConfigureAc FULL "fallback:a build description changed (autotools-project/configure"
  incremental_case autotoolsMakefileAm FULL "fallback:a build description changed (autotools-project/Makefile.am"
  incremental_case autotoolsConfigureFlag FULL "fallback:configure must run (its variables changed: configureFlags"
}

test_cmake() {
  prebuild cmake.inc cmake.clean cmakeHeader.inc cmakeHeader.clean cmakeFlagsChange.inc \
    cmakeFlagsChange.clean cmakeListsChange.inc cmakeListsChange.clean cmakeGlob.inc cmakeGlob.clean \
    cmakeNoSkip.inc cmakeNoSkip.clean
  incremental_case cmake "src/greet.c"
  incremental_case cmakeHeader "src/greet.c src/main.c src/math.c"
  incremental_case cmakeFlagsChange "src/greet.c src/main.c src/math.c" defer
  incremental_case cmakeListsChange "src/main.c" defer
  incremental_case cmakeGlob "src/lib/extra.c" defer
  incremental_case cmakeNoSkip "src/greet.c" defer
  prebuild cmakeMakeSource.inc cmakeMakeSource.clean cmakeMakeOption.inc cmakeMakeOption.clean
  incremental_case cmakeMakeSource "src/math.c"
  incremental_case cmakeMakeOption "src/greet.c src/math.c" defer
}

test_meson() {
  prebuild meson.inc meson.clean mesonHeader.inc mesonHeader.clean mesonFlagsChange.inc \
    mesonFlagsChange.clean mesonBuildChange.inc mesonBuildChange.clean
  incremental_case meson "src/math.c"
  incremental_case mesonHeader "src/greet.c src/main.c src/math.c"
  incremental_case mesonFlagsChange "src/greet.c src/main.c src/math.c" defer
  incremental_case mesonBuildChange "src/greet.c src/main.c src/math.c" defer
}

test_chain() {
  local c2 c3 v4 n
  prebuild chain.clean2 chain.clean3 chain.clean4
  c2=$(build chain.c2) && c3=$(build chain.c3) && v4=$(build chain.v4) \
    || { fail chain "a chained build failed"; return; }
  expect_compiled "chain v2" "$c2" "src/greet.c"
  expect_compiled "chain v3" "$c3" "src/math.c"
  expect_compiled "chain v4" "$v4" "src/main.c"
  n=2; for r in "$c2" "$c3" "$v4"; do
    check "chain v$n skipped configure" "configure ran" skipped_configure "$r"
    check "chain v$n equals clean build" "differs" same "$r" "$(build chain.clean$n)"
    n=$((n + 1))
  done
}

test_transfer() {
  local ck store2 inc clean
  ck=$(build makeCheckpoint.checkpoint) || { fail transfer "checkpoint build failed"; return; }
  store2=$WORK/store2-$SE
  chmod -R u+w "$store2" 2>/dev/null; rm -rf "$store2"; mkdir -p "$store2"
  nix-store --export $(nix-store -qR "$ck") > "$WORK/checkpoint.export" \
    || { fail transfer "export failed"; return; }
  nix-store --store "$store2" --import < "$WORK/checkpoint.export" > /dev/null \
    || { fail transfer "import into $store2 failed"; return; }
  check "transfer: the checkpoint's closure is the checkpoint alone" "closure: $(nix-store -qR "$ck" | tr '\n' ' ')" \
    [ "$(nix-store -qR "$ck")" = "$ck" ]
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
  check "changed dependency: loud fallback naming buildInputs" "no message" \
    fell_back "$inc" "buildInputs: unset -> '/nix/store/"
  expect_compiled "changed dependency: full build" "$inc" "$(compiled "$clean")"
  check "changed dependency equals clean build" "differs" same "$inc" "$clean"
  inc=$(build nixpkgsArtifact) || { fail nixpkgsArtifact "build failed"; return; }
  check "nixpkgs' checkpoint layout: built in full, saying what it is" "no such fallback" \
    fell_back "$inc" "a checkpoint of nixpkgs' own checkpointBuildTools"
  if build corrupt >/dev/null 2>&1; then
    fail "corrupt checkpoint" "the build succeeded"
  else
    check "corrupt checkpoint fails with exit code 6" "no 'restore failed with exit code 6'" \
      grep -q "restore failed with exit code 6" "$WORK/logs/$SE/corrupt.log"
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
  local pc pcp dp
  dp=$(build disallowedPrepared.checkpoint) \
    && check "disallowedReferences on the stdenv: the prepared build and its checkpoint build" "no checkpoint" \
      test -f "$dp/checkpoint.nckp" || fail disallowedPrepared "build failed (a checkpoint refers to the stdenv?)"
  pc=$(build pcProject) && pcp=$(build pcPrepared) \
    && check "a .pc file: the prepared out equals the plain build" "differs" same "$pcp" "$pc" \
    || fail pcProject "build failed"
  # shellcheck disable=SC2046
  check "separateDebugInfo: output flags left as the plain build has them" "setOutputFlags set" \
    [ "$(nix-instantiate --eval -E "(import $CASES { stdenvName = \"$SE\"; }).debugInfoPrepared.drvAttrs.setOutputFlags or null" 2>/dev/null)" = null ]
  # shellcheck disable=SC2046
  check "multiple outputs: output flags unchanged" "setOutputFlags was touched" \
    [ "$(nix-instantiate --eval "$CASES" $(nixargs) -A multi.drvAttrs.setOutputFlags 2>/dev/null)" = "" ]
}

test_flake() {
  [ "$SE" = standin ] || return 0   # evaluation only: once is enough
  local out
  if out=$(nix-instantiate --eval --strict "$here/flake-eval.nix" 2>&1); then
    pass "flake outputs: $out"
  else
    fail flake "$(echo "$out" | tail -n 5)"
  fi
}

all=(hello recipe make static autotools cmake meson chain transfer fallback phases flake)
for SE in $STDENVS; do
  if [ "$SE" = nixpkgs ] && [ ! -f "$repo/../shared/nixpkgs-stdenv/default.nix" ]; then
    echo "SKIP  [nixpkgs] ../shared/nixpkgs-stdenv is not here (it is on development machines and in CI): the cases ran on the stand-in stdenv only"
    continue
  fi
  for c in "${@:-${all[@]}}"; do
    echo "--- [$SE] $c"
    "test_$c"
  done
done
echo
[ "$failed" = 0 ] || printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
