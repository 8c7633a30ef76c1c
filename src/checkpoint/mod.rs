//! The checkpoint: what `save` writes and `restore` reads, and the snapshot
//! state that `snapshot` leaves for `save`. The byte format is specified in
//! `docs/format.md`.

mod atomic;
mod codec;
pub mod error;
mod guard;
pub mod pack;
pub mod snapshot;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use codec::{BUDGET_PER_TREE_ENTRY, FORMAT_VERSION, MEMORY_BUDGET};
pub(crate) use codec::{MAX_BLOB_SIZE, MAX_SECTION_RAW};
pub use error::{CheckpointError, Role};
pub use pack::{
    files_to_store, write_checkpoint, BlobFile, BlobRecord, Compression, PackReader, VerifyStats,
    WriteOptions, WriteStats, PACK_MAGIC,
};
pub use snapshot::{read_snapshot, write_snapshot, SNAPSHOT_MAGIC};

use crate::build_info::BuildInfo;
use crate::tree::{ContentHash, Manifest};

/// File name of the pack inside a checkpoint directory (`save --output DIR`).
pub const PACK_FILE_NAME: &str = "checkpoint.nckp";

/// Everything a checkpoint says, blobs aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub info: BuildInfo,
    /// P: the tree just before the build (content hashes, modes). A pack
    /// does not store P's mtimes: read back, they are all
    /// `Timestamp::default()`.
    pub before: Manifest,
    /// B: the tree after install (types, modes, ns mtimes, symlink targets).
    pub after: Manifest,
    /// One blob per distinct content of every file in B that is new or
    /// changed relative to P, keyed by its (masked) content hash.
    /// Sorted by hash.
    pub blobs: Vec<BlobInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// The masked content hash, as in B's entries.
    pub hash: ContentHash,
    /// Size of the content as the build left it.
    pub size: u64,
    /// Bytes the blob takes in the pack.
    pub stored_size: u64,
}

/// What `snapshot` records for `save`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub info: BuildInfo,
    pub before: Manifest,
}

#[cfg(test)]
mod tests;
