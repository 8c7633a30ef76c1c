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
    /// Overrides the manifest entry count of P.
    pub before_count: Option<u32>,
    /// Replaces the encoded build information (root, store, outputs,
    /// dependencies, recipe) with these bytes.
    pub info_raw: Option<Vec<u8>>,
    /// Overrides each blob's offset (in order), and the blob area's bytes.
    pub blob_layout: Option<(Vec<u64>, Vec<u8>)>,
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
            before_count: None,
            info_raw: None,
            blob_layout: None,
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
        match &self.info_raw {
            Some(raw) => e.0.extend_from_slice(raw),
            None => encode_info(&mut e, &self.info),
        }
        raw_manifest(&mut e, &self.before, false, self.before_count);
        raw_manifest(&mut e, &self.after, true, self.after_count);
        e.u32(self.blob_count.unwrap_or(self.blobs.len() as u32));
        let mut offset = HEADER_LEN;
        for (i, b) in self.blobs.iter().enumerate() {
            e.u128(b.hash);
            e.u64(match &self.blob_layout {
                Some((offsets, _)) => offsets[i],
                None => offset,
            });
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
        let area: Vec<u8> = match &self.blob_layout {
            Some((_, area)) => area.clone(),
            None => self.blobs.iter().flat_map(|b| b.stored.clone()).collect(),
        };
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

// ------------------------------------------------ the hostile corpus

/// One hostile checkpoint of [`hostile_packs`]: a name, the pack bytes, the exit code and a
/// fragment of the message that shows why it was refused.
///
/// The exit codes: 6 corrupt, 7 unsupported, 8 unsafe (`ExitCode`).
#[derive(Debug, Clone)]
pub struct HostilePack {
    pub name: String,
    pub bytes: Vec<u8>,
    pub code: u8,
    pub reason: &'static str,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, code: u8, reason: &'static str) -> HostilePack {
    HostilePack {
        name: name.into(),
        bytes,
        code,
        reason,
    }
}

/// A sound pack for `root`: a directory, files (one zstd blob), a symlink.
pub fn sound_pack(root: &[u8]) -> RawPack {
    let mut p = RawPack::new(root)
        .with_dir(b"out")
        .with_file(b"out/a.o", b"object a")
        .with_symlink(b"out/link", b"a.o");
    let big = vec![b'z'; 10_000];
    p.after.push(RawEntry::file(b"out/big", &big));
    p.blobs.push(RawBlob::zstd(&big));
    p.blobs.sort_by_key(|b| b.hash);
    sorted(p)
}

/// Sorts B by path, as a sound pack has it.
pub fn sorted(mut p: RawPack) -> RawPack {
    p.after.sort_by(|a, b| a.path.cmp(&b.path));
    p
}

/// Every hostile checkpoint the tests know, for a build rooted at `root`:
/// the unit tests open and verify each (`checkpoint/tests.rs`), the
/// integration tests restore and verify each with the binary
/// (`tests/it/hardening.rs`). Each is refused for its own reason.
pub fn hostile_packs(root: &[u8]) -> Vec<HostilePack> {
    let sound = sound_pack(root);
    let sound_bytes = sound.to_bytes();
    let mut cases = Vec::new();

    // Not ours, or damaged.
    cases.push(case("empty file", Vec::new(), 6, "truncated"));
    cases.push(case(
        "ELF",
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0rest".to_vec(),
        7,
        "wrong magic",
    ));
    cases.push(case(
        "text",
        b"#!/bin/sh\necho hello\n".repeat(10),
        7,
        "wrong magic",
    ));
    // The next format version, which this binary cannot know.
    let next = super::codec::FORMAT_VERSION + 1;
    let mut unknown = sound_bytes.clone();
    unknown[8..12].copy_from_slice(&next.to_le_bytes());
    let reason: &'static str = format!("format version {next}").leak();
    cases.push(case(format!("version {next}"), unknown, 7, reason));
    // The previous one, which kept no recipe: refused, never read without one.
    let mut v1 = sound_bytes.clone();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    cases.push(case(
        "version 1 (no recipe)".to_string(),
        v1,
        7,
        "format version 1",
    ));
    let mut flags = sound_bytes.clone();
    flags[12] = 1;
    cases.push(case("feature flags", flags, 7, "feature flags"));
    for cut in [
        1usize,
        8,
        15,
        16,
        79,
        sound_bytes.len() / 2,
        sound_bytes.len() - 1,
    ] {
        cases.push(case(
            format!("truncated to {cut} bytes"),
            sound_bytes[..cut].to_vec(),
            6,
            "corrupt",
        ));
    }
    let mut extended = sound_bytes.clone();
    extended.push(0);
    cases.push(case("one byte appended", extended, 6, "corrupt"));
    for at in [
        sound_bytes.len() - 70,
        sound_bytes.len() - 20,
        sound_bytes.len() - 40,
    ] {
        let mut b = sound_bytes.clone();
        b[at] ^= 0x40;
        cases.push(case(format!("byte {at} flipped"), b, 6, "corrupt"));
    }

    // Hostile paths: each must be refused as unsafe.
    let long_name = vec![b'n'; 256];
    let mut too_long_path = Vec::new();
    while too_long_path.len() < 4096 {
        too_long_path.extend_from_slice(b"dddddddd/");
    }
    too_long_path.extend_from_slice(b"f");
    let paths: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("parent escape", b"../owned".to_vec(), "`..` component"),
        (
            "deep escape",
            b"../../../../../../tmp/owned".to_vec(),
            "`..` component",
        ),
        ("absolute", b"/tmp/owned".to_vec(), "absolute path"),
        ("NUL", b"own\0ed".to_vec(), "NUL byte"),
        ("empty", Vec::new(), "empty path"),
        ("dot", b".".to_vec(), "`.` component"),
        ("dot inside", b"out/./x".to_vec(), "`.` component"),
        ("double slash", b"out//x".to_vec(), "empty component"),
        ("trailing slash", b"owned/".to_vec(), "empty component"),
        ("NAME_MAX + 1", long_name, "NAME_MAX"),
        ("PATH_MAX + 1", too_long_path, "the limit is 4095"),
    ];
    for (name, path, reason) in paths {
        let mut p = RawPack::new(root);
        p.after.push(RawEntry::file(&path, b"x"));
        p.blobs.push(RawBlob::raw(b"x"));
        cases.push(case(format!("path: {name}"), p.to_bytes(), 8, reason));
    }
    let dup = RawPack::new(root)
        .with_file(b"owned", b"x")
        .with_file(b"owned", b"x");
    cases.push(case("duplicate path", dup.to_bytes(), 8, "listed twice"));
    let file_and_dir = RawPack::new(root)
        .with_dir(b"owned")
        .with_file(b"owned", b"x");
    cases.push(case(
        "file and directory at one path",
        file_and_dir.to_bytes(),
        8,
        "listed twice",
    ));
    let under_link = RawPack::new(root)
        .with_symlink(b"escape", b"../canary")
        .with_file(b"escape/owned", b"x");
    cases.push(case(
        "entry under a symlink of the checkpoint",
        under_link.to_bytes(),
        8,
        "is not a directory",
    ));
    let under_abs_link = RawPack::new(root)
        .with_symlink(b"escape", b"/")
        .with_dir(b"escape/tmp");
    cases.push(case(
        "directory under an absolute symlink",
        under_abs_link.to_bytes(),
        8,
        "is not a directory",
    ));
    let under_file = RawPack::new(root)
        .with_file(b"f", b"y")
        .with_file(b"f/owned", b"x");
    cases.push(case(
        "entry under a file",
        under_file.to_bytes(),
        8,
        "is not a directory",
    ));
    let orphan = RawPack::new(root).with_file(b"nodir/owned", b"x");
    cases.push(case(
        "entry without its parent",
        orphan.to_bytes(),
        8,
        "is not a directory",
    ));
    let mut unordered = RawPack::new(root)
        .with_file(b"b", b"x")
        .with_file(b"a", b"x");
    unordered.blobs.dedup_by_key(|b| b.hash);
    cases.push(case(
        "paths out of order",
        unordered.to_bytes(),
        8,
        "out of order",
    ));

    // Hostile entries.
    let marker = RawPack::new(root).with_file(crate::apply::MARKER.as_bytes(), b"x");
    cases.push(case(
        "the restore marker as a product",
        marker.to_bytes(),
        8,
        "reserved",
    ));
    let mut setuid = RawPack::new(root).with_file(b"su", b"x");
    setuid.after[0].mode = 0o4755;
    cases.push(case("setuid file", setuid.to_bytes(), 8, "setuid"));
    let mut type_bits = RawPack::new(root).with_file(b"dev", b"x");
    type_bits.after[0].mode = 0o020644;
    cases.push(case(
        "file-type bits in the mode",
        type_bits.to_bytes(),
        8,
        "more than permission bits",
    ));
    let mut nanos = RawPack::new(root).with_file(b"t", b"x");
    nanos.after[0].mtime = (1, 1_000_000_000);
    cases.push(case(
        "nanoseconds >= 1 s",
        nanos.to_bytes(),
        8,
        "nanoseconds",
    ));
    for (what, secs) in [
        ("i64::MAX", i64::MAX),
        ("year 3000", 32_503_680_000),
        ("i64::MIN", i64::MIN),
    ] {
        let mut p = RawPack::new(root).with_file(b"t", b"x");
        p.after[0].mtime = (secs, 0);
        cases.push(case(
            format!("product mtime {what}"),
            p.to_bytes(),
            8,
            "outside what file systems store",
        ));
    }
    let mut kind = RawPack::new(root);
    kind.after.push(RawEntry {
        node: RawNode::Kind(3),
        ..RawEntry::dir(b"dev")
    });
    cases.push(case(
        "unknown entry kind (a device?)",
        kind.to_bytes(),
        8,
        "unknown entry kind",
    ));
    let empty_target = RawPack::new(root).with_symlink(b"l", b"");
    cases.push(case(
        "empty symlink target",
        empty_target.to_bytes(),
        8,
        "empty symlink target",
    ));
    let nul_target = RawPack::new(root).with_symlink(b"l", b"a\0b");
    cases.push(case(
        "NUL in a symlink target",
        nul_target.to_bytes(),
        8,
        "NUL",
    ));
    let mut missing_blob = RawPack::new(root).with_file(b"f", b"x");
    missing_blob.blobs.clear();
    cases.push(case(
        "file without its blob",
        missing_blob.to_bytes(),
        8,
        "no blob",
    ));
    let mut extra_blob = RawPack::new(root);
    extra_blob.blobs.push(RawBlob::raw(b"smuggled"));
    cases.push(case(
        "blob of no file",
        extra_blob.to_bytes(),
        8,
        "content of no new or changed file",
    ));
    let mut relative_root = sound.clone();
    relative_root.info.root = b"build".to_vec();
    cases.push(case(
        "relative root",
        relative_root.to_bytes(),
        8,
        "is not absolute",
    ));

    // Huge counts and sizes, bombs.
    let mut count = RawPack::new(root);
    count.after_count = Some(u32::MAX);
    cases.push(case(
        "4 billion entries declared",
        count.to_bytes(),
        8,
        "the limit is",
    ));
    let mut count = RawPack::new(root);
    count.after_count = Some(8 << 20);
    cases.push(case(
        "8 million entries declared, none present",
        count.to_bytes(),
        8,
        "remain",
    ));
    let mut blobs = RawPack::new(root);
    blobs.blob_count = Some(u32::MAX);
    cases.push(case(
        "4 billion blobs declared",
        blobs.to_bytes(),
        8,
        "the limit is",
    ));
    let mut size = RawPack::new(root);
    size.after.push(RawEntry {
        node: RawNode::File {
            size: u64::MAX,
            hash: 7,
        },
        ..RawEntry::file(b"huge", b"")
    });
    cases.push(case(
        "file of 2^64 - 1 bytes",
        size.to_bytes(),
        8,
        "beyond the limit",
    ));
    let mut declared = sound.clone();
    declared.declared_section_raw = Some(1 << 40);
    cases.push(case(
        "section declares 1 TiB",
        declared.to_bytes(),
        8,
        "section declares",
    ));
    let mut bomb = RawPack::new(root);
    bomb.section_tail = vec![0; 64 << 20];
    let section_len = bomb.section().len() as u64;
    bomb.declared_section_raw = Some(section_len - (64 << 20) + 1000);
    cases.push(case(
        "manifest zstd bomb (64 MiB of zeros)",
        bomb.to_bytes(),
        8,
        "decompression bomb",
    ));

    // Blobs: checked before the first write, so the tree stays untouched.
    let mut blob_bomb = RawPack::new(root).with_file(b"bomb", b"tiny");
    blob_bomb.blobs[0] = RawBlob {
        hash: xxh3_128(b"tiny"),
        raw_size: 4,
        ..RawBlob::zstd(&vec![0u8; 256 << 20])
    };
    cases.push(case(
        "blob zstd bomb (256 MiB of zeros declared as 4 bytes)",
        blob_bomb.to_bytes(),
        8,
        "decompression bomb",
    ));
    let mut bad_blob = sound.clone();
    let idx = bad_blob.blobs.iter().position(|b| !b.zstd).unwrap();
    bad_blob.blobs[idx].stored[0] ^= 1;
    cases.push(case(
        "blob content flipped (checksum mismatch)",
        bad_blob.to_bytes(),
        6,
        "checksum mismatch",
    ));
    let mut short_blob = sound.clone();
    let idx = short_blob.blobs.iter().position(|b| b.zstd).unwrap();
    let keep = short_blob.blobs[idx].stored.len() / 2;
    short_blob.blobs[idx].stored.truncate(keep);
    cases.push(case(
        "zstd blob truncated",
        short_blob.to_bytes(),
        6,
        "corrupt",
    ));
    let mut wrong_checksum = sound.clone();
    wrong_checksum.blobs[0].checksum ^= 1;
    cases.push(case(
        "blob checksum wrong",
        wrong_checksum.to_bytes(),
        6,
        "checksum mismatch",
    ));
    // Cases of the reader first written for its unit tests.
    let c = b"content";
    for (name, path, reason) in [
        ("inner ..", &b"a/../../x"[..], "`..` component"),
        ("leading dot", b"./x", "`.` component"),
    ] {
        let p = RawPack::new(root).with_file(path, c);
        cases.push(case(format!("path: {name}"), p.to_bytes(), 8, reason));
    }
    let file_then_child = RawPack::new(root).with_file(b"a", c).with_file(b"a/b", c);
    cases.push(case(
        "file then its child",
        file_then_child.to_bytes(),
        8,
        "its parent a is not a directory",
    ));
    let link_then_child = RawPack::new(root)
        .with_symlink(b"a", b"x")
        .with_file(b"a/b", c);
    cases.push(case(
        "symlink then its child",
        link_then_child.to_bytes(),
        8,
        "its parent a is not a directory",
    ));
    let no_parent = RawPack::new(root).with_file(b"x/b", c);
    cases.push(case(
        "no parent",
        no_parent.to_bytes(),
        8,
        "its parent x is not a directory",
    ));
    let nul_in_link = RawPack::new(root).with_symlink(b"l", b"a\0b");
    cases.push(case(
        "NUL in a symlink target (its reason)",
        nul_in_link.to_bytes(),
        8,
        "NUL in it",
    ));
    let mut missing = RawPack::new(root).with_file(b"a", c);
    missing.blobs.clear();
    cases.push(case(
        "file without its blob (its reason)",
        missing.to_bytes(),
        8,
        "no blob with its content",
    ));
    let mut size_differs = RawPack::new(root).with_file(b"a", c);
    size_differs.after[0].node = RawNode::File {
        size: 8,
        hash: xxh3_128(c),
    };
    cases.push(case(
        "blob size differs from the entry",
        size_differs.to_bytes(),
        8,
        "but its blob",
    ));
    let mut trailing = RawPack::new(root).with_file(b"a", c);
    trailing.section_tail = vec![0];
    cases.push(case(
        "trailing bytes in the section",
        trailing.to_bytes(),
        8,
        "unexpected bytes at the end",
    ));
    let mut kind9 = RawPack::new(root);
    kind9.after.push(RawEntry {
        node: RawNode::Kind(9),
        ..RawEntry::dir(b"a")
    });
    cases.push(case(
        "unknown entry kind 9",
        kind9.to_bytes(),
        8,
        "unknown entry kind",
    ));
    for count in [u32::MAX, 1_000_000] {
        let mut p = RawPack::new(root);
        p.before_count = Some(count);
        p.section_tail = vec![0; 64];
        cases.push(case(
            format!("{count} entries of P declared"),
            p.to_bytes(),
            8,
            "entries",
        ));
    }
    let mut info = Enc::default();
    info.bytes16(b"/build");
    info.bytes16(b"/nix/store");
    info.u32(u32::MAX);
    let mut outputs = RawPack::new(root);
    outputs.info_raw = Some(info.0);
    cases.push(case(
        "4 billion outputs declared",
        outputs.to_bytes(),
        8,
        "4294967295 outputs, the limit",
    ));
    let mut huge_declared = RawPack::new(root);
    huge_declared.declared_section_raw = Some(super::codec::MAX_SECTION_RAW + 1);
    cases.push(case(
        "section declares one byte beyond the limit",
        huge_declared.to_bytes(),
        8,
        "section declares",
    ));
    let mut smaller = RawPack::new(root);
    smaller.declared_section_raw = Some(smaller.section().len() as u64 - 1);
    cases.push(case(
        "section larger than declared",
        smaller.to_bytes(),
        8,
        "beyond its declared",
    ));
    let mut huge_blob = RawPack::new(root).with_file(b"a", c);
    huge_blob.blobs[0] = RawBlob {
        raw_size: u64::MAX,
        ..RawBlob::zstd(c)
    };
    cases.push(case(
        "blob of 2^64 - 1 bytes declared",
        huge_blob.to_bytes(),
        8,
        "18446744073709551615 bytes, the limit",
    ));
    let c2 = b"contenu";
    let mut overlap = RawPack::new(root).with_file(b"a", c).with_file(b"b", c2);
    overlap.blob_layout = Some((
        vec![HEADER_LEN, HEADER_LEN],
        overlap.blobs[0].stored.clone(),
    ));
    cases.push(case(
        "overlapping blobs",
        overlap.to_bytes(),
        8,
        "gap or overlap",
    ));
    let h = "0c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";
    let bad_infos: [(&str, Vec<u8>, &'static str); 5] = [
        (
            "output at /etc/passwd",
            raw_info(b"/build", &[(b"out", b"/etc/passwd")], &[]),
            "is not a store path",
        ),
        (
            "output at a short store path",
            raw_info(b"/build", &[(b"out", b"/nix/store/short-x")], &[]),
            "is not a store path",
        ),
        (
            "output name with a slash",
            raw_info(
                b"/build",
                &[(b"bad/name", format!("/nix/store/{h}-x").as_bytes())],
                &[],
            ),
            "bad output name",
        ),
        (
            "relative root (raw)",
            raw_info(b"relative/root", &[], &[]),
            "is not absolute",
        ),
        (
            "dependency with a subpath",
            raw_info(
                b"/build",
                &[],
                &[format!("/nix/store/{h}-gcc/bin/gcc").as_bytes()],
            ),
            "is not a store path",
        ),
    ];
    for (name, info, reason) in bad_infos {
        let mut p = RawPack::new(root);
        p.info_raw = Some(info);
        cases.push(case(name, p.to_bytes(), 8, reason));
    }
    cases
}

/// Build information as bytes, without the checks `BuildInfo` makes: the
/// root, the store directory `/nix/store`, outputs and dependencies.
fn raw_info(root: &[u8], outputs: &[(&[u8], &[u8])], dependencies: &[&[u8]]) -> Vec<u8> {
    let mut e = Enc::default();
    e.bytes16(root);
    e.bytes16(b"/nix/store");
    e.u32(outputs.len() as u32);
    for (name, path) in outputs {
        e.bytes16(name);
        e.bytes16(path);
    }
    e.u32(dependencies.len() as u32);
    for d in dependencies {
        e.bytes16(d);
    }
    e.0
}

/// The names in `dir`, sorted (none if it cannot be read): what a failed or
/// concurrent write left behind.
pub fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
