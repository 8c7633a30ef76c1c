//! Every outcome of a command, with its documented exit code (README table).

/// The exit codes of `nix-checkpoint`. Values are part of the interface:
/// never renumber, only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[repr(u8)]
pub enum ExitCode {
    /// Done as asked.
    Success = 0,
    /// A bug: an invariant did not hold. Please report it.
    Internal = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// `restore` restored nothing on purpose (changed dependencies, relocated
    /// root, or `--fallback-on-error`); the tree is untouched and the build
    /// must simply run in full.
    FellBack = 3,
    /// The snapshot state is missing or unreadable (`save` without `snapshot`).
    StateInvalid = 4,
    /// The checkpoint does not exist.
    CheckpointMissing = 5,
    /// The checkpoint is truncated or fails a checksum.
    CheckpointCorrupt = 6,
    /// Not a checkpoint, or of a format version this binary does not read.
    CheckpointUnsupported = 7,
    /// The checkpoint is well-formed but unsafe (a path escapes the tree,
    /// duplicates, a size beyond limits). Nothing was written.
    CheckpointUnsafe = 8,
    /// Reading the build tree failed (unreadable file or directory).
    TreeUnreadable = 9,
    /// Writing failed (disk full, read-only file system, permission). No
    /// checkpoint was left behind, or the restore marker stays in the tree.
    WriteFailed = 10,
    /// An earlier restore into this tree was interrupted: the tree is half
    /// restored and must be rebuilt from scratch.
    RestoreInterrupted = 11,
    /// `restore --before-configure` restored nothing yet: configure must run
    /// first (its inputs or variables changed); run `restore` again after it.
    /// The tree is untouched.
    Deferred = 12,
    /// The checkpoint exists but cannot be read (permission denied, an I/O
    /// error): not corrupt, not restored; fix access to it or rebuild it.
    CheckpointUnreadable = 13,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub const ALL: [ExitCode; 14] = [
        ExitCode::Success,
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::FellBack,
        ExitCode::StateInvalid,
        ExitCode::CheckpointMissing,
        ExitCode::CheckpointCorrupt,
        ExitCode::CheckpointUnsupported,
        ExitCode::CheckpointUnsafe,
        ExitCode::TreeUnreadable,
        ExitCode::WriteFailed,
        ExitCode::RestoreInterrupted,
        ExitCode::Deferred,
        ExitCode::CheckpointUnreadable,
    ];
}
