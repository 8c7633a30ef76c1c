//! nix-checkpoint: incremental builds for Nix.
//!
//! The pipeline, in the order a restore runs it: `cli` parses flags and
//! `config` validates them against the environment; then `commands` runs one
//! subcommand over
//! `scan` (walk and hash a build tree into a `tree::Manifest`) →
//! `recipe` and `gate` (pure: may the checkpoint be used, and may configure
//! be skipped) → `plan` (pure: the three-way merge of before, after and now)
//! → `apply` (the only module that writes into a build tree).
//! `checkpoint` is the on-disk format `save` writes and `restore` reads;
//! `rewrite` masks and relocates the build's own store paths in contents.

pub mod apply;
pub mod build_info;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit_code;
pub mod gate;
pub mod plan;
pub mod recipe;
pub mod rewrite;
pub mod scan;
pub mod tree;

use exit_code::ExitCode;
use std::io::Write;

/// Runs one command and prints its outcome: warnings and the one-line
/// summary on stderr, longer output and `--json` on stdout.
pub fn run(cli: cli::Cli) -> ExitCode {
    let json = cli.json;
    let config = match config::Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => return report_error(&error::Error::from(e), json),
    };
    match commands::run(&config) {
        Ok(outcome) => {
            let report = &outcome.report;
            let exit = report.exit_code();
            let mut stderr = std::io::stderr().lock();
            for warning in &outcome.warnings {
                let _ = writeln!(stderr, "nix-checkpoint: warning: {warning}");
            }
            let mut out = Vec::new();
            if let Some(body) = &outcome.body {
                out.extend_from_slice(body.as_bytes());
                if !body.ends_with('\n') {
                    out.push(b'\n');
                }
            }
            if config.json {
                out.extend_from_slice(format!("{}\n", report.json()).as_bytes());
            }
            if let Err(code) = write_stdout(&out) {
                return code;
            }
            if !config.quiet || exit != ExitCode::Success {
                let _ = writeln!(stderr, "nix-checkpoint: {report}");
            }
            exit
        }
        Err(e) => report_error(&e, config.json),
    }
}

/// Writes what a command prints on stdout. A closed pipe (`| head`) is not
/// a failure; any other write error (a full disk behind `> file`) is, so
/// that a caller never takes a lost listing or JSON summary for success.
fn write_stdout(bytes: &[u8]) -> Result<(), ExitCode> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            eprintln!("nix-checkpoint: error: cannot write to standard output: {e}");
            Err(ExitCode::WriteFailed)
        }
    }
}

fn report_error(e: &error::Error, json: bool) -> ExitCode {
    let code = e.exit_code();
    eprintln!("nix-checkpoint: error: {e}");
    if json {
        let line = format!("{}\n", commands::report::error_json(e));
        // The error's own code stays the answer, even if stdout is gone.
        let _ = write_stdout(line.as_bytes());
    }
    code
}
