//! `track-configure --start` / `--finish`: which files of the snapshot the
//! configure phase reads, so that a later build knows when configure may be
//! skipped (docs/design.md, "Skipping configure").
//!
//! How: `--start` sets the access time of every file of the snapshot to
//! the epoch, which is older than its inode change time, so the kernel
//! records the next read even on a `relatime` mount. `--finish` lists the
//! files whose access time moved, after probing that this file system
//! records access times at all (a `noatime` mount does not: then the record
//! says "unknown" and every later build runs configure).

use super::report::{Outcome, TrackConfigureReport};
use super::seconds;
use crate::apply::safe_dir::{self, SafeRoot, WalkError};
use crate::apply::{ApplyError, Op};
use crate::checkpoint::snapshot;
use crate::config::TreeConfig;
use crate::error::Error;
use crate::gate::{ConfigureReads, READS_FILE, RECORD_DIR};
use crate::tree::{Node, RelPath, Timestamp};
use nix::errno::Errno;
use std::path::Path;
use std::time::Instant;

const UNREAD: Timestamp = Timestamp::new(0, 0);

fn io_error(root: &SafeRoot, op: Op, rel: &[u8], errno: Errno) -> Error {
    ApplyError::Io {
        op,
        path: root.display(rel),
        errno,
    }
    .into()
}

fn walk_error(root: &SafeRoot, e: WalkError) -> Error {
    match e {
        WalkError::Symlink { at } => ApplyError::SymlinkInTheWay {
            op: Op::OpenDir,
            path: root.display(&at),
            symlink: root.display(&at),
        }
        .into(),
        WalkError::Errno { at, errno } => io_error(root, Op::OpenDir, &at, errno),
    }
}

fn split(path: &RelPath) -> (&[u8], &[u8]) {
    let bytes = path.as_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&[], bytes),
    }
}

/// Does this file system record a read in the access time?
fn atimes_recorded(root: &SafeRoot) -> bool {
    let name = format!("{RECORD_DIR}.probe.{}", std::process::id());
    let path = root.path().join(&name);
    let probe = || -> Option<bool> {
        std::fs::write(&path, b"probe").ok()?;
        safe_dir::set_atime(root.fd(), name.as_bytes(), UNREAD).ok()?;
        std::fs::read(&path).ok()?;
        Some(safe_dir::atime(root.fd(), name.as_bytes()).ok()? != UNREAD)
    };
    let recorded = probe().unwrap_or(false);
    let _ = std::fs::remove_file(&path);
    recorded
}

pub fn run(
    tree: &TreeConfig,
    state_path: &Path,
    finish: bool,
    started: Instant,
) -> Result<Outcome, Error> {
    let state = snapshot::read_snapshot(state_path)?;
    let root = SafeRoot::open(&tree.root).map_err(|e| {
        Error::from(ApplyError::Io {
            op: Op::OpenRoot,
            path: tree.root.clone(),
            errno: e,
        })
    })?;
    let files = state
        .before
        .entries()
        .iter()
        .filter(|e| matches!(e.node, Node::File { .. }));
    let mut cursor = root.cursor();
    if !finish {
        let mut n = 0;
        for entry in files {
            let (dir, name) = split(&entry.path);
            let fd = cursor.dir(dir).map_err(|e| walk_error(&root, e))?;
            match safe_dir::set_atime(fd, name, UNREAD) {
                Ok(()) => n += 1,
                // Deleted since the snapshot (by a hook): nothing to track.
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(io_error(&root, Op::SetTimes, entry.path.as_bytes(), e)),
            }
        }
        return Ok(Outcome::new(TrackConfigureReport::Start {
            seconds: seconds(started),
            watching: n,
        }));
    }

    let mut reads = ConfigureReads {
        known: atimes_recorded(&root),
        ..Default::default()
    };
    if reads.known {
        for entry in files {
            let (dir, name) = split(&entry.path);
            let fd = cursor.dir(dir).map_err(|e| walk_error(&root, e))?;
            match safe_dir::atime(fd, name) {
                Ok(t) if t != UNREAD => {
                    reads.paths.insert(entry.path.clone());
                }
                Ok(_) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(io_error(&root, Op::Inspect, entry.path.as_bytes(), e)),
            }
        }
    }
    drop(cursor);
    let dir = tree.root.join(RECORD_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| {
        io_error(
            &root,
            Op::CreateDir,
            RECORD_DIR.as_bytes(),
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    std::fs::write(tree.root.join(READS_FILE), reads.encode()).map_err(|e| {
        io_error(
            &root,
            Op::Write,
            READS_FILE.as_bytes(),
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    Ok(Outcome::new(TrackConfigureReport::Finish {
        known: reads.known,
        read: reads.paths.len(),
        seconds: seconds(started),
    }))
}
