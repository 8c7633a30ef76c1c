# The demo's builds (scripts/demo.sh): the nixpkgs manual's example, and the
# CMake (Ninja) and Meson fixtures edited the same way, each with a `run`
# nonce so that every demo run builds from scratch.
{ nixCheckpointBin ? "", helloSrc ? "", run ? "0", stdenvName ? "standin" }:
let
  pkgs = import ./. { inherit nixCheckpointBin helloSrc stdenvName; };
  inherit (pkgs.checkpointBuildTools) prepareCheckpointBuild mkCheckpointBuild;
  hello = pkgs.hello.overrideAttrs (_: { demoRun = run; });
  changedHello = hello.overrideAttrs (_: {
    doCheck = false;
    postPatch = ''
      sed -i 's/Hello, world!/Hello, Nix!/g' src/hello.c
    '';
  });
  helloCheckpoint = prepareCheckpointBuild hello;

  # A project the size of a small library: 120 sources, and the configure
  # checks real projects make (headers, functions, types), for CMake and Meson.
  generated = kind: pkgs.runCommand "${kind}-project" { } ''
    mkdir -p $out/src
    cd $out
    headers="stdio.h stdlib.h string.h unistd.h fcntl.h errno.h limits.h stdint.h inttypes.h time.h sys/types.h sys/stat.h sys/time.h signal.h locale.h wchar.h ctype.h math.h pthread.h dlfcn.h"
    functions="malloc free memcpy strdup strndup getpid clock_gettime nanosleep setlocale mbrtowc pthread_create dlopen fstat lstat readlink"
    for i in $(seq 1 120); do
      printf '#include "common.h"\nint f%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n' $i $i > src/f$i.c
    done
    printf 'int f1(int);\n' > src/common.h
    printf '#include <stdio.h>\n#include "common.h"\nint main(void) { printf("%%d\\n", f1(3)); return 0; }\n' > src/main.c
    if [ ${kind} = cmake ]; then
      {
        echo 'cmake_minimum_required(VERSION 3.16)'
        echo 'project(gen C)'
        echo 'include(CheckIncludeFile)'
        echo 'include(CheckFunctionExists)'
        echo 'include(CheckTypeSize)'
        n=0; for h in $headers; do n=$((n+1)); echo "check_include_file($h HAVE_H$n)"; done
        for f in $functions; do echo "check_function_exists($f HAVE_$f)"; done
        echo 'check_type_size("long long" SIZEOF_LONG_LONG)'
        echo 'file(GLOB SOURCES src/f*.c)'
        echo 'add_library(gen STATIC ''${SOURCES})'
        echo 'add_executable(gen-app src/main.c)'
        echo 'target_link_libraries(gen-app gen)'
        echo 'install(TARGETS gen-app DESTINATION bin)'
      } > CMakeLists.txt
    else
      {
        echo "project('gen', 'c')"
        echo "cc = meson.get_compiler('c')"
        for h in $headers; do echo "cc.has_header('$h')"; done
        for f in $functions; do echo "cc.has_function('$f')"; done
        echo "cc.sizeof('long long')"
        printf "lib = static_library('gen', [%s])\n" "$(for i in $(seq 1 120); do printf "'src/f%d.c', " $i; done)"
        echo "executable('gen-app', 'src/main.c', link_with : lib, install : true)"
      } > meson.build
    fi
  '';

  # A project, and the same with one source line changed.
  fixtureDemo = mk: src: file: edit:
    let
      base = (mk src).overrideAttrs (_: { demoRun = run; });
      changed = base.overrideAttrs (old: { postPatch = "sed -i '${edit}' ${file}"; });
      checkpoint = prepareCheckpointBuild base;
    in {
      inherit checkpoint changed;
      incremental = mkCheckpointBuild changed checkpoint;
    };
  cmake = fixtureDemo pkgs.cmakeProject (generated "cmake") "src/f7.c" "s/i \\* 7/i * 70/";
  meson = fixtureDemo pkgs.mesonProject (generated "meson") "src/f7.c" "s/i \\* 7/i * 70/";
in
{
  inherit helloCheckpoint changedHello;
  checkpoint = helloCheckpoint.checkpoint;
  incremental = mkCheckpointBuild changedHello helloCheckpoint;
  cmakeCheckpoint = cmake.checkpoint;
  cmakeChanged = cmake.changed;
  cmakeIncremental = cmake.incremental;
  mesonCheckpoint = meson.checkpoint;
  mesonChanged = meson.changed;
  mesonIncremental = meson.incremental;
}
