//! Fixtures of the rewrite tests: two builds of `hello` with `out` and
//! `dev`, and content laid out as gcc lays it out.

use super::store_path::StorePath;
use super::Rewriter;
use crate::build_info::BuildInfo;
use proptest::prelude::*;

pub(super) const STORE: &str = "/nix/store";
// Old and new hashes of `out` and `dev`. OUT1 and DEV1 share their first
// and last characters, as do OUT2 and DEV2 (but not with the old ones).
pub(super) const OUT1: &str = "0c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";
pub(super) const OUT2: &str = "m7a2pq8zs3dh6wj1xk5nbgf9c4lv0iyr";
pub(super) const DEV1: &str = "0s3jw8d2g5k7h1bn4qz9mx6fpcal1rkk";
pub(super) const DEV2: &str = "mz4x1c8q2vb6n9w3k5jhd7g0fspl1ary";
/// A dependency sharing OUT1's first three characters.
pub(super) const DEP: &str = "0c9axk5ldqzh3m2n7pw1s8jfb4gy6rvc";

pub(super) fn sp(hash: &str, name: &str) -> StorePath {
    let text = format!("{STORE}/{hash}-{name}");
    StorePath::parse(STORE.as_bytes(), text.as_bytes()).unwrap()
}

pub(super) fn info(out: &str, dev: Option<&str>, root: &str) -> BuildInfo {
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

pub(super) fn old() -> BuildInfo {
    info(OUT1, Some(DEV1), "/build")
}

pub(super) fn new() -> BuildInfo {
    info(OUT2, Some(DEV2), "/build")
}

/// DEV1 changed to end like OUT1.
pub(super) fn dev1r() -> String {
    format!("{}r", &DEV1[..31])
}

pub(super) fn relocator() -> Rewriter {
    Rewriter::relocating(&old(), &new()).unwrap()
}

pub(super) fn relocated(text: &[u8]) -> Vec<u8> {
    let mut buf = text.to_vec();
    relocator().rewrite_in_place(&mut buf);
    buf
}

pub(super) fn masked(r: &Rewriter, text: &[u8]) -> Vec<u8> {
    let mut buf = text.to_vec();
    r.rewrite_in_place(&mut buf);
    buf
}

/// `text` behind `prefix` bytes, cut into pieces the way gcc stores a
/// string: 8-byte `movabs` immediates separated by opcodes, or 16-byte
/// vector constants at aligned offsets (in reverse order, so that they
/// do not join up).
pub(super) fn pieces(text: &str, prefix: usize, piece: usize) -> Vec<u8> {
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
pub(super) fn movabs(piece: &[u8]) -> Vec<u8> {
    [b"\x49\xbb", piece, b"\x4c\x89\x5f\x08"].concat()
}

/// `parts`, each at a 16-byte aligned offset (padded with NULs).
pub(super) fn aligned<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.resize(out.len().div_ceil(16) * 16, 0);
    }
    out
}

/// One piece of generated content.
pub(super) fn segment() -> impl Strategy<Value = Vec<u8>> {
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

pub(super) const NIX_BASE32_VEC: &[u8; 32] = crate::rewrite::store_path::NIX_BASE32;

pub(super) fn content() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(segment(), 0..40).prop_map(|s| s.concat())
}

/// Content laid out as gcc lays out pieces: 16-byte aligned constants,
/// `movabs` immediates, whole strings, random bytes. (Hash characters
/// next to a fragment only by coincidence differ between two hashes,
/// and gcc's pieces are what the trimming rules know.)
pub(super) fn gcc_like_content() -> impl Strategy<Value = Vec<u8>> {
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
    prop::collection::vec(part, 0..40).prop_map(|parts| aligned(parts.iter().map(|p| p.as_slice())))
}

pub(super) fn reloc_roots() -> (BuildInfo, BuildInfo) {
    (
        info(OUT1, Some(DEV1), "/tmp/nix-build-1"),
        info(OUT2, Some(DEV2), "/tmp/nix-build-2"),
    )
}
