//! [`CheckpointError`]: everything that can go wrong reading or writing a pack or
//! a state file, each variant naming the file and the operation.

use crate::exit_code::ExitCode;
use std::io;
use std::path::PathBuf;

/// Which kind of file a read error is about: it decides the exit code and
/// the advice in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A checkpoint pack (`checkpoint.nckp`), read by `restore`/`verify`.
    Checkpoint,
    /// The snapshot state file, written by `snapshot`, read by `save`.
    Snapshot,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Checkpoint => "checkpoint",
            Role::Snapshot => "snapshot state",
        })
    }
}

impl Role {
    fn remedy_missing(self) -> &'static str {
        match self {
            Role::Checkpoint => "check the path, or build the checkpoint with prepareCheckpointBuild",
            Role::Snapshot => "run `nix-checkpoint snapshot --state FILE` before the build and pass the same --state to `save`",
        }
    }

    fn remedy_rebuild(self) -> &'static str {
        match self {
            Role::Checkpoint => "rebuild the checkpoint with prepareCheckpointBuild",
            Role::Snapshot => "run `nix-checkpoint snapshot --state FILE` again before the build",
        }
    }

    fn remedy_unsupported(self) -> &'static str {
        match self {
            Role::Checkpoint => "this nix-checkpoint reads format version 2: rebuild the checkpoint with prepareCheckpointBuild using this nix-checkpoint",
            Role::Snapshot => "run `snapshot` and `save` with the same nix-checkpoint",
        }
    }

    fn remedy_unsafe(self) -> &'static str {
        match self {
            Role::Checkpoint => "it was refused and nothing was written; rebuild the checkpoint with prepareCheckpointBuild from a trusted source",
            Role::Snapshot => "run `nix-checkpoint snapshot --state FILE` again before the build",
        }
    }
}

/// An error about a pack or state file. Every variant carries the file and
/// the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file does not exist (or a path component is missing).
    #[error("{}: {role} not found ({op}): {source}; {}", .path.display(), .role.remedy_missing())]
    Missing {
        role: Role,
        path: PathBuf,
        op: String,
        source: io::Error,
    },
    /// The file exists but reading it failed (I/O error, permission).
    #[error("{}: cannot {op} ({role}): {source}; {}", .path.display(), .role.remedy_rebuild())]
    Read {
        role: Role,
        path: PathBuf,
        op: String,
        source: io::Error,
    },
    /// Truncated, or a checksum does not match.
    #[error("{}: the {role} is corrupt ({op}): {detail}; {}", .path.display(), .role.remedy_rebuild())]
    Corrupt {
        role: Role,
        path: PathBuf,
        op: String,
        detail: String,
    },
    /// Not a file of ours, or a format version / feature this binary lacks.
    #[error("{}: not a supported {role} ({op}): {detail}; {}", .path.display(), .role.remedy_unsupported())]
    Unsupported {
        role: Role,
        path: PathBuf,
        op: String,
        detail: String,
    },
    /// Checksums match but the content is hostile or inconsistent: a path
    /// escaping the tree, duplicates, a count or size beyond limits, a
    /// decompression bomb, a missing blob.
    #[error("{}: unsafe {role} ({op}): {detail}; {}", .path.display(), .role.remedy_unsafe())]
    Unsafe {
        role: Role,
        path: PathBuf,
        op: String,
        detail: String,
    },
    /// Writing the pack or state file failed; nothing was left behind.
    #[error("{}: cannot {op}: {source}{}", .path.display(), write_hint(.source))]
    Write {
        path: PathBuf,
        op: String,
        source: io::Error,
    },
    /// Reading a build-tree file to store it failed, or it changed while
    /// being saved.
    #[error("{}: cannot {op}: {source}; the build tree must not change while `save` runs", .path.display())]
    TreeRead {
        path: PathBuf,
        op: String,
        source: io::Error,
    },
    /// The writer was given inconsistent data (a bug in the caller).
    #[error("{}: cannot {op}: {detail} (this is a bug in nix-checkpoint, please report it)", .path.display())]
    InvalidInput {
        path: PathBuf,
        op: String,
        detail: String,
    },
}

fn write_hint(err: &io::Error) -> &'static str {
    use nix::errno::Errno;
    match err.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOSPC) | Some(Errno::EDQUOT) => {
            " (disk full: free space on the build's file system, then save again; no checkpoint was written)"
        }
        Some(Errno::EROFS) => " (read-only file system; no checkpoint was written)",
        Some(Errno::EACCES) | Some(Errno::EPERM) => {
            " (permission denied: the output directory must be writable; no checkpoint was written)"
        }
        _ => " (no checkpoint was written)",
    }
}

impl CheckpointError {
    pub fn exit_code(&self) -> ExitCode {
        let role = match self {
            CheckpointError::Missing { role, .. }
            | CheckpointError::Read { role, .. }
            | CheckpointError::Corrupt { role, .. }
            | CheckpointError::Unsupported { role, .. }
            | CheckpointError::Unsafe { role, .. } => *role,
            CheckpointError::Write { .. } => return ExitCode::WriteFailed,
            CheckpointError::TreeRead { .. } => return ExitCode::TreeUnreadable,
            CheckpointError::InvalidInput { .. } => return ExitCode::Internal,
        };
        if role == Role::Snapshot {
            return ExitCode::StateInvalid;
        }
        match self {
            CheckpointError::Missing { .. } => ExitCode::CheckpointMissing,
            CheckpointError::Read { .. } => ExitCode::CheckpointUnreadable,
            CheckpointError::Corrupt { .. } => ExitCode::CheckpointCorrupt,
            CheckpointError::Unsupported { .. } => ExitCode::CheckpointUnsupported,
            _ => ExitCode::CheckpointUnsafe,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            CheckpointError::Missing { path, .. }
            | CheckpointError::Read { path, .. }
            | CheckpointError::Corrupt { path, .. }
            | CheckpointError::Unsupported { path, .. }
            | CheckpointError::Unsafe { path, .. }
            | CheckpointError::Write { path, .. }
            | CheckpointError::TreeRead { path, .. }
            | CheckpointError::InvalidInput { path, .. } => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_says_so() {
        let e = CheckpointError::Write {
            path: "/out/.checkpoint.nckp.tmp".into(),
            op: "write blob data".into(),
            source: io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32),
        };
        let msg = e.to_string();
        assert!(msg.contains("disk full"), "{msg}");
        assert!(msg.contains("/out/.checkpoint.nckp.tmp"), "{msg}");
        assert!(msg.contains("write blob data"), "{msg}");
        assert_eq!(e.exit_code(), ExitCode::WriteFailed);
    }

    #[test]
    fn state_errors_are_state_invalid() {
        let e = CheckpointError::Corrupt {
            role: Role::Snapshot,
            path: "s".into(),
            op: "x".into(),
            detail: "y".into(),
        };
        assert_eq!(e.exit_code(), ExitCode::StateInvalid);
        assert!(e.to_string().contains("snapshot"));
        let e = CheckpointError::Corrupt {
            role: Role::Checkpoint,
            path: "s".into(),
            op: "x".into(),
            detail: "y".into(),
        };
        assert_eq!(e.exit_code(), ExitCode::CheckpointCorrupt);
        assert!(e.to_string().contains("prepareCheckpointBuild"));
    }
}
