//! The build tree: validated paths, the manifest model, and the scanner.

pub mod manifest;
pub mod rel_path;
pub mod scan;

pub use manifest::{ContentHash, Entry, Kind, Manifest, Node, Timestamp};
pub use rel_path::RelPath;
