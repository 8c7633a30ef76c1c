//! Crafting well-formed but hostile packs, for the hardening tests and the
//! fuzz targets. Not part of the interface: everything here bypasses the
//! writer's validation on purpose, so that the reader's (and `restore`'s)
//! defences can be exercised with valid checksums around hostile content.

use super::codec::{
    encode_info, trailer_checksum, ContainerWriter, Enc, COMPRESSION_RAW, COMPRESSION_ZSTD,
    HEADER_LEN, TRAILER_LEN,
};
use super::error::CheckpointError;
pub use super::guard::{add_guards, remove_guards, GUARD, GUARD_SPACING};
use super::pack::{PackReader, PACK_MAGIC};
use crate::build_info::BuildInfo;
use std::os::fd::{FromRawFd, OwnedFd};
use xxhash_rust::xxh3::xxh3_128;

/// An entry with any path bytes, kind byte and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub path: Vec<u8>,
    pub node: RawNode,
    pub mode: u32,
    pub mtime: (i64, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawNode {
    Dir,
    File {
        size: u64,
        hash: u128,
    },
    Symlink {
        target: Vec<u8>,
        hash: u128,
    },
    /// An unknown kind byte.
    Kind(u8),
}

impl RawEntry {
    pub fn dir(path: &[u8]) -> RawEntry {
        RawEntry {
            path: path.to_vec(),
            node: RawNode::Dir,
            mode: 0o755,
            mtime: (1_000_000_000, 0),
        }
    }
    /// A file whose content is `content` (hash = plain xxh3, the identity
    /// rewriter's).
    pub fn file(path: &[u8], content: &[u8]) -> RawEntry {
        RawEntry {
            path: path.to_vec(),
            node: RawNode::File {
                size: content.len() as u64,
                hash: xxh3_128(content),
            },
            mode: 0o644,
            mtime: (1_000_000_000, 0),
        }
    }
    pub fn symlink(path: &[u8], target: &[u8]) -> RawEntry {
        RawEntry {
            path: path.to_vec(),
            node: RawNode::Symlink {
                target: target.to_vec(),
                hash: xxh3_128(target),
            },
            mode: 0o777,
            mtime: (1_000_000_000, 0),
        }
    }
    pub fn with_mode(mut self, mode: u32) -> RawEntry {
        self.mode = mode;
        self
    }
    pub fn with_mtime(mut self, secs: i64, nanos: u32) -> RawEntry {
        self.mtime = (secs, nanos);
        self
    }
}

/// One blob as stored: any hash, bytes, declared size and checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlob {
    pub hash: u128,
    pub stored: Vec<u8>,
    pub raw_size: u64,
    pub zstd: bool,
    pub checksum: u128,
}

impl RawBlob {
    pub fn raw(content: &[u8]) -> RawBlob {
        RawBlob {
            hash: xxh3_128(content),
            stored: content.to_vec(),
            raw_size: content.len() as u64,
            zstd: false,
            checksum: xxh3_128(content),
        }
    }
    pub fn zstd(content: &[u8]) -> RawBlob {
        RawBlob {
            stored: zstd::bulk::compress(content, 19).expect("zstd in memory"),
            zstd: true,
            ..RawBlob::raw(content)
        }
    }
}

/// A whole pack, encoded without any validation but with valid checksums.
#[derive(Debug, Clone)]
pub struct RawPack {
    pub info: BuildInfo,
    pub before: Vec<RawEntry>,
    pub after: Vec<RawEntry>,
    /// In the given order (sort them by hash for a sound pack).
    pub blobs: Vec<RawBlob>,
    /// Bytes appended to the section after the blob table.
    pub section_tail: Vec<u8>,
    pub zstd_section: bool,
    /// Overrides `section_raw` in the trailer.
    pub declared_section_raw: Option<u64>,
    /// Overrides the manifest entry count of B.
    pub after_count: Option<u32>,
    /// Overrides the blob count.
    pub blob_count: Option<u32>,
}

impl RawPack {
    /// An empty pack for a build rooted at `root` with no outputs and no
    /// dependencies (what `restore --root ROOT` sees without a Nix
    /// environment).
    pub fn new(root: &[u8]) -> RawPack {
        RawPack {
            info: BuildInfo {
                root: root.to_vec(),
                store_dir: b"/nix/store".to_vec(),
                outputs: Vec::new(),
                dependencies: Vec::new(),
                recipe: Default::default(),
            },
            before: Vec::new(),
            after: Vec::new(),
            blobs: Vec::new(),
            section_tail: Vec::new(),
            zstd_section: true,
            declared_section_raw: None,
            after_count: None,
            blob_count: None,
        }
    }

    /// Adds a file of B and its blob (raw).
    pub fn with_file(mut self, path: &[u8], content: &[u8]) -> RawPack {
        self.after.push(RawEntry::file(path, content));
        let blob = RawBlob::raw(content);
        if !self.blobs.iter().any(|b| b.hash == blob.hash) {
            self.blobs.push(blob);
            self.blobs.sort_by_key(|b| b.hash);
        }
        self
    }

    pub fn with_dir(mut self, path: &[u8]) -> RawPack {
        self.after.push(RawEntry::dir(path));
        self
    }

    pub fn with_symlink(mut self, path: &[u8], target: &[u8]) -> RawPack {
        self.after.push(RawEntry::symlink(path, target));
        self
    }

    /// The decompressed manifest section.
    pub fn section(&self) -> Vec<u8> {
        let mut e = Enc::default();
        encode_info(&mut e, &self.info);
        raw_manifest(&mut e, &self.before, false, None);
        raw_manifest(&mut e, &self.after, true, self.after_count);
        e.u32(self.blob_count.unwrap_or(self.blobs.len() as u32));
        let mut offset = HEADER_LEN;
        for b in &self.blobs {
            e.u128(b.hash);
            e.u64(offset);
            e.u64(b.stored.len() as u64);
            e.u64(b.raw_size);
            e.u128(b.checksum);
            e.u8(if b.zstd {
                COMPRESSION_ZSTD
            } else {
                COMPRESSION_RAW
            });
            e.0.extend_from_slice(&[0; 7]);
            offset += b.stored.len() as u64;
        }
        e.0.extend_from_slice(&self.section_tail);
        e.0
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let area: Vec<u8> = self.blobs.iter().flat_map(|b| b.stored.clone()).collect();
        assemble(
            &area,
            &self.section(),
            self.zstd_section,
            self.declared_section_raw,
        )
    }
}

fn raw_manifest(e: &mut Enc, entries: &[RawEntry], with_mtime: bool, count: Option<u32>) {
    e.u32(count.unwrap_or(entries.len() as u32));
    for entry in entries {
        e.bytes16(&entry.path);
        e.u8(match entry.node {
            RawNode::Dir => 0,
            RawNode::File { .. } => 1,
            RawNode::Symlink { .. } => 2,
            RawNode::Kind(k) => k,
        });
        e.u32(entry.mode);
        if with_mtime {
            e.i64(entry.mtime.0);
            e.u32(entry.mtime.1);
        }
        match &entry.node {
            RawNode::Dir | RawNode::Kind(_) => {}
            RawNode::File { size, hash } => {
                e.u64(*size);
                e.u128(*hash);
            }
            RawNode::Symlink { target, hash } => {
                e.bytes16(target);
                e.u128(*hash);
            }
        }
    }
}

/// Header, blob area, section (raw or one zstd frame) and a trailer whose
/// checksums match, with the guard bytes of every pack (so that offsets
/// in `section` are logical ones, as in a pack `save` writes).
pub fn assemble(area: &[u8], section: &[u8], zstd_section: bool, declared: Option<u64>) -> Vec<u8> {
    let (compression, stored) = if zstd_section {
        (
            COMPRESSION_ZSTD,
            zstd::bulk::compress(section, 3).expect("zstd in memory"),
        )
    } else {
        (COMPRESSION_RAW, section.to_vec())
    };
    let in_memory = "writing to a Vec cannot fail";
    let mut w = ContainerWriter::new(Vec::new(), &PACK_MAGIC).expect(in_memory);
    w.write_all(area).expect(in_memory);
    let raw_len = declared.unwrap_or(section.len() as u64);
    let trailer = w
        .write_section(&stored, raw_len, compression)
        .expect(in_memory);
    w.finish(&trailer).expect(in_memory).0
}

/// Recomputes the section and trailer checksums of `bytes` in place (when
/// the trailer's offsets fit) and zeroes its guard bytes, so that a
/// fuzzer's mutations reach the decoder instead of stopping at a checksum.
/// Returns whether it could (not for a length no pack has).
pub fn fix_checksums(bytes: &mut [u8]) -> bool {
    let Some(mut logical) = remove_guards(bytes) else {
        return false;
    };
    if !fix_logical_checksums(&mut logical) {
        return false;
    }
    bytes.copy_from_slice(&add_guards(&logical));
    true
}

fn fix_logical_checksums(bytes: &mut [u8]) -> bool {
    let len = bytes.len() as u64;
    if len < HEADER_LEN + TRAILER_LEN {
        return false;
    }
    let t = (len - TRAILER_LEN) as usize;
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let offset = le64(bytes, t);
    let stored = le64(bytes, t + 8);
    if let Some(end) = offset.checked_add(stored) {
        if offset >= HEADER_LEN && end <= len - TRAILER_LEN {
            let sum = xxh3_128(&bytes[offset as usize..end as usize]);
            bytes[t + 32..t + 48].copy_from_slice(&sum.to_le_bytes());
        }
    }
    let sum = trailer_checksum(&bytes[..HEADER_LEN as usize], &bytes[t..t + 48]);
    bytes[t + 48..t + 64].copy_from_slice(&sum.to_le_bytes());
    true
}

/// Opens `bytes` as a pack without touching the file system (a memfd),
/// through the same [`PackReader::open`] as `restore`.
pub fn open_bytes(bytes: &[u8]) -> Result<PackReader, CheckpointError> {
    // SAFETY: a C string literal; memfd_create returns a new fd or -1.
    let fd = unsafe { nix::libc::memfd_create(c"nckp-fuzz".as_ptr(), nix::libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd, owned by nobody else.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::os::unix::fs::FileExt::write_all_at(&file, bytes, 0).expect("write to a memfd");
    PackReader::open(std::path::Path::new(&format!("/proc/self/fd/{fd}")))
}

/// A pack whose P and B are `n_before` and `n_after` top-level directories
/// (`d0000000`, ...), encoded straight into the section without building
/// entries first: the largest packs the format limits allow (2 x 8 388 608
/// entries) in little more memory than their section. For memory tests and
/// `bench/memory.sh`.
pub fn many_dirs_pack(root: &[u8], n_before: u32, n_after: u32) -> Vec<u8> {
    let mut e = Enc::default();
    encode_info(
        &mut e,
        &BuildInfo {
            root: root.to_vec(),
            store_dir: b"/nix/store".to_vec(),
            outputs: Vec::new(),
            dependencies: Vec::new(),
            recipe: Default::default(),
        },
    );
    for (n, with_mtime) in [(n_before, false), (n_after, true)] {
        e.u32(n);
        for i in 0..n {
            e.bytes16(format!("d{i:07}").as_bytes());
            e.u8(0);
            e.u32(0o755);
            if with_mtime {
                e.i64(1_000_000_000);
                e.u32(0);
            }
        }
    }
    e.u32(0);
    assemble(&[], &e.0, true, None)
}
