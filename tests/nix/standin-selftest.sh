#!/usr/bin/env bash
# Self-test of the stand-in stdenv (tests/nix/stdenv): builds a few tiny
# derivations in the Nix sandbox and asserts that the stand-in behaves as
# nixpkgs' stdenv does where that shapes a build tree or the flags given to
# configure and make: configure flag defaults, __structuredAttrs, env.*,
# list-valued flags, check inputs. Prints PASS/FAIL lines; exits 1 on any
# failure.
#
#   tests/nix/standin-selftest.sh
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export NIX_REMOTE=${NIX_REMOTE:-}
NIX_OPTS=(--option substituters '' --option sandbox true
          --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives')
WORK=$(mktemp -d "${TMPDIR:-/tmp}/standin-selftest.XXXXXX")

passed=0 failed=0
pass() { echo "PASS  $1"; passed=$((passed + 1)); }
fail() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }
# expect NAME EXPECTED ACTUAL
expect() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}
# has NAME FILE REGEX / hasnt NAME FILE REGEX
has() { if grep -qE -- "$3" "$2" 2>/dev/null; then pass "$1"; else fail "$1" "no /$3/ in $2"; fi; }
hasnt() { if grep -qE -- "$3" "$2" 2>/dev/null; then fail "$1" "/$3/ in $2"; else pass "$1"; fi; }

cat > "$WORK/selftest.nix" <<'EOF'
{ stdenvDir }:
let
  inherit (import stdenvDir { }) mkDerivation;

  # A tool only the check phase needs.
  checkTool = mkDerivation {
    name = "check-tool";
    dontUnpack = true;
    installPhase = ''
      mkdir -p $out/bin
      printf '#!/bin/sh\necho check-tool ran\n' > $out/bin/check-tool
      chmod +x $out/bin/check-tool
    '';
  };
  checkLib = mkDerivation {
    name = "check-lib";
    dontUnpack = true;
    installPhase = "mkdir -p $out/include; echo '#define CHECK_LIB 1' > $out/include/check-lib.h";
  };

  # A source tree with a hand-written configure (it mentions
  # dependency-tracking and enable-static, records its arguments and
  # environment, writes a Makefile) and a libtool ltmain.sh.
  src = mkDerivation {
    name = "selftest-src";
    buildCommand = ''
      mkdir -p $out/build-aux
      cat > $out/configure <<'CONF'
      #! /bin/sh
      # usage: --disable-dependency-tracking --enable-static
      for a in "$@"; do printf '%s\n' "$a"; done > configure.args
      echo "$lt_cv_deplibs_check_method" > configure.lt
      echo "$CONFIG_SHELL" > configure.shell
      cp Makefile.in Makefile
      CONF
      chmod +x $out/configure
      printf '%s\n' \
        'all:' \
        '	printf "%s\n" "M=$(M)" "B=$(B)" "X=$(X)" "SHELL=$(SHELL)" > build.vars' \
        'check:' \
        '	check-tool > check.out; echo "VERBOSE=$(VERBOSE)" >> check.out' \
        'install:' \
        '	mkdir -p $(out)' \
        '	cp configure.args configure.lt configure.shell build.vars $(wildcard check.out) $(out)/' \
        '	echo "pkgconfigdir=$(pkgconfigdir)" > $(out)/install.vars' \
        > $out/Makefile.in
      printf '%s\n' 'some code' '    eval sys_lib_search_path=\"$sys_lib_search_path_spec\"' 'more' \
        > $out/build-aux/ltmain.sh
    '';
  };

  # Records, into $out, what configure saw of the shell and the tree.
  common = {
    inherit src;
    preConfigure = ''
      stat -c %Y configure > $NIX_BUILD_TOP/mtime.before
      configureFlagsArray+=("--with-space=a b")
    '';
    postConfigure = ''
      stat -c %Y configure > $NIX_BUILD_TOP/mtime.after
      head -n 1 configure > $NIX_BUILD_TOP/configure.shebang
      declare -p configureFlags > $NIX_BUILD_TOP/configureFlags.decl
    '';
    postInstall = ''
      cp $NIX_BUILD_TOP/mtime.* $NIX_BUILD_TOP/configure.shebang $NIX_BUILD_TOP/configureFlags.decl $out/
      grep sys_lib_search_path= build-aux/ltmain.sh > $out/ltmain.line
      export > $out/env.txt
      declare -p notExported outputs > $out/shell.decl 2>&1 || true
      echo "$prefix" > $out/prefix
      [ -z "''${dev:-}" ] || mkdir -p $dev
    '';
    notExported = "not-in-env";
  };
in
{
  # Plain attributes: lists become space-separated strings.
  plain = mkDerivation (common // {
    name = "selftest-plain";
    configureFlags = [ "--with-a" "--with-b" ];
    makeFlags = [ "M=1" ];
    buildFlags = "B=2";
    enableParallelBuilding = true;
    env.FOO = "bar";
    doCheck = true;
    nativeCheckInputs = [ checkTool ];
  });

  # The opt-outs: no prefix key default, no dependency-tracking or static flags.
  optout = mkDerivation (common // {
    name = "selftest-optout";
    configureFlags = "--with-a";
    prefixKey = "PREFIX=";
    dontAddDisableDepTrack = true;
    dontDisableStatic = true;
    dontFixLibtool = true;
    dontPatchShebangsInConfigure = true;
  });

  # Structured attrs: arrays stay arrays, two outputs, env exported.
  structured = mkDerivation (common // {
    name = "selftest-structured";
    __structuredAttrs = true;
    outputs = [ "out" "dev" ];
    configureFlags = [ "--with-a" "CFLAGS=-O1 -g0" ];
    makeFlags = [ "M=1" "X=a b" ];
    buildFlags = [ "B=2" ];
    env.FOO = "bar baz";
    doCheck = true;
    nativeCheckInputs = [ checkTool ];
  });

  # doCheck off: the check inputs are not inputs at all.
  nocheck = mkDerivation {
    name = "selftest-nocheck";
    dontUnpack = true;
    nativeCheckInputs = [ checkTool ];
    checkInputs = [ checkLib ];
    installPhase = ''
      { command -v check-tool || echo absent; echo "cflags=''${NIX_CFLAGS_COMPILE:-}"; } > $out
    '';
  };

  # Evaluation only: which inputs reach the derivation.
  inputs = let
    d = c: ic: mkDerivation {
      name = "x"; doCheck = c; doInstallCheck = ic;
      nativeBuildInputs = [ "n" ]; buildInputs = [ "b" ];
      nativeCheckInputs = [ "nc" ]; checkInputs = [ "c" ];
      nativeInstallCheckInputs = [ "nic" ]; installCheckInputs = [ "ic" ];
    };
    show = x: { inherit (x) nativeBuildInputs buildInputs; hasCheckAttr = x ? nativeCheckInputs; };
  in { none = show (d false false); check = show (d true false); installCheck = show (d false true); };

  envPlain = (mkDerivation { name = "x"; env.FOO = "bar"; }).FOO;
  envStructured = let x = mkDerivation { name = "x"; __structuredAttrs = true; env.FOO = "bar"; }; in [ x.FOO x.env.FOO ];
  envOverlap = (builtins.tryEval (mkDerivation { name = "x"; FOO = "a"; env.FOO = "b"; }).drvPath).success;
}
EOF

nixbuild() { # ATTR: the output path of that attribute (log in $WORK/ATTR.log)
  nix-build "${NIX_OPTS[@]}" "$WORK/selftest.nix" --arg stdenvDir "$here/stdenv" \
    --no-out-link -A "$1" > "$WORK/$1.out" 2> "$WORK/$1.log" \
    || { echo "      nix-build -A $1 failed:" >&2; tail -n 20 "$WORK/$1.log" | sed 's/^/      | /' >&2; return 1; }
  head -n 1 "$WORK/$1.out"
}
nixeval() { nix-instantiate --eval --strict --json "$WORK/selftest.nix" --arg stdenvDir "$here/stdenv" -A "$1" 2>&1; }
buildlog() { nix-store -l "$1" 2>/dev/null; }

# --- evaluation: check inputs and env ---------------------------------------
expect "check inputs: dropped without doCheck" \
  '{"check":{"buildInputs":["b","c"],"hasCheckAttr":false,"nativeBuildInputs":["n","nc"]},"installCheck":{"buildInputs":["b","ic"],"hasCheckAttr":false,"nativeBuildInputs":["n","nic"]},"none":{"buildInputs":["b"],"hasCheckAttr":false,"nativeBuildInputs":["n"]}}' \
  "$(nixeval inputs)"
expect "env: a plain attribute without structured attrs" '"bar"' "$(nixeval envPlain)"
expect "env: attribute and env member with structured attrs" '["bar","bar"]' "$(nixeval envStructured)"
expect "env: may not overlap other attributes" 'false' "$(nixeval envOverlap)"

# --- plain (no structured attrs) -------------------------------------------
if o=$(nixbuild plain); then
  log=$WORK/plain.buildlog; buildlog "$o" > "$log"
  expect "plain: configure flags (nixpkgs order, list split into words)" \
    "--disable-static|--disable-dependency-tracking|--prefix=$o|--with-a|--with-b|--with-space=a b" \
    "$(paste -sd'|' "$o/configure.args")"
  has "plain: configureFlags keeps the prepended flags" "$o/configureFlags.decl" \
    "^declare -x configureFlags=\"--disable-static --disable-dependency-tracking --prefix=$o --with-a --with-b\"$"
  expect "plain: lt_cv_deplibs_check_method exported" "pass_all" "$(cat "$o/configure.lt")"
  expect "plain: CONFIG_SHELL is the bash of PATH" "$(type -P bash)" "$(cat "$o/configure.shell")"
  expect "plain: configure shebang patched" "#!$(type -P sh)" "$(cat "$o/configure.shebang")"
  expect "plain: configure mtime kept by patchShebangs" "$(cat "$o/mtime.before")" "$(cat "$o/mtime.after")"
  expect "plain: fixLibtool rewrote ltmain.sh" "    sys_lib_search_path=''" "$(cat "$o/ltmain.line")"
  expect "plain: make variables (makeFlags, buildFlags, SHELL)" "M=1|B=2|X=|SHELL=$(type -P bash)" \
    "$(paste -sd'|' "$o/build.vars")"
  has "plain: build flags -jN SHELL= makeFlags buildFlags" "$log" '^build flags: -j[0-9]+ SHELL=[^ ]+ M=1 B=2$'
  has "plain: parallel check, VERBOSE=y, target check" "$log" '^check flags: -j[0-9]+ SHELL=[^ ]+ M=1 VERBOSE=y check$'
  has "plain: parallel install" "$log" '^install flags: -j[0-9]+ SHELL=[^ ]+ M=1 install$'
  expect "plain: doCheck puts nativeCheckInputs on PATH" "check-tool ran|VERBOSE=y" "$(paste -sd'|' "$o/check.out")"
  has "plain: env.FOO exported" "$o/env.txt" '^declare -x FOO="bar"$'
  has "plain: attributes are exported" "$o/env.txt" '^declare -x notExported="not-in-env"$'
  expect "plain: prefix defaults to \$out" "$o" "$(cat "$o/prefix")"
fi

# --- opt-outs ---------------------------------------------------------------
if o=$(nixbuild optout); then
  expect "optout: prefixKey, no dependency-tracking/static flags" \
    "PREFIX=$o|--with-a|--with-space=a b" "$(paste -sd'|' "$o/configure.args")"
  expect "optout: dontPatchShebangsInConfigure" "#! /bin/sh" "$(cat "$o/configure.shebang")"
  expect "optout: dontFixLibtool" '    eval sys_lib_search_path=\"$sys_lib_search_path_spec\"' "$(cat "$o/ltmain.line")"
  expect "optout: no lt_cv_deplibs_check_method with dontFixLibtool" "" "$(cat "$o/configure.lt")"
  expect "optout: serial build (no -j), no check phase" "" "$(buildlog "$o" | grep -E '^(build|install) flags: -j|^=== checkPhase')"
fi

# --- structured attrs -------------------------------------------------------
if o=$(nixbuild structured); then
  log=$WORK/structured.buildlog; buildlog "$o" > "$log"
  dev=$(nixeval structured.dev.outPath | tr -d '"')
  has "structured: detected" "$log" '^structuredAttrs is enabled$'
  expect "structured: configure flags (array elements kept whole, output dirs)" \
    "--disable-static|--disable-dependency-tracking|--prefix=$o|--bindir=$o/bin|--sbindir=$o/sbin|--includedir=$dev/include|--oldincludedir=$dev/include|--mandir=$o/share/man|--infodir=$o/share/info|--docdir=$o/share/doc/selftest-structured|--libdir=$o/lib|--libexecdir=$o/libexec|--localedir=$o/share/locale|--with-a|CFLAGS=-O1 -g0|--with-space=a b" \
    "$(paste -sd'|' "$o/configure.args")"
  has "structured: configureFlags stays an array" "$o/configureFlags.decl" '^declare -a configureFlags=\(\[0\]="--disable-static" '
  expect "structured: make variables (array elements kept whole)" "M=1|B=2|X=a b|SHELL=$(type -P bash)" \
    "$(paste -sd'|' "$o/build.vars")"
  has "structured: build flags, serial" "$log" "^build flags: SHELL=[^ ]+ M=1 X=a\\\\ b B=2$"
  expect "structured: installFlags get the dev output's pkgconfig dir" "pkgconfigdir=$dev/lib/pkgconfig" "$(cat "$o/install.vars")"
  expect "structured: doCheck puts nativeCheckInputs on PATH" "check-tool ran|VERBOSE=y" "$(paste -sd'|' "$o/check.out")"
  has "structured: env.FOO exported" "$o/env.txt" '^declare -x FOO="bar baz"$'
  has "structured: outputs exported" "$o/env.txt" "^declare -x dev=\"$dev\"$"
  hasnt "structured: other attributes not exported" "$o/env.txt" 'notExported|configureFlags|makeFlags'
  has "structured: other attributes are shell variables" "$o/shell.decl" '^declare -- notExported="not-in-env"$'
  has "structured: outputs is an associative array" "$o/shell.decl" '^declare -A outputs='
  has "structured: NIX_ATTRS_SH_FILE exported" "$o/env.txt" '^declare -x NIX_ATTRS_SH_FILE="/build/.attrs.sh"$'
fi

# --- doCheck off ------------------------------------------------------------
if o=$(nixbuild nocheck); then
  expect "nocheck: check inputs absent without doCheck" "absent|cflags=" "$(paste -sd'|' "$o")"
fi

echo "$passed passed, $failed failed"
if [ "$failed" = 0 ]; then rm -rf "$WORK"; else echo "logs: $WORK"; exit 1; fi
