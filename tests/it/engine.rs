//! End-to-end tests of the built binary on real projects built with real
//! make, ninja and CMake: which units recompile after a restore, and whether
//! the result is byte-identical to a clean build of the edited sources.
//! Without make (or cmake and ninja) on PATH, the tests that need them skip
//! themselves, saying so (`util/skip.rs`).

use crate::util::*;
use std::collections::BTreeSet;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// A make project with dependency files, its sources listed in `sources.mk`
/// (make relinks after a deletion only when the link depends on that list), a generated header (whose content
/// depends on a script's mode), a symlinked header and a binary input.
fn write_make_project(dir: &Path) {
    let files: &[(&str, &str)] = &[
        (
            "Makefile",
            "CFLAGS = -O2 -MMD -MP\n\
             include sources.mk\n\
             OBJS := $(SRCS:.c=.o) data.o\n\
             app: $(OBJS) sources.mk\n\t@echo \"LD $@\"\n\t@$(CC) -o $@ $(OBJS)\n\
             %.o: %.c\n\t@echo \"CC $<\"\n\t@$(CC) $(CFLAGS) -c -o $@ $<\n\
             data.o: data.bin\n\t@echo \"CC data.bin\"\n\t@ld -r -b binary -o $@ data.bin\n\
             gen.h: gen.txt gen.sh\n\t@echo \"GEN gen.h\"\n\t@sh gen.sh gen.txt > $@\n\
             main.o: gen.h\n\
             -include $(SRCS:.c=.d)\n",
        ),
        ("sources.mk", "SRCS = extra.c main.c util.c\n"),
        ("gen.txt", "generated greeting\n"),
        ("gen.sh", "if [ -x gen.sh ]; then mode=exec; else mode=plain; fi\nprintf '#define GEN_TEXT \"%s (%s)\"\\n' \"$(cat \"$1\")\" \"$mode\"\n"),
        ("configs/small.h", "#define SIZE 1\n"),
        ("configs/big.h", "#define SIZE 2\n"),
        ("util.h", "int twice(int x);\n#define UTIL_VERSION 1\n"),
        ("util.c", "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n"),
        ("extra.c", "int extra(void) { return 7; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include \"config.h\"\n#include \"gen.h\"\n#include \"util.h\"\n\
             extern const char _binary_data_bin_start[], _binary_data_bin_end[];\n\
             int main(void) {\n  unsigned sum = 0;\n  for (const char *p = _binary_data_bin_start; p < _binary_data_bin_end; p++) sum = sum * 31 + (unsigned char)*p;\n\
               printf(\"%s size=%d twice=%d util=%d data=%u\\n\", GEN_TEXT, SIZE, twice(SIZE), UTIL_VERSION, sum);\n  return 0;\n}\n",
        ),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::write(dir.join("data.bin"), [0u8, 1, 2, 0xff, 0xfe, 0, 42]).unwrap();
    symlink("configs/small.h", dir.join("config.h")).unwrap();
}

struct Outcome {
    compiled: BTreeSet<String>,
    app: Vec<u8>,
    clean_app: Vec<u8>,
    output: String,
}

/// Builds `v1` in the build directory and saves a checkpoint of it; then
/// lays out `v2` (`v1` edited) fresh in the same directory and snapshots
/// it. Returns the workspace, `v2`'s sources and the checkpoint.
fn first_build_then_edited(
    edit: impl Fn(&Path),
) -> (Workspace, std::path::PathBuf, std::path::PathBuf) {
    let ws = Workspace::new();
    let v1 = ws.dir.path().join("v1");
    write_make_project(&v1);
    let v2 = ws.dir.path().join("v2");
    std::fs::create_dir(&v2).unwrap();
    unpack(&v1, &v2);
    edit(&v2);

    let project = ws.root().join("project");
    ws.fresh_root();
    unpack(&v1, &project);
    ws.snapshot();
    sh(&project, "make");
    let checkpoint = ws.save("v1-checkpoint");

    ws.fresh_root();
    unpack(&v2, &project);
    ws.snapshot();
    (ws, v2, checkpoint)
}

/// `v2`'s app built clean, in the same build directory path.
fn clean_build(ws: &Workspace, v2: &Path) -> Vec<u8> {
    let project = ws.root().join("project");
    ws.fresh_root();
    unpack(v2, &project);
    sh(&project, "make");
    std::fs::read(project.join("app")).unwrap()
}

/// Builds `v1`, saves a checkpoint, then builds `v2` incrementally from it
/// and cleanly, in the same build directory path.
fn incremental_make(edit: impl Fn(&Path)) -> Outcome {
    let (ws, v2, checkpoint) = first_build_then_edited(edit);
    let project = ws.root().join("project");
    ws.restore(&checkpoint);
    let log = sh(&project, "make");
    let app = std::fs::read(project.join("app")).unwrap();
    let output = sh(&project, "./app");

    let clean_app = clean_build(&ws, &v2);
    let clean_output = sh(&project, "./app");
    assert_eq!(output, clean_output);
    ws.assert_canary_intact();
    Outcome {
        compiled: compiled_units(&log),
        app,
        clean_app,
        output,
    }
}

fn assert_incremental(outcome: &Outcome, expected: BTreeSet<String>) {
    assert_eq!(outcome.compiled, expected, "recompiled units");
    assert!(
        outcome.app == outcome.clean_app,
        "the restored build's binary differs from a clean build's"
    );
}

#[test]
fn make_no_change_recompiles_nothing() {
    require_tools!("make", "cc", "ld");
    let outcome = incremental_make(|_| {});
    assert_incremental(&outcome, set([]));
}

#[test]
fn make_changed_source_recompiles_only_it() {
    require_tools!("make", "cc", "ld");
    let outcome = incremental_make(|d| {
        std::fs::write(
            d.join("util.c"),
            "#include \"util.h\"\nint twice(int x) { return x + x + 0; }\n",
        )
        .unwrap()
    });
    assert_incremental(&outcome, set(["util.c"]));
}

#[test]
fn make_changed_header_recompiles_its_includers() {
    require_tools!("make", "cc", "ld");
    let outcome = incremental_make(|d| {
        std::fs::write(
            d.join("util.h"),
            "int twice(int x);\n#define UTIL_VERSION 2\n",
        )
        .unwrap()
    });
    assert_incremental(&outcome, set(["main.c", "util.c"]));
    assert!(outcome.output.contains("util=2"), "{}", outcome.output);
}

/// Like [`incremental_make`] for an edit of a build description: restore
/// must fall back (exit 3, the tree untouched, the reason given), and the
/// full build that follows equals a clean one.
fn make_falls_back(edit: impl Fn(&Path), reason: &str) {
    let (ws, v2, checkpoint) = first_build_then_edited(edit);
    let project = ws.root().join("project");
    let out = ws.run(&[
        "restore",
        "--root",
        ws.root().to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(reason), "{err}");
    assert!(
        !project.join("main.o").exists(),
        "a fallback restores nothing"
    );
    sh(&project, "make");
    let app = std::fs::read(project.join("app")).unwrap();
    assert_eq!(app, clean_build(&ws, &v2));
    ws.assert_canary_intact();
}

#[test]
fn make_new_file_in_the_source_list_falls_back() {
    require_tools!("make", "cc", "ld");
    // sources.mk is a makefile: make cannot tell which commands it changes.
    make_falls_back(
        |d| {
            std::fs::write(d.join("more.c"), "int more(void) { return 8; }\n").unwrap();
            std::fs::write(
                d.join("sources.mk"),
                "SRCS = extra.c main.c more.c util.c\n",
            )
            .unwrap();
        },
        "a build description changed (project/sources.mk)",
    );
}

#[test]
fn make_changed_compiler_flags_in_the_makefile_fall_back() {
    require_tools!("make", "cc", "ld");
    make_falls_back(
        |d| {
            let mk = std::fs::read_to_string(d.join("Makefile")).unwrap();
            std::fs::write(d.join("Makefile"), mk.replace("-O2", "-O1")).unwrap();
        },
        "a build description changed (project/Makefile)",
    );
}

#[test]
fn make_changed_binary_input_is_rebuilt() {
    require_tools!("make", "cc", "ld");
    let outcome = incremental_make(|d| {
        std::fs::write(d.join("data.bin"), [0u8, 1, 2, 0xff, 0xfe, 0, 43, 0x80]).unwrap()
    });
    assert_incremental(&outcome, set(["data.bin"]));
}

#[test]
fn make_retargeted_symlink_rebuilds_what_includes_it() {
    require_tools!("make", "cc", "ld");
    let outcome = incremental_make(|d| {
        std::fs::remove_file(d.join("config.h")).unwrap();
        symlink("configs/big.h", d.join("config.h")).unwrap();
    });
    assert_incremental(&outcome, set(["main.c"]));
    assert!(outcome.output.contains("size=2"), "{}", outcome.output);
}

#[test]
fn make_mode_change_regenerates_what_depends_on_it() {
    require_tools!("make", "cc", "ld");
    let outcome = incremental_make(|d| {
        std::fs::set_permissions(d.join("gen.sh"), std::fs::Permissions::from_mode(0o755)).unwrap()
    });
    assert_incremental(&outcome, set(["main.c"]));
    assert!(outcome.output.contains("(exec)"), "{}", outcome.output);
}

/// A CMake project configured out of source into `build/` and built with
/// Ninja, as nixpkgs' cmake hook does: nixpkgs' own algorithm restores a
/// stale binary here, because it only looks at the current directory.
fn write_cmake_project(dir: &Path) {
    let files: &[(&str, &str)] = &[
        ("CMakeLists.txt", "cmake_minimum_required(VERSION 3.13)\nproject(demo C)\nadd_executable(app main.c util.c)\n"),
        ("util.h", "int twice(int x);\n#define GREETING \"hello\"\n"),
        ("util.c", "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n"),
        ("main.c", "#include <stdio.h>\n#include \"util.h\"\nint main(void) { printf(\"%s %d\\n\", GREETING, twice(21)); return 0; }\n"),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

/// Units ninja says it compiled: `[1/3] Building C object CMakeFiles/app.dir/main.c.o`.
fn ninja_compiled(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| l.split("Building C object ").nth(1))
        .filter_map(|obj| {
            obj.trim()
                .rsplit('/')
                .next()?
                .strip_suffix(".o")
                .map(str::to_string)
        })
        .collect()
}

fn incremental_cmake(edit: impl Fn(&Path)) -> Outcome {
    let ws = Workspace::new();
    let v1 = ws.dir.path().join("v1");
    std::fs::create_dir(&v1).unwrap();
    write_cmake_project(&v1);
    let v2 = ws.dir.path().join("v2");
    unpack(&v1, &v2);
    edit(&v2);
    let project = ws.root().join("project");
    let configure =
        "mkdir build && cd build && cmake -G Ninja -DCMAKE_BUILD_TYPE=Release .. >/dev/null";

    ws.fresh_root();
    unpack(&v1, &project);
    sh(&project, configure);
    ws.snapshot();
    sh(&project, "ninja -C build");
    let checkpoint = ws.save("v1-checkpoint");

    ws.fresh_root();
    unpack(&v2, &project);
    sh(&project, configure);
    ws.snapshot();
    ws.restore(&checkpoint);
    let log = sh(&project, "ninja -C build");
    let app = std::fs::read(project.join("build/app")).unwrap();
    let output = sh(&project, "build/app");

    ws.fresh_root();
    unpack(&v2, &project);
    sh(&project, configure);
    sh(&project, "ninja -C build");
    let clean_app = std::fs::read(project.join("build/app")).unwrap();
    assert_eq!(output, sh(&project, "build/app"));
    ws.assert_canary_intact();
    Outcome {
        compiled: ninja_compiled(&log),
        app,
        clean_app,
        output,
    }
}

#[test]
fn cmake_out_of_source_changed_source_is_rebuilt() {
    require_tools!("cmake", "ninja", "cc");
    let outcome = incremental_cmake(|d| {
        std::fs::write(
            d.join("util.c"),
            "#include \"util.h\"\nint twice(int x) { return x * 3; }\n",
        )
        .unwrap()
    });
    assert_incremental(&outcome, set(["util.c"]));
    assert!(outcome.output.contains("hello 63"), "{}", outcome.output);
}

#[test]
fn cmake_changed_header_rebuilds_its_includers() {
    require_tools!("cmake", "ninja", "cc");
    let outcome = incremental_cmake(|d| {
        std::fs::write(
            d.join("util.h"),
            "int twice(int x);\n#define GREETING \"howdy\"\n",
        )
        .unwrap()
    });
    assert_incremental(&outcome, set(["main.c", "util.c"]));
    assert!(outcome.output.contains("howdy"), "{}", outcome.output);
}

#[test]
fn cmake_no_change_rebuilds_nothing() {
    require_tools!("cmake", "ninja", "cc");
    let outcome = incremental_cmake(|_| {});
    assert_incremental(&outcome, set([]));
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    require_tools!("make", "cc", "ld");
    let ws = Workspace::new();
    let src = ws.dir.path().join("src");
    write_make_project_into(&src);
    let project = ws.root().join("project");
    ws.fresh_root();
    unpack(&src, &project);
    ws.snapshot();
    sh(&project, "make");
    let checkpoint = ws.save("cp");
    ws.fresh_root();
    unpack(&src, &project);
    std::fs::write(project.join("util.c"), "int twice(int x) { return x; }\n").unwrap();
    let before = picture(&ws.root());
    let root = ws.root();
    let out = ws.run_ok(&[
        "restore",
        "--dry-run",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan_has(&plan, "create", "project/main.o"), "{plan}");
    assert!(plan_has(&plan, "fresh", "project/util.c"), "{plan}");
    assert!(plan_has(&plan, "retime", "project/main.c"), "{plan}");
    assert_eq!(
        before,
        picture(&ws.root()),
        "--dry-run must not change the tree"
    );
}

/// Whether the printed plan has a line `<action> <kind> <path>[ (reason)]`.
fn plan_has(plan: &str, action: &str, path: &str) -> bool {
    plan.lines()
        .any(|l| l.starts_with(action) && l.split_whitespace().nth(2) == Some(path))
}

fn write_make_project_into(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    write_make_project(dir);
}
