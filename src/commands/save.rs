use super::report::{Outcome, SaveReport};
use super::seconds;
use crate::checkpoint::{pack, snapshot};
use crate::config::TreeConfig;
use crate::error::Error;
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
) -> Result<Outcome, Error> {
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
    Ok(Outcome::new(SaveReport {
        blobs: written.blobs,
        checkpoint: written.path,
        entries: scan.manifest.len(),
        pack_bytes: written.pack_bytes,
        products,
        raw_bytes: written.raw_bytes,
        seconds: seconds(started),
    })
    .with_warnings(warnings))
}
