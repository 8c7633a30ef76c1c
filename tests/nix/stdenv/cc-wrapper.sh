#!/bin/bash
# Logging compiler wrapper: prints one line per compiled source file
#   nix-checkpoint-test: compiled <path relative to $NIX_BUILD_TOP>
# then runs the host compiler of the same name with NIX_CFLAGS_COMPILE.
tool=$(basename "$0")
real=/usr/bin/$tool
top=${NIX_BUILD_TOP:-/build}
for a in "$@"; do
  case "$a" in
    *.c|*.cc|*.cpp|*.cxx|*.C|*.S|*.s)
      if [ -f "$a" ]; then
        p=$(realpath -s -- "$a"); [[ "$p" == /* ]] || p="$PWD/$a"
        p=$(realpath -m --relative-to="$top" -- "$p")
        echo "nix-checkpoint-test: compiled $p" >&2
      fi ;;
  esac
done
# No GNU build-id, like nixpkgs' ld-wrapper without separateDebugInfo (Debian's
# gcc adds one, a hash of the whole binary, own store path included).
# shellcheck disable=SC2086
exec "$real" ${NIX_CFLAGS_COMPILE:-} -Wl,--build-id=none "$@"
