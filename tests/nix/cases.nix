# Every end-to-end case, as attributes for tests/nix/run.sh. Each incremental
# build `<case>.inc` has a clean twin `<case>.clean` (the same change, built
# from scratch) to compare with.
{ nixCheckpointBin ? "", helloSrc ? "", transferCheckpoint ? "", stdenvName ? "standin" }:
let
  pkgs = import ./. { inherit nixCheckpointBin helloSrc stdenvName; };
  inherit (pkgs) runCommand fixture makeProject cmakeProject mesonProject;
  inherit (pkgs.checkpointBuildTools)
    prepareCheckpointBuild mkCheckpointBuild mkCheckpointBuildWithCheckpoint;

  # A source tree in the store (mtimes 1, like any fetched source) made of
  # BASE with EDIT applied.
  # All variants of a project have the same name, so they unpack to the same
  # directory, like successive versions of a fetched source.
  variant = project: base: name: edit: runCommand project { inherit base; } ''
    cp -a $base $out
    chmod -R u+w $out
    cd $out
    ${edit}
  '';

  makeBase = fixture "make-project";
  makeCheckpoint = prepareCheckpointBuild (makeProject makeBase);
  makeCase = name: edit:
    let src = if edit == null then makeBase else variant "make-project" makeBase name edit; in {
      inc = mkCheckpointBuild (makeProject src) makeCheckpoint;
      clean = makeProject src;
    };

  cmakeBase = fixture "cmake-project";
  cmakeV2 = variant "cmake-project" cmakeBase "v2" "sed -i 's/hello from cmake/hello again from cmake/' src/greet.c";
  cmakeV3 = variant "cmake-project" cmakeV2 "v3" "sed -i 's/a + b/a + b + 1/' src/math.c";
  cmakeV4 = variant "cmake-project" cmakeV3 "v4" "sed -i 's/add(2, 3)/add(4, 3)/' src/main.c";

  mesonBase = fixture "meson-project";
  mesonV2 = variant "meson-project" mesonBase "v2" "sed -i 's/a + b/a * b/' src/math.c";

  # A checkpointed build of `changed` from the checkpoint of `base`, and
  # `changed` built plain to compare it with.
  changeOf = base: changed: {
    inc = mkCheckpointBuild changed (prepareCheckpointBuild base);
    clean = changed;
  };
  withAttrs = drv: attrs: drv.overrideAttrs (_: attrs);
  # hello with a source edit in postPatch (after its own).
  helloEdited = drv: edit: drv.overrideAttrs (old: {
    doCheck = false;
    postPatch = (old.postPatch or "") + edit;
  });
  helloGreeting = "sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c\n";

  makeOf = edit: makeProject (if edit == null then makeBase else variant "make-project" makeBase "e" edit);
  cmakeOf = edit: cmakeProject (if edit == null then cmakeBase else variant "cmake-project" cmakeBase "e" edit);
  mesonOf = edit: mesonProject (if edit == null then mesonBase else variant "meson-project" mesonBase "e" edit);
  # The CMake project with its library's sources found by file(GLOB).
  cmakeGlobBase = variant "cmake-project" cmakeBase "glob" ''
    sed -i 's|add_library(greet STATIC src/greet.c src/math.c)|file(GLOB GREET_SOURCES src/lib/*.c)\nadd_library(greet STATIC ''${GREET_SOURCES})|' CMakeLists.txt
    mkdir src/lib; mv src/greet.c src/math.c src/lib/
  '';
  staticOf = edit: let b = fixture "static-lib-project"; in
    pkgs.staticLibProject (if edit == null then b else variant "static-lib-project" b "e" edit);
  autotoolsOf = edit: let b = fixture "autotools-project"; in
    pkgs.autotoolsProject (if edit == null then b else variant "autotools-project" b "e" edit);
  cmakeMakeOf = edit: let b = fixture "cmake-make-project"; in
    pkgs.cmakeMakeProject (if edit == null then b else variant "cmake-make-project" b "e" edit);
  cmakeGlobOf = edit: cmakeProject (if edit == null then cmakeGlobBase else variant "cmake-project" cmakeGlobBase "e" edit);
in
rec {
  inherit pkgs makeCheckpoint;

  # 1) The nixpkgs manual's example, verbatim.
  hello = {
    plain = pkgs.hello;
    inc =
      let
        helloCheckpoint = prepareCheckpointBuild pkgs.hello;
        changedHello = pkgs.hello.overrideAttrs (_: {
          doCheck = false;
          postPatch = ''
            sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
          '';
        });
      in mkCheckpointBuild changedHello helloCheckpoint;
    clean = pkgs.hello.overrideAttrs (_: {
      doCheck = false;
      postPatch = ''
        sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
      '';
    });
    checkpoint = (prepareCheckpointBuild pkgs.hello).checkpoint;
    prepared = prepareCheckpointBuild pkgs.hello;
  };
  # ... and the change made by a patch in patchPhase.
  helloPatch = {
    inc = mkCheckpointBuild
      (pkgs.hello.overrideAttrs (old: { doCheck = false; patches = [ ./fixtures/hello-greeting.patch ]; }))
      (prepareCheckpointBuild pkgs.hello);
    clean = pkgs.hello.overrideAttrs { doCheck = false; patches = [ ./fixtures/hello-greeting.patch ]; };
  };

  # 2) CMake + Ninja, out of source in build/.
  cmake = {
    inc = mkCheckpointBuild (cmakeProject cmakeV2) (prepareCheckpointBuild (cmakeProject cmakeBase));
    clean = cmakeProject cmakeV2;
  };

  # 3) make, one case per kind of edit.
  makeNoChange = makeCase "nochange" null;
  makeHeader = makeCase "header" "sed -i 's/hello from make-project/hi from make-project/' include/util.h";
  makeNewFile = makeCase "newfile" "printf '#include \"util.h\"\\nPLUGIN(gamma)\\n' > src/plugin_c.c";
  makeDeleted = makeCase "deleted" "rm src/plugin_b.c";
  makeBinary = makeCase "binary" "printf '\\x07\\x02\\x03\\x00\\xfe\\x10' > data/blob.bin";
  makeSymlink = makeCase "symlink" "ln -sfn b.conf config/current";
  makeMode = makeCase "mode" "chmod +x tools/tool.sh";

  # 4) Meson.
  meson = {
    inc = mkCheckpointBuild (mesonProject mesonV2) (prepareCheckpointBuild (mesonProject mesonBase));
    clean = mesonProject mesonV2;
  };

  # 5) A chain v1 -> v2 -> v3 -> v4, each incremental over the one before.
  chain = rec {
    c1 = prepareCheckpointBuild (cmakeProject cmakeBase);
    c2 = mkCheckpointBuildWithCheckpoint (cmakeProject cmakeV2) c1;
    c3 = prepareCheckpointBuild (mkCheckpointBuild (cmakeProject cmakeV3) c2);
    v4 = mkCheckpointBuild (cmakeProject cmakeV4) c3;
    clean2 = cmakeProject cmakeV2;
    clean3 = cmakeProject cmakeV3;
    clean4 = cmakeProject cmakeV4;
  };

  # 6) Transfer: restore from a checkpoint imported into another store.
  transfer = {
    inc = mkCheckpointBuild makeHeader.clean (builtins.storePath transferCheckpoint);
    clean = makeHeader.clean;
  };

  # 7) Fallback: a changed dependency builds in full; a corrupt checkpoint fails.
  depChange = let withDep = (makeProject makeBase).overrideAttrs (old: {
      buildInputs = [ pkgs.extraDep ];
    }); in {
    inc = mkCheckpointBuild withDep makeCheckpoint;
    clean = withDep;
  };
  corrupt = mkCheckpointBuild (makeProject makeBase)
    (runCommand "corrupt-checkpoint" { ck = makeCheckpoint.checkpoint; } ''
      mkdir $out
      size=$(stat -c %s $ck/checkpoint.nckp)
      head -c $((size / 2)) $ck/checkpoint.nckp > $out/checkpoint.nckp
      head -c 64 /dev/zero >> $out/checkpoint.nckp
    '');

  # The recipe, configure and build files, per build system (tests/nix/run.sh
  # says what each must compile, or that it falls back).
  helloHeader = changeOf pkgs.hello (helloEdited pkgs.hello "echo '/* edited */' >> lib/xalloc.h\n");
  helloConfigureFlag = changeOf pkgs.hello
    (withAttrs (helloEdited pkgs.hello helloGreeting) { configureFlags = [ "--disable-nls" ]; });
  helloConfigureScript = changeOf pkgs.hello
    (helloEdited pkgs.hello "echo '# edited' >> configure\n");
  # Read by the cc wrapper only: no build tool sees it.
  makeCflags = changeOf (makeOf null) (withAttrs (makeOf null) { NIX_CFLAGS_COMPILE = "-DEXTRA_FLAG=1"; });
  helloStructured = let s = withAttrs pkgs.hello { __structuredAttrs = true; }; in
    changeOf s (helloEdited s helloGreeting);
  makeStructuredFlag = let s = withAttrs (makeOf null) { __structuredAttrs = true; }; in
    changeOf s (withAttrs s { makeFlags = [ "PREFIX=$(out)" "CFLAGS=-O1" ]; });

  # The configure phase leaves shell state that a later phase reads: a
  # skipped configure must leave it too.
  makeConfigureState = let withState = drv: drv.overrideAttrs {
      postConfigure = ''export FROM_CONFIGURE=yes; makeFlagsArray+=("CONF_NOTE=set by configure")'';
      preBuild = ''[ "''${FROM_CONFIGURE:-}" = yes ] || { echo "FROM_CONFIGURE is not set" >&2; exit 1; }'';
      postInstall = ''echo "$FROM_CONFIGURE ''${makeFlagsArray[*]}" > $out/share/app/configure-state'';
    }; in changeOf (withState (makeOf null))
      (withState (makeOf "sed -i 's/plugins:/plugins found:/' src/main.c"));
  makeFlagsChange = changeOf (makeOf null)
    (withAttrs (makeOf null) { makeFlags = [ "PREFIX=$(out)" "CFLAGS=-O1" ]; });
  makeBuildFile = changeOf (makeOf null)
    (makeOf "sed -i 's/^CFLAGS ?= -O2/CFLAGS ?= -O2 -DEXTRA_FLAG/' Makefile");
  # The checked build had a check input; the changed one does not check.
  makeCheckInput = changeOf
    (withAttrs (makeOf null) { doCheck = true; nativeCheckInputs = [ pkgs.checkTool ]; })
    (withAttrs (makeOf "sed -i 's/plugins:/plugins found:/' src/main.c")
      { doCheck = false; nativeCheckInputs = [ pkgs.checkTool ]; });

  cmakeHeader = changeOf (cmakeOf null) (cmakeOf "echo '/* edited */' >> src/greet.h");
  cmakeFlagsChange = changeOf (cmakeOf null)
    (withAttrs (cmakeOf null) { cmakeFlags = [ "-DCMAKE_C_FLAGS=-DEXTRA_FLAG" ]; });
  cmakeListsChange = changeOf (cmakeOf null)
    (cmakeOf "echo 'target_compile_definitions(cmake-app PRIVATE EXTRA_FLAG=1)' >> CMakeLists.txt");
  # The user's opt-out: configure always runs.
  cmakeNoSkip = changeOf (cmakeOf null)
    (withAttrs (cmakeOf "sed -i 's/hello from cmake/hello again from cmake/' src/greet.c")
      { nixCheckpointSkipConfigure = false; });
  cmakeGlob = changeOf (cmakeGlobOf null)
    (cmakeGlobOf "printf 'int extra(void) { return 7; }\\n' > src/lib/extra.c");

  # A new member for a static archive (`ar rcu` appends), and an edit.
  staticNewSource = changeOf (staticOf null)
    (staticOf "printf '#include \"core.h\"\\nint core_d(void) { return 4; }\\n' > d.c");
  staticEdit = changeOf (staticOf null) (staticOf "sed -i 's/return 2/return 20/' b.c");

  # automake + libtool, regenerated by autoreconf in every build.
  autotoolsSource = changeOf (autotoolsOf null) (autotoolsOf "echo '/* edited */' >> src/math.c");
  autotoolsHeader = changeOf (autotoolsOf null) (autotoolsOf "echo '/* edited */' >> include/greet.h");
  autotoolsMakefileAm = changeOf (autotoolsOf null)
    (autotoolsOf "echo 'AM_CFLAGS = -DEXTRA_FLAG' >> Makefile.am");
  autotoolsConfigureAc = changeOf (autotoolsOf null)
    (autotoolsOf "sed -i 's/Hello from autotools/Hi from autotools/' configure.ac");
  autotoolsConfigureFlag = changeOf (autotoolsOf null)
    (withAttrs (autotoolsOf null) { configureFlags = [ "--enable-silent-rules" ]; });

  # CMake's Makefiles generator: flags.make is a prerequisite of each object.
  cmakeMakeSource = changeOf (cmakeMakeOf null) (cmakeMakeOf "echo '/* edited */' >> src/math.c");
  cmakeMakeOption = changeOf (cmakeMakeOf null)
    (withAttrs (cmakeMakeOf null) { cmakeFlags = [ "-DGREET_LOUD=ON" ]; });

  mesonHeader = changeOf (mesonOf null) (mesonOf "echo '/* edited */' >> src/greet.h");
  mesonFlagsChange = changeOf (mesonOf null)
    (withAttrs (mesonOf null) { mesonFlags = [ "-Dc_args=-DEXTRA_FLAG" ]; });
  mesonBuildChange = changeOf (mesonOf null)
    (mesonOf "sed -i \"s/'src\\/math.c'/'src\\/math.c', c_args : ['-DEXTRA_FLAG']/\" meson.build");

  # A checkpoint of nixpkgs' own checkpointBuildTools (its layout: the
  # build tree in outputs/, the sources in sources/): built in full.
  nixpkgsArtifact = mkCheckpointBuild (makeProject makeBase)
    (runCommand "make-project-nixpkgs-checkpoint" { inherit makeBase; } ''
      mkdir -p $out/sources $out/outputs
      cp -r $makeBase/. $out/sources/; cp -r $makeBase/. $out/outputs/
      chmod -R u+w $out; mkdir $out/outputs/build; echo stale > $out/outputs/build/app
    '');
  # A package with a pkg-config file: prepared, its `out` is the plain one.
  pcProject = (makeProject makeBase).overrideAttrs (old: {
    postInstall = ''
      mkdir -p $out/lib/pkgconfig $out/include
      cp include/util.h $out/include/
      printf 'prefix=%s\nincludedir=''${prefix}/include\nName: x\nVersion: 1\nDescription: x\n' "$out" > $out/lib/pkgconfig/x.pc
    '';
  });
  pcPrepared = prepareCheckpointBuild pcProject;
  # separateDebugInfo: nixpkgs appends a `debug` output after overrides.
  debugInfoPrepared = prepareCheckpointBuild ((makeProject makeBase).overrideAttrs { separateDebugInfo = true; });

  # disallowedReferences on the toolchain (nixpkgs' buildGoModule, cpython,
  # openjdk do it): holds for the checkpoint output too.
  disallowedPrepared = prepareCheckpointBuild ((makeProject makeBase).overrideAttrs {
    disallowedReferences = [ pkgs.stdenv ];
  });

  # dontBuild / dontInstall still produce the checkpoint output.
  noInstall = prepareCheckpointBuild ((makeProject makeBase).overrideAttrs {
    dontInstall = true;
    postBuild = "mkdir -p $out/bin; cp build/app $out/bin/";
  });
  noBuild = prepareCheckpointBuild ((makeProject makeBase).overrideAttrs {
    dontBuild = true;
  });
  # Several outputs: `dev` keeps its files, checkpoint is added last.
  multi = prepareCheckpointBuild ((makeProject makeBase).overrideAttrs (old: {
    outputs = [ "out" "dev" ];
    postInstall = "mkdir -p $dev/include; cp include/util.h $dev/include/";
  }));
}
