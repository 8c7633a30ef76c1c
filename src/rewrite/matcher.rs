//! The window search: finds the next region of a build's own path (or
//! root) in content, by the rules docs/rewriting.md explains: 8-byte
//! windows of each output's path, extended along it, other store paths
//! left alone, regions narrowed to gcc's piece boundaries.

use super::{Candidate, Inner};
use crate::rewrite::store_path::{is_base32, is_name_char, HASH_LEN};
use aho_corasick::Input;

/// Bytes of a window: the smallest gcc piece that carries hash characters.
pub(super) const WINDOW: usize = 8;
/// A head/tail match with fewer hash characters than this is checked
/// against being part of a different store path.
const SHORT: usize = 8;
/// Bytes looked at before a match (the "different path" check of tails).
pub(super) const LOOKBEHIND: usize = HASH_LEN;

/// A region to replace, and where to search next.
pub(super) struct Edit<'a> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) with: &'a [u8],
}

impl Inner {
    /// The first edit whose match starts in `from..limit`. Looks at
    /// `hay[from - LOOKBEHIND..]` up to `lookahead` bytes past `limit`.
    ///
    /// `base` is the offset of `hay[0]` in the whole content: piece
    /// boundaries are judged by alignment, relative to the start of the
    /// object file holding them (`origins`: archive members).
    pub(super) fn next_edit<'a>(
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
                Some((c, x)) => {
                    let Extent { lo, hi, .. } = x;
                    let target = &self.targets[c.target];
                    let start = p + target.hash_at + lo - c.win;
                    let end = start + (hi - lo);
                    // A piece from inside the hash that reaches its end but
                    // not the `-name` after it ends where gcc cut it, or the
                    // last bytes only happen to equal this hash's end (and
                    // would not equal another build's).
                    let stops_at_hash_end = lo > 0
                        && hi == HASH_LEN
                        && c.win + x.agreed == target.hash_at + HASH_LEN
                        && !x.complete;
                    // Likewise a piece starting at the hash's first
                    // character without the store directory before it: a
                    // byte before a piece from inside the hash may equal
                    // this hash's start by chance. A whole hash is no
                    // chance.
                    let starts_without_store_dir = c.win == target.hash_at && hi < HASH_LEN;
                    let cut = (
                        lo > 0 || starts_without_store_dir,
                        hi < HASH_LEN || stops_at_hash_end,
                    );
                    let (s, e) = trim(hay, base, origins, p, (start, end), cut);
                    // `extend` judged a short head by the hash characters
                    // the text follows; judge it again by those left after
                    // the cut, or a character that only happens to follow
                    // decides it.
                    let kept_hi = hi - (end - e);
                    let short_head_of_another_path = c.win < target.hash_at
                        && kept_hi < SHORT
                        && hi >= SHORT
                        && base32_run(hay, e, HASH_LEN - kept_hi);
                    if s < e && !short_head_of_another_path {
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
        if c.win < t.hash_at && hi < SHORT && base32_run(hay, p + i - c.win, HASH_LEN - hi) {
            return None;
        }
        let k = hash_end.saturating_sub(c.win);
        if c.win > t.hash_at
            && k < SHORT
            && p >= HASH_LEN - k
            && base32_run(hay, p - (HASH_LEN - k), HASH_LEN - k)
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
/// Whether `hay[from..from + n]` exists and is all base-32: with our
/// characters, the rest of another path's hash.
fn base32_run(hay: &[u8], from: usize, n: usize) -> bool {
    hay.get(from..from + n)
        .is_some_and(|b| b.iter().all(|&b| is_base32(b)))
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Rewriter;
    use proptest::prelude::*;

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

    /// A 16-byte piece from inside DEV1 ending one short of its hash end,
    /// followed by a dependency's tail that starts with DEV2's last
    /// character: the new build's masking must not take that `y` for the
    /// end of its own hash (found by masking_is_invariant_under_relocation).
    #[test]
    fn a_piece_next_to_the_new_hash_end_or_start_by_chance_is_masked_alike() {
        assert_eq!(DEV2.as_bytes()[31], b'y');
        let data = format!("{}y6rvc-hello-2.9/", &DEV1[15..31]);
        let moved = relocated(data.as_bytes());
        assert_eq!(
            moved,
            format!("{}y6rvc-hello-2.9/", &DEV2[15..31]).as_bytes()
        );
        let (old_mask, new_mask) = (Rewriter::masking(&old()), Rewriter::masking(&new()));
        assert_eq!(old_mask.hash(data.as_bytes()), new_mask.hash(&moved));
        // And at the start: a byte before a piece from inside OUT1 that
        // equals OUT2's first character.
        assert_eq!(OUT2.as_bytes()[0], b'm');
        let data = format!("e/{}{}", &DEP[..14], &OUT1[1..17]);
        let moved = relocated(data.as_bytes());
        assert_eq!(
            moved,
            format!("e/{}{}", &DEP[..14], &OUT2[1..17]).as_bytes()
        );
        assert_eq!(
            Rewriter::masking(&old()).hash(data.as_bytes()),
            Rewriter::masking(&new()).hash(&moved)
        );
        // A head piece one character short of SHORT that a following
        // character lengthens by chance, before more base-32 text.
        assert_eq!(&OUT1[7..8], "c");
        let data = format!("ix/store/{}{}{}", &OUT1[..7], &OUT1[1..17], &OUT1[..16]);
        let moved = relocated(data.as_bytes());
        assert_eq!(
            Rewriter::masking(&old()).hash(data.as_bytes()),
            Rewriter::masking(&new()).hash(&moved)
        );
        // The same piece followed by its `-name` is masked to the hash end.
        let whole = format!("{}-hello-2.10-dev", &DEV1[16..]);
        let want = format!("{}-hello-2.10-dev", &DEV2[16..]);
        assert_eq!(relocated(whole.as_bytes()), want.as_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn masking_is_invariant_under_relocation(data in gcc_like_content()) {
            let (a, b) = reloc_roots();
            let mut moved = data.clone();
            Rewriter::relocating(&a, &b).unwrap().rewrite_in_place(&mut moved);
            prop_assert_eq!(Rewriter::masking(&a).hash(&data), Rewriter::masking(&b).hash(&moved));
        }
    }
}
