//! Executes a merge [`Plan`](crate::merge::Plan) on disk, never following a
//! symlink in any path component.

use crate::merge::Plan;
use crate::store_path::rewrite::Rewriter;
use crate::tree::ContentHash;
use std::path::Path;

/// Where file contents come from: the checkpoint pack.
pub trait BlobSource: Sync {
    /// The content of the blob with this hash, checksum-verified.
    fn read_blob(
        &self,
        hash: ContentHash,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyStats {
    pub files_written: u64,
    pub bytes_written: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {}

pub fn apply(
    root: &Path,
    plan: &Plan,
    blobs: &dyn BlobSource,
    rewriter: &Rewriter,
) -> Result<ApplyStats, ApplyError> {
    let _ = (root, plan, blobs, rewriter);
    todo!("apply")
}
