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
    in
    {
      # A static binary: it runs in any sandbox, whatever the stdenv.
      packages = forAllSystems (system: pkgs: rec {
        nix-checkpoint = pkgs.pkgsStatic.callPackage ./nix/package.nix { };
        default = nix-checkpoint;
      });

      overlays.default = final: prev: {
        nix-checkpoint = final.callPackage ./nix/package.nix { };
        checkpointBuildTools = checkpointBuildToolsFor final.nix-checkpoint;
      };

      lib = {
        # checkpointBuildTools for a given nix-checkpoint package.
        checkpointBuildTools = checkpointBuildToolsFor;
        # ... and for a nixpkgs package set, with this flake's static binary.
        forPkgs = pkgs: checkpointBuildToolsFor self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };

      # The nixpkgs manual's example, and a test that it says Hello, Nix!.
      checks = forAllSystems (system: pkgs:
        let
          inherit (self.lib.forPkgs pkgs) prepareCheckpointBuild mkCheckpointBuild;
          helloCheckpoint = prepareCheckpointBuild pkgs.hello;
          changedHello = pkgs.hello.overrideAttrs (_: {
            doCheck = false;
            postPatch = ''
              sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
            '';
          });
          incremental = mkCheckpointBuild changedHello helloCheckpoint;
        in {
          package = self.packages.${system}.default;
          hello-checkpoint = helloCheckpoint;
          hello-incremental = incremental;
          hello-incremental-output = pkgs.runCommand "hello-incremental-output" { } ''
            [ "$(${incremental}/bin/hello)" = "Hello, Nix!" ]
            touch $out
          '';
        });

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ (pkgs.callPackage ./nix/package.nix { }) ];
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.nix ];
        };
      });
    };
}
