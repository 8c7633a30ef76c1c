//! The plan sorted into the steps [`apply`](super::apply) takes (see the
//! module documentation of `apply`): removals deepest first, directories
//! parents first, files and symlinks and their times grouped by parent
//! directory, directory modes and mtimes deepest first. Pure.

use crate::plan::{Action, Plan};
use crate::tree::{Entry, Kind, RelPath, Timestamp};

/// The plan's actions, split by phase and sorted in execution order.
pub(super) struct Work<'p> {
    /// `(path, kind, is a Remove action)`, deepest first.
    pub(super) removals: Vec<(&'p RelPath, Kind, bool)>,
    /// Parents first.
    pub(super) dirs: Vec<&'p Entry>,
    /// Files and symlinks, grouped by parent directory.
    pub(super) leaves: Vec<&'p Entry>,
    /// `Retime` / `Freshen` of files and symlinks, grouped by parent.
    pub(super) times: Vec<&'p Action>,
    /// Directory modes (if set) and mtimes, deepest first.
    pub(super) dir_times: Vec<DirTime<'p>>,
    pub(super) skips: u64,
}

pub(super) struct DirTime<'p> {
    pub(super) path: &'p RelPath,
    pub(super) mode: Option<u32>,
    pub(super) mtime: Timestamp,
    pub(super) retime: bool,
    pub(super) freshen: bool,
}

/// `(parent, name)`; the parent of a top-level entry is empty.
pub(super) fn split(path: &RelPath) -> (&[u8], &[u8]) {
    let bytes = path.as_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&[], bytes),
    }
}

impl<'p> Work<'p> {
    pub(super) fn sort(plan: &'p Plan) -> Work<'p> {
        let mut work = Work {
            removals: Vec::new(),
            dirs: Vec::new(),
            leaves: Vec::new(),
            times: Vec::new(),
            dir_times: Vec::new(),
            skips: 0,
        };
        for action in &plan.actions {
            match action {
                Action::Create { entry, replaces } => {
                    if let Some(kind) = replaces {
                        work.removals.push((&entry.path, *kind, false));
                    }
                    if entry.node.kind() == Kind::Dir {
                        work.dirs.push(entry);
                        work.dir_times.push(DirTime {
                            path: &entry.path,
                            mode: Some(entry.mode),
                            mtime: entry.mtime,
                            retime: false,
                            freshen: false,
                        });
                    } else {
                        work.leaves.push(entry);
                    }
                }
                Action::Remove { path, kind } => work.removals.push((path, *kind, true)),
                Action::Retime {
                    path,
                    kind: Kind::Dir,
                    mode,
                    mtime,
                } => work.dir_times.push(DirTime {
                    path,
                    mode: Some(*mode),
                    mtime: *mtime,
                    retime: true,
                    freshen: false,
                }),
                Action::Freshen {
                    path,
                    kind: Kind::Dir,
                    ..
                } => work.dir_times.push(DirTime {
                    path,
                    mode: None,
                    mtime: plan.fresh_mtime,
                    retime: false,
                    freshen: true,
                }),
                Action::Retime { .. } | Action::Freshen { .. } => work.times.push(action),
                Action::Skip { .. } => work.skips += 1,
            }
        }
        // Bytewise order puts a directory before everything inside it, so
        // the reverse puts every descendant before its ancestors.
        work.removals.sort_by(|a, b| b.0.cmp(a.0));
        work.dirs.sort_by(|a, b| a.path.cmp(&b.path));
        work.leaves
            .sort_by(|a, b| split(&a.path).cmp(&split(&b.path)));
        work.times
            .sort_by(|a, b| split(a.path()).cmp(&split(b.path())));
        work.dir_times.sort_by(|a, b| b.path.cmp(a.path));
        work
    }
}
