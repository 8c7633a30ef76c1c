//! The in-memory model of a build tree: sorted entries with content hashes.

use super::rel_path::RelPath;

/// xxh3-128 of a file's content (or a symlink's target), computed modulo the
/// build's own store paths and root (see `rewrite`).
pub type ContentHash = u128;

/// A modification time with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub const fn new(secs: i64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Timestamp {
            secs: self.secs.saturating_add(secs),
            nanos: self.nanos,
        }
    }

    /// Nanoseconds since the epoch (exact for every `Timestamp`).
    pub fn as_nanos(self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// The timestamp `nanos` after the epoch, saturating at `i64` seconds.
    fn from_nanos(nanos: i128) -> Self {
        let secs = nanos.div_euclid(1_000_000_000);
        let nanos = nanos.rem_euclid(1_000_000_000) as u32;
        if secs > i64::MAX as i128 {
            Timestamp::new(i64::MAX, 999_999_999)
        } else if secs < i64::MIN as i128 {
            Timestamp::new(i64::MIN, 0)
        } else {
            Timestamp::new(secs as i64, nanos)
        }
    }

    /// `self` moved `nanos` earlier (saturating).
    pub fn minus_nanos(self, nanos: i128) -> Self {
        Timestamp::from_nanos(self.as_nanos().saturating_sub(nanos))
    }

    #[cfg(test)]
    pub fn to_filetime(self) -> filetime::FileTime {
        filetime::FileTime::from_unix_time(self.secs, self.nanos)
    }

    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Timestamp {
            secs: meta.mtime(),
            nanos: meta.mtime_nsec() as u32,
        }
    }

    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }
}

/// What an entry is. Special files (fifos, sockets, devices) never become
/// nodes: the scanner skips them with a warning.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    File {
        size: u64,
        hash: ContentHash,
    },
    /// `hash` is the masked hash of `target`, so that a link into `$out`
    /// compares equal across builds with different output hashes.
    Symlink {
        target: Box<[u8]>,
        hash: ContentHash,
    },
    Dir,
}

impl Node {
    pub fn kind(&self) -> Kind {
        match self {
            Node::File { .. } => Kind::File,
            Node::Symlink { .. } => Kind::Symlink,
            Node::Dir => Kind::Dir,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File,
    Symlink,
    Dir,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::File => "file",
            Kind::Symlink => "symlink",
            Kind::Dir => "dir",
        })
    }
}

/// Permission bits kept for an entry (`st_mode & 0o7777`).
pub const PERMISSION_BITS: u32 = 0o7777;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub path: RelPath,
    pub node: Node,
    /// Permission bits only (`& PERMISSION_BITS`); symlinks carry 0o777.
    pub mode: u32,
    pub mtime: Timestamp,
}

impl Entry {
    /// Same type, same (masked) content, same permission bits: what the
    /// merge means by "unchanged". Mtimes are deliberately ignored.
    pub fn same_content_and_mode(&self, other: &Entry) -> bool {
        let same_node = match (&self.node, &other.node) {
            (Node::File { size: a, hash: ha }, Node::File { size: b, hash: hb }) => {
                a == b && ha == hb
            }
            (Node::Symlink { hash: ha, .. }, Node::Symlink { hash: hb, .. }) => ha == hb,
            (Node::Dir, Node::Dir) => true,
            _ => false,
        };
        same_node && (self.node.kind() == Kind::Symlink || self.mode == other.mode)
    }
}

/// Entries sorted by path (bytewise), paths unique, every parent present as
/// a directory before its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}: listed twice")]
    Duplicate(RelPath),
    #[error("{path}: its parent {parent} is not a directory in the manifest")]
    MissingParent { path: RelPath, parent: RelPath },
}

impl Manifest {
    /// Sorts `entries` and checks the invariants: unique paths, and every
    /// parent listed as a directory (so nothing lives under a symlink or a
    /// file, and a path is never both a file and a directory).
    pub fn new(mut entries: Vec<Entry>) -> Result<Self, ManifestError> {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        for pair in entries.windows(2) {
            if pair[0].path == pair[1].path {
                return Err(ManifestError::Duplicate(pair[0].path.clone()));
            }
        }
        let manifest = Manifest { entries };
        for entry in &manifest.entries {
            if let Some(parent) = entry.path.parent() {
                match manifest.get(&parent) {
                    Some(Entry {
                        node: Node::Dir, ..
                    }) => {}
                    _ => {
                        return Err(ManifestError::MissingParent {
                            path: entry.path.clone(),
                            parent,
                        })
                    }
                }
            }
        }
        Ok(manifest)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, path: &RelPath) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }
}
