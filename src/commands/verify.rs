use super::{human_bytes, seconds, Report};
use crate::checkpoint::pack::PackReader;
use crate::error::Error;
use crate::exit_code::ExitCode;
use std::path::Path;
use std::time::Instant;

pub fn run(checkpoint: &Path, started: Instant) -> Result<Report, Error> {
    let reader = PackReader::open(checkpoint)?;
    let verified = reader.verify()?;
    let secs = seconds(started);
    Ok(Report {
        exit: ExitCode::Success,
        summary: format!(
            "verify: manifest and {} blobs ({}) intact in {secs:.2} s",
            verified.blobs,
            human_bytes(verified.raw_bytes)
        ),
        json: serde_json::json!({ "command": "verify", "exit_code": 0, "blobs": verified.blobs, "raw_bytes": verified.raw_bytes, "seconds": secs }),
        body: None,
        warnings: Vec::new(),
    })
}
