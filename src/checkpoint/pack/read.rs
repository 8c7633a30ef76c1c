//! Reading a pack: [`PackReader::open`] validates everything but the
//! blobs' contents; each blob is checked (size, checksum, no decompression
//! bomb) as it is read.

use super::{decode_section, BlobRecord, Compression, CHUNK, PACK_MAGIC};
use crate::checkpoint::codec::open_container;
use crate::checkpoint::error::{CheckpointError, DecodeError, InputError, Op, Role};
use crate::checkpoint::guard::{read_logical, LogicalRange};
use crate::checkpoint::{Checkpoint, PACK_FILE_NAME};
use crate::tree::ContentHash;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyStats {
    pub blobs: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

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
        PackReader::open_with_budget(path, crate::checkpoint::MEMORY_BUDGET)
    }

    /// [`PackReader::open`] allowing `budget` bytes of memory for the
    /// manifests (restore: more for a larger real tree).
    pub fn open_with_budget(path: &Path, budget: usize) -> Result<PackReader, CheckpointError> {
        if is_nixpkgs_checkpoint(path) {
            return Err(CheckpointError::Unsupported {
                role: Role::Checkpoint,
                path: path.to_owned(),
                op: Op::Open,
                detail: Box::new(DecodeError::NixpkgsCheckpoint),
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
                op: Op::CheckManifest,
                detail: Box::new(detail),
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

    /// The pack file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The blob table, sorted by hash.
    pub fn blobs(&self) -> &[BlobRecord] {
        &self.records
    }

    pub(crate) fn blob(&self, hash: ContentHash) -> Option<&BlobRecord> {
        self.records
            .binary_search_by_key(&hash, |r| r.hash)
            .ok()
            .map(|i| &self.records[i])
    }

    fn record(&self, hash: ContentHash) -> Result<&BlobRecord, CheckpointError> {
        self.blob(hash)
            .ok_or_else(|| CheckpointError::InvalidInput {
                path: self.path.clone(),
                op: Op::FindBlob,
                detail: Box::new(InputError::NoSuchBlob(hash)),
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
        self.verify_blobs(self.records.iter().map(|r| r.hash))
    }

    fn stream_record(
        &self,
        rec: &BlobRecord,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), CheckpointError>,
    ) -> Result<(), CheckpointError> {
        if let Some(content) = self.decompress_small(rec) {
            return sink(&content);
        }
        let mut blob = BlobStream::open(self, rec)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            match blob.read_chunk(&mut buf)? {
                0 => return Ok(()),
                n => sink(&buf[..n])?,
            }
        }
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
        let source = |e: CheckpointError| StreamError::Source(Box::new(e));
        let blob = BlobStream::open(self, self.record(hash).map_err(source)?).map_err(source)?;
        // The blob's own errors come back through `Read` wrapped in an
        // `io::Error`; anything else is the writer's.
        rewriter
            .copy_rewriting(blob, out)
            .map_err(|e| match e.downcast::<CheckpointError>() {
                Ok(e) => source(e),
                Err(e) => StreamError::Write(e),
            })
    }
}

/// A blob's content as it is read: decompressed, never beyond its declared
/// size, and checked (size and checksum) at its end, where a mismatch is an
/// error instead of the end. The one copy of that loop, behind
/// [`PackReader::read_blob`], [`PackReader::verify_blobs`] and the
/// streaming restore of large files.
struct BlobStream<'a> {
    pack: &'a PackReader,
    rec: &'a BlobRecord,
    inner: Box<dyn Read + 'a>,
    hasher: Xxh3,
    total: u64,
}

impl<'a> BlobStream<'a> {
    fn open(pack: &'a PackReader, rec: &'a BlobRecord) -> Result<Self, CheckpointError> {
        let range = LogicalRange {
            file: &pack.file,
            pos: rec.offset,
            end: rec.offset + rec.stored_len,
        };
        let inner: Box<dyn Read + 'a> = match rec.compression {
            Compression::Raw => Box::new(range),
            Compression::Zstd => {
                let dec = zstd::stream::read::Decoder::new(range)
                    .map_err(|e| corrupt(pack, rec, DecodeError::Zstd(e)))?;
                // One byte more than declared, to see a bomb.
                Box::new(dec.take(rec.raw_size.saturating_add(1)))
            }
        };
        Ok(BlobStream {
            pack,
            rec,
            inner,
            hasher: Xxh3::new(),
            total: 0,
        })
    }

    /// Reads content into `buf` (not empty); 0 at the end, once the size
    /// and checksum are checked.
    fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize, CheckpointError> {
        let (pack, rec) = (self.pack, self.rec);
        let n = self.inner.read(buf).map_err(|e| read_error(pack, rec, e))?;
        self.total += n as u64;
        if self.total > rec.raw_size {
            return Err(CheckpointError::Unsafe {
                role: Role::Checkpoint,
                path: pack.path.clone(),
                op: Op::ReadBlob(rec.hash),
                detail: Box::new(DecodeError::Bomb(rec.raw_size)),
            });
        }
        self.hasher.update(&buf[..n]);
        if n == 0 {
            if self.total != rec.raw_size {
                let detail = DecodeError::BlobSize {
                    got: self.total,
                    declared: rec.raw_size,
                };
                return Err(corrupt(pack, rec, detail));
            }
            if self.hasher.digest128() != rec.checksum {
                return Err(corrupt(pack, rec, DecodeError::BlobChecksum));
            }
        }
        Ok(n)
    }
}

fn corrupt(pack: &PackReader, rec: &BlobRecord, detail: DecodeError) -> CheckpointError {
    CheckpointError::Corrupt {
        role: Role::Checkpoint,
        path: pack.path.clone(),
        op: Op::ReadBlob(rec.hash),
        detail: Box::new(detail),
    }
}

/// A failed read of a blob's bytes: the system's error (EIO, say) is an
/// unreadable checkpoint, not a corrupt one; anything else (bad zstd data,
/// a bad guard byte, a file that shrank) is damage.
fn read_error(pack: &PackReader, rec: &BlobRecord, e: io::Error) -> CheckpointError {
    if e.raw_os_error().is_some() {
        return CheckpointError::Read {
            role: Role::Checkpoint,
            path: pack.path.clone(),
            op: Op::ReadBlob(rec.hash),
            source: e,
        };
    }
    corrupt(pack, rec, DecodeError::BlobRead(e))
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_chunk(buf).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit_code::ExitCode;

    /// EIO while reading a blob is an unreadable checkpoint (exit 13), not
    /// a corrupt one; bad zstd data (no errno) is corrupt.
    #[test]
    fn a_failing_blob_read_is_unreadable_not_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        crate::checkpoint::write_checkpoint(
            tmp.path(),
            &crate::build_info::BuildInfo {
                root: b"/build".to_vec(),
                store_dir: b"/nix/store".to_vec(),
                outputs: Vec::new(),
                dependencies: Vec::new(),
                recipe: Default::default(),
            },
            &crate::tree::Manifest::new(Vec::new()).unwrap(),
            &crate::tree::Manifest::new(Vec::new()).unwrap(),
            Vec::new(),
            &Default::default(),
        )
        .unwrap();
        let pack = PackReader::open(tmp.path()).unwrap();
        let rec = BlobRecord {
            hash: 7,
            offset: 16,
            stored_len: 0,
            raw_size: 0,
            compression: Compression::Raw,
            checksum: 0,
        };
        let eio = read_error(&pack, &rec, io::Error::from_raw_os_error(nix::libc::EIO));
        assert_eq!(eio.exit_code(), ExitCode::CheckpointUnreadable, "{eio}");
        assert!(!eio.to_string().contains("corrupt"), "{eio}");
        let bad = read_error(&pack, &rec, io::Error::other("Unknown frame descriptor"));
        assert_eq!(bad.exit_code(), ExitCode::CheckpointCorrupt, "{bad}");
        assert!(
            bad.to_string()
                .contains("cannot read or decompress: Unknown frame descriptor"),
            "{bad}"
        );
    }
}
