use super::{human_bytes, seconds, Report};
use crate::checkpoint::{snapshot, Snapshot};
use crate::config::TreeConfig;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::rewrite::Rewriter;
use crate::scan;
use std::path::Path;
use std::time::Instant;

pub fn run(tree: &TreeConfig, state_path: &Path, started: Instant) -> Result<Report, Error> {
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
    let secs = seconds(started);
    Ok(Report {
        exit: ExitCode::Success,
        summary: format!(
            "snapshot: {} files ({}), {} symlinks, {} directories hashed in {secs:.2} s -> {}",
            stats.files,
            human_bytes(stats.bytes),
            stats.symlinks,
            stats.dirs,
            state_path.display()
        ),
        json: serde_json::json!({
            "command": "snapshot", "exit_code": 0, "files": stats.files, "symlinks": stats.symlinks,
            "directories": stats.dirs, "bytes": stats.bytes, "skipped_special": stats.skipped_special,
            "dependencies": tree.info.dependencies.len(), "seconds": secs, "state": state_path,
        }),
        body: None,
        warnings: scan.warnings,
    })
}
