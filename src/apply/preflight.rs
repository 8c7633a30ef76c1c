//! Checks a plan before anything is written: what a checkpoint must never
//! ask for (`UnsafePlan`), and what a correct planner never produces
//! (`InvalidPlan`). Pure: no I/O.

use super::error::{ApplyError, Op};
use super::MARKER;
use crate::plan::{Action, Plan};
use crate::tree::rel_path::PATH_MAX;
use crate::tree::{Kind, Manifest, Node, RelPath, Timestamp};
use std::collections::HashMap;
use std::path::Path;

const SETUID_SETGID: u32 = 0o6000;

/// Latest mtime (seconds) a plan may restore: one second before the latest
/// ext4 can store (2446-05-10), so that the fresh mtime (`newest + 1 s`)
/// is still representable and strictly newer. Beyond it, the planner's
/// `fresh_mtime` saturates at `i64::MAX` or the file system clamps both to
/// the same second, and a changed source would not look newer than the
/// products restored beside it: a silently stale build.
pub const MAX_RESTORED_SECS: i64 = 0x3_7fff_ffff - 1;
/// Earliest mtime (seconds) a plan may restore (ext4's earliest).
pub const MIN_RESTORED_SECS: i64 = i32::MIN as i64;

pub(super) fn check(root: &Path, plan: &Plan) -> Result<(), ApplyError> {
    let abs = |p: &crate::tree::RelPath| root.join(p.as_path());
    let unsafe_plan = |p: &crate::tree::RelPath, reason: String| ApplyError::UnsafePlan {
        op: Op::ValidatePlan,
        path: abs(p),
        reason,
    };
    let invalid = |p: &crate::tree::RelPath, reason: String| ApplyError::InvalidPlan {
        op: Op::ValidatePlan,
        path: abs(p),
        reason,
    };
    if !valid_time(plan.fresh_mtime) {
        return Err(ApplyError::InvalidPlan {
            op: Op::ValidatePlan,
            path: root.to_path_buf(),
            reason: format!(
                "fresh mtime {:?} has nanoseconds beyond 1 s",
                plan.fresh_mtime
            ),
        });
    }

    let mut by_path: HashMap<&[u8], &Action> = HashMap::with_capacity(plan.actions.len());
    for action in &plan.actions {
        let path = action.path();
        if by_path.insert(path.as_bytes(), action).is_some() {
            return Err(invalid(path, "more than one action for this path".into()));
        }
        let checked = match action {
            Action::Create { entry, .. } => {
                let target = match &entry.node {
                    Node::Symlink { target, .. } => Some(&target[..]),
                    _ => None,
                };
                (entry.mode, entry.mtime, entry.node.kind(), target)
            }
            Action::Retime {
                mode, mtime, kind, ..
            } => (*mode, *mtime, *kind, None),
            _ => {
                if is_reserved(path.as_bytes()) {
                    return Err(unsafe_plan(path, reserved_reason(path.as_bytes())));
                }
                continue;
            }
        };
        let (mode, mtime, kind, target) = checked;
        if let Err(reason) = check_entry(path.as_bytes(), kind, mode, mtime, target) {
            return Err(unsafe_plan(path, reason));
        }
    }

    // Nothing may be written beneath something that will not be a directory.
    for action in &plan.actions {
        if matches!(action, Action::Remove { .. } | Action::Skip { .. }) {
            // Removals beneath a replaced directory are how it gets emptied.
            continue;
        }
        let path = action.path();
        for ancestor in path.ancestors() {
            let Some(above) = by_path.get(ancestor) else {
                continue;
            };
            let ancestor_path = crate::tree::RelPath::new(ancestor).expect("prefix of a RelPath");
            match above {
                Action::Create { entry, .. } if entry.node.kind() != Kind::Dir => {
                    return Err(unsafe_plan(
                        path,
                        format!(
                            "it lies beneath {ancestor_path}, which the checkpoint makes a {}",
                            entry.node.kind()
                        ),
                    ))
                }
                Action::Remove { .. } => {
                    return Err(invalid(
                        path,
                        format!("it lies beneath {ancestor_path}, which the plan removes"),
                    ))
                }
                Action::Retime { kind, .. } | Action::Freshen { kind, .. }
                    if *kind != Kind::Dir =>
                {
                    return Err(invalid(
                        path,
                        format!(
                            "it lies beneath {ancestor_path}, which the plan keeps as a {kind}"
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn valid_time(t: Timestamp) -> bool {
    t.nanos < 1_000_000_000
}

/// Names the scan leaves out because Nix or nix-checkpoint write them into
/// every build directory (`env-vars`, `.attr-*`, `.nix-checkpoint*`, the
/// marker among them): restore never writes there, and a checkpoint that
/// lists one is crafted (the scan that made it cannot have seen it).
pub fn is_reserved(path: &[u8]) -> bool {
    crate::scan::is_builder_file(path) || path == MARKER.as_bytes()
}

fn reserved_reason(path: &[u8]) -> String {
    if path == MARKER.as_bytes() {
        format!("{MARKER} is reserved for the restore marker")
    } else {
        format!(
            "{} is reserved: Nix or nix-checkpoint write it into every build directory, \
             so no scan records it",
            String::from_utf8_lossy(path)
        )
    }
}

/// What restore refuses to write for one entry, whatever the tree: a
/// reserved name, an mtime or mode no sandboxed build makes, a bad symlink
/// target. `Err` is the reason.
fn check_entry(
    path: &[u8],
    kind: Kind,
    mode: u32,
    mtime: Timestamp,
    target: Option<&[u8]>,
) -> Result<(), String> {
    if is_reserved(path) {
        return Err(reserved_reason(path));
    }
    if !valid_time(mtime) {
        return Err(format!("mtime {mtime:?} has nanoseconds beyond 1 s"));
    }
    if !(MIN_RESTORED_SECS..=MAX_RESTORED_SECS).contains(&mtime.secs) {
        return Err(format!(
            "mtime {} s is outside what file systems store ({MIN_RESTORED_SECS}..={MAX_RESTORED_SECS}): \
             restored, it would hide every change from make",
            mtime.secs
        ));
    }
    if mode & !crate::tree::manifest::PERMISSION_BITS != 0 {
        return Err(format!("mode {mode:#o} has bits beyond permissions"));
    }
    if kind == Kind::File && mode & SETUID_SETGID != 0 {
        return Err(format!(
            "mode {mode:#o} is setuid or setgid, which a sandboxed build never makes"
        ));
    }
    if let Some(target) = target {
        if target.is_empty() || target.contains(&0) || target.len() > PATH_MAX {
            return Err("the symlink target is empty, has a NUL byte or is too long".into());
        }
    }
    Ok(())
}

/// The checks of [`check`] that depend on the checkpoint alone, made on
/// every entry of B (whichever of them a plan would restore), and the one
/// the clock adds: if B's newest mtime lies after `now - 1 s`, restore
/// moves mtimes back (`plan`), and B's mtimes must span little enough that
/// none of them could land before [`MIN_RESTORED_SECS`]. A checkpoint that
/// passes is refused by no plan check for its own content; `verify` makes
/// exactly these checks, so "intact" means "restorable".
pub fn check_checkpoint(root: &Path, after: &Manifest, now: Timestamp) -> Result<(), ApplyError> {
    let unsafe_at = |p: &RelPath, reason: String| ApplyError::UnsafePlan {
        op: Op::ValidateCheckpoint,
        path: root.join(p.as_path()),
        reason,
    };
    let (mut oldest, mut newest) = (None::<Timestamp>, None::<Timestamp>);
    for e in after.entries() {
        let target = match &e.node {
            Node::Symlink { target, .. } => Some(&target[..]),
            _ => None,
        };
        check_entry(e.path.as_bytes(), e.node.kind(), e.mode, e.mtime, target)
            .map_err(|reason| unsafe_at(&e.path, reason))?;
        oldest = Some(oldest.map_or(e.mtime, |o| o.min(e.mtime)));
        newest = Some(newest.map_or(e.mtime, |n| n.max(e.mtime)));
    }
    if let (Some(oldest), Some(newest)) = (oldest, newest) {
        let latest_allowed = now.as_nanos() - 1_000_000_000;
        let span = newest.as_nanos() - oldest.as_nanos();
        if newest.as_nanos() > latest_allowed
            && latest_allowed - span < MIN_RESTORED_SECS as i128 * 1_000_000_000
        {
            return Err(ApplyError::UnsafePlan {
                op: Op::ValidateCheckpoint,
                path: root.to_path_buf(),
                reason: format!(
                    "its mtimes span {} s up to {} s, after this machine's clock: moved back \
                     into the past, the oldest would be outside what file systems store",
                    span / 1_000_000_000,
                    newest.secs
                ),
            });
        }
    }
    Ok(())
}
