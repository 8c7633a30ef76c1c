//! The snapshot state file: written by `snapshot`, read by `save`
//! (format: `docs/format.md`).

use super::atomic::AtomicFile;
use super::codec::{
    compress_section, decode_info, decode_manifest, encode_info, encode_manifest, open_container,
    ContainerWriter, Dec, DecResult, Enc,
};
use super::error::{CheckpointError, DecodeError, InputError, Op, Role};
use super::Snapshot;
use crate::error::IoContext;
use std::io::Write;
use std::path::Path;

/// First 8 bytes of a state file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"\x89NCKS\r\n\x1a";

/// zstd level of the state's section.
const STATE_LEVEL: i32 = 3;

fn encode(state: &Snapshot) -> Vec<u8> {
    let mut e = Enc::default();
    encode_info(&mut e, &state.info);
    encode_manifest(&mut e, &state.before, true);
    e.0
}

fn decode(raw: &[u8]) -> DecResult<Snapshot> {
    let mut d = Dec::new(raw);
    let info = decode_info(&mut d)?;
    let before = decode_manifest(&mut d, true, "before")?;
    d.finish()?;
    Ok(Snapshot { info, before })
}

/// Writes the state file atomically (temporary file in the same directory,
/// fsync, rename, fsync of the directory).
pub fn write_snapshot(path: &Path, state: &Snapshot) -> Result<(), CheckpointError> {
    let raw = encode(state);
    decode(&raw).map_err(|d| CheckpointError::InvalidInput {
        path: path.to_owned(),
        op: Op::CheckSnapshot,
        detail: Box::new(InputError::Decode(d)),
    })?;
    let atomic = AtomicFile::create(path)?;
    let (compression, stored) =
        compress_section(&raw, STATE_LEVEL).io_context(|| atomic.writing(Op::CompressSnapshot))?;
    // A container like a pack's, without blobs: one format, one reader.
    let bytes = container_bytes(&stored, raw.len() as u64, compression);
    atomic
        .file()
        .write_all(&bytes)
        .io_context(|| atomic.writing(Op::WriteSnapshot))?;
    atomic.commit()
}

/// The whole state file, in memory (it holds no blobs).
fn container_bytes(stored: &[u8], raw_len: u64, compression: u8) -> Vec<u8> {
    let in_memory = "writing to a Vec cannot fail";
    let mut w = ContainerWriter::new(Vec::new(), &SNAPSHOT_MAGIC).expect(in_memory);
    let trailer = w
        .write_section(stored, raw_len, compression)
        .expect(in_memory);
    w.finish(&trailer).expect(in_memory).0
}

/// Reads and validates a state file.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, CheckpointError> {
    let c = open_container(
        path,
        Role::Snapshot,
        &SNAPSHOT_MAGIC,
        false,
        super::codec::MEMORY_BUDGET,
    )?;
    decode(&c.section).map_err(|detail| CheckpointError::Unsafe {
        role: Role::Snapshot,
        path: path.to_owned(),
        op: Op::CheckSnapshot,
        detail: Box::new(detail),
    })
}

/// Refuses (exit 4) a state that belongs to another build than the one
/// saving it: taken in another root, or with other outputs. Recording it
/// would store P of another tree beside B of this one (products missed or
/// sources stored as products) and hash B modulo the wrong identity.
pub fn check_snapshot_matches(
    path: &Path,
    state: &super::Snapshot,
    current: &crate::build_info::BuildInfo,
) -> Result<(), CheckpointError> {
    let unsafe_state = |detail| CheckpointError::Unsafe {
        role: Role::Snapshot,
        path: path.to_owned(),
        op: Op::CheckBelongsToBuild,
        detail: Box::new(detail),
    };
    if state.info.root != current.root {
        return Err(unsafe_state(DecodeError::OtherRoot {
            taken: state.info.root.clone(),
            saving: current.root.clone(),
        }));
    }
    if state.info.outputs != current.outputs {
        return Err(unsafe_state(DecodeError::OtherOutputs {
            taken: state.info.outputs.clone(),
            saving: current.outputs.clone(),
        }));
    }
    Ok(())
}
