//! The model of a build tree: validated paths and the manifest (what
//! `scan` produces, `plan` compares and a checkpoint stores).

pub mod manifest;
pub mod rel_path;

pub use manifest::{ContentHash, Entry, Kind, Manifest, Node, Timestamp};
pub use rel_path::RelPath;
