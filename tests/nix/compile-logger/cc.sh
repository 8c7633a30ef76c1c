#!/bin/bash
# Logging compiler for the end-to-end tests on nixpkgs' stdenv: prints one
# line per compiled source file, as the stand-in's cc wrapper does,
#   nix-checkpoint-test: compiled <path relative to $NIX_BUILD_TOP>
# then runs the next compiler of the same name on PATH (the stdenv's).
tool=${0##*/}
self=$(cd "${0%/*}" && pwd)
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
IFS=: read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  [ "$d" != "$self" ] && [ -x "$d/$tool" ] || continue
  # No GNU build-id: nixpkgs' ld-wrapper adds none without separateDebugInfo.
  exec "$d/$tool" -Wl,--build-id=none "$@"
done
echo "compile-logger: no $tool on PATH after $self" >&2
exit 127
