#!/usr/bin/env bash
# Installs everything the Nix integration tests and the demo need, on a fresh
# Debian 12 (bookworm), as root. Idempotent: run it as often as you like.
#
#   - Nix 2.8 (Debian's nix-bin, single-user, no daemon), cmake, ninja, meson,
#     autoconf, automake, libtool, python3, rsync, hyperfine, GNU time, dpkg-dev
#   - a deb-src entry, and the Debian source of GNU hello 2.10 downloaded into
#     ${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}/hello (never committed)
set -euo pipefail

CACHE=${NIX_CHECKPOINT_CACHE:-$HOME/.cache/nix-checkpoint}

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it uses apt-get and a single-user Nix store)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
packages=(nix-bin cmake ninja-build meson rsync hyperfine time dpkg-dev gcc g++ make xz-utils
          autoconf automake libtool python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# deb-src entry (deb822 or one-line format), needed by `apt-get source`.
srcfile=/etc/apt/sources.list.d/nix-checkpoint-src.sources
need_update=0
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat > "$srcfile" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi

if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" = 1 ] || [ ! -d /var/lib/apt/lists ] \
   || ! ls /var/lib/apt/lists/*Sources* >/dev/null 2>&1; then
  apt-get update
fi
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Nix: single-user store owned by root; the nixbld group/users come with
# nix-bin (nix-setup-systemd is not needed: we never use the daemon).
getent group nixbld >/dev/null || groupadd -r nixbld
for i in $(seq 1 4); do
  id "nixbld$i" >/dev/null 2>&1 || useradd -r -g nixbld -G nixbld -d /var/empty -s /usr/sbin/nologin "nixbld$i"
done
mkdir -p /nix/store /nix/var/nix

# clippy, for test.sh's check of the declared rust-version (rustup's
# default profile has it; a minimal one does not).
if command -v rustup >/dev/null && ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add clippy
fi

# GNU hello 2.10, as Debian ships it (hello_2.10.orig.tar.gz).
mkdir -p "$CACHE/hello"
if ! ls "$CACHE"/hello/hello_2.10.orig.tar.* >/dev/null 2>&1; then
  (cd "$CACHE/hello" && apt-get source --download-only hello)
fi
tarball=$(ls "$CACHE"/hello/hello_2.10.orig.tar.* | head -n1)
echo "setup.sh: nix $(nix --version | awk '{print $3}'), hello source: $tarball"
