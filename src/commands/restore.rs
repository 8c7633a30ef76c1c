use super::report::{Configure, FallBack, Outcome, RestoreReport, RestoreTimes};
use super::seconds;
use crate::checkpoint::pack::PackReader;
use crate::checkpoint::{CheckpointError, BUDGET_PER_TREE_ENTRY, MEMORY_BUDGET};
use crate::config::TreeConfig;
use crate::error::Error;
use crate::gate::{self, BuildTool, ConfigureReads, Gate, SourceChanges, Stage};
use crate::plan;
use crate::recipe;
use crate::rewrite::Rewriter;
use crate::scan;
use crate::tree::Timestamp;
use std::path::Path;
use std::time::Instant;

pub struct Options {
    pub dry_run: bool,
    pub force: bool,
    pub fallback_on_error: bool,
    pub before_configure: bool,
}

/// Restores nothing, on purpose: the build runs in full. Decided before the
/// first write, so the tree is exactly as it was.
fn fall_back(reason: FallBack, started: Instant, warnings: Vec<String>) -> Outcome {
    Outcome::new(RestoreReport::FellBack {
        reason,
        seconds: seconds(started),
    })
    .with_warnings(warnings)
}

/// Returns once the clock has passed `fresh`. The fresh mtime is at least
/// 1 s newer than everything restored, so for a checkpoint saved less than
/// a second ago it lies in the future; a build step that then ran at once
/// would write products older than the sources they come from, and the
/// next build would compile them again. Waits at most that second.
fn wait_until_past(fresh: Timestamp) {
    let fresh =
        std::time::UNIX_EPOCH + std::time::Duration::new(fresh.secs.max(0) as u64, fresh.nanos);
    if let Ok(ahead) = fresh.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(
            ahead.min(std::time::Duration::from_secs(2)) + std::time::Duration::from_millis(1),
        );
    }
}

/// `nixCheckpointSkipConfigure` set to "" / 0 / false in the new build.
fn skip_configure_turned_off(recipe: &recipe::Recipe) -> bool {
    match recipe.vars.get("nixCheckpointSkipConfigure") {
        Some(recipe::Value::Scalar(v)) => matches!(v.as_slice(), b"" | b"0" | b"false"),
        _ => false,
    }
}

/// What the checkpoint's build recorded of its configure run (`None`: no
/// record, or one that does not parse, which a warning reports).
fn configure_reads(reader: &PackReader, warnings: &mut Vec<String>) -> Option<ConfigureReads> {
    const MAX_RECORD: u64 = 64 << 20;
    let path = crate::tree::RelPath::new(gate::READS_FILE.as_bytes()).ok()?;
    let after = &reader.checkpoint().after;
    // Without the shell state the hook cannot stand in for configure.
    after.get(&crate::tree::RelPath::new(gate::SHELL_STATE_FILE.as_bytes()).ok()?)?;
    let entry = after.get(&path)?;
    let crate::tree::Node::File { hash, size } = entry.node else {
        return None;
    };
    if size > MAX_RECORD {
        warnings.push(format!(
            "ignoring the checkpoint's {} of {size} bytes: configure runs",
            gate::READS_FILE
        ));
        return None;
    }
    let ignored = |e: &dyn std::fmt::Display| {
        format!(
            "ignoring the checkpoint's {}: {e}; configure runs",
            gate::READS_FILE
        )
    };
    match reader.read_blob(hash) {
        Ok(bytes) => match ConfigureReads::decode(&bytes) {
            Ok(reads) => Some(reads),
            Err(e) => {
                warnings.push(ignored(&e));
                None
            }
        },
        Err(e) => {
            warnings.push(ignored(&e));
            None
        }
    }
}

pub fn run(
    tree: &TreeConfig,
    checkpoint: &Path,
    options: Options,
    started: Instant,
) -> Result<Outcome, Error> {
    crate::apply::check_no_interrupted_restore(&tree.root)?;
    // Users upgrading from nixpkgs' checkpointBuildTools have these: build
    // in full (the build still succeeds), saying what it is.
    if crate::checkpoint::pack::is_nixpkgs_checkpoint(checkpoint) {
        return Ok(fall_back(
            FallBack::NixpkgsCheckpoint {
                path: checkpoint.to_owned(),
            },
            started,
            Vec::new(),
        ));
    }
    // The tree first: the checkpoint may take memory in proportion to it.
    let checked = Instant::now();
    let mut now_scan = scan::scan(&tree.root, &tree.exclusions, &Rewriter::masking(&tree.info))?;
    let checked_secs = seconds(checked);
    // Printed whatever the outcome, fallbacks included.
    let mut warnings = std::mem::take(&mut now_scan.warnings);
    // A checkpoint restore cannot use: an error, or with
    // `--fallback-on-error` a fallback, the tree untouched either way.
    let unusable = |e: CheckpointError, warnings: Vec<String>| -> Result<Outcome, Error> {
        if options.fallback_on_error {
            Ok(fall_back(FallBack::Unusable(e), started, warnings))
        } else {
            Err(e.into())
        }
    };
    let budget =
        MEMORY_BUDGET.saturating_add(BUDGET_PER_TREE_ENTRY.saturating_mul(now_scan.manifest.len()));
    // Everything restore refuses for the checkpoint alone, as `verify` does.
    let reader = match PackReader::open_with_budget(checkpoint, budget)
        .and_then(|r| super::verify::check_restorable(&r, Timestamp::now()).map(|()| r))
    {
        Ok(reader) => reader,
        Err(e) => return unusable(e, warnings),
    };
    let checkpoint_data = reader.checkpoint();
    let old = &checkpoint_data.info;
    let compared = Instant::now();
    let recipe_diff = recipe::compare(&old.recipe, &tree.info.recipe);
    let recipe_secs = compared.elapsed().as_secs_f64();
    let rewriter = match Rewriter::relocating(old, &tree.info) {
        Ok(rewriter) => rewriter,
        Err(e) => return Ok(fall_back(FallBack::Relocation(e), started, warnings)),
    };

    let tool = BuildTool::of(&checkpoint_data.after);
    let changes = SourceChanges::between(&checkpoint_data.before, &now_scan.manifest);
    // Only the decision before configure asks what configure read.
    let reads = if options.before_configure {
        configure_reads(&reader, &mut warnings)
    } else {
        None
    };
    let gate = gate::decide(&gate::Facts {
        stage: if options.before_configure {
            Stage::BeforeConfigure
        } else {
            Stage::AfterConfigure
        },
        recipe: &recipe_diff,
        tool,
        changes: &changes,
        reads: reads.as_ref(),
        skip_allowed: !skip_configure_turned_off(&tree.info.recipe),
        dependency_files: gate::has_dependency_files(&checkpoint_data.after),
        configure_disabled: tree.info.recipe.is_set("dontConfigure"),
        force: options.force,
    });
    let (skip_configure, note) = match gate {
        Gate::FallBack { why } => return Ok(fall_back(FallBack::Refused(why), started, warnings)),
        Gate::Defer { why } => {
            return Ok(Outcome::new(RestoreReport::Deferred {
                reason: why,
                seconds: seconds(started),
            })
            .with_warnings(warnings));
        }
        Gate::Restore {
            skip_configure,
            note,
        } => (skip_configure, note),
    };

    let mut plan = plan::plan_with(
        &checkpoint_data.before,
        &checkpoint_data.after,
        &now_scan.manifest,
        plan::Unrecorded {
            hidden: &now_scan.hidden,
            linked_outside: &now_scan.linked_outside,
        },
        Timestamp::now(),
    );
    warnings.extend(plan.warnings());
    if let Some(reason) = plan.fall_back_reason() {
        return Ok(fall_back(FallBack::Refused(reason), started, warnings));
    }
    if tool == BuildTool::Make {
        plan::leave_static_archives_to_make(&mut plan);
    }
    let counts = plan.counts();
    let configure = Configure::new(skip_configure, options.before_configure);
    let times = |started| RestoreTimes {
        recipe_seconds: recipe_secs,
        checked_seconds: checked_secs,
        seconds: seconds(started),
    };

    if options.dry_run {
        return Ok(Outcome::new(RestoreReport::DryRun {
            note,
            configure,
            plan: counts,
            times: times(started),
        })
        .with_body(Some(plan.to_string()))
        .with_warnings(warnings));
    }

    // Blobs are only checked when read: check every blob the plan needs
    // now, before the first write, so that a corrupt or hostile blob leaves
    // the tree untouched (and `--fallback-on-error` can fall back).
    let needed = plan.actions.iter().filter_map(|a| match a {
        plan::Action::Create { entry, .. } => match entry.node {
            crate::tree::Node::File { hash, .. } => Some(hash),
            _ => None,
        },
        _ => None,
    });
    if let Err(e) = reader.verify_blobs(needed) {
        return unusable(e, warnings);
    }

    let applied = match crate::apply::apply(&tree.root, &plan, &reader, &rewriter) {
        Ok(applied) => applied,
        // Refused before the first write: say which checkpoint and what to
        // do, like every other unsafe checkpoint, and honour the fallback.
        Err(e @ crate::apply::ApplyError::UnsafePlan { .. }) => {
            let e = super::verify::unrestorable(
                &reader,
                crate::checkpoint::error::Op::CheckRestorePlan,
                e.to_string(),
            );
            return unusable(e, warnings);
        }
        Err(e) => return Err(e.into()),
    };
    wait_until_past(plan.fresh_mtime);
    Ok(Outcome::new(RestoreReport::Restored {
        note,
        configure,
        plan: counts,
        applied,
        times: times(started),
    })
    .with_warnings(warnings))
}
