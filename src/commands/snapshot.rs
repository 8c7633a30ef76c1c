use super::report::{Outcome, SnapshotReport};
use super::seconds;
use crate::checkpoint::{snapshot, Snapshot};
use crate::config::TreeConfig;
use crate::error::Error;
use crate::rewrite::Rewriter;
use crate::scan;
use std::path::Path;
use std::time::Instant;

pub fn run(tree: &TreeConfig, state_path: &Path, started: Instant) -> Result<Outcome, Error> {
    crate::apply::check_no_interrupted_restore(&tree.root)?;
    let scan = scan::scan(&tree.root, &tree.exclusions, &Rewriter::masking(&tree.info))?;
    let stats = scan.stats;
    snapshot::write_snapshot(
        state_path,
        &Snapshot {
            info: tree.info.clone(),
            before: scan.manifest,
        },
    )?;
    Ok(Outcome::new(SnapshotReport {
        bytes: stats.bytes,
        dependencies: tree.info.dependencies.len(),
        directories: stats.dirs,
        files: stats.files,
        seconds: seconds(started),
        skipped_special: stats.skipped_special,
        state: state_path.to_owned(),
        symlinks: stats.symlinks,
    })
    .with_warnings(scan.warnings))
}
