# nixpkgs' default-builder.sh: with __structuredAttrs, the attributes (and so
# $stdenv) exist only in .attrs.sh, which Nix writes to the build top.
if [ -e "${NIX_ATTRS_SH_FILE:-}" ]; then . "$NIX_ATTRS_SH_FILE"; elif [ -f .attrs.sh ]; then . .attrs.sh; fi
source "$stdenv/setup"
genericBuild
