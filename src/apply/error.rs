//! What can go wrong while applying a plan, each with the path and the
//! operation, and the exit code each maps to.

use crate::exit_code::ExitCode;
use crate::tree::ContentHash;
use nix::errno::Errno;
use std::fmt;
use std::path::PathBuf;

/// The operation that failed, for messages ("cannot <op> <path>: ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    OpenRoot,
    OpenDir,
    CreateFile,
    Write,
    CreateSymlink,
    CreateDir,
    Remove,
    SetMode,
    SetTimes,
    Inspect,
    ReadBlob,
    CreateMarker,
    RemoveMarker,
    CheckMarker,
    ValidatePlan,
    ValidateCheckpoint,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::OpenRoot => "open the build root",
            Op::OpenDir => "open directory",
            Op::CreateFile => "create file",
            Op::Write => "write file",
            Op::CreateSymlink => "create symlink",
            Op::CreateDir => "create directory",
            Op::Remove => "remove",
            Op::SetMode => "set the mode of",
            Op::SetTimes => "set the mtime of",
            Op::Inspect => "inspect",
            Op::ReadBlob => "read the checkpoint content of",
            Op::CreateMarker => "create the restore marker",
            Op::RemoveMarker => "remove the restore marker",
            Op::CheckMarker => "look for the restore marker",
            Op::ValidatePlan => "validate the plan entry",
            Op::ValidateCheckpoint => "check what restore would write",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A system call failed. `path` is absolute (root joined with the
    /// relative path); for a failed walk it is the component that failed.
    #[error("cannot {op} {}: {}", path.display(), describe(*errno))]
    Io { op: Op, path: PathBuf, errno: Errno },

    /// A component of the path (or the entry itself, where the plan expects
    /// a file or directory) is a symlink in the build tree. Never followed.
    #[error(
        "refusing to {op} {}: {} is a symlink in the build tree (nix-checkpoint never follows \
         symlinks while restoring; the tree changed since it was scanned or was planted with a \
         symlink)",
        path.display(),
        symlink.display()
    )]
    SymlinkInTheWay {
        op: Op,
        path: PathBuf,
        symlink: PathBuf,
    },

    /// The checkpoint could not deliver the content of a file.
    #[error("cannot {op} {}: blob {hash:032x}: {source}", path.display())]
    Blob {
        op: Op,
        path: PathBuf,
        hash: ContentHash,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The checkpoint's blob does not have the size its manifest lists.
    #[error(
        "cannot {op} {}: the checkpoint lists {expected} bytes but its content has {actual}",
        path.display()
    )]
    SizeMismatch {
        op: Op,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// The plan asks for something a checkpoint must never ask for
    /// (writing beneath its own symlink, a setuid file, a malformed symlink
    /// target or mtime). Detected before anything is written.
    #[error("unsafe checkpoint: refusing to apply the plan at {}: {reason}", path.display())]
    UnsafePlan {
        op: Op,
        path: PathBuf,
        reason: String,
    },

    /// The plan contradicts itself (a bug in the planner). Detected before
    /// anything is written.
    #[error("internal error: invalid plan at {}: {reason}", path.display())]
    InvalidPlan {
        op: Op,
        path: PathBuf,
        reason: String,
    },

    /// The restore marker is present: an earlier restore was interrupted.
    #[error(
        "an earlier restore into {} was interrupted; the tree is half restored: start the build \
         from a fresh tree",
        root.display()
    )]
    Interrupted { op: Op, root: PathBuf },
}

fn describe(errno: Errno) -> String {
    match errno {
        Errno::ENOSPC => "no space left on device: the disk is full".to_string(),
        Errno::EDQUOT => "disk quota exceeded: the disk is full for this user".to_string(),
        Errno::EROFS => "the file system is read-only".to_string(),
        Errno::EACCES | Errno::EPERM => format!("permission denied ({})", errno.desc()),
        other => other.desc().to_string(),
    }
}

impl ApplyError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ApplyError::Io { op, .. } if *op == Op::CheckMarker => ExitCode::TreeUnreadable,
            // Disk full, read-only, permission, or the tree changed under us:
            // the restore marker stays in the tree.
            ApplyError::Io { .. } => ExitCode::WriteFailed,
            // A symlink planted in the tree (one the checkpoint asked for is
            // refused earlier, as `UnsafePlan`, before anything is written).
            ApplyError::SymlinkInTheWay { .. } => ExitCode::WriteFailed,
            ApplyError::Blob { .. } | ApplyError::SizeMismatch { .. } => {
                ExitCode::CheckpointCorrupt
            }
            ApplyError::UnsafePlan { .. } => ExitCode::CheckpointUnsafe,
            ApplyError::InvalidPlan { .. } => ExitCode::Internal,
            ApplyError::Interrupted { .. } => ExitCode::RestoreInterrupted,
        }
    }

    /// The operation that failed.
    #[cfg(test)]
    pub fn op(&self) -> Op {
        match self {
            ApplyError::Io { op, .. }
            | ApplyError::SymlinkInTheWay { op, .. }
            | ApplyError::Blob { op, .. }
            | ApplyError::SizeMismatch { op, .. }
            | ApplyError::UnsafePlan { op, .. }
            | ApplyError::InvalidPlan { op, .. }
            | ApplyError::Interrupted { op, .. } => *op,
        }
    }
}
