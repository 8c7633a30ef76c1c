//! nix-checkpoint: incremental builds for Nix.
//!
//! The pipeline: `cli` parses flags, `config` validates them against the
//! environment, `commands` run one subcommand each over `tree::scan`,
//! `checkpoint` (the on-disk format), `merge` (a pure three-way plan) and
//! `apply` (the only module that writes into a build tree).

pub mod apply;
pub mod build_info;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit_code;
pub mod gate;
pub mod merge;
pub mod recipe;
pub mod store_path;
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
        Ok(report) => {
            let mut stderr = std::io::stderr().lock();
            for warning in &report.warnings {
                let _ = writeln!(stderr, "nix-checkpoint: warning: {warning}");
            }
            // A closed stdout (`| head`) is not a failure.
            let mut stdout = std::io::stdout().lock();
            if let Some(body) = &report.body {
                let _ = stdout.write_all(body.as_bytes());
                if !body.ends_with('\n') {
                    let _ = stdout.write_all(b"\n");
                }
            }
            if config.json {
                let _ = writeln!(stdout, "{}", report.json);
            }
            if !config.quiet || report.exit != ExitCode::Success {
                let _ = writeln!(stderr, "nix-checkpoint: {}", report.summary);
            }
            report.exit
        }
        Err(e) => report_error(&e, config.json),
    }
}

fn report_error(e: &error::Error, json: bool) -> ExitCode {
    let code = e.exit_code();
    eprintln!("nix-checkpoint: error: {e}");
    if json {
        println!(
            "{}",
            serde_json::json!({ "exit_code": code.code(), "error": e.to_string() })
        );
    }
    code
}
