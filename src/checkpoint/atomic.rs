//! Replacing a file atomically: a temporary file next to it, fsync,
//! rename, fsync of the directory, under a lock on the directory.

use super::error::{CheckpointError, Op, Writing};
use crate::error::IoContext;
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A temporary file next to its destination, removed on drop unless
/// [`AtomicFile::commit`] renamed it into place. While it exists, it holds
/// an exclusive `flock` on the destination's directory, so two writers into
/// one directory (two saves with one `--output`) take turns: each renames
/// its own complete file, never the other's.
pub struct AtomicFile {
    pub temp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    file: Option<File>,
    /// The directory, locked (`flock(LOCK_EX)`) until drop.
    _lock: nix::fcntl::Flock<File>,
}

/// A name no other writer uses: pid, time and a per-process counter.
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{nanos:x}.{n}", std::process::id())
}

impl AtomicFile {
    /// Locks the destination's directory (waiting for another writer to
    /// finish), removes stale temporary files of killed writers (regular
    /// files named `.NAME.tmp*`: under the lock no live writer has one), and
    /// creates `dir/.NAME.tmp.<pid>.<time>.<n>` exclusively (mode 0644).
    pub fn create(dest: &Path) -> Result<AtomicFile, CheckpointError> {
        // `Path::new("state").parent()` is `Some("")`: that is the current
        // directory, which `File::open("")` (for the directory fsync) is not.
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let lock = File::open(&dir).io_context(|| Writing(Op::OpenDirToLock, &dir))?;
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))
            .io_context(|| Writing(Op::LockDir, &dir))?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.tmp");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let stale = entry
                    .file_name()
                    .as_encoded_bytes()
                    .starts_with(prefix.as_bytes())
                    && entry.file_type().is_ok_and(|t| t.is_file());
                if stale {
                    let path = entry.path();
                    std::fs::remove_file(&path)
                        .io_context(|| Writing(Op::RemoveStaleTemp, &path))?;
                }
            }
        }
        let temp = dir.join(format!("{prefix}.{}", unique_suffix()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&temp)
            .io_context(|| Writing(Op::CreateTemp, &temp))?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_owned(),
            dir,
            file: Some(file),
            _lock: lock,
        })
    }

    pub fn file(&self) -> &File {
        self.file.as_ref().expect("open until commit")
    }

    /// The context of a failed write to the temporary file.
    pub fn writing(&self, op: Op) -> Writing<'_> {
        Writing(op, &self.temp)
    }

    /// fsync, rename over the destination, fsync the directory.
    pub fn commit(mut self) -> Result<(), CheckpointError> {
        let file = self.file.take().expect("open until commit");
        file.sync_all().io_context(|| self.writing(Op::Fsync))?;
        drop(file);
        std::fs::rename(&self.temp, &self.dest)
            .io_context(|| Writing(Op::RenameIntoPlace(self.temp.clone()), &self.dest))?;
        // Renamed: nothing left to clean up even if the directory sync fails.
        self.temp = PathBuf::new();
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .io_context(|| Writing(Op::FsyncDir, &self.dir))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file.take();
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
