//! The checkpoint pack (format: `docs/format.md`): what its blob table
//! holds and the manifest section, in both directions. Writing is in
//! [`write`], reading and verifying in [`read`].

mod read;
mod write;

pub use read::{is_nixpkgs_checkpoint, PackReader, VerifyStats, NIXPKGS_CHECKPOINT};
pub use write::{write_checkpoint, BlobFile, WriteOptions, WriteStats};

use super::codec::{
    decode_info, decode_manifest, encode_info, encode_manifest, Dec, DecResult, Enc,
    COMPRESSION_RAW, COMPRESSION_ZSTD, HEADER_LEN, MAX_BLOBS, MAX_BLOB_SIZE,
};
use super::error::{Charge, DecodeError};
use super::{BlobInfo, Checkpoint};
use crate::build_info::BuildInfo;
use crate::tree::{ContentHash, Entry, Manifest, Node, RelPath};
use std::collections::BTreeMap;

/// First 8 bytes of a pack: not `\x7fELF`, not `#!`, and binary-looking
/// (PNG style) so text-mode mangling is detectable.
pub const PACK_MAGIC: [u8; 8] = *b"\x89NCKP\r\n\x1a";

/// Bytes read, compressed or decompressed at a time when a blob is streamed.
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
            return Err(DecodeError::SameHashSizes {
                path: entry.path.clone(),
                first: first.clone(),
                hash,
                size,
                known,
            });
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
        || Charge::BlobRecords(n),
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
            code => return Err(DecodeError::BlobCompression { hash, code }),
        };
        if d.take(7)? != [0; 7] {
            return Err(DecodeError::BlobReserved(hash));
        }
        if let Some(last) = records.last() {
            if last.hash >= hash {
                return Err(DecodeError::BlobOrder(hash));
            }
        }
        if offset != next_offset {
            return Err(DecodeError::BlobGap {
                hash,
                offset,
                expected: next_offset,
            });
        }
        next_offset = offset
            .checked_add(stored_len)
            .filter(|&end| end <= blobs_end)
            .ok_or(DecodeError::BlobPastArea(hash))?;
        if raw_size > MAX_BLOB_SIZE {
            return Err(DecodeError::BlobTooLarge {
                hash,
                size: raw_size,
            });
        }
        if compression == Compression::Raw && raw_size != stored_len {
            return Err(DecodeError::RawBlobSize {
                hash,
                stored: stored_len,
                declared: raw_size,
            });
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
        return Err(DecodeError::BlobsEnd {
            end: next_offset,
            section: blobs_end,
        });
    }

    let required = required_blobs(&before, &after)?;
    for (hash, (size, path)) in &required {
        match records.binary_search_by_key(hash, |r| r.hash) {
            Ok(i) if records[i].raw_size == *size => {}
            Ok(i) => {
                return Err(DecodeError::BlobSizeDiffers {
                    path: (*path).clone(),
                    size: *size,
                    hash: *hash,
                    blob_size: records[i].raw_size,
                })
            }
            Err(_) => {
                return Err(DecodeError::NoBlob {
                    path: (*path).clone(),
                    hash: *hash,
                })
            }
        }
    }
    if records.len() != required.len() {
        let extra = records
            .iter()
            .find(|r| !required.contains_key(&r.hash))
            .map(|r| r.hash)
            .unwrap_or_default();
        return Err(DecodeError::UnreferencedBlob(extra));
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
