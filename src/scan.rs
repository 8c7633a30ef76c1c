//! Walks and hashes a build tree into a [`Manifest`].
//!
//! Producing entries is separate from consuming them: the walk only lists
//! paths and types (cheap, serial, sorted), then every entry is stat'ed and
//! hashed in parallel. Symlinks are never followed; fifos, sockets and
//! devices are never opened (opening a fifo blocks) and are skipped with a
//! warning. The result is sorted by path, so a serial and a parallel scan give
//! the same manifest byte for byte.

use crate::error::{IoContext, WithSource};
use crate::rewrite::Rewriter;
use crate::tree::manifest::{Entry, Manifest, ManifestError, Node, Timestamp, PERMISSION_BITS};
use crate::tree::rel_path::{PathError, RelPath};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Files up to this size are read whole into a per-thread buffer and hashed
/// in one call; larger ones are streamed so memory stays bounded.
const WHOLE_READ_LIMIT: u64 = 4 << 20;

/// What the scan leaves out.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    /// Exact relative paths (and everything under them).
    pub paths: Vec<RelPath>,
    /// Top-level names starting with one of these.
    pub top_level_prefixes: Vec<Vec<u8>>,
    /// Exact top-level names.
    pub top_level_names: Vec<Vec<u8>>,
}

/// Top-level name prefixes of what Nix and nix-checkpoint write into the
/// build directory themselves: `.attr-*` (passAsFile) and `.nix-checkpoint*`
/// (the state file and the restore marker).
const BUILDER_PREFIXES: [&[u8]; 2] = [b".attr-", b".nix-checkpoint"];
/// Top-level names Nix writes into every build directory: the environment
/// (nixpkgs' dumpVars) and, under __structuredAttrs, the attrs.
const BUILDER_NAMES: [&[u8]; 3] = [b"env-vars", b".attrs.json", b".attrs.sh"];

/// Whether `path` is a top-level name Nix or nix-checkpoint writes into
/// every build directory (what [`Exclusions::nix_builder_files`] leaves out).
pub fn is_builder_file(path: &[u8]) -> bool {
    !path.contains(&b'/')
        && (BUILDER_NAMES.contains(&path) || BUILDER_PREFIXES.iter().any(|p| path.starts_with(p)))
}

impl Exclusions {
    /// What Nix and nix-checkpoint write into the build directory themselves:
    /// `env-vars`, `.attr-*` (passAsFile), and `.nix-checkpoint*` (the state
    /// file and the restore marker).
    pub fn nix_builder_files() -> Exclusions {
        Exclusions {
            paths: Vec::new(),
            top_level_prefixes: BUILDER_PREFIXES.iter().map(|p| p.to_vec()).collect(),
            top_level_names: BUILDER_NAMES.iter().map(|n| n.to_vec()).collect(),
        }
    }

    fn excludes(&self, path: &[u8]) -> bool {
        let top_level = !path.contains(&b'/');
        (top_level
            && (self.top_level_names.iter().any(|n| n == path)
                || self.top_level_prefixes.iter().any(|p| path.starts_with(p))))
            || self.paths.iter().any(|p| p.as_bytes() == path)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanStats {
    pub files: u64,
    pub symlinks: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub skipped_special: u64,
}

#[derive(Debug)]
pub struct Scan {
    pub manifest: Manifest,
    pub stats: ScanStats,
    /// One line per special file skipped.
    pub warnings: Vec<String>,
    /// What is in the tree but not in the manifest, sorted: special files
    /// (skipped) and excluded names (not descended into). Restore must not
    /// plan to create anything there, nor to remove a directory holding one.
    pub hidden: Vec<RelPath>,
    /// Files and symlinks with more hard links (`st_nlink`) than the scan
    /// saw in the tree, sorted: some name outside the tree (or excluded)
    /// shares the inode, so re-timing them would change a file outside.
    pub linked_outside: Vec<RelPath>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read directory {path}: {source}")]
    Walk { path: PathBuf, source: io::Error },
    #[error("cannot stat {path}: {source}")]
    Stat { path: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot read symlink {path}: {source}")]
    ReadLink { path: PathBuf, source: io::Error },
    #[error("{path} changed while it was being scanned ({what}); is a build still running in this tree?")]
    Changed { path: PathBuf, what: &'static str },
    #[error("unusable path {path}: {source}")]
    BadPath { path: PathBuf, source: PathError },
    #[error("{root}: {source}")]
    Manifest {
        root: PathBuf,
        source: ManifestError,
    },
}

/// What the scan was doing to which file, for [`IoContext::io_context`].
enum Doing<'a> {
    Stat(&'a Path),
    Open(&'a Path),
    Read(&'a Path),
    ReadLink(&'a Path),
}

impl WithSource for Doing<'_> {
    type Error = ScanError;

    fn with_source(self, source: io::Error) -> ScanError {
        match self {
            Doing::Stat(path) => ScanError::Stat {
                path: path.to_path_buf(),
                source,
            },
            Doing::Open(path) => ScanError::Open {
                path: path.to_path_buf(),
                source,
            },
            Doing::Read(path) => ScanError::Read {
                path: path.to_path_buf(),
                source,
            },
            Doing::ReadLink(path) => ScanError::ReadLink {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

impl ScanError {
    pub fn path(&self) -> &Path {
        match self {
            ScanError::Walk { path, .. }
            | ScanError::Stat { path, .. }
            | ScanError::Open { path, .. }
            | ScanError::Read { path, .. }
            | ScanError::ReadLink { path, .. }
            | ScanError::Changed { path, .. }
            | ScanError::BadPath { path, .. } => path,
            ScanError::Manifest { root, .. } => root,
        }
    }
}

/// One walked entry before stat and hashing.
struct Walked {
    rel: RelPath,
    kind: WalkedKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WalkedKind {
    File,
    Symlink,
    Dir,
    Special(&'static str),
}

enum Scanned {
    /// The entry, and `(dev, ino, nlink)` when it is a non-directory with
    /// more than one hard link.
    Entry(Entry, Option<(u64, u64, u64)>),
    Skipped(RelPath, String),
}

/// Scans `root`, hashing on rayon's pool. The result does not depend on the
/// number of threads: the walk is sorted first, hashing only maps it (a test
/// compares it with a scan on a one-thread pool).
pub fn scan(root: &Path, exclusions: &Exclusions, hasher: &Rewriter) -> Result<Scan, ScanError> {
    let (walked, mut hidden) = walk(root, exclusions)?;
    let scanned: Vec<Result<Scanned, ScanError>> = walked
        .par_iter()
        .map_init(Vec::new, |buf, w| scan_one(root, w, hasher, buf))
        .collect();

    let mut stats = ScanStats::default();
    let mut entries = Vec::with_capacity(scanned.len());
    let mut warnings = Vec::new();
    let mut links: std::collections::HashMap<(u64, u64), (u64, Vec<RelPath>)> =
        std::collections::HashMap::new();
    for item in scanned {
        match item? {
            Scanned::Entry(entry, link) => {
                match &entry.node {
                    Node::File { size, .. } => {
                        stats.files += 1;
                        stats.bytes += size;
                    }
                    Node::Symlink { .. } => stats.symlinks += 1,
                    Node::Dir => stats.dirs += 1,
                }
                if let Some((dev, ino, nlink)) = link {
                    let seen = links.entry((dev, ino)).or_insert((nlink, Vec::new()));
                    seen.1.push(entry.path.clone());
                }
                entries.push(entry);
            }
            Scanned::Skipped(path, warning) => {
                stats.skipped_special += 1;
                warnings.push(warning);
                hidden.push(path);
            }
        }
    }
    let mut linked_outside: Vec<RelPath> = links
        .into_values()
        .filter(|(nlink, inside)| *nlink > inside.len() as u64)
        .flat_map(|(_, inside)| inside)
        .collect();
    linked_outside.sort();
    hidden.sort();
    let manifest = Manifest::new(entries).map_err(|source| ScanError::Manifest {
        root: root.to_path_buf(),
        source,
    })?;
    Ok(Scan {
        manifest,
        stats,
        warnings,
        hidden,
        linked_outside,
    })
}

/// Lists every entry under `root` (not `root` itself), without following
/// symlinks and without descending into excluded paths.
/// Also returns the excluded entries it met (not descended into).
fn walk(root: &Path, exclusions: &Exclusions) -> Result<(Vec<Walked>, Vec<RelPath>), ScanError> {
    let mut walked = Vec::new();
    let mut excluded = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    let walker = walker.filter_entry(|e| {
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let rel = rel.as_os_str().as_bytes();
        let skip = exclusions.excludes(rel);
        if skip {
            excluded.extend(RelPath::new(rel).ok());
        }
        !skip
    });
    for item in walker {
        let entry = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let source = e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("filesystem loop"));
            ScanError::Walk { path, source }
        })?;
        let rel_bytes = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .as_os_str()
            .as_bytes();
        let rel = RelPath::new(rel_bytes).map_err(|source| ScanError::BadPath {
            path: entry.path().to_path_buf(),
            source,
        })?;
        let ft = entry.file_type();
        let kind = if ft.is_symlink() {
            WalkedKind::Symlink
        } else if ft.is_dir() {
            WalkedKind::Dir
        } else if ft.is_file() {
            WalkedKind::File
        } else {
            WalkedKind::Special(special_kind(&ft))
        };
        walked.push(Walked { rel, kind });
    }
    Ok((walked, excluded))
}

fn special_kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

fn scan_one(
    root: &Path,
    walked: &Walked,
    hasher: &Rewriter,
    buf: &mut Vec<u8>,
) -> Result<Scanned, ScanError> {
    let path = root.join(walked.rel.as_path());
    let (node, meta) = match walked.kind {
        WalkedKind::Special(what) => {
            return Ok(Scanned::Skipped(
                walked.rel.clone(),
                format!("skipped {what} {}", path.display()),
            ))
        }
        WalkedKind::Dir => {
            let meta = std::fs::symlink_metadata(&path).io_context(|| Doing::Stat(&path))?;
            if !meta.is_dir() {
                return Err(ScanError::Changed {
                    path,
                    what: "was a directory",
                });
            }
            (Node::Dir, meta)
        }
        WalkedKind::Symlink => {
            let meta = std::fs::symlink_metadata(&path).io_context(|| Doing::Stat(&path))?;
            let target = std::fs::read_link(&path).io_context(|| Doing::ReadLink(&path))?;
            let target: Box<[u8]> = target.as_os_str().as_bytes().into();
            let hash = hasher.hash(&target);
            (Node::Symlink { target, hash }, meta)
        }
        WalkedKind::File => hash_file(&path, hasher, buf)?,
    };
    let mode = if matches!(node, Node::Symlink { .. }) {
        0o777
    } else {
        meta.mode() & PERMISSION_BITS
    };
    let link = (!meta.is_dir() && meta.nlink() > 1).then(|| (meta.dev(), meta.ino(), meta.nlink()));
    Ok(Scanned::Entry(
        Entry {
            path: walked.rel.clone(),
            node,
            mode,
            mtime: Timestamp::from_metadata(&meta),
        },
        link,
    ))
}

/// Opens without following symlinks and without blocking (should the file
/// have been swapped for a fifo since the walk), then hashes from the fd.
fn hash_file(
    path: &Path,
    hasher: &Rewriter,
    buf: &mut Vec<u8>,
) -> Result<(Node, std::fs::Metadata), ScanError> {
    let mut file = File::options()
        .read(true)
        .custom_flags(libc_flags::O_NOFOLLOW | libc_flags::O_NONBLOCK | libc_flags::O_NOCTTY)
        .open(path)
        .io_context(|| Doing::Open(path))?;
    let meta = file.metadata().io_context(|| Doing::Stat(path))?;
    if !meta.is_file() {
        return Err(ScanError::Changed {
            path: path.to_path_buf(),
            what: "is no longer a regular file",
        });
    }
    let (hash, size) = if meta.len() <= WHOLE_READ_LIMIT {
        buf.clear();
        file.read_to_end(buf).io_context(|| Doing::Read(path))?;
        (hasher.hash(buf), buf.len() as u64)
    } else {
        hasher
            .hash_reader(&mut file)
            .io_context(|| Doing::Read(path))?
    };
    if size != meta.len() {
        return Err(ScanError::Changed {
            path: path.to_path_buf(),
            what: "its size changed while reading",
        });
    }
    Ok((Node::File { size, hash }, meta))
}

/// Open flags, from the `nix` crate so that no `libc` dependency is needed.
mod libc_flags {
    use nix::fcntl::OFlag;
    pub const O_NOFOLLOW: i32 = OFlag::O_NOFOLLOW.bits();
    pub const O_NONBLOCK: i32 = OFlag::O_NONBLOCK.bits();
    pub const O_NOCTTY: i32 = OFlag::O_NOCTTY.bits();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::write(root.join("src/a.c"), "int a;\n").unwrap();
        std::fs::write(root.join("src/sub/b.c"), "int b;\n").unwrap();
        std::fs::write(root.join(".config"), "CONFIG_X=y\n").unwrap();
        std::fs::write(root.join("env-vars"), "declare -x out=...\n").unwrap();
        std::fs::write(root.join(".attr-0"), "attr").unwrap();
        std::fs::write(root.join(".nix-checkpoint-state"), "state").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        symlink("src/a.c", root.join("link")).unwrap();
        symlink("/nonexistent/target", root.join("dangling")).unwrap();
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"\xffname")), "x").unwrap();
        dir
    }

    fn identity_scan(root: &Path, exclusions: Exclusions) -> Scan {
        scan(root, &exclusions, &Rewriter::identity()).unwrap()
    }

    fn names(scan: &Scan) -> Vec<String> {
        scan.manifest
            .entries()
            .iter()
            .map(|e| e.path.to_string())
            .collect()
    }

    #[test]
    fn builder_files_are_what_nix_builder_files_exclude() {
        let exclusions = Exclusions::nix_builder_files();
        for path in [
            &b"env-vars"[..],
            b".attrs.json",
            b".attrs.sh",
            b".attr-0",
            b".nix-checkpoint-state",
            b".nix-checkpoint-restoring",
            b"src/env-vars",
            b"env-vars2",
            b"x.attr-",
            b"src",
        ] {
            assert_eq!(is_builder_file(path), exclusions.excludes(path), "{path:?}");
        }
        assert!(is_builder_file(b".attr-0") && !is_builder_file(b"src/.attr-0"));
    }

    #[test]
    fn records_every_entry_except_builder_files() {
        let dir = tree();
        let scan = identity_scan(dir.path(), Exclusions::nix_builder_files());
        let names = names(&scan);
        assert!(
            names.contains(&".config".to_string()),
            "dotfiles count: {names:?}"
        );
        for excluded in ["env-vars", ".attr-0", ".nix-checkpoint-state"] {
            assert!(
                !names.contains(&excluded.to_string()),
                "{excluded} must be left out: {names:?}"
            );
        }
        let link = scan.manifest.get(&RelPath::new(b"link").unwrap()).unwrap();
        assert!(matches!(&link.node, Node::Symlink { target, .. } if &**target == b"src/a.c"));
        let script = scan
            .manifest
            .get(&RelPath::new(b"run.sh").unwrap())
            .unwrap();
        assert_eq!(script.mode, 0o755);
        assert!(
            scan.manifest
                .get(&RelPath::new(b"dangling").unwrap())
                .is_some(),
            "dangling symlinks are recorded, not followed"
        );
        assert!(
            scan.manifest
                .get(&RelPath::new(b"\xffname").unwrap())
                .is_some(),
            "non-UTF-8 names are kept byte for byte"
        );
        assert_eq!(scan.stats.files, 5);
    }

    #[test]
    fn parallel_and_serial_scans_are_identical() {
        let dir = tree();
        for i in 0..300 {
            std::fs::write(
                dir.path().join(format!("src/f{i}.c")),
                format!("int f{i};\n").repeat(i),
            )
            .unwrap();
        }
        let a = identity_scan(dir.path(), Exclusions::nix_builder_files());
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = one_thread.install(|| identity_scan(dir.path(), Exclusions::nix_builder_files()));
        assert_eq!(a.manifest, b.manifest);
    }

    #[test]
    fn content_hash_ignores_mtime_but_not_content() {
        let dir = tree();
        let path = dir.path().join("src/a.c");
        let first = identity_scan(dir.path(), Exclusions::default());
        filetime::set_file_mtime(&path, filetime::FileTime::from_unix_time(1, 5)).unwrap();
        let second = identity_scan(dir.path(), Exclusions::default());
        std::fs::write(&path, "int a = 1;\n").unwrap();
        let third = identity_scan(dir.path(), Exclusions::default());
        let key = RelPath::new(b"src/a.c").unwrap();
        let (e1, e2, e3) = (
            first.manifest.get(&key).unwrap(),
            second.manifest.get(&key).unwrap(),
            third.manifest.get(&key).unwrap(),
        );
        assert!(e1.same_content_and_mode(e2));
        assert_eq!(e2.mtime, Timestamp::new(1, 5), "nanoseconds are kept");
        assert!(!e2.same_content_and_mode(e3));
    }

    #[test]
    fn special_files_are_skipped_with_a_warning_and_never_opened() {
        let dir = tree();
        let fifo = dir.path().join("src/pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let scan = identity_scan(dir.path(), Exclusions::default());
        assert_eq!(scan.stats.skipped_special, 1);
        assert!(
            scan.warnings[0].contains("fifo") && scan.warnings[0].contains("src/pipe"),
            "{:?}",
            scan.warnings
        );
        assert!(!names(&scan).contains(&"src/pipe".to_string()));
    }

    #[test]
    fn large_files_stream_to_the_same_hash() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..(WHOLE_READ_LIMIT as usize + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(dir.path().join("big"), &content).unwrap();
        let scan = identity_scan(dir.path(), Exclusions::default());
        let entry = &scan.manifest.entries()[0];
        assert_eq!(
            entry.node,
            Node::File {
                size: content.len() as u64,
                hash: xxhash_rust::xxh3::xxh3_128(&content)
            }
        );
    }

    /// What restore must know beyond the manifest (#12, 2 and 4): special
    /// files and excluded names are listed as hidden, and a file with more
    /// hard links than the scan saw is listed as linked outside.
    #[test]
    fn scan_reports_hidden_entries_and_links_outside() {
        let dir = tree();
        let outside = tempfile::tempdir_in(dir.path().parent().unwrap()).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("src/pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        std::fs::write(outside.path().join("shared"), "shared").unwrap();
        std::fs::hard_link(outside.path().join("shared"), dir.path().join("src/linked")).unwrap();
        std::fs::hard_link(dir.path().join("src/a.c"), dir.path().join("src/a2.c")).unwrap();
        let scan = identity_scan(dir.path(), Exclusions::nix_builder_files());
        let hidden: Vec<String> = scan.hidden.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            hidden,
            [".attr-0", ".nix-checkpoint-state", "env-vars", "src/pipe"]
        );
        let linked: Vec<String> = scan.linked_outside.iter().map(|p| p.to_string()).collect();
        assert_eq!(linked, ["src/linked"], "a.c and a2.c are both inside");
    }
}
