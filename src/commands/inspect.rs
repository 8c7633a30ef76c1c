use super::{human_bytes, seconds, Report};
use crate::checkpoint::pack::PackReader;
use crate::error::Error;
use crate::exit_code::ExitCode;
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

pub fn run(checkpoint: &Path, list: bool, json: bool, started: Instant) -> Result<Report, Error> {
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
    let outputs: Vec<(String, String)> = cp
        .info
        .outputs
        .iter()
        .map(|(n, p)| (n.clone(), p.to_string()))
        .collect();
    let dependencies: Vec<String> = cp.info.dependencies.iter().map(|p| p.to_string()).collect();

    let mut body = String::new();
    let _ = writeln!(body, "checkpoint   {}", reader.path().display());
    let _ = writeln!(body, "root         {}", lossy(&cp.info.root));
    for (name, path) in &outputs {
        let _ = writeln!(body, "output       {name} = {path}");
    }
    let _ = writeln!(body, "dependencies {}", dependencies.len());
    for dep in &dependencies {
        let _ = writeln!(body, "  {dep}");
    }
    let _ = writeln!(body, "before       {} entries", cp.before.len());
    let _ = writeln!(
        body,
        "after        {} entries ({} deleted by the build)",
        cp.after.len(),
        deleted
    );
    let _ = writeln!(
        body,
        "blobs        {} ({} raw, {} stored)",
        cp.blobs.len(),
        human_bytes(raw),
        human_bytes(stored)
    );

    let _ = writeln!(
        body,
        "recipe       {} variables (what restore compares; --list shows them)",
        cp.info.recipe.vars.len()
    );
    if list {
        for line in cp.info.recipe.lines() {
            let _ = writeln!(body, "  {line}");
        }
    }

    let entries: Vec<serde_json::Value> = if list || json {
        cp.after
            .entries()
            .iter()
            .map(|e| {
                let st = status(cp.before.get(&e.path), e);
                let (kind, size, target) = match &e.node {
                    Node::File { size, .. } => ("file", *size, None),
                    Node::Symlink { target, .. } => ("symlink", 0, Some(lossy(target))),
                    Node::Dir => ("dir", 0, None),
                };
                if list {
                    let _ = writeln!(
                        body,
                        "{st:9} {kind:7} {:o} {:>10} {}.{:09} {}{}",
                        e.mode,
                        size,
                        e.mtime.secs,
                        e.mtime.nanos,
                        e.path,
                        target.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default()
                    );
                }
                serde_json::json!({ "path": e.path.to_string(), "status": st, "kind": kind, "mode": e.mode, "size": size,
                    "mtime": { "secs": e.mtime.secs, "nanos": e.mtime.nanos }, "target": target })
            })
            .collect()
    } else {
        Vec::new()
    };
    let secs = seconds(started);
    Ok(Report {
        exit: ExitCode::Success,
        summary: format!(
            "inspect: {} entries before, {} after, {} blobs ({} stored) in {secs:.2} s",
            cp.before.len(),
            cp.after.len(),
            cp.blobs.len(),
            human_bytes(stored)
        ),
        json: serde_json::json!({
            "command": "inspect", "exit_code": 0, "checkpoint": reader.path(), "root": lossy(&cp.info.root),
            "outputs": outputs.iter().map(|(n, p)| serde_json::json!({"name": n, "path": p})).collect::<Vec<_>>(),
            "dependencies": dependencies, "before_entries": cp.before.len(), "after_entries": cp.after.len(),
            "deleted_by_build": deleted, "blobs": cp.blobs.len(), "raw_bytes": raw, "stored_bytes": stored,
            "entries": entries, "recipe": cp.info.recipe.lines(), "seconds": secs,
        }),
        body: (!json).then_some(body),
        warnings: Vec::new(),
    })
}
