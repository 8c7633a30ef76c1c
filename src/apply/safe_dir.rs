//! Writing beneath a directory without ever following a symlink.
//!
//! [`SafeRoot`] holds an fd of the build root. Every path below it is
//! reached from that fd: with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! where the kernel has it, else one `openat(O_NOFOLLOW | O_DIRECTORY)` per
//! component. The last component is then acted on relative to its parent's
//! fd with the `*at` calls, each of which never follows a symlink in the last
//! component either (`O_EXCL|O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `unlinkat`,
//! `symlinkat`, `mkdirat`).
//!
//! [`DirCursor`] caches the chain of directory fds for the directory last
//! visited, so a traversal in sorted order opens each directory about once.

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, UnlinkatFlags};
use nix::NixPath;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::tree::{Kind, Timestamp};

/// Flags for every directory opened on the way down: no read permission
/// needed (`O_PATH`), a directory or nothing, never a symlink.
const WALK_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const MISSING: u8 = 2;

/// Whether `openat2` works here (ENOSYS on kernels before 5.6 and under
/// some seccomp filters).
static OPENAT2: AtomicU8 = AtomicU8::new(UNKNOWN);
/// Whether `fchmodat2` works here (kernel 6.6+; Nix's own seccomp filter
/// answers ENOSYS so that callers fall back).
static FCHMODAT2: AtomicU8 = AtomicU8::new(UNKNOWN);

/// `fchmodat2` has the same number on every architecture with the unified
/// syscall table.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "riscv32",
    target_arch = "loongarch64",
    target_arch = "s390x",
    target_arch = "powerpc64",
    target_arch = "powerpc"
))]
const SYS_FCHMODAT2: Option<nix::libc::c_long> = Some(452);
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "riscv32",
    target_arch = "loongarch64",
    target_arch = "s390x",
    target_arch = "powerpc64",
    target_arch = "powerpc"
)))]
const SYS_FCHMODAT2: Option<nix::libc::c_long> = None;

/// Why a directory below the root could not be opened. `at` is the path
/// (relative to the root) of the component that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    /// `at` is a symlink: refused, never followed.
    Symlink {
        at: Vec<u8>,
    },
    Errno {
        at: Vec<u8>,
        errno: Errno,
    },
}

/// Why an operation on a last component failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// The entry is a symlink where a file or directory was expected.
    Symlink,
    Errno(Errno),
}

impl From<Errno> for EntryError {
    fn from(errno: Errno) -> Self {
        EntryError::Errno(errno)
    }
}

/// An fd of the build root.
#[derive(Debug)]
pub struct SafeRoot {
    fd: OwnedFd,
    path: PathBuf,
}

impl SafeRoot {
    /// Opens the root itself. The root's own path is the caller's choice,
    /// not the tree's, so symlinks in it are followed; nothing below it is.
    pub fn open(root: &Path) -> Result<SafeRoot, Errno> {
        let fd = fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(SafeRoot {
            // SAFETY: `open` just returned this fd and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: root.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The absolute path of `rel` (for messages only).
    pub fn display(&self, rel: &[u8]) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        if rel.is_empty() {
            self.path.clone()
        } else {
            self.path.join(std::ffi::OsStr::from_bytes(rel))
        }
    }

    pub fn cursor(&self) -> DirCursor<'_> {
        DirCursor {
            root: self,
            stack: Vec::new(),
        }
    }

    /// `fsync` the root directory itself.
    pub fn sync(&self) -> Result<(), Errno> {
        unistd::fsync(self.fd.as_raw_fd())
    }
}

/// A cache of open directories along one path below the root: moving to a
/// directory pops to the deepest cached ancestor and opens only the rest.
#[derive(Debug)]
pub struct DirCursor<'r> {
    root: &'r SafeRoot,
    /// Each entry's path is an ancestor of (or equal to) the next one's.
    stack: Vec<(Box<[u8]>, OwnedFd)>,
}

fn is_ancestor_or_self(dir: &[u8], of: &[u8]) -> bool {
    of.len() >= dir.len() && of.starts_with(dir) && (of.len() == dir.len() || of[dir.len()] == b'/')
}

impl<'r> DirCursor<'r> {
    /// An fd of the directory `dir` (relative; empty = the root).
    pub fn dir(&mut self, dir: &[u8]) -> Result<BorrowedFd<'_>, WalkError> {
        if dir.is_empty() {
            return Ok(self.root.fd());
        }
        while let Some((top, _)) = self.stack.last() {
            if is_ancestor_or_self(top, dir) {
                break;
            }
            self.stack.pop();
        }
        if self.stack.last().map(|(top, _)| top.len()) != Some(dir.len()) {
            let (prefix_len, base) = match self.stack.last() {
                Some((top, fd)) => (top.len() + 1, fd.as_fd()),
                None => (0, self.root.fd()),
            };
            let fd = open_beneath(base, &dir[..prefix_len], &dir[prefix_len..])?;
            self.stack.push((dir.into(), fd));
        }
        Ok(self.stack.last().expect("open or just pushed").1.as_fd())
    }
}

/// Opens the directory `rel` below `base` (whose own path, relative to the
/// root, is `base_prefix` including a trailing `/`, or empty for the root).
fn open_beneath(
    base: BorrowedFd<'_>,
    base_prefix: &[u8],
    rel: &[u8],
) -> Result<OwnedFd, WalkError> {
    if rel.contains(&b'/') && OPENAT2.load(Ordering::Relaxed) != MISSING {
        let how = fcntl::OpenHow::new().flags(WALK_FLAGS).resolve(
            fcntl::ResolveFlag::RESOLVE_BENEATH
                | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                | fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        match fcntl::openat2(base.as_raw_fd(), rel, how) {
            Ok(fd) => {
                OPENAT2.store(AVAILABLE, Ordering::Relaxed);
                // SAFETY: a fresh fd from openat2, owned by nobody else.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            Err(Errno::ENOSYS) => OPENAT2.store(MISSING, Ordering::Relaxed),
            // ELOOP (a symlink), ENOTDIR, ENOENT, EXDEV, or a seccomp EPERM:
            // the walk below either succeeds or names the exact component.
            Err(_) => {}
        }
    }
    walk(base, base_prefix, rel)
}

/// One `openat(O_NOFOLLOW | O_DIRECTORY)` per component.
pub(super) fn walk(
    base: BorrowedFd<'_>,
    base_prefix: &[u8],
    rel: &[u8],
) -> Result<OwnedFd, WalkError> {
    let mut current: Option<OwnedFd> = None;
    let mut consumed = 0usize;
    for component in rel.split(|&b| b == b'/') {
        let at = || {
            let mut p = base_prefix.to_vec();
            p.extend_from_slice(&rel[..consumed + component.len()]);
            p
        };
        let dirfd = current.as_ref().map_or(base, |fd| fd.as_fd());
        match fcntl::openat(
            Some(dirfd.as_raw_fd()),
            component,
            WALK_FLAGS,
            Mode::empty(),
        ) {
            // SAFETY: a fresh fd from openat, owned by nobody else.
            Ok(fd) => current = Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(errno @ (Errno::ENOTDIR | Errno::ELOOP)) => {
                return Err(match lstat_at(dirfd, component) {
                    Ok(st) if is_kind(&st, SFlag::S_IFLNK) => WalkError::Symlink { at: at() },
                    _ => WalkError::Errno { at: at(), errno },
                })
            }
            Err(errno) => return Err(WalkError::Errno { at: at(), errno }),
        }
        consumed += component.len() + 1;
    }
    Ok(current.expect("a relative path has at least one component"))
}

fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<FileStat, Errno> {
    stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

fn timespec(t: Timestamp) -> TimeSpec {
    TimeSpec::new(t.secs as _, t.nanos as _)
}

fn mode_bits(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode as nix::libc::mode_t)
}

/// Creates a regular file `name` in `dir` (which must not exist: `O_EXCL`
/// never follows or reuses anything there), writes `content`, then sets the
/// exact `mode` and `mtime` through the fd. Returns the failing step.
pub fn create_file(
    dir: BorrowedFd<'_>,
    name: &[u8],
    content: &[u8],
    mode: u32,
    mtime: Timestamp,
) -> Result<(), (crate::apply::error::Op, Errno)> {
    create_file_with(dir, name, mode, mtime, |file| {
        if !content.is_empty() {
            file.write_all(content)?;
        }
        Ok(content.len() as u64)
    })
    .map(|_| ())
}

/// [`create_file`] with the content written by `write` (which returns the
/// bytes it wrote); the mode and mtime are set after it succeeded.
pub fn create_file_with(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mode: u32,
    mtime: Timestamp,
    write: impl FnOnce(&mut File) -> std::io::Result<u64>,
) -> Result<u64, (crate::apply::error::Op, Errno)> {
    use crate::apply::error::Op;
    let fd = fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| (Op::CreateFile, e))?;
    // SAFETY: a fresh fd from openat, owned by nobody else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let written = write(&mut file).map_err(|e| {
        (
            Op::Write,
            Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)),
        )
    })?;
    // Mode after writing (the content may be read-only); times last.
    stat::fchmod(file.as_raw_fd(), mode_bits(mode)).map_err(|e| (Op::SetMode, e))?;
    stat::futimens(file.as_raw_fd(), &TimeSpec::UTIME_OMIT, &timespec(mtime))
        .map_err(|e| (Op::SetTimes, e))?;
    Ok(written)
}

/// `symlinkat`: fails if anything is at `name`.
pub fn create_symlink(dir: BorrowedFd<'_>, name: &[u8], target: &[u8]) -> Result<(), Errno> {
    unistd::symlinkat(target, Some(dir.as_raw_fd()), name)
}

/// `mkdirat`: fails if anything is at `name`.
pub fn create_dir(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> Result<(), Errno> {
    stat::mkdirat(Some(dir.as_raw_fd()), name, mode_bits(mode))
}

/// `unlinkat`: a file or symlink (the link itself), or an empty directory.
pub fn remove(dir: BorrowedFd<'_>, name: &[u8], kind: Kind) -> Result<(), Errno> {
    let flag = match kind {
        Kind::Dir => UnlinkatFlags::RemoveDir,
        Kind::File | Kind::Symlink => UnlinkatFlags::NoRemoveDir,
    };
    unistd::unlinkat(Some(dir.as_raw_fd()), name, flag)
}

/// The mtime of `name` itself (a symlink's own time, never its target's).
pub fn set_mtime(dir: BorrowedFd<'_>, name: &[u8], mtime: Timestamp) -> Result<(), Errno> {
    stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &TimeSpec::UTIME_OMIT,
        &timespec(mtime),
        UtimensatFlags::NoFollowSymlink,
    )
}

/// The atime of `name` itself, leaving its mtime (the configure-read
/// tracker's reset: an access time older than the inode change time makes
/// even a `relatime` mount record the next read).
pub fn set_atime(dir: BorrowedFd<'_>, name: &[u8], atime: Timestamp) -> Result<(), Errno> {
    stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &timespec(atime),
        &TimeSpec::UTIME_OMIT,
        UtimensatFlags::NoFollowSymlink,
    )
}

/// The atime of `name` itself (never a symlink's target's).
pub fn atime(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Timestamp, Errno> {
    let st = lstat_at(dir, name)?;
    Ok(Timestamp {
        secs: st.st_atime,
        nanos: st.st_atime_nsec as u32,
    })
}

/// Sets the permission bits of a file or directory, refusing a symlink
/// (Linux has no symlink modes, and following one could chmod anything).
pub fn set_mode(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> Result<(), EntryError> {
    if let Some(sys) = SYS_FCHMODAT2 {
        if FCHMODAT2.load(Ordering::Relaxed) != MISSING {
            let res = name.with_nix_path(|cstr| unsafe {
                nix::libc::syscall(
                    sys,
                    dir.as_raw_fd(),
                    cstr.as_ptr(),
                    (mode & 0o7777) as nix::libc::c_uint,
                    nix::libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
            match Errno::result(res) {
                Ok(_) => {
                    FCHMODAT2.store(AVAILABLE, Ordering::Relaxed);
                    return Ok(());
                }
                Err(Errno::ENOSYS) => FCHMODAT2.store(MISSING, Ordering::Relaxed),
                // What fchmodat2 answers for a symlink with AT_SYMLINK_NOFOLLOW.
                Err(Errno::EOPNOTSUPP) => return Err(EntryError::Symlink),
                Err(e) => return Err(EntryError::Errno(e)),
            }
        }
    }
    // Old kernel: check, then chmod. The window between the two only matters
    // to a concurrent attacker, which a build sandbox does not have.
    let st = lstat_at(dir, name)?;
    if is_kind(&st, SFlag::S_IFLNK) {
        return Err(EntryError::Symlink);
    }
    stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        mode_bits(mode),
        stat::FchmodatFlags::FollowSymlink,
    )?;
    Ok(())
}

/// Creates `name` in the root with `O_EXCL`, writes `content` and syncs it
/// and the root. `EEXIST` if it is already there (whatever its type).
pub fn create_synced(root: &SafeRoot, name: &[u8], content: &[u8]) -> Result<(), Errno> {
    let fd = fcntl::openat(
        Some(root.fd().as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )?;
    // SAFETY: a fresh fd from openat, owned by nobody else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(content)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))?;
    unistd::fsync(file.as_raw_fd())?;
    root.sync()
}

/// Whether anything (of any type) is at `name` below `dir`.
#[cfg(test)]
pub fn exists(dir: BorrowedFd<'_>, name: &[u8]) -> Result<bool, Errno> {
    match lstat_at(dir, name) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}
