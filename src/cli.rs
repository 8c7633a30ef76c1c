//! Raw command-line flags (clap). Validation and the environment are
//! `config`'s business.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "nix-checkpoint",
    version,
    about = "Incremental builds for Nix: carry a build's products, with their mtimes, into the next build",
    after_help = "Exit codes are listed in the README and in --help (0 = success, 3 = restore fell back to a full build).",
    after_long_help = crate::exit_code::ExitCode::table()
)]
pub struct Cli {
    /// Print the closing summary (or, for inspect, the checkpoint) as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Threads for hashing, compression and writing [default: all cores].
    #[arg(long, short = 'j', global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print only errors and warnings.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Args)]
pub struct RootArg {
    /// The build directory [default: $NIX_BUILD_TOP].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecipeArg {
    /// The build's shell variables as the setup hook dumps them (NUL-separated); without it the
    /// recipe is the environment (plus $NIX_ATTRS_JSON_FILE under structured attrs).
    #[arg(long, value_name = "FILE")]
    pub shell_vars: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Record the tree before the build (after unpack and patch; the setup hook runs it before configure).
    Snapshot {
        #[command(flatten)]
        root: RootArg,
        /// Where to write the snapshot state (may be inside the root; it is left out of every scan).
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        #[command(flatten)]
        recipe: RecipeArg,
    },
    /// After install: write a checkpoint of everything the build created or changed.
    Save {
        #[command(flatten)]
        root: RootArg,
        /// The state that `snapshot` wrote.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Directory to write the checkpoint into (created if missing).
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// zstd level, 1-19; 0 stores blobs uncompressed.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=19))]
        level: i32,
    },
    /// In a later build (before configure, or before the build step): bring back the products of the checkpoint.
    Restore {
        #[command(flatten)]
        root: RootArg,
        /// A checkpoint directory (or its pack file).
        #[arg(value_name = "CHECKPOINT")]
        checkpoint: PathBuf,
        /// Print the plan (written, deleted, re-timed, kept fresh) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Restore even though the build's recipe (variables, dependencies) changed.
        #[arg(long)]
        force: bool,
        /// The tree is not configured yet: restore now and say that configure may be skipped (exit 0),
        /// or exit 12 (nothing restored) when configure must run first.
        #[arg(long)]
        before_configure: bool,
        #[command(flatten)]
        recipe: RecipeArg,
        /// Treat a missing, corrupt or unsupported checkpoint as a fallback (exit 3, tree untouched) instead of an error.
        #[arg(long)]
        fallback_on_error: bool,
    },
    /// Around the configure phase: record which files configure reads (by their access times).
    TrackConfigure {
        #[command(flatten)]
        root: RootArg,
        /// The state that `snapshot` wrote.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Before configure: reset the access time of every file of the snapshot.
        #[arg(long, conflicts_with = "finish", required_unless_present = "finish")]
        start: bool,
        /// After configure: write what it read to .nckp-configure/reads in the tree.
        #[arg(long)]
        finish: bool,
    },
    /// Show what a checkpoint holds.
    Inspect {
        #[arg(value_name = "CHECKPOINT")]
        checkpoint: PathBuf,
        /// List every entry of the manifests, not only the totals.
        #[arg(long)]
        list: bool,
    },
    /// Check every checksum of a checkpoint.
    Verify {
        #[arg(value_name = "CHECKPOINT")]
        checkpoint: PathBuf,
    },
}
