//! Checks a plan before anything is written: what a checkpoint must never
//! ask for (`UnsafePlan`), and what a correct planner never produces
//! (`InvalidPlan`). Pure: no I/O.

use super::error::{ApplyError, Op};
use super::MARKER;
use crate::merge::{Action, Plan};
use crate::tree::rel_path::PATH_MAX;
use crate::tree::{Kind, Node, Timestamp};
use std::collections::HashMap;
use std::path::Path;

const SETUID_SETGID: u32 = 0o6000;

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
        if path.as_bytes() == MARKER.as_bytes() {
            return Err(unsafe_plan(
                path,
                format!("{MARKER} is reserved for the restore marker"),
            ));
        }
        let (mode, mtime, kind) = match action {
            Action::Create { entry, .. } => (entry.mode, entry.mtime, entry.node.kind()),
            Action::Retime {
                mode, mtime, kind, ..
            } => (*mode, *mtime, *kind),
            _ => continue,
        };
        if !valid_time(mtime) {
            return Err(unsafe_plan(
                path,
                format!("mtime {mtime:?} has nanoseconds beyond 1 s"),
            ));
        }
        if mode & !crate::tree::manifest::PERMISSION_BITS != 0 {
            return Err(unsafe_plan(
                path,
                format!("mode {mode:#o} has bits beyond permissions"),
            ));
        }
        if kind == Kind::File && mode & SETUID_SETGID != 0 {
            return Err(unsafe_plan(
                path,
                format!("mode {mode:#o} is setuid or setgid, which a sandboxed build never makes"),
            ));
        }
        if let Action::Create { entry, .. } = action {
            if let Node::Symlink { target, .. } = &entry.node {
                if target.is_empty() || target.contains(&0) || target.len() > PATH_MAX {
                    return Err(unsafe_plan(
                        path,
                        "the symlink target is empty, has a NUL byte or is too long".into(),
                    ));
                }
            }
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
