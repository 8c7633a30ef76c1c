//! nix-checkpoint: incremental builds for Nix.
//!
//! The pipeline: `cli` parses flags, `config` validates them against the
//! environment, `commands` run one subcommand each over `tree::scan`,
//! `checkpoint` (the on-disk format), `merge` (a pure three-way plan) and
//! `apply` (the only module that writes into a build tree).

pub mod apply;
pub mod build_info;
pub mod checkpoint;
pub mod exit_code;
pub mod merge;
pub mod store_path;
pub mod tree;
