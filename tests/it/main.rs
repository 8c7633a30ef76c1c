//! The integration tests: one binary, the built `nix-checkpoint` run on
//! temporary trees through one harness (`util`).

#[macro_use]
mod util;

mod cli;
mod engine;
mod hardening;
mod restore_props;
mod rewrite_gcc;
