//! The checkpoint pack: writer, reader, verification (format:
//! `docs/format.md`).

use super::codec::{
    compress_section, decode_info, decode_manifest, encode_info, encode_manifest, header_bytes,
    open_container, read_logical, trailer_bytes, AtomicFile, Dec, DecResult, Enc, GuardedWriter,
    LogicalRange, Trailer, COMPRESSION_RAW, COMPRESSION_ZSTD, HEADER_LEN, MAX_BLOBS, MAX_BLOB_SIZE,
};
use super::error::{CheckpointError, Role};
use super::{BlobInfo, Checkpoint, PACK_FILE_NAME};
use crate::build_info::BuildInfo;
use crate::tree::{ContentHash, Entry, Manifest, Node, RelPath};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// First 8 bytes of a pack: not `\x7fELF`, not `#!`, and binary-looking
/// (PNG style) so text-mode mangling is detectable.
pub const PACK_MAGIC: [u8; 8] = *b"\x89NCKP\r\n\x1a";

/// zstd worker threads for one large (streamed) blob. Fixed, so the bytes
/// never depend on the machine.
const ZSTD_WORKERS: u32 = 2;
const CHUNK: usize = 256 << 10;
const BLOB_RECORD_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is (between the pack's guard bytes).
    Raw,
    /// One or more zstd frames.
    Zstd,
}

/// One entry of the blob table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRecord {
    /// The masked content hash, as in B's entries.
    pub hash: ContentHash,
    /// Offset of the stored bytes in the pack file.
    pub offset: u64,
    /// Bytes stored in the pack.
    pub stored_len: u64,
    /// Size of the content.
    pub raw_size: u64,
    pub compression: Compression,
    /// xxh3-128 of the raw content (not masked).
    pub checksum: u128,
}

/// A file of the build tree whose content becomes a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobFile {
    /// The masked content hash of the file, as in B.
    pub hash: ContentHash,
    /// Absolute path of the file to read.
    pub path: PathBuf,
    /// Its size as scanned; the file must still have exactly this size.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// zstd level; 0 stores blobs and the manifest raw.
    pub level: i32,
    /// Most raw bytes read and being compressed at once. Files larger than a
    /// quarter of it are streamed one at a time.
    pub max_in_flight: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            level: 3,
            max_in_flight: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct WriteStats {
    /// The pack written (`DIR/checkpoint.nckp`).
    pub path: PathBuf,
    pub blobs: u64,
    /// Sum of the blobs' raw sizes.
    pub raw_bytes: u64,
    /// Sum of the blobs' stored sizes.
    pub stored_bytes: u64,
    /// Size of the whole pack.
    pub pack_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct VerifyStats {
    pub blobs: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

/// The files of B a checkpoint must store: regular files that are not in P
/// or differ from P's entry ([`Entry::same_content_and_mode`] is false).
pub fn files_to_store<'a>(
    before: &'a Manifest,
    after: &'a Manifest,
) -> impl Iterator<Item = &'a Entry> + 'a {
    after.entries().iter().filter(move |e| {
        matches!(e.node, Node::File { .. })
            && !matches!(before.get(&e.path), Some(p) if p.same_content_and_mode(e))
    })
}

/// Hash -> (size, first path) of every content the pack must hold.
fn required_blobs<'a>(
    before: &'a Manifest,
    after: &'a Manifest,
) -> DecResult<BTreeMap<ContentHash, (u64, &'a RelPath)>> {
    let mut required: BTreeMap<ContentHash, (u64, &RelPath)> = BTreeMap::new();
    for entry in files_to_store(before, after) {
        let Node::File { size, hash } = entry.node else {
            unreachable!("files only")
        };
        let (known, first) = *required.entry(hash).or_insert((size, &entry.path));
        if known != size {
            return Err(format!(
                "{} and {first} have the same content hash {hash:032x} but sizes {size} and {known}",
                entry.path
            ));
        }
    }
    Ok(required)
}

// ---------------------------------------------------------------- section

fn encode_section(
    info: &BuildInfo,
    before: &Manifest,
    after: &Manifest,
    records: &[BlobRecord],
) -> Vec<u8> {
    let mut e = Enc::default();
    encode_info(&mut e, info);
    encode_manifest(&mut e, before, false);
    encode_manifest(&mut e, after, true);
    e.count(records.len());
    for r in records {
        e.u128(r.hash);
        e.u64(r.offset);
        e.u64(r.stored_len);
        e.u64(r.raw_size);
        e.u128(r.checksum);
        e.u8(match r.compression {
            Compression::Raw => COMPRESSION_RAW,
            Compression::Zstd => COMPRESSION_ZSTD,
        });
        e.0.extend_from_slice(&[0; 7]);
    }
    e.0
}

/// Decodes and validates the manifest section. Blobs must tile
/// `[HEADER_LEN, blobs_end)` exactly, in hash order.
fn decode_section(
    raw: &[u8],
    blobs_end: u64,
    budget: usize,
) -> DecResult<(Checkpoint, Vec<BlobRecord>)> {
    let mut d = Dec::with_budget(raw, budget);
    let info = decode_info(&mut d)?;
    let before = decode_manifest(&mut d, false, "before")?;
    let after = decode_manifest(&mut d, true, "after")?;
    let n = d.count(BLOB_RECORD_LEN, MAX_BLOBS, "blobs")?;
    d.charge(
        n.saturating_mul(2 * std::mem::size_of::<BlobRecord>()),
        &format!("{n} blob records"),
    )?;
    let mut records: Vec<BlobRecord> = Vec::with_capacity(n);
    let mut next_offset = HEADER_LEN;
    for _ in 0..n {
        let hash = d.u128()?;
        let offset = d.u64()?;
        let stored_len = d.u64()?;
        let raw_size = d.u64()?;
        let checksum = d.u128()?;
        let compression = match d.u8()? {
            COMPRESSION_RAW => Compression::Raw,
            COMPRESSION_ZSTD => Compression::Zstd,
            c => return Err(format!("blob {hash:032x}: unknown compression {c}")),
        };
        if d.take(7)? != [0; 7] {
            return Err(format!("blob {hash:032x}: reserved bytes are not zero"));
        }
        if let Some(last) = records.last() {
            if last.hash >= hash {
                return Err(format!("blob {hash:032x}: listed twice or out of order"));
            }
        }
        if offset != next_offset {
            return Err(format!(
                "blob {hash:032x} at offset {offset}, expected {next_offset} (gap or overlap)"
            ));
        }
        next_offset = offset
            .checked_add(stored_len)
            .filter(|&end| end <= blobs_end)
            .ok_or_else(|| format!("blob {hash:032x} runs past the blob area"))?;
        if raw_size > MAX_BLOB_SIZE {
            return Err(format!(
                "blob {hash:032x}: {raw_size} bytes, the limit is {MAX_BLOB_SIZE}"
            ));
        }
        if compression == Compression::Raw && raw_size != stored_len {
            return Err(format!(
                "blob {hash:032x}: raw blob of {stored_len} bytes declares {raw_size}"
            ));
        }
        records.push(BlobRecord {
            hash,
            offset,
            stored_len,
            raw_size,
            compression,
            checksum,
        });
    }
    d.finish()?;
    if next_offset != blobs_end {
        return Err(format!(
            "blobs end at {next_offset} but the manifest starts at {blobs_end}"
        ));
    }

    let required = required_blobs(&before, &after)?;
    for (hash, (size, path)) in &required {
        match records.binary_search_by_key(hash, |r| r.hash) {
            Ok(i) if records[i].raw_size == *size => {}
            Ok(i) => {
                return Err(format!(
                    "{path}: {size} bytes but its blob {hash:032x} has {}",
                    records[i].raw_size
                ))
            }
            Err(_) => return Err(format!("{path}: no blob with its content {hash:032x}")),
        }
    }
    if records.len() != required.len() {
        let extra = records
            .iter()
            .find(|r| !required.contains_key(&r.hash))
            .map(|r| r.hash)
            .unwrap_or_default();
        return Err(format!(
            "blob {extra:032x} is the content of no new or changed file"
        ));
    }

    let blobs = records
        .iter()
        .map(|r| BlobInfo {
            hash: r.hash,
            size: r.raw_size,
            stored_size: r.stored_len,
        })
        .collect();
    Ok((
        Checkpoint {
            info,
            before,
            after,
            blobs,
        },
        records,
    ))
}

// ---------------------------------------------------------------- writer

/// Writes `output_dir/checkpoint.nckp` atomically (temporary file, fsync,
/// rename, fsync of the directory), creating `output_dir` if needed.
///
/// `blobs` lists files holding the content of every file of `after` that is
/// new or changed relative to `before` (see [`files_to_store`]); duplicates
/// of a hash and files no entry needs are ignored, a missing one is an error.
/// P is stored without mtimes. The bytes depend only on the inputs and
/// `options`, never on the number of threads.
pub fn write_checkpoint(
    output_dir: &Path,
    info: &BuildInfo,
    before: &Manifest,
    after: &Manifest,
    mut blobs: Vec<BlobFile>,
    options: &WriteOptions,
) -> Result<WriteStats, CheckpointError> {
    let dest = output_dir.join(PACK_FILE_NAME);
    let invalid = |op: &str, detail: String| CheckpointError::InvalidInput {
        path: dest.clone(),
        op: op.into(),
        detail,
    };
    if options.level != 0 && !zstd::compression_level_range().contains(&options.level) {
        return Err(invalid(
            "check the options",
            format!("compression level {} out of range", options.level),
        ));
    }
    let required = required_blobs(before, after).map_err(|d| invalid("list the blobs", d))?;
    blobs.sort_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.path.cmp(&b.path)));
    blobs.dedup_by_key(|b| b.hash);
    blobs.retain(|b| required.contains_key(&b.hash));
    for (hash, (size, path)) in &required {
        match blobs.binary_search_by_key(hash, |b| b.hash) {
            Ok(i) if blobs[i].size == *size => {}
            Ok(i) => {
                return Err(invalid(
                    "list the blobs",
                    format!(
                        "{path} has {size} bytes but {} has {}",
                        blobs[i].path.display(),
                        blobs[i].size
                    ),
                ))
            }
            Err(_) => {
                return Err(invalid(
                    "list the blobs",
                    format!("no file given for the content of {path} ({hash:032x})"),
                ))
            }
        }
    }

    std::fs::create_dir_all(output_dir).map_err(|e| CheckpointError::Write {
        path: output_dir.to_owned(),
        op: "create the output directory".into(),
        source: e,
    })?;
    let atomic = AtomicFile::create(&dest)?;
    let header = header_bytes(&PACK_MAGIC);
    let mut w = BufWriter::with_capacity(1 << 20, atomic.file());
    w.write_all(&header)
        .map_err(|e| atomic.write_err("write the header", e))?;
    let mut out = Out {
        w: GuardedWriter::new(w),
        temp: &atomic.temp,
    };
    let records = write_blobs(&mut out, &blobs, options)?;
    let section_offset = out.pos();

    let raw = encode_section(info, before, after, &records);
    // Self-check: never write a pack the reader would refuse.
    decode_section(&raw, section_offset, usize::MAX)
        .map_err(|d| invalid("check the manifest", d))?;
    let (compression, stored) = compress_section(&raw, options.level)
        .map_err(|e| atomic.write_err("compress the manifest", e))?;
    out.put(&stored, "write the manifest")?;
    let trailer = Trailer {
        section_offset,
        section_stored: stored.len() as u64,
        section_raw: raw.len() as u64,
        compression,
        section_checksum: xxh3_128(&stored),
    };
    out.put(&trailer_bytes(&header, &trailer), "write the trailer")?;
    let pack_bytes = out.w.file_len();
    out.w
        .inner
        .flush()
        .map_err(|e| atomic.write_err("write the pack", e))?;
    drop(out);
    atomic.commit()?;

    Ok(WriteStats {
        path: dest,
        blobs: records.len() as u64,
        raw_bytes: records.iter().map(|r| r.raw_size).sum(),
        stored_bytes: records.iter().map(|r| r.stored_len).sum(),
        pack_bytes,
    })
}

/// The pack after its header: guard bytes inserted on the way.
struct Out<'a> {
    w: GuardedWriter<BufWriter<&'a File>>,
    temp: &'a Path,
}

impl Out<'_> {
    fn put(&mut self, data: &[u8], op: &str) -> Result<(), CheckpointError> {
        self.w.write_all(data).map_err(|e| CheckpointError::Write {
            path: self.temp.to_owned(),
            op: op.into(),
            source: e,
        })
    }

    /// Logical offset of the next byte.
    fn pos(&self) -> u64 {
        self.w.pos
    }
}

/// Writes the blobs in hash order. Runs of small files are read and
/// compressed in parallel, at most `max_in_flight` raw bytes per run; a
/// large file is streamed alone.
fn write_blobs(
    out: &mut Out,
    blobs: &[BlobFile],
    options: &WriteOptions,
) -> Result<Vec<BlobRecord>, CheckpointError> {
    let budget = options.max_in_flight.max(1);
    let large = (budget / 4).max(1);
    let mut records = Vec::with_capacity(blobs.len());
    let mut i = 0;
    while i < blobs.len() {
        if blobs[i].size > large {
            records.push(write_large(out, &blobs[i], options.level)?);
            i += 1;
            continue;
        }
        let start = i;
        let mut total = 0u64;
        while i < blobs.len()
            && blobs[i].size <= large
            && (i == start || total + blobs[i].size <= budget)
        {
            total += blobs[i].size;
            i += 1;
        }
        let prepared: Vec<Result<Prepared, CheckpointError>> = blobs[start..i]
            .par_iter()
            .map(|b| prepare_small(b, options.level))
            .collect();
        for p in prepared {
            let p = p?;
            let offset = out.pos();
            out.put(&p.data, "write blob data")?;
            records.push(BlobRecord {
                hash: p.hash,
                offset,
                stored_len: p.data.len() as u64,
                raw_size: p.raw_size,
                compression: p.compression,
                checksum: p.checksum,
            });
        }
    }
    Ok(records)
}

struct Prepared {
    hash: ContentHash,
    raw_size: u64,
    checksum: u128,
    compression: Compression,
    data: Vec<u8>,
}

fn tree_err(path: &Path, op: &str, source: io::Error) -> CheckpointError {
    CheckpointError::TreeRead {
        path: path.to_owned(),
        op: op.into(),
        source,
    }
}

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `zstd::bulk::compress` with one context per thread (and level): the
/// same bytes, without a context allocated and zeroed per blob.
fn compress_small(raw: &[u8], level: i32) -> io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().map(|(l, _)| *l) != Some(level) {
            *cell = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        cell.as_mut().expect("just set").1.compress(raw)
    })
}

fn prepare_small(blob: &BlobFile, level: i32) -> Result<Prepared, CheckpointError> {
    let mut src = SourceReader::open(blob)?;
    let mut raw = Vec::with_capacity(blob.size as usize);
    src.read_to_end(&mut raw)
        .map_err(|e| tree_err(&blob.path, "read", e))?;
    let checksum = src.hasher.digest128();
    let (compression, data) = if level == 0 {
        (Compression::Raw, raw)
    } else {
        let packed =
            compress_small(&raw, level).map_err(|e| tree_err(&blob.path, "compress", e))?;
        // Incompressible content is stored raw.
        if packed.len() < raw.len() {
            (Compression::Zstd, packed)
        } else {
            (Compression::Raw, raw)
        }
    };
    Ok(Prepared {
        hash: blob.hash,
        raw_size: blob.size,
        checksum,
        compression,
        data,
    })
}

fn write_large(out: &mut Out, blob: &BlobFile, level: i32) -> Result<BlobRecord, CheckpointError> {
    let offset = out.pos();
    let mut buf = vec![0u8; CHUNK];
    let src = SourceReader::open(blob)?;
    let (compression, src) = if level == 0 {
        let mut src = src;
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| tree_err(&blob.path, "read", e))?;
            if n == 0 {
                break;
            }
            out.put(&buf[..n], "write blob data")?;
        }
        (Compression::Raw, src)
    } else {
        let mut enc = zstd::stream::read::Encoder::new(src, level)
            .and_then(|mut enc| enc.multithread(ZSTD_WORKERS).map(|()| enc))
            .map_err(|e| tree_err(&blob.path, "start compressing", e))?;
        loop {
            let n = enc
                .read(&mut buf)
                .map_err(|e| tree_err(&blob.path, "read and compress", e))?;
            if n == 0 {
                break;
            }
            out.put(&buf[..n], "write blob data")?;
        }
        (Compression::Zstd, enc.finish().into_inner())
    };
    Ok(BlobRecord {
        hash: blob.hash,
        offset,
        stored_len: out.pos() - offset,
        raw_size: blob.size,
        compression,
        checksum: src.hasher.digest128(),
    })
}

/// Reads a build-tree file (never through a symlink), hashing it and
/// failing if its size is not exactly the scanned one.
struct SourceReader {
    file: File,
    expected: u64,
    read: u64,
    hasher: Xxh3,
}

impl SourceReader {
    fn open(blob: &BlobFile) -> Result<SourceReader, CheckpointError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&blob.path)
            .map_err(|e| tree_err(&blob.path, "open", e))?;
        let meta = file
            .metadata()
            .map_err(|e| tree_err(&blob.path, "stat", e))?;
        if !meta.is_file() {
            return Err(tree_err(
                &blob.path,
                "open",
                io::Error::new(io::ErrorKind::InvalidData, "no longer a regular file"),
            ));
        }
        Ok(SourceReader {
            file,
            expected: blob.size,
            read: 0,
            hasher: Xxh3::new(),
        })
    }
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.read >= self.expected {
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("grew beyond the {} bytes scanned", self.expected),
                )),
            };
        }
        let want = (buf.len() as u64).min(self.expected - self.read) as usize;
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "shrank to {} bytes, {} were scanned",
                    self.read, self.expected
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------- reader

/// An opened, fully validated pack. `Sync`: blobs are read with `pread`, so
/// threads may read blobs concurrently.
#[derive(Debug)]
pub struct PackReader {
    file: File,
    path: PathBuf,
    checkpoint: Checkpoint,
    records: Vec<BlobRecord>,
}

/// Is `dir` a checkpoint of nixpkgs' own `checkpointBuildTools`: a
/// directory with `sources/` and `outputs/` and no pack?
pub fn is_nixpkgs_checkpoint(dir: &Path) -> bool {
    dir.is_dir()
        && !dir.join(PACK_FILE_NAME).exists()
        && dir.join("sources").is_dir()
        && dir.join("outputs").is_dir()
}

/// Why such a checkpoint is not used, and what to do.
pub const NIXPKGS_CHECKPOINT: &str = "a checkpoint of nixpkgs' own checkpointBuildTools (sources/ and \
    outputs/, every mtime 1): it records neither the build's recipe nor its mtimes, so nix-checkpoint \
    cannot know whether its products fit this build; make a new one with nix-checkpoint's \
    prepareCheckpointBuild";

impl PackReader {
    /// Opens a checkpoint directory (`DIR/checkpoint.nckp`) or a pack file
    /// and validates everything but the blobs' contents (see
    /// [`PackReader::verify`]): header, trailer, offsets, manifest checksum,
    /// every path, the manifests' invariants, the blob table, and that every
    /// new or changed file of B has its blob.
    pub fn open(path: &Path) -> Result<PackReader, CheckpointError> {
        PackReader::open_with_budget(path, super::codec::MEMORY_BUDGET)
    }

    /// [`PackReader::open`] allowing `budget` bytes of memory for the
    /// manifests (restore: more for a larger real tree).
    pub fn open_with_budget(path: &Path, budget: usize) -> Result<PackReader, CheckpointError> {
        if is_nixpkgs_checkpoint(path) {
            return Err(CheckpointError::Unsupported {
                role: Role::Checkpoint,
                path: path.to_owned(),
                op: "open".into(),
                detail: NIXPKGS_CHECKPOINT.into(),
            });
        }
        let path = if path.is_dir() {
            path.join(PACK_FILE_NAME)
        } else {
            path.to_owned()
        };
        let c = open_container(&path, Role::Checkpoint, &PACK_MAGIC, true, budget)?;
        let (checkpoint, records) = decode_section(&c.section, c.trailer.section_offset, budget)
            .map_err(|detail| CheckpointError::Unsafe {
                role: Role::Checkpoint,
                path: path.clone(),
                op: "check the manifest".into(),
                detail,
            })?;
        Ok(PackReader {
            file: c.file,
            path,
            checkpoint,
            records,
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn into_checkpoint(self) -> Checkpoint {
        self.checkpoint
    }

    /// The pack file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The blob table, sorted by hash.
    pub fn blobs(&self) -> &[BlobRecord] {
        &self.records
    }

    pub fn blob(&self, hash: ContentHash) -> Option<&BlobRecord> {
        self.records
            .binary_search_by_key(&hash, |r| r.hash)
            .ok()
            .map(|i| &self.records[i])
    }

    fn record(&self, hash: ContentHash) -> Result<&BlobRecord, CheckpointError> {
        self.blob(hash)
            .ok_or_else(|| CheckpointError::InvalidInput {
                path: self.path.clone(),
                op: "read a blob".into(),
                detail: format!("the checkpoint has no blob {hash:032x}"),
            })
    }

    /// The content of a blob, checksum-verified.
    pub fn read_blob(&self, hash: ContentHash) -> Result<Vec<u8>, CheckpointError> {
        let rec = self.record(hash)?;
        let mut data = Vec::with_capacity(rec.raw_size.min(16 << 20) as usize);
        self.stream_record(rec, &mut |chunk| {
            data.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(data)
    }

    /// Streams a blob's content to `sink` in chunks, for files too large to
    /// hold in memory. The checksum is only known at the end: on `Err`,
    /// whatever `sink` received must be discarded.
    pub fn stream_blob(
        &self,
        hash: ContentHash,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CheckpointError>,
    ) -> Result<u64, CheckpointError> {
        let rec = self.record(hash)?;
        self.stream_record(rec, sink)?;
        Ok(rec.raw_size)
    }

    /// Decompresses and checks the blobs with these hashes (each once), in
    /// parallel, in bounded memory. `restore` calls it before its first
    /// write, so that a corrupt or hostile blob leaves the tree untouched.
    pub fn verify_blobs(
        &self,
        hashes: impl IntoIterator<Item = ContentHash>,
    ) -> Result<VerifyStats, CheckpointError> {
        let mut wanted: Vec<&BlobRecord> = Vec::new();
        for hash in hashes {
            wanted.push(self.record(hash)?);
        }
        wanted.sort_by_key(|r| r.hash);
        wanted.dedup_by_key(|r| r.hash);
        wanted
            .par_iter()
            .try_for_each(|r| self.stream_record(r, &mut |_| Ok(())))?;
        Ok(VerifyStats {
            blobs: wanted.len() as u64,
            raw_bytes: wanted.iter().map(|r| r.raw_size).sum(),
            stored_bytes: wanted.iter().map(|r| r.stored_len).sum(),
        })
    }

    /// Decompresses and checks every blob, in parallel.
    pub fn verify(&self) -> Result<VerifyStats, CheckpointError> {
        self.records
            .par_iter()
            .try_for_each(|r| self.stream_record(r, &mut |_| Ok(())))?;
        Ok(VerifyStats {
            blobs: self.records.len() as u64,
            raw_bytes: self.records.iter().map(|r| r.raw_size).sum(),
            stored_bytes: self.records.iter().map(|r| r.stored_len).sum(),
        })
    }

    fn stream_record(
        &self,
        rec: &BlobRecord,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CheckpointError>,
    ) -> Result<(), CheckpointError> {
        if let Some(content) = self.decompress_small(rec) {
            return sink(&content);
        }
        let op = || format!("read blob {:032x}", rec.hash);
        let corrupt = |detail: String| CheckpointError::Corrupt {
            role: Role::Checkpoint,
            path: self.path.clone(),
            op: op(),
            detail,
        };
        let mut range = LogicalRange {
            file: &self.file,
            pos: rec.offset,
            end: rec.offset + rec.stored_len,
        };
        let mut hasher = Xxh3::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let mut pump = |reader: &mut dyn Read| -> Result<(), CheckpointError> {
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| corrupt(format!("cannot read or decompress: {e}")))?;
                if n == 0 {
                    return Ok(());
                }
                total += n as u64;
                if total > rec.raw_size {
                    return Err(CheckpointError::Unsafe {
                        role: Role::Checkpoint,
                        path: self.path.clone(),
                        op: op(),
                        detail: format!(
                            "decompresses beyond its declared {} bytes (a decompression bomb?)",
                            rec.raw_size
                        ),
                    });
                }
                hasher.update(&buf[..n]);
                sink(&buf[..n])?;
            }
        };
        match rec.compression {
            Compression::Raw => pump(&mut range)?,
            Compression::Zstd => {
                let dec = zstd::stream::read::Decoder::new(range)
                    .map_err(|e| corrupt(format!("zstd: {e}")))?;
                pump(&mut dec.take(rec.raw_size.saturating_add(1)))?
            }
        }
        if total != rec.raw_size {
            return Err(corrupt(format!("{total} bytes, {} declared", rec.raw_size)));
        }
        if hasher.digest128() != rec.checksum {
            return Err(corrupt("checksum mismatch".into()));
        }
        Ok(())
    }
}

/// Blobs up to this size are decompressed in one call with a per-thread
/// context: creating a zstd context per blob cost more than decompressing
/// the small ones.
const SMALL_BLOB: u64 = 8 << 20;

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl PackReader {
    /// The fast path of `stream_record` for a small zstd blob: its content,
    /// checked, or `None` to take the streaming path, which also gives the
    /// precise error for a blob that fails (bomb, truncation, checksum).
    fn decompress_small(&self, rec: &BlobRecord) -> Option<Vec<u8>> {
        if rec.compression != Compression::Zstd
            || rec.raw_size > SMALL_BLOB
            || rec.stored_len > SMALL_BLOB
        {
            return None;
        }
        let stored = read_logical(&self.file, rec.offset, rec.stored_len as usize).ok()?;
        // The capacity bounds the output: a frame that decompresses beyond
        // the declared size fails here.
        let mut content = Vec::with_capacity(rec.raw_size as usize);
        DECOMPRESSOR
            .with(|cell| {
                let mut cell = cell.borrow_mut();
                let decompressor = match cell.as_mut() {
                    Some(d) => d,
                    None => cell.insert(zstd::bulk::Decompressor::new().ok()?),
                };
                decompressor
                    .decompress_to_buffer(&stored, &mut content)
                    .ok()
            })
            .filter(|&n| n as u64 == rec.raw_size)?;
        (xxhash_rust::xxh3::xxh3_128(&content) == rec.checksum).then_some(content)
    }
}

impl crate::apply::BlobSource for PackReader {
    fn read_blob(
        &self,
        hash: ContentHash,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        PackReader::read_blob(self, hash).map_err(Into::into)
    }

    fn streamable_size(&self, hash: ContentHash) -> Option<u64> {
        self.blob(hash).map(|r| r.raw_size)
    }

    fn stream_blob(
        &self,
        hash: ContentHash,
        rewriter: &crate::rewrite::Rewriter,
        out: &mut dyn Write,
    ) -> Result<u64, crate::apply::StreamError> {
        use crate::apply::StreamError;
        let rec = self
            .record(hash)
            .map_err(|e| StreamError::Source(e.into()))?;
        let error = std::cell::RefCell::new(None);
        let reader = BlobReader {
            pack: self,
            rec,
            inner: None,
            hasher: Xxh3::new(),
            total: 0,
            error: &error,
        };
        match rewriter.copy_rewriting(reader, out) {
            Ok(n) => Ok(n),
            Err(e) => match error.into_inner() {
                Some(source) => Err(StreamError::Source(Box::new(source))),
                None => Err(StreamError::Write(e)),
            },
        }
    }
}

/// A blob as a `Read`: decompressed, bounded by its declared size, and
/// checked (size and checksum) at its end, where a mismatch is an error
/// instead of EOF. The [`CheckpointError`] is kept in `error`.
struct BlobReader<'a> {
    pack: &'a PackReader,
    rec: &'a BlobRecord,
    inner: Option<Box<dyn Read + 'a>>,
    hasher: Xxh3,
    total: u64,
    error: &'a std::cell::RefCell<Option<CheckpointError>>,
}

impl BlobReader<'_> {
    fn fail(&self, e: CheckpointError) -> io::Error {
        let text = e.to_string();
        *self.error.borrow_mut() = Some(e);
        io::Error::new(io::ErrorKind::InvalidData, text)
    }
    fn corrupt(&self, detail: String) -> CheckpointError {
        CheckpointError::Corrupt {
            role: Role::Checkpoint,
            path: self.pack.path.clone(),
            op: format!("read blob {:032x}", self.rec.hash),
            detail,
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.inner.is_none() {
            let range = LogicalRange {
                file: &self.pack.file,
                pos: self.rec.offset,
                end: self.rec.offset + self.rec.stored_len,
            };
            self.inner = Some(match self.rec.compression {
                Compression::Raw => Box::new(range),
                Compression::Zstd => match zstd::stream::read::Decoder::new(range) {
                    Ok(dec) => Box::new(dec.take(self.rec.raw_size.saturating_add(1))),
                    Err(e) => return Err(self.fail(self.corrupt(format!("zstd: {e}")))),
                },
            });
        }
        let n = match self.inner.as_mut().expect("just set").read(buf) {
            Ok(n) => n,
            Err(e) => {
                let err = self.corrupt(format!("cannot read or decompress: {e}"));
                return Err(self.fail(err));
            }
        };
        self.total += n as u64;
        if self.total > self.rec.raw_size {
            let err = CheckpointError::Unsafe {
                role: Role::Checkpoint,
                path: self.pack.path.clone(),
                op: format!("read blob {:032x}", self.rec.hash),
                detail: format!(
                    "decompresses beyond its declared {} bytes (a decompression bomb?)",
                    self.rec.raw_size
                ),
            };
            return Err(self.fail(err));
        }
        self.hasher.update(&buf[..n]);
        if n == 0 {
            if self.total != self.rec.raw_size {
                let err = self.corrupt(format!(
                    "{} bytes, {} declared",
                    self.total, self.rec.raw_size
                ));
                return Err(self.fail(err));
            }
            if self.hasher.digest128() != self.rec.checksum {
                let err = self.corrupt("checksum mismatch".into());
                return Err(self.fail(err));
            }
        }
        Ok(n)
    }
}
