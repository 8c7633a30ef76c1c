//! The three-way merge of *before* (P, the tree just before the old build),
//! *after* (B, the tree after it) and *now* (C, the new tree about to build).
//!
//! Pure: no I/O, no clock. [`plan`] returns a [`Plan`] that `apply` executes
//! and `restore --dry-run` prints.
//!
//! # Rules
//!
//! "Same as P" means [`Entry::same_content`]: type, masked hash and mode;
//! mtimes are ignored. Per path:
//!
//! | P | B                  | C               | action                                  |
//! |---|--------------------|-----------------|-----------------------------------------|
//! | x | same as P          | same as P       | `Retime` (keep C, B's mode and mtime)   |
//! | x | x' (other content, type or mode) | same as P | `Create` B's version, replacing C's |
//! | x | absent             | same as P       | `Remove`                                |
//! | - | y                  | absent          | `Create` B's version                    |
//! | * | *                  | differs from P, or P absent | `Freshen` (the user's change wins) |
//! | x | *                  | absent          | nothing: the change deleted it          |
//!
//! Where the table is silent:
//!
//! * **Directories whose mode the build changed** (P = C = dir, B = dir with
//!   another mode) are `Retime`d with B's mode: "creating" B's directory
//!   would mean removing C's and everything in it. `Retime` therefore always
//!   sets B's mode, which for files and symlinks equals C's.
//! * **Unchanged entries are always `Retime`d**, even when C's mode and mtime
//!   already equal B's: simpler, deterministic, and a directory's mtime
//!   changes anyway while `apply` writes into it.
//! * **Removing or replacing a directory** of C (B deleted it, or turned it
//!   into a file or symlink) needs every entry under it in C to be
//!   `Remove`d; otherwise the directory is kept and its action becomes
//!   `Skip { DirectoryNotEmpty }` (B's file or symlink is not placed; the
//!   build recreates it if it needs it).
//! * **Nothing is written under a path the plan does not leave as a
//!   directory.** A `Create` below a kept file or symlink (the user replaced
//!   a directory by a file, or planted a symlink where B has a directory)
//!   becomes `Skip { AncestorNotDirectory(a) }`; below a directory the user
//!   deleted (P and B have it, C does not) it becomes
//!   `Skip { AncestorRemoved(a) }`, so B's products never resurrect it. `a` is
//!   the outermost such ancestor. Entries of C never lie under such a path
//!   unless they are removed too, so no action ever goes through a symlink.
//! * **Symlink targets.** make follows symlinks, so when a symlink is
//!   `Freshen`ed (changed *or* new: a new link over an old product also needs
//!   its target to look new), its target is resolved in the merged tree:
//!   relative to the link's directory, `..` handled physically, intermediate
//!   symlinks followed (at most 40), absolute targets and targets escaping
//!   the root ignored (the root is unknown here). If it names a file the
//!   plan keeps or creates, that file gets the fresh mtime too:
//!   a `Retime`d file becomes `Freshen { SymlinkTarget }` (C's content and
//!   mode already are B's); a `Create`d file stays a `Create` (B's content
//!   must still be written) but with `entry.mtime = fresh_mtime`. Either way
//!   the *content* is the correct one; only its mtime is newer, which can
//!   only make more targets rebuild, never fewer: safe. A `Freshen`ed target
//!   keeps its own reason. Directories are not freshened this way.
//! * **No mtime in the future.** `fresh_mtime = now`. The restored mtimes
//!   (those of every `Retime` and every `Create` other than the freshened
//!   symlink targets above) are B's, all moved back by the same amount when
//!   the newest of them is later than `now - 1 s` (a checkpoint from a
//!   machine whose clock was ahead, or less than a second old), so that the
//!   newest is exactly `now - 1 s`: their order and gaps are kept, none
//!   lies in the future, and the fresh mtime is newer than all of them.
//!   Otherwise make would see products newer than the files the build is
//!   about to write (the rebuilt `main.o` older than the restored `app`,
//!   so no relink): a silently stale build.

use crate::tree::{Entry, Kind, Manifest, Node, RelPath, Timestamp};
use std::fmt;

#[cfg(test)]
mod tests;

/// One thing to do to the tree. Actions are listed in path order; `apply`
/// decides the order of execution (removals, then directories, then files,
/// then times, directory times last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make the path hold B's entry (file content from the checkpoint,
    /// symlink, or directory), with B's mode and `entry.mtime`. `replaces` is
    /// the kind of C's entry that must be removed first, if any; when it is
    /// a directory, every entry under it has its own `Remove`, so it is empty
    /// once those are done. `entry.mtime` is B's mtime, except for the
    /// target of a freshened symlink, where it is the plan's `fresh_mtime`.
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
    /// A directory is only removed when everything under it is too.
    Remove { path: RelPath, kind: Kind },
    /// C differs from P or is new: the user's change wins; it keeps its
    /// content and gets the plan's fresh mtime.
    Freshen {
        path: RelPath,
        kind: Kind,
        reason: FreshReason,
    },
    /// B's version cannot be placed: an ancestor is kept as a non-directory
    /// or was deleted, or C's directory must stay for the user's files
    /// (whether B replaced it or deleted it). The build recreates what it
    /// needs. Nothing to do on disk.
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
    /// An ancestor is absent from the merged tree (the change deleted it).
    AncestorRemoved(RelPath),
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
    /// `now`, strictly newer than every mtime the plan restores (which are
    /// at most `now - 1 s`).
    pub fresh_mtime: Timestamp,
    /// How far (ns) every restored mtime was moved back because the newest
    /// lay less than 1 s before `now`, or after it (the checkpoint's clock
    /// was ahead of this machine's); 0 otherwise.
    pub shifted_back_nanos: i128,
    /// The restored mtimes at or after this one (B's, before the move) are
    /// the ones moved back by `shifted_back_nanos`.
    pub shifted_from: Timestamp,
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
    /// What a restore should tell the user about this plan, beyond counts.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.shifted_back_nanos > 0 {
            warnings.push(format!(
                "the checkpoint's newest mtime lies {:.3} s after this machine's clock minus 1 s \
                 (its build ran on a machine whose clock was ahead, or moments ago): every \
                 restored mtime was moved back by that much, keeping their order",
                self.shifted_back_nanos as f64 / 1e9
            ));
        }
        warnings
    }

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

/// What the planner decided for one path, before it becomes an [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Nothing,
    Freshen(FreshReason),
    Retime,
    Create,
    /// `Create` with the fresh mtime: the target of a freshened symlink.
    FreshCreate,
    Remove,
    NotEmpty,
    /// Below the row `ancestor`, which the plan leaves as a non-directory
    /// (`not_dir`) or absent.
    Blocked {
        ancestor: usize,
        not_dir: bool,
    },
}

struct Row<'a> {
    path: &'a RelPath,
    b: Option<&'a Entry>,
    c: Option<&'a Entry>,
    d: Decision,
}

impl<'a> Row<'a> {
    /// The entry the path holds once the plan is applied (mtimes aside).
    fn merged(&self) -> Option<&'a Entry> {
        match self.d {
            Decision::Freshen(_) | Decision::Retime | Decision::NotEmpty => self.c,
            Decision::Create | Decision::FreshCreate => self.b,
            Decision::Remove | Decision::Nothing | Decision::Blocked { .. } => None,
        }
    }
}

/// The per-path rule of the table, ignoring the rest of the tree.
fn decide(p: Option<&Entry>, b: Option<&Entry>, c: Option<&Entry>) -> Decision {
    match (p, b, c) {
        (None, _, Some(_)) => Decision::Freshen(FreshReason::New),
        (Some(p), _, Some(c)) if !p.same_content(c) => Decision::Freshen(FreshReason::Changed),
        (Some(p), Some(b), Some(c)) => {
            let both_dirs = b.node.kind() == Kind::Dir && c.node.kind() == Kind::Dir;
            if b.same_content(p) || both_dirs {
                Decision::Retime
            } else {
                Decision::Create
            }
        }
        (Some(_), None, Some(_)) => Decision::Remove,
        (None, Some(_), None) => Decision::Create,
        (_, _, None) => Decision::Nothing,
    }
}

/// Merges the three sorted entry lists into one row per path, in path order.
fn union<'a>(p: &'a [Entry], b: &'a [Entry], c: &'a [Entry]) -> Vec<Row<'a>> {
    let mut rows = Vec::with_capacity(p.len().max(b.len()).max(c.len()));
    let (mut i, mut j, mut k) = (0, 0, 0);
    loop {
        let mut path: Option<&'a RelPath> = None;
        for e in [p.get(i), b.get(j), c.get(k)].into_iter().flatten() {
            if path.map_or(true, |m| e.path < *m) {
                path = Some(&e.path);
            }
        }
        let Some(path) = path else { break };
        let take = |list: &'a [Entry], at: &mut usize| match list.get(*at) {
            Some(e) if e.path == *path => {
                *at += 1;
                Some(e)
            }
            _ => None,
        };
        let (pe, be, ce) = (take(p, &mut i), take(b, &mut j), take(c, &mut k));
        rows.push(Row {
            path,
            b: be,
            c: ce,
            d: decide(pe, be, ce),
        });
    }
    rows
}

struct Planner<'a> {
    rows: Vec<Row<'a>>,
    /// The row of each row's parent directory, `None` at the top level.
    parents: Vec<Option<usize>>,
}

impl<'a> Planner<'a> {
    fn find(&self, path: &[u8]) -> Option<usize> {
        self.rows
            .binary_search_by(|r| r.path.as_bytes().cmp(path))
            .ok()
    }

    fn new(rows: Vec<Row<'a>>) -> Self {
        let mut planner = Planner {
            rows,
            parents: Vec::new(),
        };
        planner.parents = (0..planner.rows.len())
            .map(|i| planner.find_parent(i))
            .collect();
        planner
    }

    /// The row of the parent directory (every parent of a manifest entry is
    /// in the same manifest, hence a row).
    fn find_parent(&self, i: usize) -> Option<usize> {
        let bytes = self.rows[i].path.as_bytes();
        let slash = bytes.iter().rposition(|&b| b == b'/')?;
        let parent = self.find(&bytes[..slash]);
        debug_assert!(
            parent.is_some(),
            "parent of {:?} missing",
            self.rows[i].path
        );
        parent
    }

    /// A directory of C is removed or replaced only if every entry under it
    /// in C is removed. Children sort after their parent, so a reverse pass
    /// settles every child before its parent.
    fn keep_nonempty_dirs(&mut self) {
        let mut kept_below = vec![false; self.rows.len()];
        for i in (0..self.rows.len()).rev() {
            let row = &mut self.rows[i];
            if row.c.is_none() {
                continue;
            }
            if kept_below[i] && matches!(row.d, Decision::Remove | Decision::Create) {
                row.d = Decision::NotEmpty;
            }
            if row.d != Decision::Remove {
                if let Some(parent) = self.parents[i] {
                    kept_below[parent] = true;
                }
            }
        }
    }

    /// Nothing is created under a path the plan leaves as a non-directory or
    /// absent. Parents sort before their children.
    fn block_under_non_dirs(&mut self) {
        // For each row: `Some((ancestor, not_dir))` if nothing may be
        // written below it.
        let mut closed: Vec<Option<(usize, bool)>> = vec![None; self.rows.len()];
        for i in 0..self.rows.len() {
            let inherited = self.parents[i].and_then(|parent| closed[parent]);
            let row = &mut self.rows[i];
            closed[i] = match inherited {
                Some((ancestor, not_dir)) => {
                    match row.d {
                        Decision::Create => row.d = Decision::Blocked { ancestor, not_dir },
                        // C's entries under a replaced or removed directory
                        // are all removed (`keep_nonempty_dirs`).
                        Decision::Remove | Decision::Nothing => {}
                        other => debug_assert!(false, "{:?}: {other:?} below a non-dir", row.path),
                    }
                    Some((ancestor, not_dir))
                }
                None => match row.merged() {
                    Some(e) if e.node.kind() == Kind::Dir => None,
                    Some(_) => Some((i, true)),
                    None => Some((i, false)),
                },
            };
        }
    }

    /// The row of the file that `target`, the target of the symlink at
    /// `link`, names in the merged tree, if any.
    fn resolve(&self, link: &RelPath, target: &'a [u8]) -> Option<usize> {
        const MAX_HOPS: usize = 40;
        fn push<'t>(stack: &mut Vec<&'t [u8]>, target: &'t [u8]) {
            let parts: Vec<&[u8]> = target.split(|&b| b == b'/').collect();
            // A trailing slash demands a directory: "." after a file fails.
            if parts.len() > 1 && parts[parts.len() - 1].is_empty() {
                stack.push(b".");
            }
            stack.extend(parts.into_iter().rev().filter(|part| !part.is_empty()));
        }
        if target.first().map_or(true, |&b| b == b'/') {
            return None;
        }
        let mut dir: Vec<u8> = link
            .parent()
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_default();
        let mut stack = Vec::new();
        push(&mut stack, target);
        let mut hops = 0;
        let mut file = None;
        while let Some(part) = stack.pop() {
            if file.is_some() {
                return None; // a component after a file
            }
            match part {
                b"." => {}
                b".." => {
                    if dir.is_empty() {
                        return None; // escapes the root
                    }
                    let cut = dir.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    dir.truncate(cut);
                }
                name => {
                    let mut path = dir.clone();
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(name);
                    let i = self.find(&path)?;
                    match &self.rows[i].merged()?.node {
                        Node::Dir => dir = path,
                        Node::File { .. } => file = Some(i),
                        Node::Symlink { target, .. } => {
                            hops += 1;
                            if hops > MAX_HOPS || target.first().map_or(true, |&b| b == b'/') {
                                return None;
                            }
                            push(&mut stack, target);
                        }
                    }
                }
            }
        }
        file
    }

    /// Gives the target of every freshened symlink the fresh mtime.
    fn freshen_symlink_targets(&mut self) {
        let mut targets = Vec::new();
        for row in &self.rows {
            if let (Decision::Freshen(_), Some(c)) = (row.d, row.c) {
                if let Node::Symlink { target, .. } = &c.node {
                    targets.extend(self.resolve(row.path, target));
                }
            }
        }
        for i in targets {
            let row = &mut self.rows[i];
            row.d = match row.d {
                Decision::Retime => Decision::Freshen(FreshReason::SymlinkTarget),
                Decision::Create => Decision::FreshCreate,
                other => other,
            };
        }
    }

    fn finish(self, now: Timestamp) -> Plan {
        let restored_mtimes: Vec<Timestamp> = self
            .rows
            .iter()
            .filter_map(|r| match r.d {
                Decision::Create | Decision::Retime => r.b.map(|b| b.mtime),
                _ => None,
            })
            .collect();
        let (shifted_from, shift) = clock_shift(restored_mtimes, now);
        let restored = |t: Timestamp| {
            if shift > 0 && t >= shifted_from {
                t.minus_nanos(shift)
            } else {
                t
            }
        };
        let fresh_mtime = now;
        let actions = self
            .rows
            .iter()
            .filter_map(|row| {
                let path = row.path.clone();
                let kind = |e: Option<&Entry>| e.expect("entry for action").node.kind();
                Some(match row.d {
                    Decision::Nothing => return None,
                    Decision::Freshen(reason) => Action::Freshen {
                        path,
                        kind: kind(row.c),
                        reason,
                    },
                    Decision::Retime => {
                        let b = row.b.expect("retime has B");
                        Action::Retime {
                            path,
                            kind: b.node.kind(),
                            mode: b.mode,
                            mtime: restored(b.mtime),
                        }
                    }
                    Decision::Create | Decision::FreshCreate => {
                        let mut entry = row.b.expect("create has B").clone();
                        entry.mtime = if row.d == Decision::FreshCreate {
                            fresh_mtime
                        } else {
                            restored(entry.mtime)
                        };
                        Action::Create {
                            entry,
                            replaces: row.c.map(|c| c.node.kind()),
                        }
                    }
                    Decision::Remove => Action::Remove {
                        path,
                        kind: kind(row.c),
                    },
                    Decision::NotEmpty => Action::Skip {
                        path,
                        reason: SkipReason::DirectoryNotEmpty,
                    },
                    Decision::Blocked { ancestor, not_dir } => {
                        let ancestor = self.rows[ancestor].path.clone();
                        Action::Skip {
                            path,
                            reason: if not_dir {
                                SkipReason::AncestorNotDirectory(ancestor)
                            } else {
                                SkipReason::AncestorRemoved(ancestor)
                            },
                        }
                    }
                })
            })
            .collect();
        Plan {
            actions,
            fresh_mtime,
            shifted_back_nanos: shift,
            shifted_from,
        }
    }
}

/// Which restored mtimes move back, and by how much (ns), so that none lies
/// after `now - 1 s` and their order is kept: `(from, shift)` moves every
/// mtime `>= from` back by `shift`. The shift is what puts the newest at
/// `now - 1 s`; the moved group is the smallest run of the newest mtimes
/// that, moved, stays strictly after every mtime left in place. So in the
/// ordinary skew case (sources unpacked from the store at mtime 1, products
/// an hour ahead) only the products move, and nothing lands before 1970.
fn clock_shift(mut mtimes: Vec<Timestamp>, now: Timestamp) -> (Timestamp, i128) {
    mtimes.sort_unstable();
    mtimes.dedup();
    let Some(&newest) = mtimes.last() else {
        return (Timestamp::default(), 0);
    };
    let shift = newest.as_nanos() + 1_000_000_000 - now.as_nanos();
    if shift <= 0 {
        return (Timestamp::default(), 0);
    }
    let mut k = mtimes.len() - 1;
    while k > 0 && mtimes[k].as_nanos() - shift <= mtimes[k - 1].as_nanos() {
        k -= 1;
    }
    (mtimes[k], shift)
}

impl Plan {
    /// The mtime the plan gives a restored entry whose mtime in B is `b`.
    pub fn restored_mtime(&self, b: Timestamp) -> Timestamp {
        if self.shifted_back_nanos > 0 && b >= self.shifted_from {
            b.minus_nanos(self.shifted_back_nanos)
        } else {
            b
        }
    }
}

/// Merges P (`before`), B (`after`) and C (`now_tree`) into a plan. `now` is
/// the current time. Pure and deterministic; one merge pass over the three
/// sorted manifests plus `O(log n)` look-ups per entry.
pub fn plan(before: &Manifest, after: &Manifest, now_tree: &Manifest, now: Timestamp) -> Plan {
    let mut planner = Planner::new(union(before.entries(), after.entries(), now_tree.entries()));
    planner.keep_nonempty_dirs();
    planner.block_under_non_dirs();
    planner.freshen_symlink_targets();
    planner.finish(now)
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for action in &self.actions {
            match action {
                Action::Create { entry, replaces } => {
                    write!(
                        f,
                        "create   {:7} {}",
                        entry.node.kind().to_string(),
                        entry.path
                    )?;
                    match replaces {
                        Some(kind) => write!(f, "  (replaces {kind}")?,
                        None => write!(f, "  (")?,
                    }
                    let sep = if replaces.is_some() { "; " } else { "" };
                    if entry.mtime == self.fresh_mtime {
                        writeln!(f, "{sep}fresh: symlink target)")?
                    } else if replaces.is_some() {
                        writeln!(f, ")")?
                    } else {
                        writeln!(f, "product)")?
                    }
                }
                Action::Retime { path, kind, .. } => {
                    writeln!(f, "retime   {:7} {}", kind.to_string(), path)?
                }
                Action::Remove { path, kind } => {
                    writeln!(f, "remove   {:7} {}", kind.to_string(), path)?
                }
                Action::Freshen { path, kind, reason } => writeln!(
                    f,
                    "fresh    {:7} {}  ({})",
                    kind.to_string(),
                    path,
                    match reason {
                        FreshReason::Changed => "changed",
                        FreshReason::New => "new",
                        FreshReason::SymlinkTarget => "symlink target",
                    }
                )?,
                Action::Skip { path, reason } => {
                    write!(f, "skip             {}  (", path)?;
                    match reason {
                        SkipReason::AncestorNotDirectory(a) => {
                            writeln!(f, "{a} is kept as a non-directory)")?
                        }
                        SkipReason::AncestorRemoved(a) => writeln!(f, "{a} was deleted)")?,
                        SkipReason::DirectoryNotEmpty => writeln!(f, "holds kept entries)")?,
                    }
                }
            }
        }
        let c = self.counts();
        writeln!(
            f,
            "{} to create, {} to retime, {} to remove, {} fresh, {} skipped; fresh mtime {}.{:09}",
            c.created,
            c.retimed,
            c.removed,
            c.freshened,
            c.skipped,
            self.fresh_mtime.secs,
            self.fresh_mtime.nanos
        )
    }
}
