//! The byte-level building blocks shared by the pack and the state file
//! (specified in `docs/format.md`): little-endian encoding of build info and
//! manifests, the header/section/trailer container and bounded
//! decompression. Guard bytes are in [`super::guard`], atomic replacement
//! in [`super::atomic`].

use super::error::{Charge, CheckpointError, DecodeError, EntryProblem, Op, Reading, Role};
use super::guard::{logical_len, read_logical, GuardedWriter};
use crate::build_info::BuildInfo;
use crate::error::IoContext;
use crate::recipe::{Recipe, Value};
use crate::rewrite::store_path::StorePath;
use crate::tree::manifest::PERMISSION_BITS;
use crate::tree::{Entry, Manifest, Node, RelPath, Timestamp};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

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
/// failure is a [`DecodeError`] (for [`CheckpointError::Unsafe`]).
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Bytes of memory charged against `budget` so far (the buffer itself
    /// included).
    charged: usize,
    /// [`MEMORY_BUDGET`], or more for a restore into a large tree.
    budget: usize,
}

pub type DecResult<T> = Result<T, DecodeError>;

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
            return Err(DecodeError::Truncated {
                need: n,
                at: self.pos,
                remain: self.remaining(),
            });
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
    pub fn bytes16(&mut self, max: usize, what: &'static str) -> DecResult<&'a [u8]> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(DecodeError::TooLong { what, len: n, max });
        }
        self.take(n)
    }
    /// A `u32`-length byte string of at most `max` bytes.
    pub fn bytes32(&mut self, max: usize, what: &'static str) -> DecResult<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::TooLong { what, len: n, max });
        }
        self.take(n)
    }
    /// Charges `bytes` of memory against the budget before they are
    /// allocated; refuses once the total would exceed it.
    pub fn charge(&mut self, bytes: usize, what: impl FnOnce() -> Charge) -> DecResult<()> {
        self.charged = self.charged.saturating_add(bytes);
        if self.charged > self.budget {
            return Err(DecodeError::OverBudget {
                what: what(),
                budget: self.budget,
                charged: self.charged,
            });
        }
        Ok(())
    }

    /// A `u32` count of items of at least `min_size` bytes each, checked
    /// against `max` and against the bytes actually left, so that nothing is
    /// ever allocated from an unchecked count.
    pub fn count(&mut self, min_size: usize, max: usize, what: &'static str) -> DecResult<usize> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::TooMany { what, n, max });
        }
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(DecodeError::CountPastEnd {
                what,
                n,
                remain: self.remaining(),
            });
        }
        Ok(n)
    }
    pub fn finish(&self) -> DecResult<()> {
        if self.remaining() != 0 {
            return Err(DecodeError::TrailingBytes(self.remaining()));
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
            .ok_or_else(|| DecodeError::RecipeName(name.to_vec()))?
            .to_string();
        if last.as_ref().is_some_and(|l| *l >= name) {
            return Err(DecodeError::RecipeOrder(name));
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
            kind => return Err(DecodeError::RecipeKind { name, kind }),
        };
        vars.insert(name.clone(), value);
        last = Some(name);
    }
    Ok(Recipe { vars })
}

fn check_absolute(bytes: &[u8], what: &'static str) -> DecResult<()> {
    if bytes.first() != Some(&b'/') {
        return Err(DecodeError::NotAbsolute {
            what,
            bytes: bytes.to_vec(),
        });
    }
    if bytes.contains(&0) {
        return Err(DecodeError::Nul { what });
    }
    Ok(())
}

fn store_path(store_dir: &[u8], bytes: &[u8], what: &'static str) -> DecResult<StorePath> {
    match StorePath::parse(store_dir, bytes) {
        Some(p) if p.as_bytes() == bytes => Ok(p),
        _ => Err(DecodeError::NotStorePath {
            what,
            bytes: bytes.to_vec(),
            store_dir: store_dir.to_vec(),
        }),
    }
}

pub fn decode_info(d: &mut Dec) -> DecResult<BuildInfo> {
    let root = d.bytes16(MAX_PATH, "the build root")?.to_vec();
    check_absolute(&root, "the build root")?;
    let store_dir = d.bytes16(MAX_PATH, "the store directory")?.to_vec();
    check_absolute(&store_dir, "the store directory")?;
    if store_dir.ends_with(b"/") {
        return Err(DecodeError::StoreDirSlash);
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
            .ok_or_else(|| DecodeError::OutputName(name.to_vec()))?
            .to_string();
        if let Some((last, _)) = outputs.last() {
            if *last >= name {
                return Err(DecodeError::OutputOrder(name));
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
                return Err(DecodeError::DependencyOrder(dep));
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
pub fn decode_manifest(
    d: &mut Dec,
    with_mtime: bool,
    manifest: &'static str,
) -> DecResult<Manifest> {
    let n = d.count(8, MAX_ENTRIES, "entries")?;
    d.charge(n.saturating_mul(ENTRY_COST), || Charge::Entries {
        manifest,
        n,
    })?;
    let mut entries: Vec<Entry> = Vec::with_capacity(n);
    for _ in 0..n {
        let raw = d.bytes16(MAX_PATH, "a path")?;
        d.charge(raw.len(), || Charge::Paths)?;
        let path = RelPath::new(raw).map_err(|error| DecodeError::Path {
            manifest,
            raw: raw.to_vec(),
            error,
        })?;
        let bad = |problem| DecodeError::Entry {
            manifest,
            path: path.clone(),
            problem,
        };
        if let Some(last) = entries.last() {
            if last.path == path {
                return Err(bad(EntryProblem::ListedTwice));
            }
            if last.path > path {
                return Err(bad(EntryProblem::OutOfOrder));
            }
        }
        let kind = d.u8()?;
        let mode = d.u32()?;
        if mode & !PERMISSION_BITS != 0 {
            return Err(bad(EntryProblem::Mode(mode)));
        }
        let mtime = if with_mtime {
            let secs = d.i64()?;
            let nanos = d.u32()?;
            if nanos >= 1_000_000_000 {
                return Err(bad(EntryProblem::Nanoseconds(nanos)));
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
                    return Err(bad(EntryProblem::Size(size)));
                }
                Node::File {
                    size,
                    hash: d.u128()?,
                }
            }
            KIND_SYMLINK => {
                let target = d.bytes16(MAX_PATH, "a symlink target")?;
                if target.is_empty() || target.contains(&0) {
                    return Err(bad(EntryProblem::SymlinkTarget));
                }
                Node::Symlink {
                    target: target.into(),
                    hash: d.u128()?,
                }
            }
            k => return Err(bad(EntryProblem::Kind(k))),
        };
        entries.push(Entry {
            path,
            node,
            mode,
            mtime,
        });
    }
    Manifest::new(entries).map_err(|error| DecodeError::Manifest { manifest, error })
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

/// The trailer's own checksum (`docs/format.md`): over the 16 header bytes
/// and the trailer's first 48, so damage to either is caught.
pub fn trailer_checksum(header: &[u8], fields: &[u8]) -> u128 {
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

/// Writes a container (`docs/format.md`): the header, whatever lies before
/// the section (a pack's blobs), the section, then the trailer that
/// describes it. The one place that lays out a header and a trailer: the
/// pack writer, the state file and the crafted packs of the tests use it.
pub struct ContainerWriter<W: io::Write> {
    w: GuardedWriter<W>,
    header: [u8; HEADER_LEN as usize],
}

impl<W: io::Write> ContainerWriter<W> {
    /// Writes the header.
    pub fn new(mut inner: W, magic: &[u8; 8]) -> io::Result<Self> {
        let header = header_bytes(magic);
        inner.write_all(&header)?;
        Ok(ContainerWriter {
            w: GuardedWriter::new(inner),
            header,
        })
    }

    /// Logical offset of the next byte.
    pub fn pos(&self) -> u64 {
        self.w.pos
    }

    /// Bytes before the section (blobs).
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.w.write_all(data)
    }

    /// Writes the section as stored (`raw_len` bytes once decompressed) and
    /// returns the trailer that describes it, for [`ContainerWriter::finish`].
    pub fn write_section(
        &mut self,
        stored: &[u8],
        raw_len: u64,
        compression: u8,
    ) -> io::Result<Trailer> {
        let trailer = Trailer {
            section_offset: self.pos(),
            section_stored: stored.len() as u64,
            section_raw: raw_len,
            compression,
            section_checksum: xxhash_rust::xxh3::xxh3_128(stored),
        };
        self.w.write_all(stored)?;
        Ok(trailer)
    }

    /// Writes the trailer; returns the inner writer and the file's length.
    pub fn finish(mut self, trailer: &Trailer) -> io::Result<(W, u64)> {
        self.w.write_all(&trailer_bytes(&self.header, trailer))?;
        let len = self.w.file_len();
        Ok((self.w.inner, len))
    }
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
    let corrupt = |op, detail| CheckpointError::Corrupt {
        role,
        path: path.to_owned(),
        op,
        detail: Box::new(detail),
    };
    let unsupported = |op, detail| CheckpointError::Unsupported {
        role,
        path: path.to_owned(),
        op,
        detail: Box::new(detail),
    };
    let unsafe_ = |op, detail| CheckpointError::Unsafe {
        role,
        path: path.to_owned(),
        op,
        detail: Box::new(detail),
    };
    let reading = |op| Reading { role, op, path };

    // O_NONBLOCK: a fifo (or device) in place of the file must be refused
    // below as "not a regular file", not block the open forever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits())
        .open(path)
        .io_context(|| reading(Op::Open))?;
    let meta = file.metadata().io_context(|| reading(Op::Stat))?;
    if !meta.is_file() {
        return Err(unsupported(Op::Open, DecodeError::NotRegularFile));
    }
    let len = meta.len();

    // Header: a wrong magic means "not ours" even when the file is short; a
    // short file with a matching prefix is a truncated one.
    let mut header = [0u8; HEADER_LEN as usize];
    let have = len.min(HEADER_LEN) as usize;
    file.read_exact_at(&mut header[..have], 0)
        .io_context(|| reading(Op::ReadHeader))?;
    let magic_have = have.min(8);
    if header[..magic_have] != magic[..magic_have] {
        return Err(unsupported(Op::ReadHeader, DecodeError::WrongMagic(role)));
    }
    if len < HEADER_LEN {
        return Err(corrupt(Op::ReadHeader, DecodeError::ShorterThanHeader(len)));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(unsupported(Op::ReadHeader, DecodeError::Version(version)));
    }
    let flags = u32::from_le_bytes(header[12..16].try_into().unwrap());
    if flags != 0 {
        return Err(unsupported(Op::ReadHeader, DecodeError::Flags(flags)));
    }

    // From here on, offsets and lengths are logical (guard bytes removed).
    let file_len = len;
    let len = match logical_len(file_len) {
        Some(l) if l >= HEADER_LEN + TRAILER_LEN => l,
        _ => {
            return Err(corrupt(
                Op::ReadHeader,
                DecodeError::ImpossibleLength(file_len),
            ))
        }
    };
    // A guard byte that is not zero is damage, like a checksum mismatch
    // (`Reading` sees the `DecodeError` in the `io::Error`).
    let tb = read_logical(&file, len - TRAILER_LEN, TRAILER_LEN as usize)
        .io_context(|| reading(Op::ReadTrailer))?;
    let stored_sum = u128::from_le_bytes(tb[48..64].try_into().unwrap());
    if trailer_checksum(&header, &tb[..48]) != stored_sum {
        return Err(corrupt(Op::ReadTrailer, DecodeError::TrailerChecksum));
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
        return Err(unsupported(Op::ReadTrailer, DecodeError::TrailerReserved));
    }
    if trailer.compression != COMPRESSION_RAW && trailer.compression != COMPRESSION_ZSTD {
        return Err(unsupported(
            Op::ReadTrailer,
            DecodeError::SectionCompression(trailer.compression),
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
            Op::ReadTrailer,
            DecodeError::SectionOutside {
                offset: trailer.section_offset,
                stored: trailer.section_stored,
                len,
            },
        ));
    }
    if trailer.section_raw > MAX_SECTION_RAW {
        return Err(unsafe_(
            Op::ReadTrailer,
            DecodeError::SectionTooLarge(trailer.section_raw),
        ));
    }
    if trailer.section_raw > budget as u64 {
        return Err(unsafe_(
            Op::ReadTrailer,
            DecodeError::SectionOverBudget {
                declared: trailer.section_raw,
                budget,
            },
        ));
    }
    if trailer.compression == COMPRESSION_RAW && trailer.section_raw != trailer.section_stored {
        return Err(unsafe_(Op::ReadTrailer, DecodeError::RawSectionSize));
    }

    // The stored length is within the file: allocating it is bounded by
    // bytes actually present.
    let stored = read_logical(
        &file,
        trailer.section_offset,
        trailer.section_stored as usize,
    )
    .io_context(|| reading(Op::ReadSection))?;
    if xxhash_rust::xxh3::xxh3_128(&stored) != trailer.section_checksum {
        return Err(corrupt(Op::ReadSection, DecodeError::SectionChecksum));
    }
    let section = if trailer.compression == COMPRESSION_RAW {
        stored
    } else {
        bounded_decompress(&stored, trailer.section_raw)
            .map_err(|d| unsafe_(Op::DecompressSection, d))?
    };
    Ok(Container {
        file,
        trailer,
        section,
    })
}

/// Decompresses `stored` (zstd frames) into exactly `raw_len` bytes, never
/// producing more than `raw_len + 1` bytes whatever the frames claim.
pub fn bounded_decompress(stored: &[u8], raw_len: u64) -> DecResult<Vec<u8>> {
    let mut dec = zstd::stream::read::Decoder::with_buffer(stored).map_err(DecodeError::Zstd)?;
    let mut out = Vec::with_capacity(raw_len.min(16 << 20) as usize);
    (&mut dec)
        .take(raw_len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(DecodeError::InvalidZstd)?;
    if out.len() as u64 > raw_len {
        return Err(DecodeError::Bomb(raw_len));
    }
    if (out.len() as u64) < raw_len {
        return Err(DecodeError::SectionShort {
            got: out.len() as u64,
            declared: raw_len,
        });
    }
    Ok(out)
}
