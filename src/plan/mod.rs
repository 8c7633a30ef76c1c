//! The three-way merge of *before* (P, the tree just before the old build),
//! *after* (B, the tree after it) and *now* (C, the new tree about to build).
//!
//! Pure: no I/O, no clock. [`plan`] returns a [`Plan`] that `apply` executes
//! and `restore --dry-run` prints.
//!
//! # Rules
//!
//! "Same as P" means [`Entry::same_content_and_mode`]: type, masked hash and mode;
//! mtimes are ignored. Per path:
//!
//! | P | B                  | C               | action                                  |
//! |---|--------------------|-----------------|-----------------------------------------|
//! | x | same as P          | same as P       | `Retime` (keep C, B's mode and mtime)   |
//! | x | x' (other content, type or mode) | same as P | `Create` B's version, replacing C's |
//! | x | absent             | same as P       | `Remove`                                |
//! | - | y                  | absent          | `Create` B's version                    |
//! | - | y                  | same as B       | `Retime` (the new build made it again)  |
//! | * | *                  | differs from P, or P absent (and not B) | `Freshen` (the user's change wins) |
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
//! * **No restored mtime in the future.** The restored mtimes (those of
//!   every `Retime` and every `Create` other than the freshened symlink
//!   targets above) are B's, except when the newest of them is later than
//!   `now` (a checkpoint from a machine whose clock was ahead, or a crafted
//!   one): then the newest ones all move back by the same amount, so that
//!   the newest is exactly `now - 1 s`, with as many of the next newest as
//!   needed to stay after every mtime left in place ([`clock_shift`]): their
//!   order is kept and none lies in the future. Otherwise make would see
//!   products newer than the files the build is about to write (the rebuilt
//!   `main.o` older than the restored `app`, so no relink): a silently
//!   stale build. `fresh_mtime = max(now, newest restored + 1 s)`: `now`
//!   after a move, at most 1 s ahead otherwise (restore waits for it).

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
    /// A static archive of a make build: make recreates it from the
    /// restored objects. `ar r` into an old archive appends new members
    /// where a clean build lists them in rule order; a fresh archive is
    /// byte for byte a clean build's.
    StaticArchive,
    /// Something the scan does not record is at the path (a special file,
    /// or a name it leaves out): nothing is created over it.
    Occupied,
    /// The tree's entry is a hard link to a file outside the tree (or to
    /// an excluded name): its mtime is left alone, so that the file outside
    /// keeps its own.
    LinkedOutside,
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
    /// `max(now, newest restored + 1 s)`: strictly newer than every mtime
    /// the plan restores (none of which lies after `now`), at most 1 s
    /// after `now`.
    pub fresh_mtime: Timestamp,
    /// How far (ns) the newest restored mtimes were moved back because they
    /// lay after `now` (the checkpoint's clock was ahead of this
    /// machine's); 0 otherwise.
    pub shifted_back_nanos: i128,
    /// The restored mtimes at or after this one (B's, before the move) are
    /// the ones moved back by `shifted_back_nanos`.
    pub shifted_from: Timestamp,
    /// Entries that must look newer than every restored one (changed, new,
    /// or the target of a changed symlink) but are hard links to a file
    /// outside the tree, whose mtime restore must not change. Restore
    /// falls back (restores nothing) when this is not empty.
    pub cannot_freshen: Vec<RelPath>,
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
                "the checkpoint's newest mtimes lie in the future of this machine's clock (its \
                 build ran on a machine whose clock was ahead): they were moved back by {:.3} s, \
                 keeping their order",
                self.shifted_back_nanos as f64 / 1e9
            ));
        }
        let (occupied, linked) = self.actions.iter().fold((0, 0), |(o, l), a| match a {
            Action::Skip {
                reason: SkipReason::Occupied,
                ..
            } => (o + 1, l),
            Action::Skip {
                reason: SkipReason::LinkedOutside,
                ..
            } => (o, l + 1),
            _ => (o, l),
        });
        if occupied > 0 {
            warnings.push(format!(
                "{occupied} products not restored: a special file or a name the scan leaves out \
                 is in their place (see restore --dry-run); the build makes them"
            ));
        }
        if linked > 0 {
            warnings.push(format!(
                "{linked} unchanged files not re-timed: they are hard links to files outside \
                 the build tree, whose mtimes restore never changes"
            ));
        }
        warnings
    }

    /// Why this plan must not be applied at all, if so: restore falls back.
    pub fn fall_back_reason(&self) -> Option<String> {
        let first = self.cannot_freshen.first()?;
        let more = match self.cannot_freshen.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        Some(format!(
            "{first}{more} changed since the checkpoint but is a hard link to a file outside \
             the build tree: restore cannot make it newer than the restored products without \
             changing that file's mtime"
        ))
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

/// Turns every `Create` of a new static archive (`*.a`, not in the new
/// tree) into a `Skip`: see [`SkipReason::StaticArchive`]. For make builds
/// only; Ninja, CMake, Meson and automake remove an archive before writing it.
pub fn leave_static_archives_to_make(plan: &mut Plan) {
    for action in &mut plan.actions {
        if let Action::Create {
            entry,
            replaces: None,
        } = action
        {
            if entry.node.kind() == Kind::File && entry.path.file_name().ends_with(b".a") {
                *action = Action::Skip {
                    path: entry.path.clone(),
                    reason: SkipReason::StaticArchive,
                };
            }
        }
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
    /// B's entry cannot go in: something hidden from the scan is there.
    Occupied,
    /// A `Retime` of an entry hard-linked outside the tree: left alone.
    LinkedOutside,
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
    /// In the tree but hidden from the scan (special file, excluded name).
    hidden: bool,
    /// C's entry is hard-linked outside the tree.
    linked_outside: bool,
}

impl<'a> Row<'a> {
    /// The entry the path holds once the plan is applied (mtimes aside).
    fn merged(&self) -> Option<&'a Entry> {
        match self.d {
            Decision::Freshen(_)
            | Decision::Retime
            | Decision::NotEmpty
            | Decision::LinkedOutside => self.c,
            Decision::Create | Decision::FreshCreate => self.b,
            Decision::Remove
            | Decision::Nothing
            | Decision::Occupied
            | Decision::Blocked { .. } => None,
        }
    }
}

/// The per-path rule of the table, ignoring the rest of the tree.
fn decide(p: Option<&Entry>, b: Option<&Entry>, c: Option<&Entry>) -> Decision {
    match (p, b, c) {
        // Made again by the new build (configure ran before a deferred
        // restore) exactly as B has it: B's time, as if never remade.
        (None, Some(b), Some(c)) if b.same_content_and_mode(c) => Decision::Retime,
        (None, _, Some(_)) => Decision::Freshen(FreshReason::New),
        (Some(p), _, Some(c)) if !p.same_content_and_mode(c) => {
            Decision::Freshen(FreshReason::Changed)
        }
        (Some(p), Some(b), Some(c)) => {
            let both_dirs = b.node.kind() == Kind::Dir && c.node.kind() == Kind::Dir;
            if b.same_content_and_mode(p) || both_dirs {
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

/// What the scan of C saw beyond its manifest (see [`crate::scan::Scan`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unrecorded<'a> {
    /// Sorted: special files and excluded names in the tree.
    pub hidden: &'a [RelPath],
    /// Sorted: entries of C hard-linked to a name outside the tree.
    pub linked_outside: &'a [RelPath],
}

/// Merges the three sorted entry lists (and the hidden paths) into one row
/// per path, in path order.
fn union<'a>(p: &'a [Entry], b: &'a [Entry], c: &'a [Entry], seen: Unrecorded<'a>) -> Vec<Row<'a>> {
    let mut rows = Vec::with_capacity(p.len().max(b.len()).max(c.len()));
    let (mut i, mut j, mut k, mut h, mut l) = (0, 0, 0, 0, 0);
    loop {
        let mut path: Option<&'a RelPath> = None;
        let hidden_next = seen.hidden.get(h);
        for e in [p.get(i), b.get(j), c.get(k)]
            .into_iter()
            .flatten()
            .map(|e| &e.path)
            .chain(hidden_next)
        {
            if path.is_none_or(|m| e < m) {
                path = Some(e);
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
        let hidden = hidden_next == Some(path);
        if hidden {
            h += 1;
        }
        while seen.linked_outside.get(l).is_some_and(|x| x < path) {
            l += 1;
        }
        let linked_outside = seen.linked_outside.get(l) == Some(path);
        let d = match decide(pe, be, ce) {
            _ if hidden && ce.is_none() => {
                if be.is_some() {
                    Decision::Occupied
                } else {
                    Decision::Nothing
                }
            }
            Decision::Retime if linked_outside => Decision::LinkedOutside,
            d => d,
        };
        rows.push(Row {
            path,
            b: be,
            c: ce,
            d,
            hidden,
            linked_outside,
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
            if row.hidden && row.c.is_none() {
                if let Some(parent) = self.parents[i] {
                    kept_below[parent] = true;
                }
                continue;
            }
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
                        Decision::Remove | Decision::Nothing | Decision::Occupied => {}
                        other => debug_assert!(false, "{:?}: {other:?} below a non-dir", row.path),
                    }
                    Some((ancestor, not_dir))
                }
                None => match row.merged() {
                    Some(e) if e.node.kind() == Kind::Dir => None,
                    Some(_) => Some((i, true)),
                    None if row.hidden => Some((i, true)),
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
        if target.first().is_none_or(|&b| b == b'/') {
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
                            if hops > MAX_HOPS || target.first().is_none_or(|&b| b == b'/') {
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
                Decision::Retime | Decision::LinkedOutside => {
                    Decision::Freshen(FreshReason::SymlinkTarget)
                }
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
        let (shifted_from, shift) = clock_shift(restored_mtimes.clone(), now);
        let restored = |t: Timestamp| shifted_back(t, shifted_from, shift);
        let fresh_mtime = restored_mtimes
            .iter()
            .map(|&t| restored(t).plus_secs(1))
            .max()
            .map_or(now, |t| t.max(now));
        let cannot_freshen: Vec<RelPath> = self
            .rows
            .iter()
            .filter(|r| r.linked_outside && matches!(r.d, Decision::Freshen(_)))
            .map(|r| r.path.clone())
            .collect();
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
                    Decision::Occupied => Action::Skip {
                        path,
                        reason: SkipReason::Occupied,
                    },
                    Decision::LinkedOutside => Action::Skip {
                        path,
                        reason: SkipReason::LinkedOutside,
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
            cannot_freshen,
        }
    }
}

/// Which restored mtimes move back, and by how much (ns), so that none lies
/// after `now` and their order is kept: `(from, shift)` moves every mtime
/// `>= from` back by `shift`. Nothing moves when the newest is not after
/// `now` (a checkpoint a moment old: restore waits for the fresh mtime, at
/// most 1 s, instead); otherwise the shift puts the newest at `now - 1 s`,
/// so that the fresh mtime is `now`, and the moved group is the smallest run of the newest mtimes
/// that, moved, stays strictly after every mtime left in place. So in the
/// ordinary skew case (sources unpacked from the store at mtime 1, products
/// an hour ahead) only the products move, and nothing lands before 1970.
fn clock_shift(mut mtimes: Vec<Timestamp>, now: Timestamp) -> (Timestamp, i128) {
    mtimes.sort_unstable();
    mtimes.dedup();
    let Some(&newest) = mtimes.last() else {
        return (Timestamp::default(), 0);
    };
    if newest <= now {
        return (Timestamp::default(), 0);
    }
    let shift = newest.as_nanos() + 1_000_000_000 - now.as_nanos();
    let mut k = mtimes.len() - 1;
    while k > 0 && mtimes[k].as_nanos() - shift <= mtimes[k - 1].as_nanos() {
        k -= 1;
    }
    (mtimes[k], shift)
}

impl Plan {
    /// The mtime the plan gives a restored entry whose mtime in B is `b`.
    pub fn restored_mtime(&self, b: Timestamp) -> Timestamp {
        shifted_back(b, self.shifted_from, self.shifted_back_nanos)
    }
}

/// `t` moved back by `nanos` if it is at or after `from` (`clock_shift`).
fn shifted_back(t: Timestamp, from: Timestamp, nanos: i128) -> Timestamp {
    if nanos > 0 && t >= from {
        t.minus_nanos(nanos)
    } else {
        t
    }
}

/// Merges P (`before`), B (`after`) and C (`now_tree`) into a plan. `now` is
/// the current time. Pure and deterministic; one merge pass over the three
/// sorted manifests plus `O(log n)` look-ups per entry.
pub fn plan(before: &Manifest, after: &Manifest, now_tree: &Manifest, now: Timestamp) -> Plan {
    plan_with(before, after, now_tree, Unrecorded::default(), now)
}

/// [`plan`], knowing what the scan of C saw beyond its manifest: nothing is
/// created at a hidden path (`Skip { Occupied }`), a directory holding one
/// is kept (`Skip { DirectoryNotEmpty }`), and an entry hard-linked outside
/// the tree is never re-timed (`Skip { LinkedOutside }`, or listed in
/// [`Plan::cannot_freshen`] when it would need the fresh mtime).
pub fn plan_with(
    before: &Manifest,
    after: &Manifest,
    now_tree: &Manifest,
    seen: Unrecorded<'_>,
    now: Timestamp,
) -> Plan {
    let mut planner = Planner::new(union(
        before.entries(),
        after.entries(),
        now_tree.entries(),
        seen,
    ));
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
                        SkipReason::StaticArchive => {
                            writeln!(f, "a static archive make recreates)")?
                        }
                        SkipReason::Occupied => {
                            writeln!(f, "occupied by an entry the scan does not record)")?
                        }
                        SkipReason::LinkedOutside => {
                            writeln!(f, "a hard link to a file outside the tree)")?
                        }
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
