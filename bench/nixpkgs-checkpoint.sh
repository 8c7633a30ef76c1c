#!/usr/bin/env bash
# A re-implementation, for benchmarking only, of the algorithm of nixpkgs'
# `checkpointBuildTools` (pkgs/build-support/checkpoint-build.nix), written
# from its documented steps, outside Nix so that it runs on the same machine,
# tree and page-cache state as nix-checkpoint.
#
#   prepare-sources ROOT OUT   preBuild of prepareCheckpointBuild:
#                              copy the build dir (before the build) to OUT/sources
#   prepare-outputs ROOT OUT   installPhase of prepareCheckpointBuild:
#                              copy the build dir (after the build) to OUT/outputs
#   store OUT                  what registering OUT in the Nix store does to it
#                              (canonicalisation): every entry read-only, mtime 1
#   restore ROOT OUT           preBuild of mkCheckpointBuild: diff the old sources
#                              against the new tree into a patch, empty the tree,
#                              rsync the old outputs in, apply the patch
#
# Deviation (documented in docs/benchmarks.md): nixpkgs copies with
# `cp -r ./*`, which skips dot-files at the top of the build dir (the kernel's
# .config, .version, ...). The restore removes them (`shopt -s dotglob; rm -r *`)
# and never brings them back, so an in-tree kernel build cannot even start.
# NIXPKGS_CP_DOTGLOB=1 (the default here) copies them too, which is the
# smallest change that lets the algorithm work; NIXPKGS_CP_DOTGLOB=0 is the
# literal upstream behaviour. Not simulated (so nixpkgs' costs here are lower
# bounds): the NAR serialisation + hashing of the output when Nix registers
# it, and the copy of the output into the store of a later build's sandbox.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d' >&2; exit 2; }

copy_tree() { # SRC-DIR DEST-DIR: `cp -r ./* DEST/` run inside SRC-DIR
  local src=$1 dest=$2
  mkdir -p "$dest"
  (
    cd "$src"
    if [[ ${NIXPKGS_CP_DOTGLOB:-1} == 1 ]]; then shopt -s dotglob; fi
    shopt -s nullglob
    set -- ./*
    if (($#)); then cp -r "$@" "$dest"/; fi
  )
}

cmd=${1:-}; shift || true
case $cmd in
  prepare-sources)
    [[ $# -eq 2 ]] || usage
    copy_tree "$1" "$2/sources"
    ;;
  prepare-outputs)
    [[ $# -eq 2 ]] || usage
    copy_tree "$1" "$2/outputs"
    ;;
  store)
    [[ $# -eq 1 ]] || usage
    # Nix's canonicalisePathMetaData: mtime 1 (symlinks included), no write bits.
    find "$1" -depth -exec touch -h -d @1 {} +
    chmod -R a-w "$1"
    ;;
  restore)
    [[ $# -eq 2 ]] || usage
    root=$1 out=$(cd "$2" && pwd)
    cd "$root"
    patchfile=$(mktemp)
    set +e
    diff -ur "$out/sources" ./ >"$patchfile"
    set -e
    shopt -s dotglob nullglob
    set -- *
    if (($#)); then rm -r "$@"; fi
    shopt -u dotglob nullglob
    rsync --checksum --times --atimes --chown="$(id -un):$(id -gn)" --chmod=+w \
      -r "$out/outputs/" .
    # As in nixpkgs, the patch is applied with `patch -p 1`; it fails (and the
    # build with it, under set -e) only if a hunk does not apply.
    if [[ -s $patchfile ]]; then patch -p 1 -i "$patchfile" >/dev/null; fi
    echo "patch: $(grep -c '^diff ' "$patchfile" || true) files, $(wc -c <"$patchfile") bytes" >&2
    rm -f "$patchfile"
    ;;
  *) usage ;;
esac
