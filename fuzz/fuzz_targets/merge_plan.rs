//! Arbitrary P, B, C manifests (over a small universe of paths, so that
//! paths collide in every combination) -> plan::plan, then the invariants
//! `apply` relies on:
//! - actions strictly sorted by path (so unique);
//! - each action agrees with C (what it removes, replaces or keeps exists
//!   there, with that kind) and B (what it creates or retimes);
//! - the merged tree is a tree: every entry's parent is a directory of it,
//!   so no action lies under a kept or created non-directory;
//! - fresh_mtime >= now and > every restored mtime.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_checkpoint::apply::{check_plan, ApplyError};
use nix_checkpoint::plan::{plan, Action};
use nix_checkpoint::tree::{Entry, Kind, Manifest, Node, RelPath, Timestamp};
use std::collections::BTreeMap;

const PATHS: &[&[u8]] = &[
    b"a", b"a/b", b"a/b/c", b"a/b/c/d", b"a/e", b"a/e/f", b"g", b"g/h", b"i", b"i/j", b"k",
];
const TARGETS: &[&[u8]] = &[
    b"a/b",
    b"../x",
    b"/abs",
    b"b",
    b"a",
    b"g/h",
    b"..",
    b"a/b/c",
    b"c",
    b"../../a/e/f",
    b"f",
    b"k",
    b"i/j",
    b"j",
    b".",
    b"./c",
];
const TIMES: &[i64] = &[
    0,
    1,
    2,
    1_000_000_000,
    1_700_000_000,
    -1,
    i64::MIN,
    i64::MAX,
    i64::MAX - 1,
];

struct Bytes<'a>(&'a [u8], usize);
impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        b
    }
}

fn manifest(b: &mut Bytes, with_mtime: bool) -> Manifest {
    let mut entries: Vec<Entry> = Vec::new();
    for path in PATHS {
        let x = b.next();
        let node = match x % 5 {
            1 => Node::Dir,
            2 => Node::File {
                size: u64::from((x >> 3) & 1),
                hash: u128::from((x >> 3) & 3),
            },
            3 => {
                let target = TARGETS[usize::from(x >> 3) % TARGETS.len()];
                Node::Symlink {
                    target: target.into(),
                    hash: xxhash_rust::xxh3::xxh3_128(target),
                }
            }
            _ => continue,
        };
        let parent_ok = match path.iter().rposition(|&c| c == b'/') {
            None => true,
            Some(i) => entries
                .iter()
                .any(|e| e.path.as_bytes() == &path[..i] && e.node == Node::Dir),
        };
        if !parent_ok {
            continue;
        }
        let mode = match node {
            Node::Symlink { .. } => 0o777,
            Node::Dir => [0o755, 0o555, 0o700][usize::from(x >> 6) % 3],
            Node::File { .. } => [0o644, 0o755, 0o444][usize::from(x >> 6) % 3],
        };
        let mtime = if with_mtime {
            let t = b.next();
            Timestamp::new(
                TIMES[usize::from(t) % TIMES.len()],
                u32::from(t >> 4) * 62_500_000,
            )
        } else {
            Timestamp::default()
        };
        entries.push(Entry {
            path: RelPath::new(path).unwrap(),
            node,
            mode,
            mtime,
        });
    }
    Manifest::new(entries).expect("parents checked")
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data, 0);
    let p = manifest(&mut b, false);
    let bm = manifest(&mut b, true);
    let c = manifest(&mut b, true);
    let t = b.next();
    let now = Timestamp::new(TIMES[usize::from(t) % TIMES.len()], 0);
    let plan = plan(&p, &bm, &c, now);
    // apply's own check: never "invalid" (a planner bug); "unsafe" only for
    // mtimes no file system stores, and then the fresh-mtime guarantee
    // below is void (the plan is refused before any write).
    let sane = match check_plan(std::path::Path::new("/build"), &plan) {
        Ok(()) => true,
        Err(e @ ApplyError::UnsafePlan { .. }) => {
            assert!(
                e.to_string().contains("outside what file systems store"),
                "{e}"
            );
            false
        }
        Err(e) => panic!("apply refuses the plan: {e}; plan {:?}", plan.actions),
    };

    for w in plan.actions.windows(2) {
        assert!(
            w[0].path() < w[1].path(),
            "not strictly sorted: {:?}",
            plan.actions
        );
    }
    assert!(plan.fresh_mtime >= now, "fresh mtime before now");
    assert!(plan.fresh_mtime.nanos < 1_000_000_000);

    // The merged tree: path -> kind, starting from C.
    let mut merged: BTreeMap<&[u8], Kind> = c
        .entries()
        .iter()
        .map(|e| (e.path.as_bytes(), e.node.kind()))
        .collect();
    let ckind = |path: &RelPath| c.get(path).map(|e| e.node.kind());
    for action in &plan.actions {
        let path = action.path();
        match action {
            Action::Create { entry, replaces } => {
                assert_eq!(
                    *replaces,
                    ckind(path),
                    "replaces disagrees with C: {action:?}"
                );
                let b_entry = bm.get(path).expect("create has B");
                assert_eq!(b_entry.node, entry.node);
                assert_eq!(b_entry.mode, entry.mode);
                assert!(
                    entry.mtime == plan.restored_mtime(b_entry.mtime)
                        || entry.mtime == plan.fresh_mtime,
                    "create mtime neither B's (moved back if in the future) nor fresh"
                );
                assert!(
                    entry.mtime == plan.fresh_mtime || entry.mtime <= now,
                    "restored mtime in the future: {action:?}"
                );
                if sane && entry.mtime != plan.fresh_mtime {
                    assert!(
                        plan.fresh_mtime > entry.mtime,
                        "fresh mtime not newer than {action:?}"
                    );
                }
                merged.insert(path.as_bytes(), entry.node.kind());
            }
            Action::Retime {
                kind, mtime, mode, ..
            } => {
                assert_eq!(Some(*kind), ckind(path), "retime of what C lacks");
                let b_entry = bm.get(path).expect("retime has B");
                assert_eq!(b_entry.mode, *mode);
                assert_eq!(*mtime, plan.restored_mtime(b_entry.mtime));
                assert!(*mtime <= now, "restored mtime in the future: {action:?}");
                assert!(
                    !sane || plan.fresh_mtime > *mtime,
                    "fresh mtime not newer than {action:?}"
                );
            }
            Action::Remove { kind, .. } => {
                assert_eq!(Some(*kind), ckind(path), "remove of what C lacks");
                merged.remove(path.as_bytes());
            }
            Action::Freshen { kind, .. } => {
                assert_eq!(Some(*kind), ckind(path), "freshen of what C lacks");
            }
            Action::Skip { .. } => {}
        }
    }
    for (path, _) in &merged {
        if let Some(i) = path.iter().rposition(|&c| c == b'/') {
            assert_eq!(
                merged.get(&path[..i]),
                Some(&Kind::Dir),
                "{} lies under a non-directory in the merged tree; plan {:?}",
                String::from_utf8_lossy(path),
                plan.actions
            );
        }
    }
});
