//! Every outcome of a command, with its documented exit code (README table).

/// The exit codes of `nix-checkpoint`. Values are part of the interface:
/// never renumber, only add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

    /// What the code means, for the README's table (a test holds them
    /// equal) and `--help`.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Internal => "internal error (a bug: please report it)",
            ExitCode::Usage => "usage: bad flags, or no `--root` and no `$NIX_BUILD_TOP`",
            ExitCode::FellBack => "restore fell back: nothing restored, the tree is untouched, build in full",
            ExitCode::StateInvalid => "the snapshot state is missing or unreadable (`save` without `snapshot`), or belongs to another tree or other outputs",
            ExitCode::CheckpointMissing => "the checkpoint does not exist",
            ExitCode::CheckpointCorrupt => "the checkpoint is corrupt (truncated, or a checksum fails)",
            ExitCode::CheckpointUnsupported => "not a checkpoint, or a format version this binary does not read",
            ExitCode::CheckpointUnsafe => "the checkpoint is unsafe (a path escaping the tree, duplicates, limits, the memory budget, a name Nix reserves, anything `restore` would refuse to write)",
            ExitCode::TreeUnreadable => "the build tree cannot be read (unreadable file or directory)",
            ExitCode::WriteFailed => "a write failed (disk full, read-only, permission); nothing half-written is left as a checkpoint",
            ExitCode::RestoreInterrupted => "an earlier restore into this tree was interrupted: start from a fresh tree",
            ExitCode::Deferred => "`restore --before-configure` restored nothing yet: configure must run first, then `restore` again (the tree is untouched)",
            ExitCode::CheckpointUnreadable => "the checkpoint exists but cannot be read (permission denied, I/O error): fix access to it, or rebuild it",
        }
    }

    /// The exit-code table `--help` ends with.
    pub fn table() -> String {
        let mut table = String::from("Exit codes:\n");
        for code in ExitCode::ALL {
            table.push_str(&format!("  {:>2}  {}\n", code.code(), code.meaning()));
        }
        table
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

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn all_lists_every_code_once_in_order() {
        for (i, code) in ExitCode::ALL.iter().enumerate() {
            assert_eq!(usize::from(code.code()), i, "{code:?}");
        }
        // A code added after the last one must be added to ALL too.
        let last = *ExitCode::ALL.last().unwrap();
        assert_eq!(last, ExitCode::CheckpointUnreadable);
    }

    #[test]
    fn the_readme_table_is_the_meaning_of_every_code() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let rows: Vec<&str> = readme
            .lines()
            .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        let want: Vec<String> = ExitCode::ALL
            .iter()
            .map(|c| format!("| {} | {} |", c.code(), c.meaning()))
            .collect();
        assert_eq!(rows, want);
    }

    #[test]
    fn help_ends_with_every_code_and_its_meaning() {
        let table = ExitCode::table();
        for code in ExitCode::ALL {
            let line = format!("{:>2}  {}", code.code(), code.meaning());
            assert!(table.contains(&line), "--help lacks {line:?}");
        }
    }
}
