use super::*;
use crate::recipe::{compare, Recipe};
use crate::tree::{Node, Timestamp};

fn rp(s: &str) -> RelPath {
    RelPath::new(s.as_bytes()).unwrap()
}

fn file(path: &str, hash: u128) -> Entry {
    Entry {
        path: rp(path),
        node: Node::File { size: 1, hash },
        mode: 0o644,
        mtime: Timestamp::default(),
    }
}

fn dir(path: &str) -> Entry {
    Entry {
        path: rp(path),
        node: Node::Dir,
        mode: 0o755,
        mtime: Timestamp::default(),
    }
}

fn m(entries: Vec<Entry>) -> Manifest {
    Manifest::new(entries).unwrap()
}

/// The old build's source tree.
fn sources() -> Vec<Entry> {
    vec![
        file("Makefile.am", 1),
        file("configure", 2),
        dir("src"),
        file("src/a.c", 3),
        file("src/a.h", 4),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Nothing,
    Source,
    Header,
    Configure,
    BuildFile,
    Added,
    Removed,
}

fn changed(change: Change) -> Manifest {
    let mut e = sources();
    match change {
        Change::Nothing => {}
        Change::Source => e[3] = file("src/a.c", 30),
        Change::Header => e[4] = file("src/a.h", 40),
        Change::Configure => e[1] = file("configure", 20),
        Change::BuildFile => e[0] = file("Makefile.am", 10),
        Change::Added => e.push(file("src/b.c", 5)),
        Change::Removed => {
            e.remove(4);
        }
    }
    m(e)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vars {
    Same,
    ConfigureFlag,
    BuildFlag,
}

fn recipes(vars: Vars) -> RecipeDiff {
    let old = Recipe::from_env([("configureFlags", "--a"), ("makeFlags", "-j")]);
    let new = match vars {
        Vars::Same => old.clone(),
        Vars::ConfigureFlag => Recipe::from_env([("configureFlags", "--b"), ("makeFlags", "-j")]),
        Vars::BuildFlag => Recipe::from_env([("configureFlags", "--a"), ("makeFlags", "-k")]),
    };
    compare(&old, &new)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    NoRecord,
    Unknown,
    Nothing,
    ConfigureScript,
    ScriptAndHeader,
}

fn reads(r: Reads) -> Option<ConfigureReads> {
    let known = |paths: &[&str]| ConfigureReads {
        known: true,
        paths: paths.iter().map(|p| rp(p)).collect(),
    };
    match r {
        Reads::NoRecord => None,
        Reads::Unknown => Some(ConfigureReads::default()),
        Reads::Nothing => Some(known(&[])),
        Reads::ConfigureScript => Some(known(&["configure"])),
        Reads::ScriptAndHeader => Some(known(&["configure", "src/a.h"])),
    }
}

#[derive(Debug, PartialEq)]
enum Outcome {
    RestoreSkipping,
    Restore,
    Defer,
    FallBack,
}

/// The rules of the module documentation, written plainly.
#[allow(clippy::too_many_arguments)]
fn oracle(
    before: bool,
    tracked: bool,
    vars: Vars,
    force: bool,
    r: Reads,
    change: Change,
    skip_allowed: bool,
    no_configure: bool,
    deps: bool,
) -> Outcome {
    if vars == Vars::BuildFlag && !force {
        return Outcome::FallBack;
    }
    let description = matches!(change, Change::Configure | Change::BuildFile);
    if !tracked && description {
        return Outcome::FallBack;
    }
    if !tracked && !deps && change == Change::Header {
        return Outcome::FallBack;
    }
    if !before {
        return if !tracked && vars == Vars::ConfigureFlag {
            Outcome::FallBack
        } else {
            Outcome::Restore
        };
    }
    let read_anything = matches!(r, Reads::ConfigureScript | Reads::ScriptAndHeader);
    let must_run = !skip_allowed
        || vars == Vars::ConfigureFlag
        || (!no_configure
            && (matches!(r, Reads::NoRecord | Reads::Unknown)
                || (read_anything && matches!(change, Change::Added | Change::Removed))
                || (read_anything && change == Change::Configure)
                || (r == Reads::ScriptAndHeader && change == Change::Header)));
    match (must_run, tracked) {
        (false, _) => Outcome::RestoreSkipping,
        (true, true) => Outcome::Defer,
        (true, false) => Outcome::FallBack,
    }
}

#[test]
fn every_combination_matches_the_rules() {
    let before_tree = m(sources());
    let mut n = 0;
    for before in [true, false] {
        for tracked in [true, false] {
            for vars in [Vars::Same, Vars::ConfigureFlag, Vars::BuildFlag] {
                for force in [false, true] {
                    for r in [
                        Reads::NoRecord,
                        Reads::Unknown,
                        Reads::Nothing,
                        Reads::ConfigureScript,
                        Reads::ScriptAndHeader,
                    ] {
                        for change in [
                            Change::Nothing,
                            Change::Source,
                            Change::Header,
                            Change::Configure,
                            Change::BuildFile,
                            Change::Added,
                            Change::Removed,
                        ] {
                            for skip_allowed in [true, false] {
                                for (no_configure, deps) in
                                    [(false, true), (true, true), (false, false), (true, false)]
                                {
                                    let now = changed(change);
                                    let changes = SourceChanges::between(&before_tree, &now);
                                    let diff = recipes(vars);
                                    let rd = reads(r);
                                    let gate = decide(&Facts {
                                        stage: if before {
                                            Stage::BeforeConfigure
                                        } else {
                                            Stage::AfterConfigure
                                        },
                                        recipe: &diff,
                                        tool: if tracked {
                                            BuildTool::Tracked("Ninja")
                                        } else {
                                            BuildTool::Make
                                        },
                                        changes: &changes,
                                        reads: rd.as_ref(),
                                        skip_allowed,
                                        configure_disabled: no_configure,
                                        dependency_files: deps,
                                        force,
                                    });
                                    let got = match &gate {
                                        Gate::Restore {
                                            skip_configure: true,
                                            ..
                                        } => Outcome::RestoreSkipping,
                                        Gate::Restore { .. } => Outcome::Restore,
                                        Gate::Defer { .. } => Outcome::Defer,
                                        Gate::FallBack { .. } => Outcome::FallBack,
                                    };
                                    let want = oracle(
                                        before,
                                        tracked,
                                        vars,
                                        force,
                                        r,
                                        change,
                                        skip_allowed,
                                        no_configure,
                                        deps,
                                    );
                                    assert_eq!(
                                        got, want,
                                        "before={before} tracked={tracked} {vars:?} force={force} {r:?} {change:?} skip_allowed={skip_allowed} no_configure={no_configure}: {gate:?}"
                                    );
                                    n += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(n, 2 * 2 * 3 * 2 * 5 * 7 * 2 * 4);
}

fn gate_for(change: Change, r: Reads, tool: BuildTool, vars: Vars) -> Gate {
    gate_with(change, r, tool, vars, true)
}

fn gate_with(
    change: Change,
    r: Reads,
    tool: BuildTool,
    vars: Vars,
    dependency_files: bool,
) -> Gate {
    let before_tree = m(sources());
    let now = changed(change);
    let changes = SourceChanges::between(&before_tree, &now);
    let diff = recipes(vars);
    let rd = reads(r);
    decide(&Facts {
        stage: Stage::BeforeConfigure,
        recipe: &diff,
        tool,
        changes: &changes,
        reads: rd.as_ref(),
        skip_allowed: true,
        configure_disabled: false,
        dependency_files,
        force: false,
    })
}

#[test]
fn reasons_name_what_changed() {
    let why = |g: Gate| match g {
        Gate::Restore { note, .. } => note,
        Gate::Defer { why } | Gate::FallBack { why } => why,
    };
    assert_eq!(
        why(gate_for(
            Change::Source,
            Reads::ConfigureScript,
            BuildTool::Make,
            Vars::Same
        )),
        "configure skipped (checkpoint: nothing configure read changed)"
    );
    let text = why(gate_for(
        Change::Header,
        Reads::ScriptAndHeader,
        BuildTool::Tracked("CMake"),
        Vars::Same,
    ));
    assert_eq!(
        text,
        "configure runs: src/a.h changed; restoring after it (CMake records its commands)"
    );
    let text = why(gate_for(
        Change::Configure,
        Reads::ConfigureScript,
        BuildTool::Make,
        Vars::Same,
    ));
    assert!(
        text.starts_with("a build description changed (configure)"),
        "{text}"
    );
    let text = why(gate_for(
        Change::Nothing,
        Reads::Nothing,
        BuildTool::Make,
        Vars::BuildFlag,
    ));
    assert!(
        text.starts_with("the build's recipe changed: makeFlags: '-j' -> '-k'"),
        "{text}"
    );
    let text = why(gate_for(
        Change::Nothing,
        Reads::Nothing,
        BuildTool::Make,
        Vars::ConfigureFlag,
    ));
    assert!(text.contains("configureFlags: '--a' -> '--b'"), "{text}");
    let text = why(gate_for(
        Change::Added,
        Reads::ConfigureScript,
        BuildTool::Tracked("Ninja"),
        Vars::Same,
    ));
    assert!(text.starts_with("configure runs: src/b.c added"), "{text}");
}

#[test]
fn build_tools_are_recognised_by_their_records() {
    let tool = |names: &[&str]| {
        let mut e: Vec<Entry> = names.iter().map(|n| file(n, 1)).collect();
        e.sort_by(|a, b| a.path.cmp(&b.path));
        BuildTool::of(&m(e))
    };
    assert_eq!(tool(&["Makefile", "a.o"]), BuildTool::Make);
    assert_eq!(
        tool(&[".ninja_log", "build.ninja"]),
        BuildTool::Tracked("Ninja")
    );
    assert_eq!(
        tool(&["CMakeCache.txt", "Makefile"]),
        BuildTool::Tracked("CMake")
    );
    assert_eq!(
        tool(&[".main.o.cmd", "Makefile"]),
        BuildTool::Tracked("kbuild")
    );
    // A build.ninja alone was never run by ninja here.
    assert_eq!(tool(&["build.ninja"]), BuildTool::Make);
}

#[test]
fn build_descriptions_by_name() {
    for yes in [
        "Makefile",
        "src/Makefile",
        "Makefile.in",
        "Makefile.am",
        "GNUmakefile",
        "rules.mk",
        "x.mak",
        "configure",
        "configure.ac",
        "m4/ax.m4",
        "ltmain.sh",
        "sub/makefile.vc",
    ] {
        assert!(is_build_description(&rp(yes)), "{yes}");
    }
    for no in [
        "src/a.c",
        "include/make.h",
        "Makefile-notes.txt.bak2/x.c",
        "configured",
        "mk",
    ] {
        assert!(!is_build_description(&rp(no)), "{no}");
    }
}

#[test]
fn configure_reads_round_trip_and_refuse_garbage() {
    let r = ConfigureReads {
        known: true,
        paths: ["configure", "sub dir/x\ny.in"]
            .iter()
            .map(|p| rp(p))
            .collect(),
    };
    assert_eq!(ConfigureReads::decode(&r.encode()).unwrap(), r);
    let empty = ConfigureReads {
        known: true,
        paths: Default::default(),
    };
    assert_eq!(ConfigureReads::decode(&empty.encode()).unwrap(), empty);
    let unknown = ConfigureReads::default();
    assert_eq!(ConfigureReads::decode(&unknown.encode()).unwrap(), unknown);
    assert!(ConfigureReads::decode(b"hello").is_err());
    let mut bad = empty.encode();
    bad.extend_from_slice(b"../escape\0");
    assert!(ConfigureReads::decode(&bad)
        .unwrap_err()
        .contains("bad path"));
    let mut unterminated = empty.encode();
    unterminated.extend_from_slice(b"configure");
    assert!(ConfigureReads::decode(&unterminated).is_err());
}

#[test]
fn own_records_are_not_source_changes() {
    let p = m(vec![
        dir(".nckp-configure"),
        file(".nckp-configure/reads", 1),
        file("a.c", 1),
    ]);
    let c = m(vec![
        dir(".nckp-configure"),
        file(".nckp-configure/reads", 2),
        file("a.c", 1),
    ]);
    let changes = SourceChanges::between(&p, &c);
    assert!(changes.changed.is_empty() && changes.added.is_empty() && changes.removed.is_empty());
}

/// Only the record directory is nix-checkpoint's own: a user's file whose
/// name merely starts like it is a source like any other.
#[test]
fn a_file_named_like_the_record_directory_is_a_source() {
    let p = m(vec![file(".nckp-configure.bak", 1), file("a.c", 1)]);
    let c = m(vec![
        file(".nckp-configure.bak", 2),
        file(".nckp-configurex", 3),
        file("a.c", 1),
    ]);
    let changes = SourceChanges::between(&p, &c);
    assert_eq!(changes.changed, vec![&rp(".nckp-configure.bak")]);
    assert_eq!(changes.added, vec![&rp(".nckp-configurex")]);
}

#[test]
fn a_header_without_dependency_files_falls_back_for_make_only() {
    let gate = |tool| {
        gate_with(
            Change::Header,
            Reads::ConfigureScript,
            tool,
            Vars::Same,
            false,
        )
    };
    match gate(BuildTool::Make) {
        Gate::FallBack { why } => assert!(
            why.starts_with("a header changed (src/a.h) and the build left no dependency files"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        gate(BuildTool::Tracked("Ninja")),
        Gate::Restore { .. }
    ));
    let deps = |names: &[&str]| {
        let mut e: Vec<Entry> = names.iter().map(|n| file(n, 1)).collect();
        e.sort_by(|a, b| a.path.cmp(&b.path));
        has_dependency_files(&m(e))
    };
    assert!(deps(&["a.d"]) && deps(&["a.Po"]) && deps(&["x.Plo"]));
    assert!(!deps(&["a.o", "a.h", "d"]));
}
