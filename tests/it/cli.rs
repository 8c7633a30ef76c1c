//! The command line as a program sees it: exit codes, messages that name
//! the file, `--json` summaries, and restore's fallbacks.

use crate::util::*;
use std::path::Path;

fn code(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A tiny tree built once: `src/a.c` compiled into `a.o` by hand, by a
/// build that ended [`BUILD_ENDED_AGO`].
fn built_checkpoint(ws: &Workspace, env: &[(&str, &str)]) -> std::path::PathBuf {
    built_checkpoint_at(ws, env, true)
}

/// [`built_checkpoint`], `a.o` dated as written (now) unless `ended_ago`.
fn built_checkpoint_at(
    ws: &Workspace,
    env: &[(&str, &str)],
    ended_ago: bool,
) -> std::path::PathBuf {
    let root = ws.fresh_root();
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(root.join("src/a.c"), "int a;\n").unwrap();
    if ended_ago {
        // Unpacked from the store, as in a Nix build.
        set_all_mtimes(&root, 1);
    }
    let state = root.join(STATE);
    ws.note_snapshot_time();
    let out = ws.run_env(
        &[
            "snapshot",
            "--root",
            root.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        env,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(root.join("src/a.o"), b"\x7fELF object").unwrap();
    if ended_ago {
        ws.build_ended_ago();
    }
    let checkpoint = ws.checkpoint("cp");
    let out = ws.run_env(
        &[
            "save",
            "--root",
            root.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--output",
            checkpoint.to_str().unwrap(),
        ],
        env,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    canonicalise_like_the_store(&checkpoint);
    checkpoint
}

fn fresh_sources(ws: &Workspace) -> std::path::PathBuf {
    let root = ws.fresh_root();
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(root.join("src/a.c"), "int a;\n").unwrap();
    root
}

#[test]
fn root_is_required_outside_a_nix_build() {
    let ws = Workspace::new();
    let out = ws.run(&["snapshot", "--state", "/tmp/x"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("NIX_BUILD_TOP"), "{}", stderr(&out));
}

#[test]
fn root_defaults_to_nix_build_top() {
    let ws = Workspace::new();
    let root = fresh_sources(&ws);
    let state = root.join(STATE);
    let out = ws.run_env(
        &["snapshot", "--state", state.to_str().unwrap()],
        &[("NIX_BUILD_TOP", root.to_str().unwrap())],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(state.exists());
}

#[test]
fn save_without_snapshot_is_exit_4_naming_the_state() {
    let ws = Workspace::new();
    let root = fresh_sources(&ws);
    let out = ws.run(&[
        "save",
        "--root",
        root.to_str().unwrap(),
        "--state",
        "/nonexistent/state",
        "--output",
        ws.checkpoint("cp").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/state"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.checkpoint("cp").exists());
}

/// The scan's warnings are printed on every outcome, the early fallbacks
/// (an unusable checkpoint with --fallback-on-error) included.
#[test]
fn scan_warnings_are_printed_when_restore_falls_back() {
    let ws = Workspace::new();
    let root = fresh_sources(&ws);
    nix::unistd::mkfifo(
        &root.join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = ws.run(&[
        "restore",
        "--fallback-on-error",
        "--root",
        root.to_str().unwrap(),
        "/nonexistent/checkpoint",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning:") && stderr(&out).contains("pipe"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_checkpoint_is_exit_5_and_a_fallback_when_asked() {
    let ws = Workspace::new();
    let root = fresh_sources(&ws);
    let out = ws.run(&[
        "restore",
        "--root",
        root.to_str().unwrap(),
        "/nonexistent/checkpoint",
    ]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/checkpoint"),
        "{}",
        stderr(&out)
    );
    let out = ws.run(&[
        "restore",
        "--fallback-on-error",
        "--root",
        root.to_str().unwrap(),
        "/nonexistent/checkpoint",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("NOTHING RESTORED")
            && stderr(&out).contains("/nonexistent/checkpoint: checkpoint not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn corrupt_checkpoint_is_exit_6_and_the_tree_is_untouched() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(&ws, &[]);
    let pack = checkpoint.join("checkpoint.nckp");
    make_writable(&checkpoint);
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&pack, &bytes).unwrap();
    let root = fresh_sources(&ws);
    let before = picture(&root);
    let out = ws.run(&[
        "restore",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(stderr(&out).contains("checkpoint.nckp"), "{}", stderr(&out));
    assert_eq!(before, picture(&root));
    let out = ws.run(&["verify", checkpoint.to_str().unwrap()]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_exit_7() {
    let ws = Workspace::new();
    let bogus = ws.dir.path().join("bogus");
    std::fs::write(&bogus, vec![b'x'; 4096]).unwrap();
    let out = ws.run(&["inspect", bogus.to_str().unwrap()]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
}

#[test]
fn changed_dependency_falls_back_untouched_and_force_restores() {
    let ws = Workspace::new();
    let zlib1 = format!("/nix/store/{}-zlib-1.3", "a".repeat(32));
    let zlib2 = format!("/nix/store/{}-zlib-1.3.1", "b".repeat(32));
    let checkpoint = built_checkpoint(&ws, &[("buildInputs", &zlib1)]);
    let root = fresh_sources(&ws);
    let before = picture(&root);
    let args = [
        "restore",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ];
    let out = ws.run_env(&args, &[("buildInputs", &zlib2)]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the build's recipe changed: buildInputs: '/nix/store/aaaa")
            && stderr(&out).contains("-> '/nix/store/bbbb")
            && stderr(&out).contains("zlib-1.3.1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        before,
        picture(&root),
        "a fallback leaves the tree untouched"
    );

    let out = ws.run_env(
        &[
            "restore",
            "--force",
            "--root",
            root.to_str().unwrap(),
            checkpoint.to_str().unwrap(),
        ],
        &[("buildInputs", &zlib2)],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(root.join("src/a.o").exists());
}

#[test]
fn sources_only_in_src_or_phases_are_not_dependencies() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(
        &ws,
        &[(
            "src",
            &format!("/nix/store/{}-hello-2.10.tar.gz", "c".repeat(32)),
        )],
    );
    let root = fresh_sources(&ws);
    let env = [
        (
            "src",
            format!("/nix/store/{}-hello-2.11.tar.gz", "d".repeat(32)),
        ),
        (
            "postPatch",
            format!("cp /nix/store/{}-v2.c src/x.c", "f".repeat(32)),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = ws.run_env(
        &[
            "restore",
            "--root",
            root.to_str().unwrap(),
            checkpoint.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(root.join("src/a.o").exists());
}

#[test]
fn a_root_of_another_length_falls_back() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(&ws, &[]);
    let elsewhere = ws.dir.path().join("build-moved");
    std::fs::create_dir_all(elsewhere.join("src")).unwrap();
    std::fs::write(elsewhere.join("src/a.c"), "int a;\n").unwrap();
    let out = ws.run(&[
        "restore",
        "--root",
        elsewhere.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("NOTHING RESTORED")
            && stderr(&out).contains("build root changed length, from "),
        "{}",
        stderr(&out)
    );
    assert!(!elsewhere.join("src/a.o").exists());
}

#[test]
fn json_summaries_for_programs() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(&ws, &[]);
    let root = fresh_sources(&ws);
    let out = ws.run(&[
        "--json",
        "restore",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["command"], "restore");
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["plan"]["created"], 1, "{summary}");
    assert!(summary["seconds"].is_number());

    let out = ws.run(&["inspect", checkpoint.to_str().unwrap(), "--json"]);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let products: Vec<&str> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "product")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(products, ["src/a.o"]);

    let out = ws.run(&["--json", "verify", checkpoint.to_str().unwrap()]);
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["blobs"], 1);
}

#[test]
fn every_command_ends_with_a_summary_line() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(&ws, &[]);
    let root = fresh_sources(&ws);
    for args in [
        vec!["inspect", checkpoint.to_str().unwrap()],
        vec!["verify", checkpoint.to_str().unwrap()],
        vec![
            "restore",
            "--root",
            root.to_str().unwrap(),
            checkpoint.to_str().unwrap(),
        ],
    ] {
        let out = ws.run_ok(&args);
        let last = stderr(&out).lines().last().unwrap_or_default().to_string();
        assert!(
            last.starts_with(&format!("nix-checkpoint: {}", args[0])) && last.contains(" s"),
            "{args:?}: {last}"
        );
    }
}

/// Regression (chain v4 in the Nix tests): a checkpoint saved less than a
/// second ago makes the fresh mtime (newest restored + 1 s) lie in the
/// future; a build step that ran at once wrote a product older than its
/// changed source, and the next build compiled it again.
#[test]
fn restore_returns_only_once_fresh_mtimes_are_in_the_past() {
    let ws = Workspace::new();
    // Products written now, as a build that has just ended left them.
    let checkpoint = built_checkpoint_at(&ws, &[], false);
    let root = fresh_sources(&ws);
    std::fs::write(root.join("src/a.c"), "int a = 2;\n").unwrap();
    ws.run_ok(&[
        "restore",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    let product = filetime::FileTime::from_last_modification_time(
        &std::fs::metadata(root.join("src/a.o")).unwrap(),
    );
    let changed = filetime::FileTime::from_last_modification_time(
        &std::fs::metadata(root.join("src/a.c")).unwrap(),
    );
    assert!(
        changed > product,
        "the changed source is newer than the restored product"
    );
    let now = filetime::FileTime::now();
    assert!(
        now > changed,
        "restore returned while the fresh mtime {changed} was still ahead of the clock ({now})"
    );
}

/// A configured build: `configure` (a script the test "runs" by reading it)
/// is read between `track-configure --start` and `--finish`, then the build
/// makes `a.o` (and, for `tool`, the file that names its build tool).
fn configured_checkpoint(ws: &Workspace, tool_file: Option<&str>) -> std::path::PathBuf {
    let root = ws.fresh_root();
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(root.join("src/a.c"), "int a;\n").unwrap();
    std::fs::write(root.join("configure"), "#!/bin/sh\n").unwrap();
    // Unpacked from the store, as in a Nix build.
    set_all_mtimes(&root, 1);
    let r = root.to_str().unwrap();
    let state = root.join(STATE);
    let s = state.to_str().unwrap();
    ws.note_snapshot_time();
    ws.run_ok(&["snapshot", "--root", r, "--state", s]);
    ws.run_ok(&["track-configure", "--start", "--root", r, "--state", s]);
    std::fs::read(root.join("configure")).unwrap();
    let out = ws.run_ok(&["track-configure", "--finish", "--root", r, "--state", s]);
    assert!(
        stderr(&out).contains("configure read 1 files"),
        "{}",
        stderr(&out)
    );
    // What the setup hook writes beside the record.
    std::fs::write(
        root.join(".nckp-configure/shell-state.sh"),
        "_nixCheckpointConfiguredDir=\n",
    )
    .unwrap();
    std::fs::write(root.join("Makefile"), "all:\n").unwrap();
    std::fs::write(root.join("src/a.o"), b"\x7fELF object").unwrap();
    if let Some(name) = tool_file {
        std::fs::write(root.join(name), "# ninja log v5\n").unwrap();
    }
    ws.build_ended_ago();
    let checkpoint = ws.checkpoint("cp");
    ws.run_ok(&[
        "save",
        "--root",
        r,
        "--state",
        s,
        "--output",
        checkpoint.to_str().unwrap(),
    ]);
    canonicalise_like_the_store(&checkpoint);
    checkpoint
}

fn restore_before_configure(ws: &Workspace, checkpoint: &Path, edit: &str) -> std::process::Output {
    let root = fresh_sources(ws);
    std::fs::write(root.join("configure"), "#!/bin/sh\n").unwrap();
    match edit {
        "source" => std::fs::write(root.join("src/a.c"), "int a = 2;\n").unwrap(),
        "configure" => std::fs::write(root.join("configure"), "#!/bin/sh\nexit 0\n").unwrap(),
        _ => {}
    }
    ws.run(&[
        "restore",
        "--before-configure",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ])
}

#[test]
fn configure_is_skipped_when_nothing_it_read_changed() {
    let ws = Workspace::new();
    let checkpoint = configured_checkpoint(&ws, None);
    let out = restore_before_configure(&ws, &checkpoint, "source");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("configure skipped (checkpoint: nothing configure read changed)"),
        "{}",
        stderr(&out)
    );
    // The configured tree came back with the products.
    assert!(ws.root().join("Makefile").exists() && ws.root().join("src/a.o").exists());
}

#[test]
fn a_changed_configure_input_falls_back_for_make_and_defers_for_ninja() {
    let ws = Workspace::new();
    let checkpoint = configured_checkpoint(&ws, None);
    let out = restore_before_configure(&ws, &checkpoint, "configure");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a build description changed (configure)"),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.root().join("src/a.o").exists(),
        "a fallback restores nothing"
    );

    let ws = Workspace::new();
    let checkpoint = configured_checkpoint(&ws, Some(".ninja_log"));
    let out = restore_before_configure(&ws, &checkpoint, "configure");
    assert_eq!(code(&out), 12, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "configure runs: configure changed; restoring after it (Ninja records its commands)"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.root().join("src/a.o").exists(),
        "a deferred restore writes nothing"
    );
    // After configure, the same checkpoint restores.
    let out = ws.run(&[
        "restore",
        "--root",
        ws.root().to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(ws.root().join("src/a.o").exists());
}

#[test]
fn without_a_record_of_configure_configure_runs() {
    let ws = Workspace::new();
    // built_checkpoint never tracked configure.
    let checkpoint = built_checkpoint(&ws, &[]);
    let root = fresh_sources(&ws);
    let out = ws.run(&[
        "restore",
        "--before-configure",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("configure must run (the checkpoint has no record of what configure read)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_changed_build_flag_names_the_variable_and_ignore_changes_opts_out() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(&ws, &[("makeFlags", "CFLAGS=-O2")]);
    let root = fresh_sources(&ws);
    let args = [
        "restore",
        "--root",
        root.to_str().unwrap(),
        checkpoint.to_str().unwrap(),
    ];
    let out = ws.run_env(&args, &[("makeFlags", "CFLAGS=-O1")]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("makeFlags: 'CFLAGS=-O2' -> 'CFLAGS=-O1'"),
        "{}",
        stderr(&out)
    );
    let out = ws.run_env(
        &args,
        &[
            ("makeFlags", "CFLAGS=-O1"),
            ("nixCheckpointIgnoreChanges", "makeFlags"),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_checkpoint_of_nixpkgs_checkpoint_build_tools_falls_back_saying_what_it_is() {
    let ws = Workspace::new();
    let artifact = ws.checkpoint("nixpkgs-artifact");
    for dir in ["sources/src", "outputs/src"] {
        std::fs::create_dir_all(artifact.join(dir)).unwrap();
    }
    std::fs::write(artifact.join("sources/src/a.c"), "int a;\n").unwrap();
    std::fs::write(artifact.join("outputs/src/a.c"), "int a;\n").unwrap();
    std::fs::write(artifact.join("outputs/src/a.o"), "\x7fELF").unwrap();
    let root = fresh_sources(&ws);
    let before = picture(&root);
    let out = ws.run(&[
        "restore",
        "--root",
        root.to_str().unwrap(),
        artifact.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a checkpoint of nixpkgs' own checkpointBuildTools")
            && stderr(&out).contains("make a new one with nix-checkpoint's prepareCheckpointBuild"),
        "{}",
        stderr(&out)
    );
    assert_eq!(before, picture(&root), "nothing restored");
    let out = ws.run(&["inspect", artifact.to_str().unwrap()]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
}

#[test]
fn a_full_stdout_is_a_write_failure_not_a_lost_summary() {
    let ws = Workspace::new();
    let checkpoint = built_checkpoint(&ws, &[]);
    let dev_full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let out = std::process::Command::new(bin())
        .args(["--json", "inspect", checkpoint.to_str().unwrap()])
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write to standard output"),
        "{}",
        stderr(&out)
    );
    // An error's own code survives a full stdout (no abort).
    let out = std::process::Command::new(bin())
        .args(["--json", "verify", "/nonexistent"])
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[test]
fn every_exit_code_is_documented_and_explained_by_the_hook() {
    use nix_checkpoint::exit_code::ExitCode;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let hook =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/nix/setup-hook.sh")).unwrap();
    for code in ExitCode::ALL {
        let n = code.code();
        assert!(
            readme.contains(&format!("\n| {n} | ")),
            "README's table lacks exit code {n} ({code:?})"
        );
        // The hook explains every failure it passes on (3 and 12 it handles).
        if n >= 4 && code != ExitCode::Deferred {
            assert!(
                hook.contains(&format!("\n    {n}) echo ")),
                "the hook does not explain exit code {n} ({code:?})"
            );
        }
    }
}

// ------------------------------------------------ whole outputs (insta)

/// A checkpoint the same in every run but for the workspace's path, made
/// in a clean environment (an empty recipe): sources dated 1, the product
/// `src/a.o` (and `src`) dated 1 700 000 000.
fn fixed_checkpoint(ws: &Workspace) -> std::path::PathBuf {
    let root = ws.fresh_root();
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(root.join("src/a.c"), "int a;\n").unwrap();
    set_all_mtimes(&root, 1);
    ws.run_snapshot().assert_code(0, "snapshot");
    std::fs::write(root.join("src/a.o"), b"\x7fELF object").unwrap();
    let t = filetime::FileTime::from_unix_time(1_700_000_000, 0);
    filetime::set_file_mtime(root.join("src/a.o"), t).unwrap();
    filetime::set_file_mtime(root.join("src"), t).unwrap();
    let checkpoint = ws.checkpoint("fixed");
    ws.run_save(&checkpoint).assert_code(0, "save");
    canonicalise_like_the_store(&checkpoint);
    checkpoint
}

/// What a run printed, for a snapshot: its arguments, exit code, stdout
/// (JSON pretty-printed) and stderr.
fn transcript(args: &[&str], run: &Run) -> String {
    let stdout = match serde_json::from_str::<serde_json::Value>(&run.stdout) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap() + "\n",
        Err(_) => run.stdout.clone(),
    };
    format!(
        "$ nix-checkpoint {}\nexit {}\n--- stdout\n{stdout}--- stderr\n{}",
        args.join(" "),
        run.code,
        run.stderr
    )
}

/// Runs each of `commands` in a clean environment; their transcripts.
fn transcripts(ws: &Workspace, commands: &[Vec<&str>]) -> String {
    commands
        .iter()
        .map(|args| transcript(args, &ws.run_clean(args)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn inspect_prints_totals_entries_and_json() {
    let ws = Workspace::new();
    let cp = fixed_checkpoint(&ws);
    let cp = cp.to_str().unwrap();
    let text = transcripts(
        &ws,
        &[
            vec!["inspect", cp],
            vec!["inspect", "--list", cp],
            vec!["inspect", cp, "--json"],
        ],
    );
    ws.insta_settings()
        .bind(|| insta::assert_snapshot!("inspect", text));
}

#[test]
fn json_summaries_of_verify_dry_run_and_restore() {
    let ws = Workspace::new();
    let cp = fixed_checkpoint(&ws);
    let cp = cp.to_str().unwrap();
    let root = fresh_sources(&ws);
    set_all_mtimes(&root, 1);
    std::fs::write(root.join("src/a.c"), "int a = 2;\n").unwrap();
    let r = root.to_str().unwrap();
    let text = transcripts(
        &ws,
        &[
            vec!["--json", "verify", cp],
            vec!["restore", "--dry-run", "--root", r, cp],
            vec!["--json", "restore", "--dry-run", "--root", r, cp],
            vec!["--json", "restore", "--root", r, cp],
        ],
    );
    ws.insta_settings()
        .bind(|| insta::assert_snapshot!("json_summaries", text));
}

#[test]
fn error_texts_name_the_file_and_what_to_do() {
    let ws = Workspace::new();
    let cp = fixed_checkpoint(&ws);
    let cp = cp.to_str().unwrap();
    let root = fresh_sources(&ws);
    let r = root.to_str().unwrap();
    let bogus = ws.dir.path().join("bogus");
    std::fs::write(&bogus, vec![b'x'; 4096]).unwrap();
    let bogus = bogus.to_str().unwrap();
    let elsewhere = ws.dir.path().join("build-moved");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let elsewhere = elsewhere.to_str().unwrap();
    let no_state = ws.dir.path().join("no-state");
    let no_state = no_state.to_str().unwrap();
    let out = ws.dir.path().join("outside/cp");
    let out = out.to_str().unwrap();
    let text = transcripts(
        &ws,
        &[
            vec!["snapshot", "--state", no_state],
            vec!["save", "--root", r, "--state", no_state, "--output", out],
            vec!["restore", "--root", r, "/nonexistent/checkpoint"],
            vec![
                "restore",
                "--fallback-on-error",
                "--root",
                r,
                "/nonexistent/checkpoint",
            ],
            vec!["inspect", bogus],
            vec!["restore", "--root", r, bogus],
            vec!["restore", "--root", elsewhere, cp],
        ],
    );
    ws.insta_settings()
        .bind(|| insta::assert_snapshot!("error_texts", text));
}
