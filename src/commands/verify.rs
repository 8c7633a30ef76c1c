use super::report::{Outcome, VerifyReport};
use super::seconds;
use crate::checkpoint::pack::PackReader;
use crate::checkpoint::{CheckpointError, Role};
use crate::error::Error;
use crate::tree::Timestamp;
use std::path::Path;
use std::time::Instant;

pub fn run(checkpoint: &Path, started: Instant) -> Result<Outcome, Error> {
    let reader = PackReader::open(checkpoint)?;
    let verified = reader.verify()?;
    check_restorable(&reader, Timestamp::now())?;
    Ok(Outcome::new(VerifyReport {
        blobs: verified.blobs,
        raw_bytes: verified.raw_bytes,
        seconds: seconds(started),
    }))
}

/// What `restore` refuses before its first write because of the checkpoint
/// alone, whatever the tree (reserved names, setuid files, mtimes beyond
/// what file systems store or that the clock would push there): see
/// [`crate::apply::check_checkpoint`]. Both `verify` and `restore` run it,
/// so a checkpoint `verify` calls intact is one `restore` accepts.
pub(super) fn check_restorable(reader: &PackReader, now: Timestamp) -> Result<(), CheckpointError> {
    let cp = reader.checkpoint();
    let root = Path::new(std::ffi::OsStr::from_bytes(&cp.info.root));
    crate::apply::check_checkpoint(root, &cp.after, now).map_err(|e| {
        let detail = match e {
            crate::apply::ApplyError::UnsafePlan { path, reason, .. } => {
                format!("{}: {reason}", path.display())
            }
            other => other.to_string(),
        };
        unrestorable(
            reader,
            crate::checkpoint::error::Op::CheckRestorable,
            detail,
        )
    })
}

/// The checkpoint of `reader` is unsafe: restore refuses it (`detail` says
/// why) before its first write.
pub(super) fn unrestorable(
    reader: &PackReader,
    op: crate::checkpoint::error::Op,
    detail: String,
) -> CheckpointError {
    CheckpointError::Unsafe {
        role: Role::Checkpoint,
        path: reader.path().to_owned(),
        op,
        detail: crate::checkpoint::error::DecodeError::Unrestorable(detail).into(),
    }
}

use std::os::unix::ffi::OsStrExt;
