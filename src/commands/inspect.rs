use super::report::{InspectEntry, InspectMtime, InspectOutput, InspectReport, Outcome};
use super::{human_bytes, seconds};
use crate::checkpoint::pack::PackReader;
use crate::error::Error;
use crate::tree::{Entry, Node};
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

/// How an entry of B relates to P.
fn status(before: Option<&Entry>, after: &Entry) -> &'static str {
    match before {
        None => "product",
        Some(b) if b.same_content_and_mode(after) => "unchanged",
        Some(_) => "changed",
    }
}

/// Checkpoint-controlled bytes for display and JSON: escaped, so that no
/// control character reaches the terminal and distinct names stay distinct.
fn lossy(bytes: &[u8]) -> String {
    crate::tree::rel_path::escape_bytes(bytes)
}

pub fn run(checkpoint: &Path, list: bool, json: bool, started: Instant) -> Result<Outcome, Error> {
    let reader = PackReader::open(checkpoint)?;
    let cp = reader.checkpoint();
    let stored: u64 = cp.blobs.iter().map(|b| b.stored_size).sum();
    let raw: u64 = cp.blobs.iter().map(|b| b.size).sum();
    let deleted = cp
        .before
        .entries()
        .iter()
        .filter(|p| cp.after.get(&p.path).is_none())
        .count();
    let outputs: Vec<InspectOutput> = cp
        .info
        .outputs
        .iter()
        .map(|(n, p)| InspectOutput {
            name: n.clone(),
            path: p.to_string(),
        })
        .collect();
    let dependencies: Vec<String> = cp.info.dependencies.iter().map(|p| p.to_string()).collect();
    let entries: Vec<InspectEntry> = if list || json {
        cp.after
            .entries()
            .iter()
            .map(|e| {
                let (kind, size, target) = match &e.node {
                    Node::File { size, .. } => ("file", *size, None),
                    Node::Symlink { target, .. } => ("symlink", 0, Some(lossy(target))),
                    Node::Dir => ("dir", 0, None),
                };
                InspectEntry {
                    kind,
                    mode: e.mode,
                    mtime: InspectMtime {
                        nanos: e.mtime.nanos,
                        secs: e.mtime.secs,
                    },
                    path: e.path.to_string(),
                    size,
                    status: status(cp.before.get(&e.path), e),
                    target,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let report = InspectReport {
        after_entries: cp.after.len(),
        before_entries: cp.before.len(),
        blobs: cp.blobs.len(),
        checkpoint: reader.path().to_owned(),
        deleted_by_build: deleted,
        dependencies,
        entries,
        outputs,
        raw_bytes: raw,
        recipe: cp.info.recipe.lines(),
        root: lossy(&cp.info.root),
        seconds: seconds(started),
        stored_bytes: stored,
    };
    let body = (!json).then(|| listing(&report, list));
    Ok(Outcome::new(report).with_body(body))
}

/// What `inspect` prints on stdout without `--json`.
fn listing(report: &InspectReport, list: bool) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "checkpoint   {}", report.checkpoint.display());
    let _ = writeln!(body, "root         {}", report.root);
    for output in &report.outputs {
        let _ = writeln!(body, "output       {} = {}", output.name, output.path);
    }
    let _ = writeln!(body, "dependencies {}", report.dependencies.len());
    for dep in &report.dependencies {
        let _ = writeln!(body, "  {dep}");
    }
    let _ = writeln!(body, "before       {} entries", report.before_entries);
    let _ = writeln!(
        body,
        "after        {} entries ({} deleted by the build)",
        report.after_entries, report.deleted_by_build
    );
    let _ = writeln!(
        body,
        "blobs        {} ({} raw, {} stored)",
        report.blobs,
        human_bytes(report.raw_bytes),
        human_bytes(report.stored_bytes)
    );
    let _ = writeln!(
        body,
        "recipe       {} variables (what restore compares; --list shows them)",
        report.recipe.len()
    );
    if list {
        for line in &report.recipe {
            let _ = writeln!(body, "  {line}");
        }
        for e in &report.entries {
            let _ = writeln!(
                body,
                "{:9} {:7} {:o} {:>10} {}.{:09} {}{}",
                e.status,
                e.kind,
                e.mode,
                e.size,
                e.mtime.secs,
                e.mtime.nanos,
                e.path,
                e.target
                    .as_ref()
                    .map(|t| format!(" -> {t}"))
                    .unwrap_or_default()
            );
        }
    }
    body
}
