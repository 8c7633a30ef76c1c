use super::{human_bytes, seconds, Report};
use crate::checkpoint::{pack, snapshot};
use crate::config::TreeConfig;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::rewrite::Rewriter;
use crate::scan;
use crate::tree::Node;
use std::path::Path;
use std::time::Instant;

pub fn run(
    tree: &TreeConfig,
    state_path: &Path,
    output: &Path,
    level: i32,
    started: Instant,
) -> Result<Report, Error> {
    crate::apply::check_no_interrupted_restore(&tree.root)?;
    let state = snapshot::read_snapshot(state_path)?;
    snapshot::check_snapshot_matches(state_path, &state, &tree.info)?;
    let mut warnings = Vec::new();
    // Hash with the snapshot's identity so that P and B compare.
    let scan = scan::scan(
        &tree.root,
        &tree.exclusions,
        &Rewriter::masking(&state.info),
    )?;
    warnings.extend(scan.warnings);

    // Unchanged sources are not stored: the next build brings them.
    let blobs: Vec<pack::BlobFile> = pack::files_to_store(&state.before, &scan.manifest)
        .filter_map(|after| match after.node {
            Node::File { size, hash } => Some(pack::BlobFile {
                hash,
                size,
                path: tree.root.join(after.path.as_path()),
            }),
            _ => None,
        })
        .collect();
    let products = blobs.len();
    let written = pack::write_checkpoint(
        output,
        &state.info,
        &state.before,
        &scan.manifest,
        blobs,
        &pack::WriteOptions {
            level,
            ..Default::default()
        },
    )?;
    let secs = seconds(started);
    Ok(Report {
        exit: ExitCode::Success,
        summary: format!(
            "save: {products} new or changed files ({} raw, {} stored) of {} entries in {secs:.2} s -> {}",
            human_bytes(written.raw_bytes),
            human_bytes(written.pack_bytes),
            scan.manifest.len(),
            written.path.display()
        ),
        json: serde_json::json!({
            "command": "save", "exit_code": 0, "entries": scan.manifest.len(), "products": products,
            "blobs": written.blobs, "raw_bytes": written.raw_bytes, "pack_bytes": written.pack_bytes,
            "seconds": secs, "checkpoint": written.path,
        }),
        body: None,
        warnings,
    })
}
