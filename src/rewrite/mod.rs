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
//! What is looked for, and why (the fragments gcc really emits, 8-byte
//! windows, piece boundaries, other store paths): docs/rewriting.md.
//!
//! Here: the constructors and the whole-buffer functions. `matcher`: the
//! window search and its rules. `archive`: where the members of an `ar`
//! archive start (alignment is judged from there). `stream`: the same
//! results in bounded memory (`hash_reader`, `copy_rewriting`).

mod archive;
mod matcher;
pub mod store_path;
mod stream;
#[cfg(test)]
mod testing;

use crate::build_info::BuildInfo;
use crate::rewrite::store_path::{StorePath, HASH_LEN};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use archive::ArchiveMembers;
use matcher::WINDOW;
use std::collections::HashMap;
use std::sync::Arc;

/// What an own output hash character becomes when masking: `e` is not in
/// Nix base-32, so no real hash can look like the mask.
pub const HASH_MASK: u8 = b'e';
/// What the characters of the root after its leading `/` become when
/// masking.
pub const ROOT_MASK: u8 = b'@';

/// Most patterns for the packed (Teddy) searcher: two outputs and a root.
const MAX_PACKED: usize = 100;

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

    #[cfg(test)]
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
}

/// Outputs with `out` first: a bare piece that fits several outputs (such as
/// `r-hello-` for `hello-2.10` and `hello-2.10-dev` whose hashes end in `r`)
/// goes to the first, and `out` is the one programs embed most.
fn out_first(outputs: &[(String, StorePath)]) -> impl Iterator<Item = &(String, StorePath)> {
    let out = outputs.iter().filter(|(n, _)| n == "out");
    out.chain(outputs.iter().filter(|(n, _)| n != "out"))
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

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

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
}
