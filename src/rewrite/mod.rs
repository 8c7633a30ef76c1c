//! Rewriting a build's own store hashes (and fragments of them) and root
//! inside file contents, and hashing contents modulo them.
//!
//! A [`Rewriter`] is either the identity, a *masking* rewriter (every own
//! output hash character becomes `e`, which is not in Nix base-32, and the
//! root becomes `/@@@…`, for content hashing), or a *relocating* one (old
//! output hash → new output hash of the same output name, old root → new
//! root). Every rewrite keeps the length, so files can be rewritten in place
//! and binaries keep their layout.
//!
//! # Fragments: what gcc really emits
//!
//! A path such as `/nix/store/<hash>-hello-2.10/lib` does not always reach an
//! object file in one piece. Compiling, with gcc 12 on x86-64 at `-O1`,
//! `-O2`, `-O3` and `-O2 -march=x86-64-v3`, functions that `strcpy`/`memcpy`
//! such a string into a buffer or initialise a struct's `char[]` members with
//! it (with 0 to 15 bytes of prefix before the path, to try every alignment),
//! and comparing the objects built with two random hashes, showed:
//!
//! * whole hashes, in `.rodata` strings and in `.rodata.cst16` vector
//!   constants that happened to be laid out in order;
//! * `movabs $imm64` immediates, i.e. **8-byte pieces** cut at any offset of
//!   the string and separated by opcode bytes (`48 b8`, `49 ba`, `41 56`…):
//!   pure middle runs such as `k4cpzfmr`; heads such as `re/0c9vy` (the last
//!   `8 - k` bytes of `/nix/store/` then the first `k` hash characters,
//!   k = 1..7); tails such as `nvr-hell` (the last `k` hash characters, then
//!   `-` and the first `7 - k` characters of the name);
//! * 16-byte vector constants standing alone, e.g. `r-hello-2.10/lib`.
//!
//! No piece shorter than 8 bytes carried a hash character (`movl $imm32`
//! only stores the last bytes of a string, which are past the hash and the
//! name). So the unit is an **8-byte window** of the output's path
//! `S = <store_dir>/<hash>-<name>`:
//!
//! * **Patterns**: every 8-byte window of `S` that holds at least one hash
//!   character: 7 head windows (`e/0c9vyk`, `/0c9vyk4`, … `/store/0`),
//!   25 runs of 8 hash characters, and 7 tail windows (`nvr-hell` …
//!   `r-hello-`). This covers (a) full hashes, (b) tails followed by
//!   `-<name>` (only as much of the name as fits in 8 bytes, since pieces cut
//!   the name), (c) heads after (a suffix of) `<store_dir>/`, and (d) runs of
//!   N = 8 hash characters anywhere: 8 because that is the smallest piece
//!   that holds hash characters without any context, and the chance that 8
//!   given base-32 characters occur by accident is 25/32^8 ≈ 2·10⁻¹¹ per
//!   position of base-32 text (another store hash sharing 8 consecutive
//!   characters with ours at the same place is as unlikely). The 7 head and
//!   7 tail windows need the store dir or name bytes gcc left in the piece.
//! * **Extension**: a window match is extended forward as long as the text
//!   keeps following `S` inside the hash, and every hash character so covered
//!   is rewritten. Searching resumes right after them. A region that follows
//!   `S` for 8 or more bytes and holds a hash character is therefore always
//!   found, whatever its length and alignment (then narrowed to piece
//!   boundaries, below).
//! * **Other paths** (c): a short head (`k` < 8 hash characters after
//!   extension) followed by `32 - k` more base-32 characters is the start of
//!   a *different* store path that shares a prefix with ours (e.g.
//!   `/nix/store/0x…-glibc` when our hash is `0c…`) and is left alone. The
//!   same holds for a tail window preceded by `32 - k` base-32 characters
//!   (e.g. `…r-hello-2.9` of another `hello`). A whole hash is required, not
//!   just one more base-32 byte, because gcc puts genuine pieces next to
//!   unrelated bytes that often are base-32: in `.rodata` the 16-byte
//!   constant `0-hello-2.10/lib` directly followed `-hello-2.10/sha`, and
//!   opcodes such as `0x66` (`f`) follow `movabs` immediates. A *bare piece*
//!   of another path (`/store/0` cut from a dependency's `movabs`) cannot be
//!   told from ours and is rewritten: one chance in 32^k for a k-character
//!   head, which only dependencies compiled into code as immediates risk.
//! * **Piece boundaries**: a region that starts or ends *inside* the hash
//!   is a piece, and gcc's pieces start and end at 16-byte boundaries of
//!   the content (vector constants: `.rodata.cst16` is 16-aligned in objects
//!   and binaries), or are exactly the 8 bytes after a `movabs` opcode
//!   (`0xb8..=0xbf`). A boundary anywhere else comes from a neighbouring
//!   byte that merely equals the next hash character, which happened in
//!   in about 1 of 30 pairs of test objects: `.rodata` had `/share/loc` right before the
//!   constant `c-hello-2.10/lib` of a hash ending in `c`; `/sha` before
//!   `a0-hello…` for a hash ending in `a0`; and opcodes like `0x66` (`f`)
//!   follow immediates. Such a region is narrowed to the nearest piece
//!   boundary (start and end of the content count as boundaries). Without
//!   this, relocation corrupts that neighbour and the masked hashes of two
//!   builds differ.
//! * **Several outputs**: windows equal for two outputs (`out` and `dev`
//!   hashes sharing a first character, `hello-2.10` being a prefix of
//!   `hello-2.10-dev`) are resolved by the most hash characters covered,
//!   then the longest agreement with the path, then reaching the path's
//!   end; a bare 8-byte piece that fits both (`r-hello-`) is genuinely
//!   ambiguous and goes to `out`, then the first output by name.
//!
//! The root is rewritten where the whole root occurs and is not followed by
//! a name character (so `/build` does not match `/builder`). Root fragments
//! are not looked for.
//!
//! Known limits: content that is not gcc output and holds a bare run or
//! tail of our hash (without the store dir before it) at an unaligned
//! offset is not rewritten; a bare piece of a dependency's path that
//! coincides with a piece of ours (1 in 32^k for k shared characters) is.
//!
//! All windows and the root are searched in one pass: the packed (Teddy,
//! SIMD) searcher of `aho-corasick` for up to `MAX_PACKED` (100) patterns (two
//! outputs), else its DFA. Content without a match costs only that scan
//! and the hash, which is then one-shot xxh3-128 of the original bytes.
//!
//! Checks only ever look at original bytes, at most 32 bytes before a match
//! and `Inner::lookahead` bytes from its start, which is what lets the
//! streaming functions give exactly the results of the whole-buffer ones.

pub mod store_path;

use crate::build_info::BuildInfo;
use crate::rewrite::store_path::{is_base32, StorePath, HASH_LEN};
use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// What an own output hash character becomes when masking: `e` is not in
/// Nix base-32, so no real hash can look like the mask.
pub const HASH_MASK: u8 = b'e';
/// What the characters of the root after its leading `/` become when
/// masking.
pub const ROOT_MASK: u8 = b'@';

/// Bytes of a window: the smallest gcc piece that carries hash characters.
const WINDOW: usize = 8;
/// A head/tail match with fewer hash characters than this is checked
/// against being part of a different store path.
const SHORT: usize = 8;
/// Bytes looked at before a match (the "different path" check of tails).
const LOOKBEHIND: usize = HASH_LEN;
/// Most patterns for the packed (Teddy) searcher: two outputs and a root.
const MAX_PACKED: usize = 100;
/// Read size of the streaming functions.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelocationError {
    #[error("store directory changed from {old} to {new}")]
    StoreDir { old: String, new: String },
    #[error("build root changed length, from {old} to {new}")]
    RootLength { old: String, new: String },
    #[error("output {output} changed name, from {old} to {new}")]
    OutputName {
        output: String,
        old: String,
        new: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Rewriter {
    inner: Option<Arc<Inner>>,
}

/// One output to rewrite: its path `S` and what its hash becomes.
#[derive(Debug)]
struct Target {
    /// `<store_dir>/<hash>-<name>`.
    path: Vec<u8>,
    /// Offset of the hash in `path`.
    hash_at: usize,
    /// Replacement of the hash, character by character.
    to: [u8; HASH_LEN],
}

/// A window pattern stands for these (target, offset of window in `path`).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    target: usize,
    win: usize,
}

#[derive(Debug)]
struct Inner {
    ac: AhoCorasick,
    packed: Option<aho_corasick::packed::Searcher>,
    targets: Vec<Target>,
    /// Per pattern id; empty for the root pattern.
    candidates: Vec<Vec<Candidate>>,
    /// The root's pattern id and replacement.
    root: Option<(usize, Vec<u8>)>,
    /// Bytes from a match's start that checks may look at.
    lookahead: usize,
}

/// A region to replace, and where to search next.
struct Edit<'a> {
    start: usize,
    end: usize,
    with: &'a [u8],
}

impl Rewriter {
    /// The identity: hashes are plain xxh3-128.
    pub fn identity() -> Rewriter {
        Rewriter { inner: None }
    }

    /// Masks the build's own output hashes and root, for content hashing.
    pub fn masking(info: &BuildInfo) -> Rewriter {
        let targets = out_first(&info.outputs)
            .map(|(_, p)| Target::new(p, [HASH_MASK; HASH_LEN]))
            .collect();
        let root = (info.root.len() > 1).then(|| {
            let mut to = vec![ROOT_MASK; info.root.len()];
            to[0] = b'/';
            (info.root.clone(), to)
        });
        Rewriter::build(targets, root)
    }

    /// Moves contents made by the build `old` to the build `new`: each output
    /// present in both gets its hash replaced, and the root too if it moved.
    pub fn relocating(old: &BuildInfo, new: &BuildInfo) -> Result<Rewriter, RelocationError> {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if old.store_dir != new.store_dir {
            return Err(RelocationError::StoreDir {
                old: lossy(&old.store_dir),
                new: lossy(&new.store_dir),
            });
        }
        let mut targets = Vec::new();
        for (name, old_path) in out_first(&old.outputs) {
            let Some(new_path) = new.output(name) else {
                continue;
            };
            if old_path.store_dir() != new_path.store_dir() {
                return Err(RelocationError::StoreDir {
                    old: lossy(old_path.store_dir()),
                    new: lossy(new_path.store_dir()),
                });
            }
            if old_path.name() != new_path.name() {
                return Err(RelocationError::OutputName {
                    output: name.clone(),
                    old: old_path.to_string(),
                    new: new_path.to_string(),
                });
            }
            if old_path.hash() != new_path.hash() {
                let mut to = [0; HASH_LEN];
                to.copy_from_slice(new_path.hash());
                targets.push(Target::new(old_path, to));
            }
        }
        let root = if old.root == new.root {
            None
        } else if old.root.len() != new.root.len() {
            return Err(RelocationError::RootLength {
                old: lossy(&old.root),
                new: lossy(&new.root),
            });
        } else {
            Some((old.root.clone(), new.root.clone()))
        };
        Ok(Rewriter::build(targets, root.filter(|(r, _)| r.len() > 1)))
    }

    fn build(targets: Vec<Target>, root: Option<(Vec<u8>, Vec<u8>)>) -> Rewriter {
        if targets.is_empty() && root.is_none() {
            return Rewriter::identity();
        }
        let mut ids: HashMap<&[u8], usize> = HashMap::new();
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut candidates: Vec<Vec<Candidate>> = Vec::new();
        for (t, target) in targets.iter().enumerate() {
            let first = target.hash_at.saturating_sub(WINDOW - 1);
            let last = (target.hash_at + HASH_LEN - 1).min(target.path.len() - WINDOW);
            for win in first..=last {
                let bytes = &target.path[win..win + WINDOW];
                let id = *ids.entry(bytes).or_insert_with(|| {
                    patterns.push(bytes);
                    candidates.push(Vec::new());
                    patterns.len() - 1
                });
                candidates[id].push(Candidate { target: t, win });
            }
        }
        // Checks follow a path to its end (which covers the bytes looked at
        // after a head).
        let mut lookahead = targets.iter().map(|t| t.path.len()).max().unwrap_or(0);
        let root_id = root.as_ref().map(|(from, _)| {
            lookahead = lookahead.max(from.len() + 1);
            patterns.push(from);
            candidates.push(Vec::new());
            patterns.len() - 1
        });
        // Teddy (SIMD, ~10x the DFA's speed on 2 outputs' 79 patterns) when
        // the patterns are few enough, else a DFA; both report the same
        // leftmost-longest matches.
        let packed = (patterns.len() <= MAX_PACKED)
            .then(|| {
                aho_corasick::packed::Config::new()
                    .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                    .heuristic_pattern_limits(false)
                    .builder()
                    .extend(&patterns)
                    .build()
            })
            .flatten();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&patterns)
            .expect("a few short patterns always build");
        drop((ids, patterns));
        let root = root.zip(root_id).map(|((_, to), id)| (id, to));
        Rewriter {
            inner: Some(Arc::new(Inner {
                ac,
                packed,
                targets,
                candidates,
                root,
                lookahead,
            })),
        }
    }

    pub fn is_identity(&self) -> bool {
        self.inner.is_none()
    }

    /// xxh3-128 of `buf` as rewritten (without copying it).
    pub fn hash(&self, buf: &[u8]) -> u128 {
        let Some(inner) = &self.inner else {
            return xxhash_rust::xxh3::xxh3_128(buf);
        };
        let members = ArchiveMembers::of(buf);
        let origins = members.origins();
        let Some(first) = inner.next_edit(buf, 0, origins, 0, buf.len()) else {
            return xxhash_rust::xxh3::xxh3_128(buf);
        };
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut done = 0;
        let mut edit = Some(first);
        while let Some(e) = edit {
            hasher.update(&buf[done..e.start]);
            hasher.update(e.with);
            done = e.end;
            edit = inner.next_edit(buf, 0, origins, e.end, buf.len());
        }
        hasher.update(&buf[done..]);
        hasher.digest128()
    }

    /// Streaming [`Rewriter::hash`]: `(hash, bytes read)` in bounded memory.
    pub fn hash_reader(&self, reader: impl Read) -> io::Result<(u128, u64)> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let total = self.stream(reader, |bytes| {
            hasher.update(bytes);
            Ok(())
        })?;
        Ok((hasher.digest128(), total))
    }

    /// Rewrites `buf` in place; returns how many ranges were replaced.
    pub fn rewrite_in_place(&self, buf: &mut [u8]) -> usize {
        let Some(inner) = &self.inner else {
            return 0;
        };
        // Checks must see original bytes: an edit is applied only once the
        // next one (which may look 2 bytes behind it) has been found.
        let members = ArchiveMembers::of(buf);
        let origins = members.origins();
        let mut count = 0;
        let mut pending: Option<(usize, usize, &[u8])> = None;
        let mut from = 0;
        loop {
            let next = inner
                .next_edit(buf, 0, origins, from, buf.len())
                .map(|e| (e.start, e.end, e.with));
            if let Some((start, end, with)) = pending.take() {
                buf[start..end].copy_from_slice(with);
                count += 1;
            }
            match next {
                Some(e) => {
                    from = e.1;
                    pending = Some(e);
                }
                None => return count,
            }
        }
    }

    /// Streaming copy that rewrites on the way, in bounded memory; returns
    /// the number of bytes copied.
    pub fn copy_rewriting(&self, reader: impl Read, mut writer: impl Write) -> io::Result<u64> {
        self.stream(reader, |bytes| writer.write_all(bytes))
    }

    /// Feeds the rewritten content of `reader` to `emit`, in order.
    fn stream(
        &self,
        reader: impl Read,
        emit: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        self.stream_chunked(reader, CHUNK, emit)
    }

    fn stream_chunked(
        &self,
        mut reader: impl Read,
        chunk: usize,
        mut emit: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let Some(inner) = &self.inner else {
            let mut buf = vec![0u8; chunk];
            let mut total = 0u64;
            loop {
                match read_some(&mut reader, &mut buf)? {
                    0 => return Ok(total),
                    n => {
                        emit(&buf[..n])?;
                        total += n as u64;
                    }
                }
            }
        };
        let keep = inner.lookahead;
        let mut buf = vec![0u8; LOOKBEHIND + chunk.max(1) + keep];
        // buf[..start]: already emitted (lookbehind); buf[start..filled]: not.
        let (mut start, mut filled, mut total) = (0usize, 0usize, 0u64);
        // Offset of buf[0] in the content.
        let mut base = 0u64;
        let mut members = ArchiveMembers::default();
        loop {
            let mut eof = false;
            while filled < buf.len() {
                match read_some(&mut reader, &mut buf[filled..])? {
                    0 => {
                        eof = true;
                        break;
                    }
                    n => {
                        members.observe(base + filled as u64, &buf[filled..filled + n]);
                        filled += n;
                        total += n as u64;
                    }
                }
            }
            let hay = &buf[..filled];
            let limit = if eof { filled } else { filled - keep };
            let mut done = start;
            let mut from = start;
            while let Some(e) = inner.next_edit(hay, base, members.origins(), from, limit) {
                emit(&hay[done..e.start])?;
                emit(e.with)?;
                done = e.end;
                from = e.end;
            }
            let end = from.max(limit);
            emit(&hay[done..end])?;
            if eof {
                return Ok(total);
            }
            let drop = end.saturating_sub(LOOKBEHIND);
            buf.copy_within(drop..filled, 0);
            base += drop as u64;
            filled -= drop;
            start = end - drop;
        }
    }
}

/// Outputs with `out` first: a bare piece that fits several outputs (such as
/// `r-hello-` for `hello-2.10` and `hello-2.10-dev` whose hashes end in `r`)
/// goes to the first, and `out` is the one programs embed most.
fn out_first(outputs: &[(String, StorePath)]) -> impl Iterator<Item = &(String, StorePath)> {
    let out = outputs.iter().filter(|(n, _)| n == "out");
    out.chain(outputs.iter().filter(|(n, _)| n != "out"))
}

fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

impl Target {
    fn new(path: &StorePath, to: [u8; HASH_LEN]) -> Target {
        let bytes = path.as_bytes().to_vec();
        Target {
            hash_at: bytes.len() - path.name().len() - 1 - HASH_LEN,
            path: bytes,
            to,
        }
    }
}

impl Inner {
    /// The first edit whose match starts in `from..limit`. Looks at
    /// `hay[from - LOOKBEHIND..]` up to `lookahead` bytes past `limit`.
    ///
    /// `base` is the offset of `hay[0]` in the whole content: piece
    /// boundaries are judged by alignment, relative to the start of the
    /// object file holding them (`origins`: archive members).
    fn next_edit<'a>(
        &'a self,
        hay: &[u8],
        base: u64,
        origins: &[u64],
        mut from: usize,
        limit: usize,
    ) -> Option<Edit<'a>> {
        while from < limit {
            let span = aho_corasick::Span::from(from..hay.len());
            let m = match &self.packed {
                Some(packed) => packed.find_in(hay, span),
                None => self.ac.find(Input::new(hay).span(span)),
            }?;
            let p = m.start();
            if p >= limit {
                return None;
            }
            let id = m.pattern().as_usize();
            if let Some((root_id, to)) = &self.root {
                if id == *root_id {
                    if hay.get(m.end()).is_some_and(|&b| is_name_char(b)) {
                        from = p + 1;
                        continue;
                    }
                    return Some(Edit {
                        start: p,
                        end: m.end(),
                        with: to,
                    });
                }
            }
            // The candidate covering most hash characters, then following
            // its path furthest, then following it to its end; the first on
            // ties.
            let mut best: Option<(Candidate, Extent)> = None;
            for c in &self.candidates[id] {
                let Some(x) = self.extend(hay, p, *c) else {
                    continue;
                };
                if best.is_none_or(|(_, b)| x.score() > b.score()) {
                    best = Some((*c, x));
                }
            }
            match best {
                Some((c, Extent { lo, hi, .. })) => {
                    let target = &self.targets[c.target];
                    let start = p + target.hash_at + lo - c.win;
                    let end = start + (hi - lo);
                    let (s, e) = trim(hay, base, origins, p, (start, end), (lo > 0, hi < HASH_LEN));
                    if s < e {
                        return Some(Edit {
                            start: s,
                            end: e,
                            with: &target.to[lo + (s - start)..hi - (end - e)],
                        });
                    }
                    from = p + 1;
                }
                None => from = p + 1,
            }
        }
        None
    }

    /// For a window of candidate `c` matched at `p`: how far the text
    /// follows the candidate's path, or `None` if it is another store path.
    fn extend(&self, hay: &[u8], p: usize, c: Candidate) -> Option<Extent> {
        let t = &self.targets[c.target];
        let hash_end = t.hash_at + HASH_LEN;
        let mut i = c.win + WINDOW; // index in t.path of hay[p + i - win]
        while i < t.path.len() && hay.get(p + i - c.win) == Some(&t.path[i]) {
            i += 1;
        }
        let lo = c.win.max(t.hash_at) - t.hash_at;
        let hi = i.min(hash_end) - t.hash_at;
        // Another store path: the hash characters around ours make a
        // whole hash. (A mere base-32 byte next to a genuine piece is common:
        // `/sha` before `0-hello-2.10/lib` in `.rodata`.)
        let base32 = |from: usize, n: usize| {
            hay.get(from..from + n)
                .is_some_and(|b| b.iter().all(|&b| is_base32(b)))
        };
        if c.win < t.hash_at && hi < SHORT && base32(p + i - c.win, HASH_LEN - hi) {
            return None;
        }
        let k = hash_end.saturating_sub(c.win);
        if c.win > t.hash_at
            && k < SHORT
            && p >= HASH_LEN - k
            && base32(p - (HASH_LEN - k), HASH_LEN - k)
        {
            return None;
        }
        Some(Extent {
            lo,
            hi,
            agreed: i - c.win,
            complete: i == t.path.len(),
        })
    }
}

/// Where the members of an `ar` archive (a static library) start. gcc's
/// pieces are aligned within their object file, and `ar` puts a member at
/// any even offset, so alignment is judged from the member's start. Fed the
/// content in order, in pieces of any size.
#[derive(Debug, Default)]
struct ArchiveMembers {
    /// Content offset of each member's data, ascending.
    origins: Vec<u64>,
    state: ArchiveState,
}

#[derive(Debug)]
enum ArchiveState {
    /// Matching the global header; `seen` bytes matched so far.
    Magic { seen: usize },
    /// Collecting a 60-byte member header that starts at `at`.
    Header {
        at: u64,
        bytes: [u8; AR_HEADER],
        filled: usize,
    },
    /// Inside a member; the next header starts at `next`.
    Data { next: u64 },
    /// Not an archive (or a malformed one): no origins beyond 0.
    Done,
}

impl Default for ArchiveState {
    fn default() -> Self {
        ArchiveState::Magic { seen: 0 }
    }
}

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER: usize = 60;

impl ArchiveMembers {
    fn of(content: &[u8]) -> ArchiveMembers {
        let mut members = ArchiveMembers::default();
        members.observe(0, content);
        members
    }

    fn origins(&self) -> &[u64] {
        &self.origins
    }

    /// `bytes` are the content at `offset`, right after everything observed before.
    fn observe(&mut self, offset: u64, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let pos = offset + i as u64;
            match &mut self.state {
                ArchiveState::Done => return,
                ArchiveState::Magic { seen } => {
                    if bytes[i] != AR_MAGIC[*seen] {
                        self.state = ArchiveState::Done;
                        return;
                    }
                    *seen += 1;
                    i += 1;
                    if *seen == AR_MAGIC.len() {
                        self.state = ArchiveState::Header {
                            at: pos + 1,
                            bytes: [0; AR_HEADER],
                            filled: 0,
                        };
                    }
                }
                ArchiveState::Header {
                    at,
                    bytes: header,
                    filled,
                } => {
                    let n = (AR_HEADER - *filled).min(bytes.len() - i);
                    header[*filled..*filled + n].copy_from_slice(&bytes[i..i + n]);
                    *filled += n;
                    i += n;
                    if *filled == AR_HEADER {
                        let data = *at + AR_HEADER as u64;
                        let size = std::str::from_utf8(&header[48..58])
                            .ok()
                            .and_then(|s| s.trim().parse::<u64>().ok());
                        self.state = match (size, &header[58..60]) {
                            (Some(size), b"`\n") => {
                                self.origins.push(data);
                                ArchiveState::Data {
                                    next: data + size + (size & 1),
                                }
                            }
                            _ => ArchiveState::Done,
                        };
                    }
                }
                ArchiveState::Data { next } => {
                    let skip = (*next - pos).min((bytes.len() - i) as u64) as usize;
                    i += skip;
                    if offset + i as u64 == *next {
                        self.state = ArchiveState::Header {
                            at: *next,
                            bytes: [0; AR_HEADER],
                            filled: 0,
                        };
                    }
                }
            }
        }
    }
}

/// Whether `b` can be the `movabs $imm64, %reg` opcode (`b8+r`), which
/// precedes an 8-byte piece.
fn is_movabs(b: u8) -> bool {
    (0xb8..=0xbf).contains(&b)
}

/// Narrows the region `start..end` to the piece gcc really stored, when it
/// starts (`cut_start`) or ends (`cut_end`) inside the hash: such a boundary
/// is a piece's, so it lies on a 16-byte boundary of the content (vector
/// constants), right after a `movabs` opcode or 8 bytes after it (`movabs`
/// immediates), or at the content's start or end. Anything else means the
/// neighbouring byte merely happens to equal the next hash character (in
/// `.rodata`, `/share/loc` + `c-hello-2.10/lib` for a hash ending in `c`),
/// and the region is narrowed to the nearest piece boundary.
fn trim(
    hay: &[u8],
    base: u64,
    origins: &[u64],
    window: usize,
    region: (usize, usize),
    cut: (bool, bool),
) -> (usize, usize) {
    let origin = |pos: u64| match origins.partition_point(|&o| o <= pos) {
        0 => 0,
        n => origins[n - 1],
    };
    let aligned = |i: usize| {
        let pos = base + i as u64;
        (pos - origin(pos)).is_multiple_of(16)
    };
    let after_movabs = |i: usize| i.checked_sub(1).is_some_and(|j| is_movabs(hay[j]));
    let piece_start = |i: usize| base + i as u64 == 0 || aligned(i) || after_movabs(i);
    // A movabs piece is exactly the matched window.
    let piece_end =
        |i: usize| i == hay.len() || aligned(i) || (i == window + WINDOW && after_movabs(window));
    let (mut s, mut e) = region;
    if cut.0 {
        while s < e && !piece_start(s) {
            s += 1;
        }
    }
    if cut.1 {
        while e > s && !piece_end(e) {
            e -= 1;
        }
    }
    (s, e)
}

/// How a window match extends along its candidate's path.
#[derive(Debug, Clone, Copy)]
struct Extent {
    /// Hash indices covered.
    lo: usize,
    hi: usize,
    /// Bytes of the path followed from the window's start.
    agreed: usize,
    /// Whether the text follows the path to its end.
    complete: bool,
}

impl Extent {
    fn score(&self) -> (usize, usize, bool) {
        (self.hi - self.lo, self.agreed, self.complete)
    }
}

/// Characters Nix allows in a store path name (and so in a path component
/// that would continue the root).
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+-._?=".contains(&b)
}

#[cfg(test)]
impl Rewriter {
    /// [`Rewriter::hash_reader`] with a small internal chunk, to exercise
    /// chunk boundaries with small inputs.
    fn hash_reader_chunked(&self, reader: impl Read, chunk: usize) -> io::Result<(u128, u64)> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let total = self.stream_chunked(reader, chunk, |bytes| {
            hasher.update(bytes);
            Ok(())
        })?;
        Ok((hasher.digest128(), total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STORE: &str = "/nix/store";
    // Old and new hashes of `out` and `dev`. OUT1 and DEV1 share their first
    // and last characters, as do OUT2 and DEV2 (but not with the old ones).
    const OUT1: &str = "0c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";
    const OUT2: &str = "m7a2pq8zs3dh6wj1xk5nbgf9c4lv0iyr";
    const DEV1: &str = "0s3jw8d2g5k7h1bn4qz9mx6fpcal1rkk";
    const DEV2: &str = "mz4x1c8q2vb6n9w3k5jhd7g0fspl1ary";
    /// A dependency sharing OUT1's first three characters.
    const DEP: &str = "0c9axk5ldqzh3m2n7pw1s8jfb4gy6rvc";

    fn sp(hash: &str, name: &str) -> StorePath {
        let text = format!("{STORE}/{hash}-{name}");
        StorePath::parse(STORE.as_bytes(), text.as_bytes()).unwrap()
    }

    fn info(out: &str, dev: Option<&str>, root: &str) -> BuildInfo {
        let mut outputs = Vec::new();
        if let Some(dev) = dev {
            outputs.push(("dev".to_string(), sp(dev, "hello-2.10-dev")));
        }
        outputs.push(("out".to_string(), sp(out, "hello-2.10")));
        BuildInfo {
            root: root.as_bytes().to_vec(),
            store_dir: STORE.as_bytes().to_vec(),
            outputs,
            dependencies: vec![],
            recipe: Default::default(),
        }
    }

    fn old() -> BuildInfo {
        info(OUT1, Some(DEV1), "/build")
    }

    fn new() -> BuildInfo {
        info(OUT2, Some(DEV2), "/build")
    }

    /// DEV1 changed to end like OUT1.
    fn dev1r() -> String {
        format!("{}r", &DEV1[..31])
    }

    fn relocator() -> Rewriter {
        Rewriter::relocating(&old(), &new()).unwrap()
    }

    fn relocated(text: &[u8]) -> Vec<u8> {
        let mut buf = text.to_vec();
        relocator().rewrite_in_place(&mut buf);
        buf
    }

    fn masked(r: &Rewriter, text: &[u8]) -> Vec<u8> {
        let mut buf = text.to_vec();
        r.rewrite_in_place(&mut buf);
        buf
    }

    /// `text` behind `prefix` bytes, cut into pieces the way gcc stores a
    /// string: 8-byte `movabs` immediates separated by opcodes, or 16-byte
    /// vector constants at aligned offsets (in reverse order, so that they
    /// do not join up).
    fn pieces(text: &str, prefix: usize, piece: usize) -> Vec<u8> {
        let mut s = "P".repeat(prefix).into_bytes();
        s.extend_from_slice(text.as_bytes());
        s.push(0);
        if piece == 16 {
            return aligned(s.chunks(16).rev());
        }
        let mut obj = b"\x55\x48".to_vec();
        for p in s.chunks(piece) {
            obj.extend_from_slice(&movabs(p));
        }
        obj.push(0xc3);
        obj
    }

    /// `piece` as a `movabs` immediate, followed by a store of it.
    fn movabs(piece: &[u8]) -> Vec<u8> {
        [b"\x49\xbb", piece, b"\x4c\x89\x5f\x08"].concat()
    }

    /// `parts`, each at a 16-byte aligned offset (padded with NULs).
    fn aligned<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(p);
            out.resize(out.len().div_ceil(16) * 16, 0);
        }
        out
    }

    #[test]
    fn relocates_full_hashes() {
        let text = format!(
            "-L{STORE}/{OUT1}-hello-2.10/lib {OUT1}\n{STORE}/{DEV1}-hello-2.10-dev/include"
        );
        let want = format!(
            "-L{STORE}/{OUT2}-hello-2.10/lib {OUT2}\n{STORE}/{DEV2}-hello-2.10-dev/include"
        );
        let mut buf = text.clone().into_bytes();
        assert_eq!(relocator().rewrite_in_place(&mut buf), 3);
        assert_eq!(String::from_utf8(buf).unwrap(), want);
    }

    #[test]
    fn relocates_pieces_at_every_alignment() {
        for piece in [8, 16] {
            for prefix in 0..16 {
                for (h1, h2, name) in [(OUT1, OUT2, "hello-2.10"), (DEV1, DEV2, "hello-2.10-dev")] {
                    let from = pieces(&format!("{STORE}/{h1}-{name}/share/locale"), prefix, piece);
                    let to = pieces(&format!("{STORE}/{h2}-{name}/share/locale"), prefix, piece);
                    assert_eq!(relocated(&from), to, "piece {piece} prefix {prefix} {name}");
                }
            }
        }
    }

    #[test]
    fn each_fragment_kind() {
        let cases: Vec<(Vec<u8>, Vec<u8>)> = [
            // (d) a run of 8 in the middle, 8 at the start, 8 at the end.
            (OUT1[9..17].to_string(), OUT2[9..17].to_string()),
            (OUT1[..8].to_string(), OUT2[..8].to_string()),
            (OUT1[24..].to_string(), OUT2[24..].to_string()),
            // (c) heads after a suffix of the store dir.
            (format!("re/{}", &OUT1[..5]), format!("re/{}", &OUT2[..5])),
            (
                format!("/store/{}", &OUT1[..1]),
                format!("/store/{}", &OUT2[..1]),
            ),
            (format!("/{}", &OUT1[..7]), format!("/{}", &OUT2[..7])),
            // (b) tails followed by (the start of) -name.
            (
                format!("{}-hell", &OUT1[29..]),
                format!("{}-hell", &OUT2[29..]),
            ),
            (
                format!("{}-hello", &OUT1[30..]),
                format!("{}-hello", &OUT2[30..]),
            ),
            (format!("{}-", &OUT1[25..]), format!("{}-", &OUT2[25..])),
            (
                format!("{}-hello-", &DEV1[31..]),
                format!("{}-hello-", &DEV2[31..]),
            ),
        ]
        .into_iter()
        .map(|(a, b)| (movabs(a.as_bytes()), movabs(b.as_bytes())))
        .chain([
            // Unaligned, but at the content's start or end.
            (
                format!("{STORE}/{}", &OUT1[..3]).into_bytes(),
                format!("{STORE}/{}", &OUT2[..3]).into_bytes(),
            ),
            (
                format!("{}-hello-2.10-dev", &DEV1[28..]).into_bytes(),
                format!("{}-hello-2.10-dev", &DEV2[28..]).into_bytes(),
            ),
            // In 16-byte constants.
            (
                aligned([
                    b"/share/locale/x".as_slice(),
                    format!("{}-hello-2.10/lib", &OUT1[31..]).as_bytes(),
                ]),
                aligned([
                    b"/share/locale/x".as_slice(),
                    format!("{}-hello-2.10/lib", &OUT2[31..]).as_bytes(),
                ]),
            ),
        ])
        .collect();
        for (from, want) in cases {
            assert_eq!(
                relocated(&from),
                want,
                "{:?}",
                String::from_utf8_lossy(&from)
            );
        }
    }

    #[test]
    fn coincidental_neighbours_are_not_rewritten() {
        // `/share/loc` then the constant `c-hello-2.10/lib` where the hash
        // ends in `c`: only the aligned constant is ours.
        let text = aligned([
            format!("o-2.10/share/lo{}", &OUT1[31..]).as_bytes(),
            format!("{}-hello-2.10/lib", &OUT1[31..]).as_bytes(),
        ]);
        let want = aligned([
            format!("o-2.10/share/lo{}", &OUT1[31..]).as_bytes(),
            format!("{}-hello-2.10/lib", &OUT2[31..]).as_bytes(),
        ]);
        assert_eq!(relocated(&text), want);
        // A movabs piece followed by an opcode equal to the next character.
        let head = format!("re/{}", &OUT1[..5]);
        let next = OUT1.as_bytes()[5];
        let text = [b"\x49\xbb", head.as_bytes(), &[next, 0x0f, 0x11]].concat();
        let want = [
            b"\x49\xbb",
            format!("re/{}", &OUT2[..5]).as_bytes(),
            &[next, 0x0f, 0x11],
        ]
        .concat();
        assert_eq!(relocated(&text), want);
    }

    #[test]
    fn short_or_contextless_fragments_are_left_alone() {
        for text in [
            format!("\x48\x0b{}\x48", &OUT1[9..16]), // run of 7
            format!("x{}-x", &OUT1[30..]),           // tail without the name
            format!("{}-hello-2.10", &OUT1[28..31]), // not a tail
            format!("/store-{}", &OUT1[..4]),        // not after the store dir
            "x-hello-2.10".to_string(),              // wrong char
        ] {
            if text.starts_with(&OUT2[..1]) {
                continue;
            }
            assert_eq!(relocated(text.as_bytes()), text.as_bytes(), "{text:?}");
        }
    }

    #[test]
    fn other_store_paths_are_left_alone() {
        for text in [
            // Shares OUT1's first three characters.
            format!("{STORE}/{DEP}-glibc-2.38/lib"),
            format!("\x48\x0b{STORE}/{DEP}-glibc\x48"),
            // Shares OUT1's last character and name start: another hello.
            format!("{STORE}/{}-hello-2.9/bin", DEP),
            format!("{STORE}/2{}-hello-2.10", &DEP[1..31]) + &OUT1[31..],
        ] {
            assert_eq!(relocated(text.as_bytes()), text.as_bytes(), "{text:?}");
        }
        // Ends like OUT1, followed by the name: a different path.
        let other = format!("{STORE}/{}r-hello-2.10/lib", &DEP[..31]);
        assert_eq!(relocated(other.as_bytes()), other.as_bytes());
    }

    #[test]
    fn several_outputs_sharing_characters() {
        // OUT1/DEV1 share the first and last character; the longest
        // extension decides.
        let text = format!("{STORE}/{OUT1}-hello-2.10{STORE}/{DEV1}-hello-2.10-dev\x00");
        let want = format!("{STORE}/{OUT2}-hello-2.10{STORE}/{DEV2}-hello-2.10-dev\x00");
        assert_eq!(String::from_utf8(relocated(text.as_bytes())).unwrap(), want);
        let text = aligned([
            format!("{}-hello-2.10-dev", &DEV1[20..]).as_bytes(),
            format!("{}-hello-2.10/", &OUT1[20..]).as_bytes(),
        ]);
        let want = aligned([
            format!("{}-hello-2.10-dev", &DEV2[20..]).as_bytes(),
            format!("{}-hello-2.10/", &OUT2[20..]).as_bytes(),
        ]);
        assert_eq!(relocated(&text), want);
        // Same last character: the name decides.
        let r = Rewriter::relocating(&info(OUT1, Some(&dev1r()), "/build"), &new()).unwrap();
        let tails = aligned([
            b"r-hello-2.10/".as_slice(),
            b"r-hello-2.10-dev",
            format!("{}r-hello-2.10-dev", &DEV1[28..31]).as_bytes(),
            b"r-hello-",
        ]);
        let want = aligned([
            format!("{}-hello-2.10/", &OUT2[31..]).as_bytes(),
            format!("{}-hello-2.10-dev", &DEV2[31..]).as_bytes(),
            format!("{}-hello-2.10-dev", &DEV2[28..]).as_bytes(),
            format!("{}-hello-", &OUT2[31..]).as_bytes(),
        ]);
        assert_eq!(masked(&r, &tails), want);
        // Heads sharing the first character, in movabs pieces.
        let heads = [
            movabs(format!("store/{}", &DEV1[..2]).as_bytes()),
            movabs(format!("store/{}", &OUT1[..2]).as_bytes()),
        ]
        .concat();
        let want = [
            movabs(format!("store/{}", &DEV2[..2]).as_bytes()),
            movabs(format!("store/{}", &OUT2[..2]).as_bytes()),
        ]
        .concat();
        assert_eq!(relocated(&heads), want);
    }

    #[test]
    fn adjacent_and_overlapping_matches() {
        let cases = [
            (format!("{OUT1}{OUT1}"), format!("{OUT2}{OUT2}")),
            (format!("{OUT1}{DEV1}"), format!("{OUT2}{DEV2}")),
            (
                format!("{}{}", &OUT1[..16], &DEV1[16..]),
                format!("{}{}", &OUT2[..16], &DEV2[16..]),
            ),
            // A head piece followed by the next piece: one region.
            (
                format!("re/{}{}", &OUT1[..5], &OUT1[5..13]),
                format!("re/{}{}", &OUT2[..5], &OUT2[5..13]),
            ),
            // Tail then head of the next path.
            (
                format!("{}-hello-2.10{STORE}/{}", &OUT1[30..], &OUT1[..4]),
                format!("{}-hello-2.10{STORE}/{}", &OUT2[30..], &OUT2[..4]),
            ),
        ];
        for (from, want) in cases {
            assert_eq!(relocated(from.as_bytes()), want.as_bytes(), "{from:?}");
        }
    }

    #[test]
    fn matches_at_buffer_start_and_end() {
        for (from, want) in [
            (OUT1.to_string(), OUT2.to_string()),
            (
                format!("{}-hello", &OUT1[30..]),
                format!("{}-hello", &OUT2[30..]),
            ),
            (
                format!("xx/store/{}", &OUT1[..1]),
                format!("xx/store/{}", &OUT2[..1]),
            ),
            (OUT1[..8].to_string(), OUT2[..8].to_string()),
            ("/build/x/build".to_string(), "/build/x/build".to_string()),
        ] {
            assert_eq!(relocated(from.as_bytes()), want.as_bytes(), "{from:?}");
        }
        let r = Rewriter::relocating(&info(OUT1, None, "/tmp/b1"), &info(OUT2, None, "/tmp/b2"))
            .unwrap();
        assert_eq!(masked(&r, b"/tmp/b1/x:/tmp/b1"), b"/tmp/b2/x:/tmp/b2");
    }

    #[test]
    fn root_masking_and_relocation() {
        let m = Rewriter::masking(&info(OUT1, None, "/build"));
        assert_eq!(
            masked(&m, b"-I/build/src /builder /build"),
            b"-I/@@@@@/src /builder /@@@@@"
        );
        let r = Rewriter::relocating(
            &info(OUT1, None, "/tmp/nix-build-1"),
            &info(OUT1, None, "/tmp/nix-build-2"),
        )
        .unwrap();
        assert!(!r.is_identity());
        assert_eq!(
            masked(&r, b"/tmp/nix-build-1/src /tmp/nix-build-10"),
            b"/tmp/nix-build-2/src /tmp/nix-build-10"
        );
        // Same length: relocated even though the names differ.
        let r =
            Rewriter::relocating(&info(OUT1, None, "/build"), &info(OUT1, None, "/tmp/x")).unwrap();
        assert_eq!(masked(&r, b"/build/a"), b"/tmp/x/a");
    }

    #[test]
    fn relocation_errors() {
        assert!(matches!(
            Rewriter::relocating(&info(OUT1, None, "/build"), &info(OUT2, None, "/build2")),
            Err(RelocationError::RootLength { old, new }) if old == "/build" && new == "/build2"
        ));
        let mut other = info(OUT2, None, "/build");
        other.store_dir = b"/gnu/store".to_vec();
        assert!(matches!(
            Rewriter::relocating(&info(OUT1, None, "/build"), &other),
            Err(RelocationError::StoreDir { old, new }) if old == "/nix/store" && new == "/gnu/store"
        ));
        let mut renamed = info(OUT2, None, "/build");
        renamed.outputs[0].1 = sp(OUT2, "hello-2.12");
        assert!(matches!(
            Rewriter::relocating(&info(OUT1, None, "/build"), &renamed),
            Err(RelocationError::OutputName { output, .. }) if output == "out"
        ));
    }

    #[test]
    fn outputs_in_one_build_only_are_ignored() {
        let r = Rewriter::relocating(&old(), &info(OUT2, None, "/build")).unwrap();
        let text = format!("{OUT1} {DEV1}");
        let mut buf = text.into_bytes();
        assert_eq!(r.rewrite_in_place(&mut buf), 1);
        assert_eq!(buf, format!("{OUT2} {DEV1}").into_bytes());
        assert!(Rewriter::relocating(&old(), &old()).unwrap().is_identity());
    }

    #[test]
    fn masking_equates_builds() {
        let config = |out: &str, root: &str| {
            format!("#define LOCALEDIR \"{STORE}/{out}-hello-2.10/share/locale\"\n#define SRCDIR \"{root}/hello\"\n")
        };
        let (a, b) = (config(OUT1, "/build"), config(OUT2, "/tmp/x"));
        let (ma, mb) = (
            Rewriter::masking(&info(OUT1, None, "/build")),
            Rewriter::masking(&info(OUT2, None, "/tmp/x")),
        );
        assert_eq!(ma.hash(a.as_bytes()), mb.hash(b.as_bytes()));
        assert_ne!(ma.hash(a.as_bytes()), ma.hash(b.as_bytes()));
        assert_ne!(
            ma.hash(a.as_bytes()),
            xxhash_rust::xxh3::xxh3_128(a.as_bytes())
        );
        assert_eq!(
            masked(&ma, a.as_bytes()),
            config(&"e".repeat(32), "/@@@@@").into_bytes()
        );
        // A changed character elsewhere still shows.
        assert_ne!(
            ma.hash(a.as_bytes()),
            mb.hash(b.replace("locale", "lokale").as_bytes())
        );
    }

    #[test]
    fn many_outputs_fall_back_to_the_dfa() {
        let names = ["bin", "dev", "doc", "lib", "man", "out"];
        let mk = |seed: u8| {
            let mut i = info(OUT1, None, "/build");
            i.outputs = names
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    let hash: String = (0..32)
                        .map(|k| NIX_BASE32_VEC[(k * 7 + n * 5 + seed as usize) % 32] as char)
                        .collect();
                    (name.to_string(), sp(&hash, &format!("hello-2.10-{name}")))
                })
                .collect();
            i
        };
        let (a, b) = (mk(1), mk(2));
        let r = Rewriter::relocating(&a, &b).unwrap();
        assert!(r.inner.as_ref().unwrap().packed.is_none());
        let text = |i: &BuildInfo| {
            let mut t = Vec::new();
            for (_, p) in &i.outputs {
                t.extend_from_slice(p.as_bytes());
                t.extend_from_slice(&movabs(&p.hash()[3..11]));
            }
            t
        };
        let mut moved = text(&a);
        assert_eq!(r.rewrite_in_place(&mut moved), 12);
        assert_eq!(moved, text(&b));
        assert!(Rewriter::masking(&old()).inner.unwrap().packed.is_some());
    }

    #[test]
    fn identity() {
        let r = Rewriter::identity();
        assert!(r.is_identity() && Rewriter::default().is_identity());
        assert!(Rewriter::masking(&BuildInfo::default()).is_identity());
        let text = format!("{STORE}/{OUT1}-hello-2.10 /build");
        assert_eq!(
            r.hash(text.as_bytes()),
            xxhash_rust::xxh3::xxh3_128(text.as_bytes())
        );
        assert_eq!(masked(&r, text.as_bytes()), text.as_bytes());
        let (h, n) = r.hash_reader(text.as_bytes()).unwrap();
        assert_eq!(
            (h, n),
            (
                xxhash_rust::xxh3::xxh3_128(text.as_bytes()),
                text.len() as u64
            )
        );
    }

    #[test]
    fn no_match_is_plain_xxh3() {
        let m = Rewriter::masking(&old());
        let text: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(m.hash(&text), xxhash_rust::xxh3::xxh3_128(&text));
        assert_eq!(
            m.hash_reader(&text[..]).unwrap().0,
            xxhash_rust::xxh3::xxh3_128(&text)
        );
        let mut buf = text.clone();
        assert_eq!(m.rewrite_in_place(&mut buf), 0);
        assert_eq!(buf, text);
    }

    /// One piece of generated content.
    fn segment() -> impl Strategy<Value = Vec<u8>> {
        let paths = [
            format!("{STORE}/{OUT1}-hello-2.10/lib"),
            format!("{STORE}/{DEV1}-hello-2.10-dev/include"),
            format!("{STORE}/{DEP}-hello-2.9/bin"),
            "/tmp/nix-build-1/src".to_string(),
        ];
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(prop::sample::select(NIX_BASE32_VEC.to_vec()), 0..12),
            (prop::sample::select(paths.to_vec()), 0usize..60, 1usize..60).prop_map(|(p, a, n)| {
                let a = a.min(p.len() - 1);
                p.as_bytes()[a..(a + n).min(p.len())].to_vec()
            }),
        ]
    }

    const NIX_BASE32_VEC: &[u8; 32] = crate::rewrite::store_path::NIX_BASE32;

    fn content() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(segment(), 0..40).prop_map(|s| s.concat())
    }

    /// Content laid out as gcc lays out pieces: 16-byte aligned constants,
    /// `movabs` immediates, whole strings, random bytes. (Hash characters
    /// next to a fragment only by coincidence differ between two hashes,
    /// and gcc's pieces are what the trimming rules know.)
    fn gcc_like_content() -> impl Strategy<Value = Vec<u8>> {
        let paths = [
            format!("{STORE}/{OUT1}-hello-2.10/lib"),
            format!("PP{STORE}/{DEV1}-hello-2.10-dev/include"),
            format!("{STORE}/{DEP}-hello-2.9/bin"),
            "/tmp/nix-build-1/src".to_string(),
        ];
        let part = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            (prop::sample::select(paths.to_vec()), 0usize..60).prop_map(|(p, a)| {
                let a = a.min(p.len() - 1);
                p.as_bytes()[a..(a + 16).min(p.len())].to_vec()
            }),
            (prop::sample::select(paths.to_vec()), 0usize..60).prop_map(|(p, a)| {
                let a = a.min(p.len() - 8);
                movabs(&p.as_bytes()[a..a + 8])
            }),
            prop::sample::select(paths.to_vec()).prop_map(|p| format!("\"{p}\"").into_bytes()),
        ];
        prop::collection::vec(part, 0..40)
            .prop_map(|parts| aligned(parts.iter().map(|p| p.as_slice())))
    }

    /// A reader returning at most the next size of `sizes` per read.
    struct Chunky<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        at: usize,
    }

    impl Read for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.at % self.sizes.len()];
            self.at += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn reloc_roots() -> (BuildInfo, BuildInfo) {
        (
            info(OUT1, Some(DEV1), "/tmp/nix-build-1"),
            info(OUT2, Some(DEV2), "/tmp/nix-build-2"),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn hash_reader_matches_hash(
            data in content(),
            sizes in prop::collection::vec(1usize..20, 1..8),
            chunk in 1usize..64,
        ) {
            let (a, _) = reloc_roots();
            for r in [Rewriter::masking(&a), Rewriter::identity()] {
                let whole = r.hash(&data);
                let reader = Chunky { data: &data, sizes: sizes.clone(), at: 0 };
                prop_assert_eq!(r.hash_reader_chunked(reader, chunk).unwrap(), (whole, data.len() as u64));
                let reader = Chunky { data: &data, sizes: sizes.clone(), at: 0 };
                prop_assert_eq!(r.hash_reader(reader).unwrap(), (whole, data.len() as u64));
            }
        }

        #[test]
        fn copy_rewriting_matches_rewrite_in_place(
            data in content(),
            sizes in prop::collection::vec(1usize..20, 1..8),
        ) {
            let (a, b) = reloc_roots();
            for r in [Rewriter::relocating(&a, &b).unwrap(), Rewriter::masking(&a)] {
                let mut in_place = data.clone();
                r.rewrite_in_place(&mut in_place);
                let mut copied = Vec::new();
                let reader = Chunky { data: &data, sizes: sizes.clone(), at: 0 };
                prop_assert_eq!(r.copy_rewriting(reader, &mut copied).unwrap(), data.len() as u64);
                prop_assert_eq!(&copied, &in_place);
                prop_assert_eq!(r.hash(&data), xxhash_rust::xxh3::xxh3_128(&in_place));
            }
        }

        #[test]
        fn masking_is_invariant_under_relocation(data in gcc_like_content()) {
            let (a, b) = reloc_roots();
            let mut moved = data.clone();
            Rewriter::relocating(&a, &b).unwrap().rewrite_in_place(&mut moved);
            prop_assert_eq!(Rewriter::masking(&a).hash(&data), Rewriter::masking(&b).hash(&moved));
        }
    }

    /// Throughput on ~200 MB of object-like bytes:
    /// `cargo test --release --lib throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let obj = pieces(&format!("{STORE}/{OUT1}-hello-2.10/share/locale"), 3, 8);
        let dep = format!("{STORE}/{DEP}-glibc-2.38/lib\0").into_bytes();
        // One of our paths (in movabs pieces) and one dependency path every
        // `every` segments of about 8 bytes.
        for every in [8192u64, 64] {
            let mut data = Vec::with_capacity(210 << 20);
            let mut x = 0x9e3779b97f4a7c15u64;
            while data.len() < 200 << 20 {
                // Machine code and symbol-table-ish bytes, text, and now
                // and then a path of ours or a dependency's.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % every {
                    0 => data.extend_from_slice(&obj),
                    1 => data.extend_from_slice(&dep),
                    2..=5 => data.extend_from_slice(b"__libc_start_main\0.text.startup\0"),
                    _ => data.extend_from_slice(&x.to_le_bytes()),
                }
            }
            let mb = data.len() as f64 / 1e6;
            for (name, r) in [
                ("identity", Rewriter::identity()),
                ("masking", Rewriter::masking(&old())),
            ] {
                let t = std::time::Instant::now();
                let h = r.hash(&data);
                let a = t.elapsed().as_secs_f64();
                let t = std::time::Instant::now();
                let (h2, _) = r.hash_reader(&data[..]).unwrap();
                let b = t.elapsed().as_secs_f64();
                assert_eq!(h, h2);
                println!(
                    "paths every ~{} bytes, {name}: hash {:.0} MB/s, hash_reader {:.0} MB/s ({mb:.0} MB)",
                    every * 8,
                    mb / a,
                    mb / b
                );
            }
        }
    }
}
