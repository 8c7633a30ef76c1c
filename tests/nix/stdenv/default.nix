# A stand-in for nixpkgs' stdenv, for tests: builtins only, host toolchain
# (/usr/bin via extra-sandbox-paths), nixpkgs' documented mkDerivation
# protocol (phases, hooks, outputs, overrideAttrs).
{ system ? builtins.currentSystem }:
let
  inherit (builtins) isFunction removeAttrs listToAttrs map filter attrNames;

  # The stdenv package: `setup`, the default builder, and a logging compiler.
  stdenv0 = derivation {
    name = "stdenv-standin";
    inherit system;
    builder = "/bin/bash";
    setupSh = ./setup.sh;
    ccWrapper = ./cc-wrapper.sh;
    args = [ "-ec" ''
      export PATH=/usr/bin:/bin
      mkdir -p $out/bin
      cp $setupSh $out/setup
      for t in cc gcc c++ g++; do cp $ccWrapper $out/bin/$t; chmod +x $out/bin/$t; done
    '' ];
  };


  mkDerivation = attrs:
    let
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      outputs = attrs.outputs or [ "out" ];
      drvAttrs = removeAttrs attrs [ "passthru" "meta" ] // {
        inherit name outputs system;
        stdenv = stdenv0;
        builder = attrs.builder or "/bin/bash";
        args = attrs.args or [ "-e" ./builder.sh ];
      };
      clean = listToAttrs (map (n: { name = n; value = drvAttrs.${n}; })
        (filter (n: drvAttrs.${n} != null && !(isFunction drvAttrs.${n})) (attrNames drvAttrs)));
      drv = derivation clean;
      # overrideAttrs: an attribute set, `prev: { ... }`, or `final: prev: { ... }`.
      overrideAttrs = f:
        let
          new = attrs // delta;
          delta = if isFunction f then
              (let r = f attrs; in if isFunction r then f new attrs else r)
            else f;
        in mkDerivation new;
      passthru = attrs.passthru or { };
    in drv // passthru // {
      inherit overrideAttrs passthru;
      meta = attrs.meta or { };
      pname = attrs.pname or name;
      version = attrs.version or "";
      drvAttrs = attrs;
    };
in
{
  stdenv = stdenv0 // { inherit mkDerivation; };
  inherit mkDerivation;
}
