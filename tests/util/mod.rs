//! Helpers shared by the integration tests: a build root at a fixed path
//! (so that a clean build and a restored build compile identical objects),
//! a Nix-like lifecycle (unpack with mtime 1, configure, snapshot, build,
//! save, store canonicalisation), and the built binary.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod skip;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nix-checkpoint")
}

/// A workspace: `root` is the build directory (reused at the same path for
/// every build, like `/build`), `canary` sits beside it and must never change.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub const STATE: &str = ".nix-checkpoint-state";

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("canary")).unwrap();
        std::fs::write(dir.path().join("canary/keep"), "canary").unwrap();
        Workspace { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("build")
    }

    pub fn checkpoint(&self, name: &str) -> PathBuf {
        self.dir.path().join("store").join(name)
    }

    /// A fresh, empty build root (like a new sandbox).
    pub fn fresh_root(&self) -> PathBuf {
        let root = self.root();
        if root.exists() {
            make_writable(&root);
            std::fs::remove_dir_all(&root).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    /// Runs nix-checkpoint with `args`, `NIX_BUILD_TOP` unset.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .env_remove("NIX_BUILD_TOP")
            .env_remove("out")
            .env_remove("outputs")
            .output()
            .unwrap()
    }

    /// Runs nix-checkpoint with `args` and extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_remove("NIX_BUILD_TOP")
            .env_remove("out")
            .env_remove("outputs");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nix-checkpoint {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn snapshot(&self) {
        let root = self.root();
        self.run_ok(&[
            "snapshot",
            "--root",
            root.to_str().unwrap(),
            "--state",
            root.join(STATE).to_str().unwrap(),
        ]);
    }

    /// `save` into the fake store, then canonicalise it as the Nix store
    /// would: mtime 1, no write bits.
    pub fn save(&self, name: &str) -> PathBuf {
        let root = self.root();
        let out = self.checkpoint(name);
        self.run_ok(&[
            "save",
            "--root",
            root.to_str().unwrap(),
            "--state",
            root.join(STATE).to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        canonicalise_like_the_store(&out);
        out
    }

    pub fn restore(&self, checkpoint: &Path) -> Output {
        let root = self.root();
        self.run_ok(&[
            "restore",
            "--root",
            root.to_str().unwrap(),
            checkpoint.to_str().unwrap(),
        ])
    }

    pub fn assert_canary_intact(&self) {
        assert_eq!(
            std::fs::read_to_string(self.dir.path().join("canary/keep")).unwrap(),
            "canary"
        );
        assert_eq!(
            std::fs::read_dir(self.dir.path().join("canary"))
                .unwrap()
                .count(),
            1,
            "nothing may appear beside the build root"
        );
    }
}

/// Copies `from` into `to` recursively, giving every entry mtime 1, as an
/// unpack from the Nix store does. Symlinks are copied as symlinks.
pub fn unpack(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in walkdir::WalkDir::new(from).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
    set_all_mtimes(to, 1);
}

pub fn set_all_mtimes(dir: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.unwrap();
        filetime::set_symlink_file_times(entry.path(), t, t).unwrap();
    }
}

pub fn canonicalise_like_the_store(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.unwrap();
        if !entry.file_type().is_symlink() {
            let mode = entry.metadata().unwrap().permissions().mode();
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode & !0o222))
                .unwrap();
        }
    }
    set_all_mtimes(dir, 1);
}

pub fn make_writable(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if !entry.file_type().is_symlink() {
            let mode = entry.metadata().unwrap().permissions().mode();
            let _ = std::fs::set_permissions(
                entry.path(),
                std::fs::Permissions::from_mode(mode | 0o700),
            );
        }
    }
}

/// Runs a shell command in `dir`; panics with its output on failure.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{script}` failed in {}:\n{text}",
        dir.display()
    );
    text
}

/// The units a build log says were compiled: lines `CC <file>`.
pub fn compiled_units(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("CC "))
        .map(|s| s.trim().to_string())
        .collect()
}

pub fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
