//! Executes a merge [`Plan`](crate::plan::Plan) on disk, never following a
//! symlink in any path component.
//!
//! This is the only code that writes into a build tree. Both the tree and
//! the checkpoint may be hostile: the tree may hold symlinks where the plan
//! expects directories, the checkpoint may ask for anything its format can
//! express. So:
//!
//! * the plan is checked first ([`preflight`]): nothing beneath a file or
//!   symlink the checkpoint creates, no setuid files, sane symlink targets
//!   and mtimes, the marker name reserved. Refused before anything is written.
//! * every path is reached from an fd of the root through [`SafeRoot`] /
//!   [`DirCursor`](safe_dir::DirCursor): `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS)`, else `openat(O_NOFOLLOW | O_DIRECTORY)` per
//!   component; the last component is acted on relative to its parent's fd
//!   with calls that never follow it either.
//! * a marker file ([`MARKER`]) is created (and synced) before the first
//!   write and removed only after everything succeeded, so a crash or kill
//!   leaves a tree that [`check_no_interrupted_restore`] refuses.
//!
//! Order of execution:
//! 1. removals (`Remove`, and what a `Create { replaces: Some(_) }` replaces),
//!    deepest first, so a directory is removed once emptied;
//! 2. directories created, parents first, with owner `rwx` added so their
//!    children can be written (the exact mode is set in step 5);
//! 3. files and symlinks created in parallel, grouped by parent directory;
//! 4. `Retime` and `Freshen` of files and symlinks (never following a link:
//!    a symlink's own mtime is set);
//! 5. directory modes and mtimes, deepest first, last of all, since every
//!    step above changes the mtime of the directory it writes into.
//!
//! Files are created in place (`O_CREAT | O_EXCL | O_NOFOLLOW` on the final
//! name), not written to a temporary name and renamed: the marker already
//! makes a kill mid-write detectable, `O_EXCL` guarantees that whatever was
//! at the name (say a planted symlink) is never followed or reused, and a
//! rename would cost a second directory operation per file (100k files),
//! leave temporary litter after a crash, and silently replace an entry the
//! plan did not expect to exist.

pub mod error;
mod preflight;
pub mod safe_dir;
#[cfg(test)]
mod tests;
mod work;

pub use error::{ApplyError, Op};
pub use safe_dir::SafeRoot;

use crate::plan::{Action, Plan};
use crate::rewrite::Rewriter;
use crate::tree::{ContentHash, Entry, Kind, Node, RelPath, Timestamp};
use nix::errno::Errno;
use rayon::prelude::*;
use safe_dir::{DirCursor, EntryError, WalkError};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use work::{split, DirTime, Work};

/// The marker left at the root while a restore is in progress.
pub const MARKER: &str = ".nix-checkpoint-restoring";

/// Where file contents come from: the checkpoint pack.
pub trait BlobSource: Sync {
    /// The content of the blob with this hash, checksum-verified.
    fn read_blob(
        &self,
        hash: ContentHash,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;

    /// The blob's size when the source can stream it (see
    /// [`BlobSource::stream_blob`]); `None` (the default) means it is always
    /// read whole with [`BlobSource::read_blob`].
    fn streamable_size(&self, hash: ContentHash) -> Option<u64> {
        let _ = hash;
        None
    }

    /// Streams the blob through `rewriter` into `out` in bounded memory,
    /// returning the bytes written. The checksum is only known at the end:
    /// on error, what `out` received must be discarded.
    fn stream_blob(
        &self,
        hash: ContentHash,
        rewriter: &Rewriter,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, StreamError> {
        let mut content = self.read_blob(hash).map_err(StreamError::Source)?;
        rewriter.rewrite_in_place(&mut content);
        out.write_all(&content).map_err(StreamError::Write)?;
        Ok(content.len() as u64)
    }
}

/// Why [`BlobSource::stream_blob`] failed: the checkpoint, or the write.
#[derive(Debug)]
pub enum StreamError {
    Source(Box<dyn std::error::Error + Send + Sync>),
    Write(std::io::Error),
}

/// Blobs larger than this are streamed into their file instead of being
/// read whole first, so memory stays bounded (threads x this) whatever
/// sizes a checkpoint holds.
pub const STREAM_ABOVE: u64 = 8 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyStats {
    pub files_created: u64,
    pub symlinks_created: u64,
    pub dirs_created: u64,
    /// Bytes of file content written.
    pub bytes_written: u64,
    /// `Retime` actions carried out.
    pub retimed: u64,
    /// `Remove` actions carried out (entries replaced by a `Create` are not
    /// counted here).
    pub removed: u64,
    pub freshened: u64,
    /// `Skip` actions.
    pub skipped: u64,
}

/// Applies `plan` to the tree at `root`, refusing any symlink in the way.
pub fn apply(
    root: &Path,
    plan: &Plan,
    blobs: &dyn BlobSource,
    rewriter: &Rewriter,
) -> Result<ApplyStats, ApplyError> {
    check_no_interrupted_restore(root)?;
    preflight::check(root, plan)?;
    let safe = SafeRoot::open(root).map_err(|errno| ApplyError::Io {
        op: Op::OpenRoot,
        path: root.to_path_buf(),
        errno,
    })?;
    let work = Work::sort(plan);

    let marker_content = format!(
        "nix-checkpoint: restore in progress (pid {})\n",
        std::process::id()
    );
    safe_dir::create_synced(&safe, MARKER.as_bytes(), marker_content.as_bytes()).map_err(
        |errno| match errno {
            Errno::EEXIST => ApplyError::Interrupted {
                op: Op::CreateMarker,
                root: root.to_path_buf(),
            },
            errno => ApplyError::Io {
                op: Op::CreateMarker,
                path: safe.display(MARKER.as_bytes()),
                errno,
            },
        },
    )?;

    let applier = Applier {
        root: &safe,
        blobs,
        rewriter,
        fresh_mtime: plan.fresh_mtime,
        counts: Counts::default(),
    };
    applier.counts.skipped.store(work.skips, Ordering::Relaxed);
    applier.run(&work)?;

    unlink_marker(&safe)?;
    Ok(applier.counts.snapshot())
}

/// Errors with [`ApplyError::Interrupted`] if an earlier restore into
/// `root` did not finish. Every command that reads or writes the tree calls
/// this first.
pub fn check_no_interrupted_restore(root: &Path) -> Result<(), ApplyError> {
    let marker = root.join(MARKER);
    match std::fs::symlink_metadata(&marker) {
        Ok(_) => Err(ApplyError::Interrupted {
            op: Op::CheckMarker,
            root: root.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApplyError::Io {
            op: Op::CheckMarker,
            path: marker,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)),
        }),
    }
}

/// The checks [`apply`] makes on a plan before writing anything (pure):
/// `Err(UnsafePlan)` for what a checkpoint must never ask for,
/// `Err(InvalidPlan)` for what a correct planner never produces.
pub fn check_plan(root: &Path, plan: &Plan) -> Result<(), ApplyError> {
    preflight::check(root, plan)
}

pub use preflight::{check_checkpoint, MAX_RESTORED_SECS, MIN_RESTORED_SECS};

fn unlink_marker(safe: &SafeRoot) -> Result<(), ApplyError> {
    let err = |errno| ApplyError::Io {
        op: Op::RemoveMarker,
        path: safe.display(MARKER.as_bytes()),
        errno,
    };
    safe_dir::remove(safe.fd(), MARKER.as_bytes(), Kind::File).map_err(err)?;
    safe.sync().map_err(err)
}

#[derive(Default)]
struct Counts {
    files_created: AtomicU64,
    symlinks_created: AtomicU64,
    dirs_created: AtomicU64,
    bytes_written: AtomicU64,
    retimed: AtomicU64,
    removed: AtomicU64,
    freshened: AtomicU64,
    skipped: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ApplyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ApplyStats {
            files_created: get(&self.files_created),
            symlinks_created: get(&self.symlinks_created),
            dirs_created: get(&self.dirs_created),
            bytes_written: get(&self.bytes_written),
            retimed: get(&self.retimed),
            removed: get(&self.removed),
            freshened: get(&self.freshened),
            skipped: get(&self.skipped),
        }
    }
}

/// Below this many items per rayon job, the cost of opening the parent
/// directories again in another job outweighs the parallelism.
const MIN_ITEMS_PER_JOB: usize = 64;

struct Applier<'a> {
    root: &'a SafeRoot,
    blobs: &'a dyn BlobSource,
    rewriter: &'a Rewriter,
    fresh_mtime: Timestamp,
    counts: Counts,
}

impl Applier<'_> {
    fn run(&self, work: &Work<'_>) -> Result<(), ApplyError> {
        let mut cursor = self.root.cursor();
        for &(path, kind, counted) in &work.removals {
            self.remove(&mut cursor, path, kind)?;
            if counted {
                Counts::add(&self.counts.removed, 1);
            }
        }
        for entry in &work.dirs {
            self.create_dir(&mut cursor, entry)?;
        }
        drop(cursor);

        work.leaves
            .par_iter()
            .with_min_len(MIN_ITEMS_PER_JOB)
            .try_for_each_init(
                || self.root.cursor(),
                |cur, entry| self.create_leaf(cur, entry),
            )?;
        work.times
            .par_iter()
            .with_min_len(MIN_ITEMS_PER_JOB)
            .try_for_each_init(
                || self.root.cursor(),
                |cur, action| self.set_times(cur, action),
            )?;

        let mut cursor = self.root.cursor();
        for dir in &work.dir_times {
            self.finish_dir(&mut cursor, dir)?;
        }
        Ok(())
    }

    fn io(&self, op: Op, path: &RelPath, errno: Errno) -> ApplyError {
        ApplyError::Io {
            op,
            path: self.root.display(path.as_bytes()),
            errno,
        }
    }

    /// A symlink in the way of `op` on `path`: refused, never followed.
    fn symlink_in_the_way(&self, op: Op, path: &RelPath, symlink: &[u8]) -> ApplyError {
        ApplyError::SymlinkInTheWay {
            op,
            path: self.root.display(path.as_bytes()),
            symlink: self.root.display(symlink),
        }
    }

    /// Opens the parent of `path`.
    fn parent<'c>(
        &self,
        cursor: &'c mut DirCursor<'_>,
        op: Op,
        path: &RelPath,
    ) -> Result<std::os::fd::BorrowedFd<'c>, ApplyError> {
        let (parent, _) = split(path);
        cursor.dir(parent).map_err(|e| match e {
            WalkError::Symlink { at } => self.symlink_in_the_way(op, path, &at),
            WalkError::Errno { at, errno } => ApplyError::Io {
                op: Op::OpenDir,
                path: self.root.display(&at),
                errno,
            },
        })
    }

    fn entry_error(&self, op: Op, path: &RelPath, e: EntryError) -> ApplyError {
        match e {
            EntryError::Symlink => self.symlink_in_the_way(op, path, path.as_bytes()),
            EntryError::Errno(errno) => self.io(op, path, errno),
        }
    }

    fn remove(
        &self,
        cursor: &mut DirCursor<'_>,
        path: &RelPath,
        kind: Kind,
    ) -> Result<(), ApplyError> {
        let dir = self.parent(cursor, Op::Remove, path)?;
        let (_, name) = split(path);
        safe_dir::remove(dir, name, kind).map_err(|errno| self.io(Op::Remove, path, errno))
    }

    fn create_dir(&self, cursor: &mut DirCursor<'_>, entry: &Entry) -> Result<(), ApplyError> {
        let dir = self.parent(cursor, Op::CreateDir, &entry.path)?;
        let (_, name) = split(&entry.path);
        // Owner rwx until step 5, so that children can be created.
        let mode = (entry.mode & 0o777) | 0o700;
        safe_dir::create_dir(dir, name, mode)
            .map_err(|errno| self.io(Op::CreateDir, &entry.path, errno))?;
        Counts::add(&self.counts.dirs_created, 1);
        Ok(())
    }

    fn create_leaf(&self, cursor: &mut DirCursor<'_>, entry: &Entry) -> Result<(), ApplyError> {
        let path = &entry.path;
        let (_, name) = split(path);
        match &entry.node {
            Node::File { size, hash }
                if self
                    .blobs
                    .streamable_size(*hash)
                    .is_some_and(|n| n > STREAM_ABOVE) =>
            {
                // Too large to hold: streamed (`restore` verified every
                // blob before the first write, so a failure here means the
                // pack changed under us; the marker stays).
                let dir = self.parent(cursor, Op::CreateFile, path)?;
                let mut source_error = None;
                let written =
                    safe_dir::create_file_with(dir, name, entry.mode, entry.mtime, |file| {
                        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                        let n = self
                            .blobs
                            .stream_blob(*hash, self.rewriter, &mut out)
                            .and_then(|n| {
                                std::io::Write::flush(&mut out)
                                    .map(|()| n)
                                    .map_err(StreamError::Write)
                            });
                        match n {
                            Ok(n) => Ok(n),
                            Err(StreamError::Write(e)) => Err(e),
                            Err(StreamError::Source(e)) => {
                                source_error = Some(e);
                                Err(std::io::Error::other("blob"))
                            }
                        }
                    });
                let written = match (written, source_error) {
                    (_, Some(source)) => {
                        return Err(ApplyError::Blob {
                            op: Op::ReadBlob,
                            path: self.root.display(path.as_bytes()),
                            hash: *hash,
                            source,
                        })
                    }
                    (Err((op, errno)), None) => return Err(self.io(op, path, errno)),
                    (Ok(n), None) => n,
                };
                if written != *size {
                    return Err(ApplyError::SizeMismatch {
                        op: Op::ReadBlob,
                        path: self.root.display(path.as_bytes()),
                        expected: *size,
                        actual: written,
                    });
                }
                Counts::add(&self.counts.files_created, 1);
                Counts::add(&self.counts.bytes_written, *size);
            }
            Node::File { size, hash } => {
                // Read and check the content first: a corrupt checkpoint
                // fails before the file exists.
                let mut content =
                    self.blobs
                        .read_blob(*hash)
                        .map_err(|source| ApplyError::Blob {
                            op: Op::ReadBlob,
                            path: self.root.display(path.as_bytes()),
                            hash: *hash,
                            source,
                        })?;
                self.rewriter.rewrite_in_place(&mut content);
                if content.len() as u64 != *size {
                    return Err(ApplyError::SizeMismatch {
                        op: Op::ReadBlob,
                        path: self.root.display(path.as_bytes()),
                        expected: *size,
                        actual: content.len() as u64,
                    });
                }
                let dir = self.parent(cursor, Op::CreateFile, path)?;
                safe_dir::create_file(dir, name, &content, entry.mode, entry.mtime)
                    .map_err(|(op, errno)| self.io(op, path, errno))?;
                Counts::add(&self.counts.files_created, 1);
                Counts::add(&self.counts.bytes_written, *size);
            }
            Node::Symlink { target, .. } => {
                let mut target = target.to_vec();
                self.rewriter.rewrite_in_place(&mut target);
                let dir = self.parent(cursor, Op::CreateSymlink, path)?;
                safe_dir::create_symlink(dir, name, &target)
                    .map_err(|errno| self.io(Op::CreateSymlink, path, errno))?;
                safe_dir::set_mtime(dir, name, entry.mtime)
                    .map_err(|errno| self.io(Op::SetTimes, path, errno))?;
                Counts::add(&self.counts.symlinks_created, 1);
            }
            Node::Dir => unreachable!("directories are created in step 2"),
        }
        Ok(())
    }

    /// `Retime` and `Freshen` of a file or symlink.
    fn set_times(&self, cursor: &mut DirCursor<'_>, action: &Action) -> Result<(), ApplyError> {
        let path = action.path();
        let (_, name) = split(path);
        let dir = self.parent(cursor, Op::SetTimes, path)?;
        match action {
            Action::Retime {
                kind, mode, mtime, ..
            } => {
                if *kind == Kind::File {
                    safe_dir::set_mode(dir, name, *mode)
                        .map_err(|e| self.entry_error(Op::SetMode, path, e))?;
                }
                safe_dir::set_mtime(dir, name, *mtime)
                    .map_err(|errno| self.io(Op::SetTimes, path, errno))?;
                Counts::add(&self.counts.retimed, 1);
            }
            Action::Freshen { .. } => {
                safe_dir::set_mtime(dir, name, self.fresh_mtime)
                    .map_err(|errno| self.io(Op::SetTimes, path, errno))?;
                Counts::add(&self.counts.freshened, 1);
            }
            _ => unreachable!("only Retime and Freshen are queued in step 4"),
        }
        Ok(())
    }

    /// Step 5: a directory's final mode and mtime.
    fn finish_dir(&self, cursor: &mut DirCursor<'_>, d: &DirTime<'_>) -> Result<(), ApplyError> {
        let dir = self.parent(cursor, Op::SetTimes, d.path)?;
        let (_, name) = split(d.path);
        if let Some(mode) = d.mode {
            safe_dir::set_mode(dir, name, mode)
                .map_err(|e| self.entry_error(Op::SetMode, d.path, e))?;
        }
        safe_dir::set_mtime(dir, name, d.mtime)
            .map_err(|errno| self.io(Op::SetTimes, d.path, errno))?;
        if d.retime {
            Counts::add(&self.counts.retimed, 1);
        }
        if d.freshen {
            Counts::add(&self.counts.freshened, 1);
        }
        Ok(())
    }
}
