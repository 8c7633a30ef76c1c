//! Tests that need root or a build tool skip themselves, saying so, where
//! that is missing: an unprivileged `cargo test`, or the check phase of
//! `nix/package.nix` (no root, no `mount`, only the tools the package gives
//! its tests). Where root and the tools are there, the tests run in full.
//!
//! The message goes straight to the process's stderr, past libtest's
//! capture, so a plain `cargo test` shows every skip:
//!
//! ```text
//! engine::cmake_no_change_rebuilds_nothing: skipped: cmake not on PATH
//! ```
//!
//! With `NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS=1` (the package sets it), a
//! missing tool fails the test instead: what the package provides must run.
//!
//! ```ignore
//! require_root!("mount");            // returns early unless root
//! require_tools!("cmake", "ninja");  // returns early unless both are on PATH
//! ```

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Set to `1` to make a missing tool a failure rather than a skip.
pub const REQUIRE_TOOLS_ENV: &str = "NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS";

/// Prints `<test>: skipped: <why>` (or, for a part of a test, `<test>:
/// <why>`) to the real stderr, which libtest does not capture.
pub fn note(text: &str) {
    let current = std::thread::current();
    let name = current.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "{name}: {text}");
}

/// Prints that the current test is skipped, and why.
pub fn skip(why: &str) {
    note(&format!("skipped: {why}"));
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether the test runs as root; prints `skipped: needs root (<what>)` if not.
pub fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!("needs root ({what})"));
    false
}

/// `tool`'s path if an executable of that name is on `PATH`.
pub fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Whether every tool is on `PATH`; prints `skipped: <tool> not on PATH`
/// for the missing ones if not (or panics, under [`REQUIRE_TOOLS_ENV`]).
pub fn require_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| on_path(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("{} not on PATH", missing.join(", "));
    if std::env::var_os(REQUIRE_TOOLS_ENV).is_some_and(|v| v == "1") {
        panic!("{why}, and {REQUIRE_TOOLS_ENV}=1 says it must be");
    }
    skip(&why);
    false
}

/// Returns from the calling test (printing why) unless it runs as root.
#[macro_export]
macro_rules! require_root {
    ($what:expr) => {
        if !$crate::util::skip::require_root($what) {
            return;
        }
    };
}

/// Returns from the calling test (printing why) unless every tool is on PATH.
#[macro_export]
macro_rules! require_tools {
    ($($tool:expr),+ $(,)?) => {
        if !$crate::util::skip::require_tools(&[$($tool),+]) {
            return;
        }
    };
}
