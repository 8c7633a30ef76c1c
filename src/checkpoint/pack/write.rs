//! Writing a pack: blobs read from the build tree and compressed in
//! parallel, then the manifest section and the trailer, into a temporary
//! file renamed into place.

use super::{
    decode_section, encode_section, required_blobs, BlobRecord, Compression, CHUNK, PACK_MAGIC,
};
use crate::build_info::BuildInfo;
use crate::checkpoint::atomic::AtomicFile;
use crate::checkpoint::codec::{compress_section, ContainerWriter};
use crate::checkpoint::error::{CheckpointError, InputError, Op, ReadingTree, Writing};
use crate::checkpoint::PACK_FILE_NAME;
use crate::error::IoContext;
use crate::tree::{ContentHash, Manifest};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// zstd worker threads for one large (streamed) blob. Fixed, so the bytes
/// never depend on the machine.
const ZSTD_WORKERS: u32 = 2;

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

#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    let invalid = |op, detail| CheckpointError::InvalidInput {
        path: dest.clone(),
        op,
        detail: Box::new(detail),
    };
    if options.level != 0 && !zstd::compression_level_range().contains(&options.level) {
        return Err(invalid(Op::CheckOptions, InputError::Level(options.level)));
    }
    let required =
        required_blobs(before, after).map_err(|d| invalid(Op::ListBlobs, InputError::Decode(d)))?;
    blobs.sort_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.path.cmp(&b.path)));
    blobs.dedup_by_key(|b| b.hash);
    blobs.retain(|b| required.contains_key(&b.hash));
    for (hash, (size, path)) in &required {
        match blobs.binary_search_by_key(hash, |b| b.hash) {
            Ok(i) if blobs[i].size == *size => {}
            Ok(i) => {
                return Err(invalid(
                    Op::ListBlobs,
                    InputError::FileSize {
                        path: (*path).clone(),
                        size: *size,
                        file: blobs[i].path.clone(),
                        file_size: blobs[i].size,
                    },
                ))
            }
            Err(_) => {
                return Err(invalid(
                    Op::ListBlobs,
                    InputError::NoFile {
                        path: (*path).clone(),
                        hash: *hash,
                    },
                ))
            }
        }
    }

    std::fs::create_dir_all(output_dir).io_context(|| Writing(Op::CreateOutputDir, output_dir))?;
    let atomic = AtomicFile::create(&dest)?;
    let (records, pack_bytes) = write_pack(&dest, &atomic, info, before, after, &blobs, options)?;
    atomic.commit()?;

    Ok(WriteStats {
        path: dest,
        blobs: records.len() as u64,
        raw_bytes: records.iter().map(|r| r.raw_size).sum(),
        stored_bytes: records.iter().map(|r| r.stored_len).sum(),
        pack_bytes,
    })
}

/// The pack into `atomic`'s temporary file: header, blobs, section,
/// trailer. Returns the blob table and the file's length.
fn write_pack(
    dest: &Path,
    atomic: &AtomicFile,
    info: &BuildInfo,
    before: &Manifest,
    after: &Manifest,
    blobs: &[BlobFile],
    options: &WriteOptions,
) -> Result<(Vec<BlobRecord>, u64), CheckpointError> {
    let w = BufWriter::with_capacity(1 << 20, atomic.file());
    let mut out = Out {
        w: ContainerWriter::new(w, &PACK_MAGIC).io_context(|| atomic.writing(Op::WriteHeader))?,
        temp: &atomic.temp,
    };
    let records = write_blobs(&mut out, blobs, options)?;
    let section_offset = out.pos();

    let raw = encode_section(info, before, after, &records);
    // Self-check: never write a pack the reader would refuse.
    decode_section(&raw, section_offset, usize::MAX).map_err(|d| {
        CheckpointError::InvalidInput {
            path: dest.to_owned(),
            op: Op::CheckManifest,
            detail: Box::new(InputError::Decode(d)),
        }
    })?;
    let (compression, stored) = compress_section(&raw, options.level)
        .io_context(|| atomic.writing(Op::CompressManifest))?;
    let mut container = out.w;
    let trailer = container
        .write_section(&stored, raw.len() as u64, compression)
        .io_context(|| atomic.writing(Op::WriteManifest))?;
    let (mut w, pack_bytes) = container
        .finish(&trailer)
        .io_context(|| atomic.writing(Op::WriteTrailer))?;
    w.flush().io_context(|| atomic.writing(Op::WritePack))?;
    Ok((records, pack_bytes))
}

/// The pack after its header: guard bytes inserted on the way.
struct Out<'a> {
    w: ContainerWriter<BufWriter<&'a File>>,
    temp: &'a Path,
}

impl Out<'_> {
    fn put(&mut self, data: &[u8]) -> Result<(), CheckpointError> {
        self.w
            .write_all(data)
            .io_context(|| Writing(Op::WriteBlobData, self.temp))
    }

    /// Logical offset of the next byte.
    fn pos(&self) -> u64 {
        self.w.pos()
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
            out.put(&p.data)?;
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
        .io_context(|| ReadingTree(Op::ReadFile, &blob.path))?;
    let checksum = src.hasher.digest128();
    let (compression, data) = if level == 0 {
        (Compression::Raw, raw)
    } else {
        let packed =
            compress_small(&raw, level).io_context(|| ReadingTree(Op::Compress, &blob.path))?;
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
                .io_context(|| ReadingTree(Op::ReadFile, &blob.path))?;
            if n == 0 {
                break;
            }
            out.put(&buf[..n])?;
        }
        (Compression::Raw, src)
    } else {
        let mut enc = zstd::stream::read::Encoder::new(src, level)
            .and_then(|mut enc| enc.multithread(ZSTD_WORKERS).map(|()| enc))
            .io_context(|| ReadingTree(Op::StartCompressing, &blob.path))?;
        loop {
            let n = enc
                .read(&mut buf)
                .io_context(|| ReadingTree(Op::ReadAndCompress, &blob.path))?;
            if n == 0 {
                break;
            }
            out.put(&buf[..n])?;
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
            .io_context(|| ReadingTree(Op::Open, &blob.path))?;
        let meta = file
            .metadata()
            .io_context(|| ReadingTree(Op::Stat, &blob.path))?;
        if !meta.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidData, "no longer a regular file");
            return Err(e).io_context(|| ReadingTree(Op::Open, &blob.path));
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
