//! The three-way merge of *before* (P, the tree just before the old build),
//! *after* (B, the tree after it) and *now* (C, the new tree about to build).
//!
//! Pure: no I/O, no clock. [`plan`] returns a [`Plan`] that `apply` executes
//! and `restore --dry-run` prints.

use crate::tree::{Entry, Kind, Manifest, RelPath, Timestamp};
use std::fmt;

/// One thing to do to the tree. Actions are listed in path order; `apply`
/// decides the order of execution (removals, then directories, then files,
/// then times, directory times last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make the path hold B's entry (file content from the checkpoint,
    /// symlink, or directory), with B's mode and mtime. `replaces` is the kind
    /// of C's entry that must be removed first, if any.
    Create {
        entry: Entry,
        replaces: Option<Kind>,
    },
    /// C's content is already B's: set B's mode and mtime only.
    Retime {
        path: RelPath,
        kind: Kind,
        mode: u32,
        mtime: Timestamp,
    },
    /// The build deleted what C still has (unchanged since P): remove it.
    Remove { path: RelPath, kind: Kind },
    /// C differs from P or is new: the user's change wins; it keeps its
    /// content and gets the plan's fresh mtime.
    Freshen {
        path: RelPath,
        kind: Kind,
        reason: FreshReason,
    },
    /// B has an entry here but it cannot be placed (an ancestor is kept as a
    /// non-directory, or a directory must stay for the user's files). The
    /// build recreates it if it needs it.
    Skip { path: RelPath, reason: SkipReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshReason {
    /// In P, and C differs from it (content, type or mode).
    Changed,
    /// Not in P.
    New,
    /// The target of a changed symlink: make follows symlinks, so the target
    /// must look changed too.
    SymlinkTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// An ancestor is kept as a file or symlink.
    AncestorNotDirectory(RelPath),
    /// A directory that still holds entries the plan keeps.
    DirectoryNotEmpty,
}

impl Action {
    pub fn path(&self) -> &RelPath {
        match self {
            Action::Create { entry, .. } => &entry.path,
            Action::Retime { path, .. }
            | Action::Remove { path, .. }
            | Action::Freshen { path, .. }
            | Action::Skip { path, .. } => path,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Sorted by path; at most one action per path.
    pub actions: Vec<Action>,
    /// Strictly newer than every mtime the plan restores:
    /// `max(now, newest restored + 1 s)`.
    pub fresh_mtime: Timestamp,
}

/// Counts of each kind of action, for summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PlanCounts {
    pub created: usize,
    pub retimed: usize,
    pub removed: usize,
    pub freshened: usize,
    pub skipped: usize,
}

impl Plan {
    pub fn counts(&self) -> PlanCounts {
        let mut c = PlanCounts::default();
        for action in &self.actions {
            match action {
                Action::Create { .. } => c.created += 1,
                Action::Retime { .. } => c.retimed += 1,
                Action::Remove { .. } => c.removed += 1,
                Action::Freshen { .. } => c.freshened += 1,
                Action::Skip { .. } => c.skipped += 1,
            }
        }
        c
    }
}

/// Merges P, B and C into a plan. `now` is the current time.
pub fn plan(before: &Manifest, after: &Manifest, now_tree: &Manifest, now: Timestamp) -> Plan {
    let _ = (before, after, now_tree, now);
    todo!("merge planner")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            match action {
                Action::Create { entry, .. } => writeln!(
                    f,
                    "create   {:7} {}",
                    entry.node.kind().to_string(),
                    entry.path
                )?,
                Action::Retime { path, kind, .. } => {
                    writeln!(f, "retime   {:7} {}", kind.to_string(), path)?
                }
                Action::Remove { path, kind } => {
                    writeln!(f, "remove   {:7} {}", kind.to_string(), path)?
                }
                Action::Freshen { path, kind, .. } => {
                    writeln!(f, "fresh    {:7} {}", kind.to_string(), path)?
                }
                Action::Skip { path, .. } => writeln!(f, "skip             {}", path)?,
            }
        }
        Ok(())
    }
}
