# A stand-in for nixpkgs' stdenv, for tests: builtins only, host toolchain
# (/usr/bin via extra-sandbox-paths), nixpkgs' documented mkDerivation
# protocol (phases, hooks, outputs, overrideAttrs, env, __structuredAttrs
# (passed to Nix as given), check inputs).
{ system ? builtins.currentSystem }:
let
  inherit (builtins) isFunction removeAttrs listToAttrs map filter attrNames intersectAttrs concatStringsSep;

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
      structured = attrs.__structuredAttrs or false;
      env = attrs.env or { };
      doCheck = attrs.doCheck or false;
      doInstallCheck = attrs.doInstallCheck or false;
      when = c: l: if c then l else [ ];
      # nixpkgs' make-derivation.nix: check inputs join the build inputs only
      # when their phase runs (the *CheckInputs attributes themselves are dropped).
      nativeBuildInputs = (attrs.nativeBuildInputs or [ ])
        ++ when doCheck (attrs.nativeCheckInputs or [ ])
        ++ when doInstallCheck (attrs.nativeInstallCheckInputs or [ ]);
      buildInputs = (attrs.buildInputs or [ ])
        ++ when doCheck (attrs.checkInputs or [ ])
        ++ when doInstallCheck (attrs.installCheckInputs or [ ]);
      base = removeAttrs attrs [ "passthru" "meta" "env"
          "checkInputs" "nativeCheckInputs" "installCheckInputs" "nativeInstallCheckInputs" ] // {
        inherit name outputs system nativeBuildInputs buildInputs doCheck doInstallCheck;
        stdenv = stdenv0;
        builder = attrs.builder or "/bin/bash";
        args = attrs.args or [ "-e" ./builder.sh ];
      }
      # nixpkgs: enableParallelBuilding turns on parallel check and install
      # unless they are set.
      // (if attrs.enableParallelBuilding or false then {
        enableParallelChecking = attrs.enableParallelChecking or true;
        enableParallelInstalling = attrs.enableParallelInstalling or true;
      } else { });
      # nixpkgs: `env` members become plain attributes (and, with structured
      # attrs, stay in `env` too, which setup.sh exports); they may not
      # collide with other attributes.
      overlap = attrNames (intersectAttrs env base);
      drvAttrs = if overlap != [ ]
        then throw "mkDerivation ${name}: env overlaps attributes: ${concatStringsSep ", " overlap}"
        else base // env // (if structured then { inherit env; } else { });
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
