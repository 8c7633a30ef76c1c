//! The byte-level building blocks shared by the pack and the state file
//! (specified in `docs/format.md`): little-endian encoding of build info and
//! manifests, the header/section/trailer container, bounded decompression,
//! and atomic file replacement.

use super::error::{CheckpointError, Role};
use crate::build_info::BuildInfo;
use crate::recipe::{Recipe, Value};
use crate::rewrite::store_path::StorePath;
use crate::tree::manifest::PERMISSION_BITS;
use crate::tree::{Entry, Manifest, Node, RelPath, Timestamp};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Version of both the pack and the state format.
pub const FORMAT_VERSION: u32 = 2;
pub const HEADER_LEN: u64 = 16;
pub const TRAILER_LEN: u64 = 64;

/// Section compression codes (trailer and blob table).
pub const COMPRESSION_RAW: u8 = 0;
pub const COMPRESSION_ZSTD: u8 = 1;

/// Largest decompressed manifest section accepted.
pub const MAX_SECTION_RAW: u64 = 1 << 30;

/// Memory a reader may spend on one pack or state file: the decompressed
/// section plus everything decoded from it, estimated per entry before the
/// entries are decoded (see [`ENTRY_COST`]). A file that would need more is
/// refused as unsafe (exit 8; 4 for a state) before it is decoded, whatever
/// its format limits allow (2 x 8 388 608 entries would need gigabytes).
pub const MEMORY_BUDGET: usize = 256 << 20;

/// What `restore` adds to [`MEMORY_BUDGET`] per entry of the real tree it
/// restores into: an honest checkpoint of that tree has about as many
/// entries in each manifest, each costing [`ENTRY_COST`] and its path.
pub const BUDGET_PER_TREE_ENTRY: usize = 2 * (ENTRY_COST + 128);

/// What one manifest entry costs once decoded and planned: the `Entry`, its
/// path's allocation (charged separately by length), and the planner's
/// row and action for it in `restore`.
pub const ENTRY_COST: usize =
    std::mem::size_of::<Entry>() + std::mem::size_of::<crate::plan::Action>() + 64;
/// Most entries accepted in one manifest.
pub const MAX_ENTRIES: usize = 8 << 20;
/// Most blobs accepted in one pack.
pub const MAX_BLOBS: usize = 8 << 20;
/// Most outputs accepted in build info.
pub const MAX_OUTPUTS: usize = 1024;
/// Most dependencies accepted in build info.
pub const MAX_DEPENDENCIES: usize = 1 << 20;
/// Most variables accepted in a recipe.
pub const MAX_RECIPE_VARS: usize = 1 << 16;
/// Longest recipe variable name.
pub const MAX_RECIPE_NAME: usize = 255;
/// Longest recipe value (or array item).
pub const MAX_RECIPE_VALUE: usize = 16 << 20;
/// Largest raw size accepted for one blob (1 TiB).
pub const MAX_BLOB_SIZE: u64 = 1 << 40;
/// Longest output name accepted.
pub const MAX_OUTPUT_NAME: usize = 255;
/// Longest absolute path (root, store dir, store path, symlink target).
pub const MAX_PATH: usize = crate::tree::rel_path::PATH_MAX;

const KIND_DIR: u8 = 0;
const KIND_FILE: u8 = 1;
const KIND_SYMLINK: u8 = 2;

// ---------------------------------------------------------------- encoding

#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// `u16` length then the bytes. Lengths beyond `u16` are written as
    /// `u16::MAX` so that the decoder (which caps lengths well below) rejects
    /// them; the writer's self-check reports it.
    pub fn bytes16(&mut self, b: &[u8]) {
        self.u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
        self.0
            .extend_from_slice(&b[..b.len().min(u16::MAX as usize)]);
    }
    pub fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    /// `u32` length then the bytes (saturating like [`Enc::bytes16`]).
    pub fn bytes32(&mut self, b: &[u8]) {
        let n = b.len().min(u32::MAX as usize);
        self.u32(n as u32);
        self.0.extend_from_slice(&b[..n]);
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked and every
/// failure is a message for [`CheckpointError::Unsafe`].
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Bytes of memory charged against `budget` so far (the buffer itself
    /// included).
    charged: usize,
    /// [`MEMORY_BUDGET`], or more for a restore into a large tree.
    budget: usize,
}

pub type DecResult<T> = Result<T, String>;

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Dec::with_budget(buf, MEMORY_BUDGET)
    }
    pub fn with_budget(buf: &'a [u8], budget: usize) -> Self {
        Dec {
            buf,
            pos: 0,
            charged: buf.len(),
            budget,
        }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> DecResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(format!(
                "needs {n} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> DecResult<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }
    pub fn u8(&mut self) -> DecResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> DecResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> DecResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> DecResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> DecResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn u128(&mut self) -> DecResult<u128> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    /// A `u16`-length byte string of at most `max` bytes.
    pub fn bytes16(&mut self, max: usize, what: &str) -> DecResult<&'a [u8]> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(format!("{what} is {n} bytes long, the limit is {max}"));
        }
        self.take(n)
    }
    /// A `u32`-length byte string of at most `max` bytes.
    pub fn bytes32(&mut self, max: usize, what: &str) -> DecResult<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(format!("{what} is {n} bytes long, the limit is {max}"));
        }
        self.take(n)
    }
    /// A `u32` count of items of at least `min_size` bytes each, checked
    /// against `max` and against the bytes actually left, so that nothing is
    /// ever allocated from an unchecked count.
    /// Charges `bytes` of memory against the budget before they are
    /// allocated; refuses once the total would exceed it.
    pub fn charge(&mut self, bytes: usize, what: &str) -> DecResult<()> {
        self.charged = self.charged.saturating_add(bytes);
        if self.charged > self.budget {
            return Err(format!(
                "decoding {what} would need more than the {} MiB of memory nix-checkpoint \
                 allows for this file (over {} MiB so far)",
                self.budget >> 20,
                self.charged >> 20
            ));
        }
        Ok(())
    }

    pub fn count(&mut self, min_size: usize, max: usize, what: &str) -> DecResult<usize> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(format!("{n} {what}, the limit is {max}"));
        }
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(format!(
                "declares {n} {what} but only {} bytes remain",
                self.remaining()
            ));
        }
        Ok(n)
    }
    pub fn finish(&self) -> DecResult<()> {
        if self.remaining() != 0 {
            return Err(format!("{} unexpected bytes at the end", self.remaining()));
        }
        Ok(())
    }
}

// -------------------------------------------------------------- build info

pub fn encode_info(e: &mut Enc, info: &BuildInfo) {
    e.bytes16(&info.root);
    e.bytes16(&info.store_dir);
    e.count(info.outputs.len());
    for (name, path) in &info.outputs {
        e.bytes16(name.as_bytes());
        e.bytes16(path.as_bytes());
    }
    e.count(info.dependencies.len());
    for dep in &info.dependencies {
        e.bytes16(dep.as_bytes());
    }
    encode_recipe(e, &info.recipe);
}

const VALUE_SCALAR: u8 = 0;
const VALUE_ARRAY: u8 = 1;
const VALUE_ASSOC: u8 = 2;

fn encode_recipe(e: &mut Enc, recipe: &Recipe) {
    e.count(recipe.vars.len());
    for (name, value) in &recipe.vars {
        e.bytes16(name.as_bytes());
        match value {
            Value::Scalar(v) => {
                e.u8(VALUE_SCALAR);
                e.bytes32(v);
            }
            Value::Array(items) => {
                e.u8(VALUE_ARRAY);
                e.count(items.len());
                for item in items {
                    e.bytes32(item);
                }
            }
            Value::Assoc(pairs) => {
                e.u8(VALUE_ASSOC);
                e.count(pairs.len());
                for (k, v) in pairs {
                    e.bytes32(k);
                    e.bytes32(v);
                }
            }
        }
    }
}

fn decode_recipe(d: &mut Dec) -> DecResult<Recipe> {
    let n = d.count(7, MAX_RECIPE_VARS, "recipe variables")?;
    let mut vars = std::collections::BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..n {
        let name = d.bytes16(MAX_RECIPE_NAME, "a recipe variable name")?;
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|s| crate::recipe::is_valid_name(s))
            .ok_or_else(|| format!("bad recipe variable name {:?}", lossy(name)))?
            .to_string();
        if last.as_ref().is_some_and(|l| *l >= name) {
            return Err(format!(
                "recipe variable {name:?} is listed twice or out of order"
            ));
        }
        let value = match d.u8()? {
            VALUE_SCALAR => Value::Scalar(d.bytes32(MAX_RECIPE_VALUE, "a recipe value")?.to_vec()),
            VALUE_ARRAY => {
                let k = d.count(4, MAX_RECIPE_VARS, "array items")?;
                let mut items = Vec::with_capacity(k);
                for _ in 0..k {
                    items.push(d.bytes32(MAX_RECIPE_VALUE, "an array item")?.to_vec());
                }
                Value::Array(items)
            }
            VALUE_ASSOC => {
                let k = d.count(8, MAX_RECIPE_VARS, "associative array entries")?;
                let mut pairs = Vec::with_capacity(k);
                for _ in 0..k {
                    let key = d.bytes32(MAX_RECIPE_VALUE, "an array key")?.to_vec();
                    let value = d.bytes32(MAX_RECIPE_VALUE, "an array value")?.to_vec();
                    pairs.push((key, value));
                }
                Value::Assoc(pairs)
            }
            other => return Err(format!("recipe variable {name:?} has unknown kind {other}")),
        };
        vars.insert(name.clone(), value);
        last = Some(name);
    }
    Ok(Recipe { vars })
}

fn check_absolute(bytes: &[u8], what: &str) -> DecResult<()> {
    if bytes.first() != Some(&b'/') {
        return Err(format!("{what} {:?} is not absolute", lossy(bytes)));
    }
    if bytes.contains(&0) {
        return Err(format!("{what} contains a NUL byte"));
    }
    Ok(())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn store_path(store_dir: &[u8], bytes: &[u8], what: &str) -> DecResult<StorePath> {
    match StorePath::parse(store_dir, bytes) {
        Some(p) if p.as_bytes() == bytes => Ok(p),
        _ => Err(format!(
            "{what} {:?} is not a store path in {:?}",
            lossy(bytes),
            lossy(store_dir)
        )),
    }
}

pub fn decode_info(d: &mut Dec) -> DecResult<BuildInfo> {
    let root = d.bytes16(MAX_PATH, "the build root")?.to_vec();
    check_absolute(&root, "the build root")?;
    let store_dir = d.bytes16(MAX_PATH, "the store directory")?.to_vec();
    check_absolute(&store_dir, "the store directory")?;
    if store_dir.ends_with(b"/") {
        return Err("the store directory ends with `/`".into());
    }
    let n = d.count(4, MAX_OUTPUTS, "outputs")?;
    let mut outputs: Vec<(String, StorePath)> = Vec::with_capacity(n);
    for _ in 0..n {
        let name = d.bytes16(MAX_OUTPUT_NAME, "an output name")?;
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b))
            })
            .ok_or_else(|| format!("bad output name {:?}", lossy(name)))?
            .to_string();
        if let Some((last, _)) = outputs.last() {
            if *last >= name {
                return Err(format!("output {name:?} is listed twice or out of order"));
            }
        }
        let path = store_path(&store_dir, d.bytes16(MAX_PATH, "an output path")?, "output")?;
        outputs.push((name, path));
    }
    let n = d.count(2, MAX_DEPENDENCIES, "dependencies")?;
    let mut dependencies: Vec<StorePath> = Vec::with_capacity(n);
    for _ in 0..n {
        let dep = store_path(
            &store_dir,
            d.bytes16(MAX_PATH, "a dependency")?,
            "dependency",
        )?;
        if let Some(last) = dependencies.last() {
            if *last >= dep {
                return Err(format!("dependency {dep} is listed twice or out of order"));
            }
        }
        dependencies.push(dep);
    }
    let recipe = decode_recipe(d)?;
    Ok(BuildInfo {
        root,
        store_dir,
        outputs,
        dependencies,
        recipe,
    })
}

// ---------------------------------------------------------------- manifests

/// Encodes a manifest; `with_mtime` is fixed by the context (docs/format.md).
pub fn encode_manifest(e: &mut Enc, m: &Manifest, with_mtime: bool) {
    e.count(m.len());
    for entry in m.entries() {
        e.bytes16(entry.path.as_bytes());
        let kind = match entry.node {
            Node::Dir => KIND_DIR,
            Node::File { .. } => KIND_FILE,
            Node::Symlink { .. } => KIND_SYMLINK,
        };
        e.u8(kind);
        e.u32(entry.mode);
        if with_mtime {
            e.i64(entry.mtime.secs);
            e.u32(entry.mtime.nanos);
        }
        match &entry.node {
            Node::Dir => {}
            Node::File { size, hash } => {
                e.u64(*size);
                e.u128(*hash);
            }
            Node::Symlink { target, hash } => {
                e.bytes16(target);
                e.u128(*hash);
            }
        }
    }
}

/// Decodes and validates a manifest: every path through [`RelPath::new`],
/// strictly increasing paths (no duplicates), permission bits only, valid
/// nanoseconds, symlink targets non-empty without NUL, then the
/// [`Manifest::new`] invariants. Without mtimes, entries get
/// `Timestamp::default()`.
pub fn decode_manifest(d: &mut Dec, with_mtime: bool, what: &str) -> DecResult<Manifest> {
    let n = d.count(8, MAX_ENTRIES, "entries")?;
    d.charge(
        n.saturating_mul(ENTRY_COST),
        &format!("{what}'s {n} entries"),
    )?;
    let mut entries: Vec<Entry> = Vec::with_capacity(n);
    for _ in 0..n {
        let raw = d.bytes16(MAX_PATH, "a path")?;
        d.charge(raw.len(), "the paths")?;
        let path = RelPath::new(raw).map_err(|e| format!("{what}: path {:?}: {e}", lossy(raw)))?;
        if let Some(last) = entries.last() {
            if last.path == path {
                return Err(format!("{what}: {path}: listed twice"));
            }
            if last.path > path {
                return Err(format!("{what}: {path}: out of order"));
            }
        }
        let kind = d.u8()?;
        let mode = d.u32()?;
        if mode & !PERMISSION_BITS != 0 {
            return Err(format!(
                "{what}: {path}: mode {mode:#o} has more than permission bits"
            ));
        }
        let mtime = if with_mtime {
            let secs = d.i64()?;
            let nanos = d.u32()?;
            if nanos >= 1_000_000_000 {
                return Err(format!("{what}: {path}: {nanos} nanoseconds"));
            }
            Timestamp::new(secs, nanos)
        } else {
            Timestamp::default()
        };
        let node = match kind {
            KIND_DIR => Node::Dir,
            KIND_FILE => {
                let size = d.u64()?;
                if size > MAX_BLOB_SIZE {
                    return Err(format!(
                        "{what}: {path}: size {size} beyond the limit of {MAX_BLOB_SIZE}"
                    ));
                }
                Node::File {
                    size,
                    hash: d.u128()?,
                }
            }
            KIND_SYMLINK => {
                let target = d.bytes16(MAX_PATH, "a symlink target")?;
                if target.is_empty() || target.contains(&0) {
                    return Err(format!("{what}: {path}: empty symlink target or NUL in it"));
                }
                Node::Symlink {
                    target: target.into(),
                    hash: d.u128()?,
                }
            }
            k => return Err(format!("{what}: {path}: unknown entry kind {k}")),
        };
        entries.push(Entry {
            path,
            node,
            mode,
            mtime,
        });
    }
    Manifest::new(entries).map_err(|e| format!("{what}: {e}"))
}

// ---------------------------------------------------------------- container

/// The fixed-size trailer at the end of a pack or state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub section_offset: u64,
    pub section_stored: u64,
    pub section_raw: u64,
    pub compression: u8,
    pub section_checksum: u128,
}

pub fn header_bytes(magic: &[u8; 8]) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // 12..16: flags, zero.
    h
}

pub fn trailer_bytes(
    header: &[u8; HEADER_LEN as usize],
    t: &Trailer,
) -> [u8; TRAILER_LEN as usize] {
    let mut b = [0u8; TRAILER_LEN as usize];
    b[0..8].copy_from_slice(&t.section_offset.to_le_bytes());
    b[8..16].copy_from_slice(&t.section_stored.to_le_bytes());
    b[16..24].copy_from_slice(&t.section_raw.to_le_bytes());
    b[24] = t.compression;
    // 25..32 reserved, zero.
    b[32..48].copy_from_slice(&t.section_checksum.to_le_bytes());
    let sum = trailer_checksum(header, &b[..48]);
    b[48..64].copy_from_slice(&sum.to_le_bytes());
    b
}

fn trailer_checksum(header: &[u8], fields: &[u8]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(header);
    h.update(fields);
    h.digest128()
}

/// Compresses a section: raw at level 0, else one zstd frame.
pub fn compress_section(raw: &[u8], level: i32) -> io::Result<(u8, Vec<u8>)> {
    if level == 0 {
        Ok((COMPRESSION_RAW, raw.to_vec()))
    } else {
        Ok((COMPRESSION_ZSTD, zstd::bulk::compress(raw, level)?))
    }
}

/// Reads `[offset, offset + buf.len())` of the file exactly (file
/// offsets: for the header).
pub fn pread_exact(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

// ---------------------------------------------------------------- guards
//
// A pack must refer to no store path: Nix records as a reference every
// store path of the build's closure whose 32-character hash (base-32
// alphabet `0-9a-df-np-sv-z`) appears in an output, and a pack holds store
// paths (build info, recipe, build products). So every 32nd byte of the
// file is a zero *guard byte*: the header's last byte (flags, zero) at
// offset 15 and, after the header, one guard after every 31 bytes of the
// container. Any 32 consecutive bytes of the file then contain a zero byte,
// which is not in the alphabet, whatever the rest holds: no hash can appear.
//
// Everything else (offsets in the trailer and blob table, checksums, the
// layout in `docs/format.md`) is about the *logical* file, the file with
// its guards removed; the functions below translate, and readers check
// every guard they pass over.

/// Bytes of container between two guard bytes.
const GUARD_RUN: u64 = 31;
/// Distance between two guard bytes.
pub const GUARD_SPACING: u64 = GUARD_RUN + 1;
/// The value of every guard byte.
pub const GUARD: u8 = 0;

/// The file offset of logical offset `pos`. At the end of a run (`pos - 16`
/// a multiple of 31) it is the offset after the guard, so that a range of
/// logical bytes read as `[file_offset(start), file_offset(end))` includes
/// every guard that follows one of its bytes.
pub fn file_offset(pos: u64) -> u64 {
    match pos.checked_sub(HEADER_LEN) {
        Some(q) => pos + q / GUARD_RUN,
        None => pos,
    }
}

/// The logical length of a file of `len` bytes, or `None` if no file has
/// that length (it would end with a run of 31 bytes without its guard).
pub fn logical_len(len: u64) -> Option<u64> {
    let Some(body) = len.checked_sub(HEADER_LEN) else {
        return Some(len);
    };
    let (runs, rest) = (body / GUARD_SPACING, body % GUARD_SPACING);
    (rest < GUARD_RUN).then_some(HEADER_LEN + runs * GUARD_RUN + rest)
}

/// Whether the byte at file offset `at` is a guard.
pub fn is_guard(at: u64) -> bool {
    at >= HEADER_LEN && (at - HEADER_LEN) % GUARD_SPACING == GUARD_RUN
}

fn bad_guard(at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("byte {at} is not a zero guard byte"),
    )
}

/// Removes the guard bytes from `buf`, the file's bytes from file offset
/// `at` (not a guard: a [`file_offset`]), in place, checking that each is
/// zero. Returns the number of logical bytes left at the front of `buf`.
pub fn strip_guards(buf: &mut [u8], at: u64) -> io::Result<usize> {
    debug_assert!(at >= HEADER_LEN && !is_guard(at));
    const RUN: usize = GUARD_RUN as usize;
    let len = buf.len();
    // The rest of the first run, then whole runs and their guards.
    let phase = ((at - HEADER_LEN) % GUARD_SPACING) as usize;
    let first = (RUN - phase).min(len);
    let (mut read, mut written) = (first, first);
    while read < len {
        if buf[read] != GUARD {
            return Err(bad_guard(at + read as u64));
        }
        read += 1;
        if len - read >= RUN {
            // A fixed-size copy the compiler keeps in registers.
            let run: [u8; RUN] = buf[read..read + RUN].try_into().expect("RUN bytes");
            buf[written..written + RUN].copy_from_slice(&run);
            read += RUN;
            written += RUN;
        } else {
            buf.copy_within(read..len, written);
            written += len - read;
            read = len;
        }
    }
    Ok(written)
}

/// Reads logical `[pos, pos + len)` (`pos` ≥ 16) exactly, checking the
/// guards among and after those bytes (a bad one is `InvalidData`).
pub fn read_logical(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let start = file_offset(pos);
    let end = file_offset(pos + len as u64);
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)?;
    let n = strip_guards(&mut buf, start)?;
    debug_assert_eq!(n, len);
    buf.truncate(n);
    Ok(buf)
}

/// Logical `[pos, end)` of a file as a `Read` (with `pread`, so many may
/// read one file at once), guards checked and removed in the caller's
/// buffer.
pub struct LogicalRange<'a> {
    pub file: &'a File,
    pub pos: u64,
    pub end: u64,
}

impl Read for LogicalRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.end {
            return Ok(0);
        }
        let start = file_offset(self.pos);
        let stop = file_offset(self.end);
        let want = (stop - start).min(buf.len() as u64) as usize;
        let n = self.file.read_at(&mut buf[..want], start)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank",
            ));
        }
        let after = start + n as u64;
        if after < stop && is_guard(after) {
            // The read stopped just before a guard the next one would skip.
            let mut guard = [0u8; 1];
            self.file.read_exact_at(&mut guard, after)?;
            if guard[0] != GUARD {
                return Err(bad_guard(after));
            }
        }
        let got = strip_guards(&mut buf[..n], start)?;
        self.pos += got as u64;
        Ok(got)
    }
}

/// Writes the logical bytes from offset 16 on (the header goes to `inner`
/// directly, before), inserting the guard bytes.
pub struct GuardedWriter<W: io::Write> {
    pub inner: W,
    /// Logical offset of the next byte.
    pub pos: u64,
}

impl<W: io::Write> GuardedWriter<W> {
    /// After the header has been written to `inner`.
    pub fn new(inner: W) -> Self {
        GuardedWriter {
            inner,
            pos: HEADER_LEN,
        }
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        const RUN: usize = GUARD_RUN as usize;
        // Guarded in a buffer of at most 64 KiB at a time, one write each.
        let mut frame = [0u8; 2048 * GUARD_SPACING as usize];
        while !data.is_empty() {
            let mut n = 0;
            let phase = ((self.pos - HEADER_LEN) % GUARD_RUN) as usize;
            if phase != 0 || data.len() < RUN {
                // The rest of a run (or a short write): through as is.
                let run = (RUN - phase).min(data.len());
                frame[..run].copy_from_slice(&data[..run]);
                n = run;
                data = &data[run..];
                self.pos += run as u64;
                if (self.pos - HEADER_LEN).is_multiple_of(GUARD_RUN) {
                    frame[n] = GUARD;
                    n += 1;
                }
            } else {
                while data.len() >= RUN && n + RUN < frame.len() {
                    let run: &[u8; RUN] = data[..RUN].try_into().expect("RUN bytes");
                    frame[n..n + RUN].copy_from_slice(run);
                    frame[n + RUN] = GUARD;
                    n += RUN + 1;
                    data = &data[RUN..];
                    self.pos += GUARD_RUN;
                }
            }
            self.inner.write_all(&frame[..n])?;
        }
        Ok(())
    }

    /// Bytes of the file so far.
    pub fn file_len(&self) -> u64 {
        file_offset(self.pos)
    }
}

/// The file of a whole logical file (header included): guards inserted.
pub fn add_guards(logical: &[u8]) -> Vec<u8> {
    let header = logical.len().min(HEADER_LEN as usize);
    let mut w = GuardedWriter::new(Vec::with_capacity(
        file_offset(logical.len() as u64) as usize
    ));
    w.inner.extend_from_slice(&logical[..header]);
    w.write_all(&logical[header..]).expect("a Vec");
    w.inner
}

/// The logical file of the bytes of a file: guards removed, whatever their
/// value; `None` if no file has that length (see [`logical_len`]).
#[cfg(any(test, feature = "testing"))]
pub fn remove_guards(file: &[u8]) -> Option<Vec<u8>> {
    logical_len(file.len() as u64)?;
    Some(
        file.iter()
            .enumerate()
            .filter(|&(i, _)| !is_guard(i as u64))
            .map(|(_, &b)| b)
            .collect(),
    )
}

/// An opened, checked container: the decompressed section and the trailer.
pub struct Container {
    pub file: File,
    pub trailer: Trailer,
    pub section: Vec<u8>,
}

/// Opens `path` and checks everything up to the decompressed section:
/// magic, version, flags, trailer checksum, offsets, section checksum,
/// bounded decompression. `blobs_allowed`: whether bytes may lie between
/// the header and the section (pack) or not (state).
pub fn open_container(
    path: &Path,
    role: Role,
    magic: &[u8; 8],
    blobs_allowed: bool,
    budget: usize,
) -> Result<Container, CheckpointError> {
    let corrupt = |op: &str, detail: String| CheckpointError::Corrupt {
        role,
        path: path.to_owned(),
        op: op.into(),
        detail,
    };
    let unsupported = |op: &str, detail: String| CheckpointError::Unsupported {
        role,
        path: path.to_owned(),
        op: op.into(),
        detail,
    };
    let unsafe_ = |op: &str, detail: String| CheckpointError::Unsafe {
        role,
        path: path.to_owned(),
        op: op.into(),
        detail,
    };
    let read_err = |op: &str, source: io::Error| {
        // ENOTDIR: a path component is a file (`io::ErrorKind::NotADirectory`
        // needs Rust 1.83).
        if source.kind() == io::ErrorKind::NotFound
            || source.raw_os_error() == Some(nix::errno::Errno::ENOTDIR as i32)
        {
            CheckpointError::Missing {
                role,
                path: path.to_owned(),
                op: op.into(),
                source,
            }
        } else {
            CheckpointError::Read {
                role,
                path: path.to_owned(),
                op: op.into(),
                source,
            }
        }
    };

    // O_NONBLOCK: a fifo (or device) in place of the file must be refused
    // below as "not a regular file", not block the open forever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(|e| read_err("open", e))?;
    let meta = file.metadata().map_err(|e| read_err("stat", e))?;
    if !meta.is_file() {
        return Err(unsupported("open", "not a regular file".into()));
    }
    let len = meta.len();

    // Header: a wrong magic means "not ours" even when the file is short; a
    // short file with a matching prefix is a truncated one.
    let mut header = [0u8; HEADER_LEN as usize];
    let have = len.min(HEADER_LEN) as usize;
    pread_exact(&file, &mut header[..have], 0).map_err(|e| read_err("read the header", e))?;
    let magic_have = have.min(8);
    if header[..magic_have] != magic[..magic_have] {
        return Err(unsupported(
            "read the header",
            format!("wrong magic bytes (expected a nix-checkpoint {role} file)"),
        ));
    }
    if len < HEADER_LEN {
        return Err(corrupt(
            "read the header",
            format!("truncated: {len} bytes, shorter than the header"),
        ));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(unsupported(
            "read the header",
            format!("format version {version}"),
        ));
    }
    let flags = u32::from_le_bytes(header[12..16].try_into().unwrap());
    if flags != 0 {
        return Err(unsupported(
            "read the header",
            format!("unknown feature flags {flags:#x}"),
        ));
    }

    // From here on, offsets and lengths are logical (guard bytes removed).
    let file_len = len;
    let len = match logical_len(file_len) {
        Some(l) if l >= HEADER_LEN + TRAILER_LEN => l,
        _ => {
            return Err(corrupt(
                "read the header",
                format!("truncated: {file_len} bytes, too short or not a possible length"),
            ))
        }
    };
    // A guard byte that is not zero is damage, like a checksum mismatch.
    let guarded_err = |op: &str, e: io::Error| {
        if e.kind() == io::ErrorKind::InvalidData {
            corrupt(op, e.to_string())
        } else {
            read_err(op, e)
        }
    };
    let tb = read_logical(&file, len - TRAILER_LEN, TRAILER_LEN as usize)
        .map_err(|e| guarded_err("read the trailer", e))?;
    let stored_sum = u128::from_le_bytes(tb[48..64].try_into().unwrap());
    if trailer_checksum(&header, &tb[..48]) != stored_sum {
        return Err(corrupt(
            "read the trailer",
            "trailer checksum mismatch (truncated or damaged)".into(),
        ));
    }
    let le64 = |r: std::ops::Range<usize>| u64::from_le_bytes(tb[r].try_into().unwrap());
    let trailer = Trailer {
        section_offset: le64(0..8),
        section_stored: le64(8..16),
        section_raw: le64(16..24),
        compression: tb[24],
        section_checksum: u128::from_le_bytes(tb[32..48].try_into().unwrap()),
    };
    if tb[25..32] != [0; 7] {
        return Err(unsupported(
            "read the trailer",
            "reserved bytes are not zero".into(),
        ));
    }
    if trailer.compression != COMPRESSION_RAW && trailer.compression != COMPRESSION_ZSTD {
        return Err(unsupported(
            "read the trailer",
            format!("unknown compression {}", trailer.compression),
        ));
    }
    let end = trailer
        .section_offset
        .checked_add(trailer.section_stored)
        .and_then(|e| e.checked_add(TRAILER_LEN));
    if trailer.section_offset < HEADER_LEN
        || end != Some(len)
        || (!blobs_allowed && trailer.section_offset != HEADER_LEN)
    {
        return Err(corrupt(
            "read the trailer",
            format!(
                "section at {}+{} does not fit a {len}-byte file",
                trailer.section_offset, trailer.section_stored
            ),
        ));
    }
    if trailer.section_raw > MAX_SECTION_RAW {
        return Err(unsafe_(
            "read the trailer",
            format!(
                "section declares {} bytes, the limit is {MAX_SECTION_RAW}",
                trailer.section_raw
            ),
        ));
    }
    if trailer.section_raw > budget as u64 {
        return Err(unsafe_(
            "read the trailer",
            format!(
                "section declares {} bytes, more than the {} MiB of memory nix-checkpoint \
                 allows for this file",
                trailer.section_raw,
                budget >> 20
            ),
        ));
    }
    if trailer.compression == COMPRESSION_RAW && trailer.section_raw != trailer.section_stored {
        return Err(unsafe_(
            "read the trailer",
            "raw section with a declared size different from its length".into(),
        ));
    }

    // The stored length is within the file: allocating it is bounded by
    // bytes actually present.
    let stored = read_logical(
        &file,
        trailer.section_offset,
        trailer.section_stored as usize,
    )
    .map_err(|e| guarded_err("read the manifest section", e))?;
    if xxhash_rust::xxh3::xxh3_128(&stored) != trailer.section_checksum {
        return Err(corrupt(
            "read the manifest section",
            "manifest checksum mismatch".into(),
        ));
    }
    let section = if trailer.compression == COMPRESSION_RAW {
        stored
    } else {
        bounded_decompress(&stored, trailer.section_raw)
            .map_err(|d| unsafe_("decompress the manifest section", d))?
    };
    Ok(Container {
        file,
        trailer,
        section,
    })
}

/// Decompresses `stored` (zstd frames) into exactly `raw_len` bytes, never
/// producing more than `raw_len + 1` bytes whatever the frames claim.
pub fn bounded_decompress(stored: &[u8], raw_len: u64) -> Result<Vec<u8>, String> {
    let mut dec =
        zstd::stream::read::Decoder::with_buffer(stored).map_err(|e| format!("zstd: {e}"))?;
    let mut out = Vec::with_capacity(raw_len.min(16 << 20) as usize);
    (&mut dec)
        .take(raw_len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid zstd data: {e}"))?;
    if out.len() as u64 > raw_len {
        return Err(format!(
            "decompresses beyond its declared {raw_len} bytes (a decompression bomb?)"
        ));
    }
    if (out.len() as u64) < raw_len {
        return Err(format!(
            "decompresses to {} bytes, {raw_len} declared",
            out.len()
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------- atomic

/// A temporary file next to its destination, removed on drop unless
/// [`AtomicFile::commit`] renamed it into place. While it exists, it holds
/// an exclusive `flock` on the destination's directory, so two writers into
/// one directory (two saves with one `--output`) take turns: each renames
/// its own complete file, never the other's.
pub struct AtomicFile {
    pub temp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    file: Option<File>,
    /// The directory, locked (`flock(LOCK_EX)`) until drop.
    _lock: nix::fcntl::Flock<File>,
}

/// A name no other writer uses: pid, time and a per-process counter.
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{nanos:x}.{n}", std::process::id())
}

impl AtomicFile {
    /// Locks the destination's directory (waiting for another writer to
    /// finish), removes stale temporary files of killed writers (regular
    /// files named `.NAME.tmp*`: under the lock no live writer has one), and
    /// creates `dir/.NAME.tmp.<pid>.<time>.<n>` exclusively (mode 0644).
    pub fn create(dest: &Path) -> Result<AtomicFile, CheckpointError> {
        // `Path::new("state").parent()` is `Some("")`: that is the current
        // directory, which `File::open("")` (for the directory fsync) is not.
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let lock_err = |op: &str, e: io::Error| CheckpointError::Write {
            path: dir.clone(),
            op: op.into(),
            source: e,
        };
        let lock = File::open(&dir).map_err(|e| lock_err("open the directory to lock it", e))?;
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| lock_err("lock the directory", io::Error::from(e)))?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.tmp");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let stale = entry
                    .file_name()
                    .as_encoded_bytes()
                    .starts_with(prefix.as_bytes())
                    && entry.file_type().is_ok_and(|t| t.is_file());
                if stale {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(|e| CheckpointError::Write {
                        path,
                        op: "remove a stale temporary file".into(),
                        source: e,
                    })?;
                }
            }
        }
        let temp = dir.join(format!("{prefix}.{}", unique_suffix()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&temp)
            .map_err(|e| CheckpointError::Write {
                path: temp.clone(),
                op: "create the temporary file".into(),
                source: e,
            })?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_owned(),
            dir,
            file: Some(file),
            _lock: lock,
        })
    }

    pub fn file(&self) -> &File {
        self.file.as_ref().expect("open until commit")
    }

    pub fn write_err(&self, op: &str, source: io::Error) -> CheckpointError {
        CheckpointError::Write {
            path: self.temp.clone(),
            op: op.into(),
            source,
        }
    }

    /// fsync, rename over the destination, fsync the directory.
    pub fn commit(mut self) -> Result<(), CheckpointError> {
        let file = self.file.take().expect("open until commit");
        file.sync_all().map_err(|e| self.write_err("fsync", e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.dest).map_err(|e| CheckpointError::Write {
            path: self.dest.clone(),
            op: format!("rename {} into place", self.temp.display()),
            source: e,
        })?;
        // Renamed: nothing left to clean up even if the directory sync fails.
        self.temp = PathBuf::new();
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CheckpointError::Write {
                path: self.dir.clone(),
                op: "fsync the directory".into(),
                source: e,
            })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file.take();
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
