{
  description = "nix-checkpoint: incremental builds for Nix";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: {
        name = system;
        value = f system nixpkgs.legacyPackages.${system};
      }) systems);

      checkpointBuildToolsFor = nix-checkpoint:
        import ./nix/checkpoint-build-tools.nix { inherit nix-checkpoint; };
      # ... with a package set's lib and config: the deprecated alias warns
      # through lib.warn and exists only under config.allowAliases.
      checkpointBuildToolsIn = pkgs: nix-checkpoint:
        import ./nix/checkpoint-build-tools.nix {
          inherit nix-checkpoint;
          lib = pkgs.lib or null;
          config = pkgs.config or { };
        };
    in
    {
      # A static binary: it runs in any sandbox, whatever the stdenv.
      packages = forAllSystems (system: pkgs: rec {
        nix-checkpoint = pkgs.pkgsStatic.callPackage ./nix/package.nix { };
        default = nix-checkpoint;
      });

      overlays.default = final: prev: {
        nix-checkpoint = final.callPackage ./nix/package.nix { };
        checkpointBuildTools = checkpointBuildToolsIn final final.nix-checkpoint;
      };

      lib = {
        # checkpointBuildTools for a given nix-checkpoint package.
        checkpointBuildTools = checkpointBuildToolsFor;
        # ... and for a nixpkgs package set, with this flake's static binary.
        forPkgs = pkgs: checkpointBuildToolsIn pkgs self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };

      # What users run, built: the flake's static package (its check phase
      # is the whole `cargo test`), the overlay's package (dynamic, on the
      # user's stdenv), and the nixpkgs manual's example through both
      # (lib.forPkgs and the overlay's checkpointBuildTools), each checked to
      # say Hello, Nix!.
      checks = forAllSystems (system: pkgs:
        let
          example = prefix: { prepareCheckpointBuild, mkCheckpointBuild, ... }:
            let
              helloCheckpoint = prepareCheckpointBuild pkgs.hello;
              changedHello = pkgs.hello.overrideAttrs (_: {
                doCheck = false;
                postPatch = ''
                  sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
                '';
              });
              incremental = mkCheckpointBuild changedHello helloCheckpoint;
            in {
              "${prefix}hello-checkpoint" = helloCheckpoint;
              "${prefix}hello-incremental" = incremental;
              "${prefix}hello-incremental-output" = pkgs.runCommand "${prefix}hello-incremental-output" { } ''
                [ "$(${incremental}/bin/hello)" = "Hello, Nix!" ]
                touch $out
              '';
            };
          overlaid = pkgs.extend self.overlays.default;
        in {
          package = self.packages.${system}.default;
          overlay-package = overlaid.nix-checkpoint;
        }
        // example "" (self.lib.forPkgs pkgs)
        // example "overlay-" overlaid.checkpointBuildTools);

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ (pkgs.callPackage ./nix/package.nix { }) ];
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.nix ];
        };
      });
    };
}
