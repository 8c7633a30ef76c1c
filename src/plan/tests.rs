//! Tests of the merge planner: the table row by row, every combination of
//! single-path states against a plain oracle, the tree rules (directories,
//! type changes, blocked ancestors, symlink targets), and a property test
//! that applies plans to an in-memory tree.

use super::*;
use crate::tree::{ContentHash, Node};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------- helpers

fn rp(s: &str) -> RelPath {
    RelPath::new(s.as_bytes()).unwrap()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::new(secs, 0)
}

/// A clock later than every mtime in these tests (restored mtimes are not
/// moved; see `clock_skew_*` for when they are).
const NOW: Timestamp = Timestamp::new(1000, 0);

fn file(path: &str, hash: ContentHash, mode: u32, mtime: i64) -> Entry {
    Entry {
        path: rp(path),
        node: Node::File {
            size: hash as u64,
            hash,
        },
        mode,
        mtime: t(mtime),
    }
}

fn link_hash(target: &[u8]) -> ContentHash {
    // FNV-1a: any deterministic function of the target will do.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in target {
        h ^= b as u128;
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    h
}

fn link(path: &str, target: &str, mtime: i64) -> Entry {
    Entry {
        path: rp(path),
        node: Node::Symlink {
            target: target.as_bytes().into(),
            hash: link_hash(target.as_bytes()),
        },
        mode: 0o777,
        mtime: t(mtime),
    }
}

fn dir(path: &str, mode: u32, mtime: i64) -> Entry {
    Entry {
        path: rp(path),
        node: Node::Dir,
        mode,
        mtime: t(mtime),
    }
}

fn m(entries: Vec<Entry>) -> Manifest {
    Manifest::new(entries).unwrap()
}

fn with_mtime(e: &Entry, mtime: Timestamp) -> Entry {
    Entry { mtime, ..e.clone() }
}

fn retime(e: &Entry) -> Action {
    Action::Retime {
        path: e.path.clone(),
        kind: e.node.kind(),
        mode: e.mode,
        mtime: e.mtime,
    }
}

fn create(e: &Entry, replaces: Option<Kind>) -> Action {
    Action::Create {
        entry: e.clone(),
        replaces,
    }
}

fn remove(path: &str, kind: Kind) -> Action {
    Action::Remove {
        path: rp(path),
        kind,
    }
}

fn fresh(path: &str, kind: Kind, reason: FreshReason) -> Action {
    Action::Freshen {
        path: rp(path),
        kind,
        reason,
    }
}

fn skip(path: &str, reason: SkipReason) -> Action {
    Action::Skip {
        path: rp(path),
        reason,
    }
}

fn not_dir(a: &str) -> SkipReason {
    SkipReason::AncestorNotDirectory(rp(a))
}

fn removed(a: &str) -> SkipReason {
    SkipReason::AncestorRemoved(rp(a))
}

fn action_at<'p>(plan: &'p Plan, path: &str) -> Option<&'p Action> {
    plan.actions.iter().find(|a| a.path() == &rp(path))
}

/// Plans and checks the invariants every plan must satisfy.
fn plan_checked(p: &Manifest, b: &Manifest, c: &Manifest, now: Timestamp) -> Plan {
    let plan = plan(p, b, c, now);
    check_invariants(p, b, c, now, &plan);
    plan
}

fn check_invariants(p: &Manifest, b: &Manifest, c: &Manifest, now: Timestamp, plan: &Plan) {
    for pair in plan.actions.windows(2) {
        assert!(
            pair[0].path() < pair[1].path(),
            "not sorted/unique: {pair:?}"
        );
    }
    let mut restored = Vec::new();
    // (B's mtime, the restored one): the move keeps their order.
    let mut pairs = Vec::new();
    for action in &plan.actions {
        let path = action.path();
        let (pe, be, ce) = (p.get(path), b.get(path), c.get(path));
        match action {
            Action::Create { entry, replaces } => {
                let b = be.expect("create without B");
                assert_eq!(entry.path, b.path);
                assert_eq!(entry.node, b.node);
                assert_eq!(entry.mode, b.mode);
                assert_eq!(*replaces, ce.map(|c| c.node.kind()));
                if entry.mtime != plan.fresh_mtime {
                    assert_eq!(entry.mtime, plan.restored_mtime(b.mtime));
                    pairs.push((b.mtime, entry.mtime));
                    restored.push(entry.mtime);
                }
            }
            Action::Retime {
                kind, mode, mtime, ..
            } => {
                let (b, c) = (be.unwrap(), ce.unwrap());
                assert_eq!(*kind, c.node.kind());
                assert_eq!(*kind, b.node.kind());
                assert_eq!((*mode, *mtime), (b.mode, plan.restored_mtime(b.mtime)));
                pairs.push((b.mtime, *mtime));
                restored.push(*mtime);
            }
            Action::Remove { kind, .. } => {
                assert_eq!(*kind, ce.unwrap().node.kind());
                assert!(be.is_none() || *kind == Kind::Dir || pe.is_some());
            }
            Action::Freshen { kind, .. } => assert_eq!(*kind, ce.unwrap().node.kind()),
            Action::Skip { reason, .. } => assert!(
                be.is_some() || *reason == SkipReason::DirectoryNotEmpty,
                "skip without B"
            ),
        }
    }
    assert!(plan.shifted_back_nanos >= 0);
    let newest = restored.iter().max().copied();
    assert_eq!(
        plan.fresh_mtime,
        newest.map_or(now, |n| now.max(n.plus_secs(1)))
    );
    if let Some(newest) = newest {
        assert!(newest <= now, "restored {newest:?} after now {now:?}");
    }
    if plan.shifted_back_nanos > 0 {
        assert_eq!(newest.map(|n| n.plus_secs(1)), Some(now), "shifted too far");
    }
    pairs.sort();
    for w in pairs.windows(2) {
        if w[0].0 < w[1].0 {
            assert!(w[0].1 < w[1].1, "order lost: {w:?}");
        }
    }
    // The printout has one line per action and a summary.
    assert_eq!(plan.to_string().lines().count(), plan.actions.len() + 1);
}

// ------------------------------------------------------ table, row by row

#[test]
fn row_unchanged_everywhere_is_retimed() {
    let p = m(vec![file("f", 1, 0o644, 10)]);
    let b = m(vec![file("f", 1, 0o644, 20)]);
    let c = m(vec![file("f", 1, 0o644, 30)]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(plan.actions, vec![retime(&b.entries()[0])]);
    assert_eq!(plan.fresh_mtime, NOW);
}

#[test]
fn row_rewritten_by_build_is_created() {
    let p = m(vec![file("f", 1, 0o644, 10)]);
    let b = m(vec![file("f", 2, 0o644, 20)]);
    let c = m(vec![file("f", 1, 0o644, 30)]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        plan.actions,
        vec![create(&b.entries()[0], Some(Kind::File))]
    );
}

#[test]
fn row_deleted_by_build_is_removed() {
    let p = m(vec![file("f", 1, 0o644, 10)]);
    let b = m(vec![]);
    let c = m(vec![file("f", 1, 0o644, 30)]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(plan.actions, vec![remove("f", Kind::File)]);
    assert_eq!(plan.fresh_mtime, NOW);
}

#[test]
fn row_product_is_created() {
    let p = m(vec![]);
    let b = m(vec![file("f.o", 7, 0o644, 20)]);
    let c = m(vec![]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(plan.actions, vec![create(&b.entries()[0], None)]);
}

#[test]
fn row_user_change_wins() {
    // Changed content (build rewrote it too), changed mode, new path.
    let p = m(vec![file("a", 1, 0o644, 10), file("m", 1, 0o644, 10)]);
    let b = m(vec![
        file("a", 2, 0o644, 20),
        file("m", 1, 0o644, 20),
        file("n", 5, 0o644, 20),
    ]);
    let c = m(vec![
        file("a", 3, 0o644, 30),
        file("m", 1, 0o755, 30),
        file("n", 5, 0o644, 30),
    ]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        plan.actions,
        vec![
            fresh("a", Kind::File, FreshReason::Changed),
            fresh("m", Kind::File, FreshReason::Changed),
            // Not in P, but B has the same content: made again, B's time.
            retime(&file("n", 5, 0o644, 20)),
        ]
    );
    // Now is after the retimed n (20).
    assert_eq!(plan.fresh_mtime, NOW);
}

#[test]
fn row_deleted_by_user_stays_deleted() {
    let p = m(vec![file("a", 1, 0o644, 10), file("b", 1, 0o644, 10)]);
    let b = m(vec![file("a", 1, 0o644, 20), file("b", 2, 0o644, 20)]);
    let c = m(vec![]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(plan.actions, vec![]);
}

#[test]
fn row_absent_everywhere_is_nothing() {
    let e = m(vec![]);
    let plan = plan_checked(&e, &e, &e, NOW);
    assert_eq!(
        plan,
        Plan {
            actions: vec![],
            fresh_mtime: NOW,
            shifted_back_nanos: 0,
            shifted_from: Timestamp::default(),
            cannot_freshen: Vec::new(),
        }
    );
}

// ------------------------------------------- every single-path combination

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    Absent,
    FileA,
    FileA2,
    FileAx,
    Link1,
    Link2,
    Dir,
    DirX,
}

const ALL: [V; 8] = [
    V::Absent,
    V::FileA,
    V::FileA2,
    V::FileAx,
    V::Link1,
    V::Link2,
    V::Dir,
    V::DirX,
];

fn make(v: V, mtime: i64) -> Option<Entry> {
    Some(match v {
        V::Absent => return None,
        V::FileA => file("x", 1, 0o644, mtime),
        V::FileA2 => file("x", 2, 0o644, mtime),
        V::FileAx => file("x", 1, 0o755, mtime),
        V::Link1 => link("x", "t1", mtime),
        V::Link2 => link("x", "t2", mtime),
        V::Dir => dir("x", 0o755, mtime),
        V::DirX => dir("x", 0o700, mtime),
    })
}

#[derive(Debug, PartialEq)]
enum Expect {
    Nothing,
    Retime,
    Create,
    Remove,
    Fresh(FreshReason),
}

/// The table, written plainly over labels (equal label = same content).
fn oracle(p: V, b: V, c: V) -> Expect {
    use V::*;
    match (p, b, c) {
        (Absent, Absent, Absent) => Expect::Nothing,
        (Absent, _, Absent) => Expect::Create,
        (_, _, Absent) => Expect::Nothing,
        (Absent, b, c) if b == c => Expect::Retime,
        (Absent, _, _) => Expect::Fresh(FreshReason::New),
        (p, _, c) if p != c => Expect::Fresh(FreshReason::Changed),
        (_, Absent, _) => Expect::Remove,
        (_, b, c) if b == c => Expect::Retime,
        (_, Dir | DirX, Dir | DirX) => Expect::Retime,
        _ => Expect::Create,
    }
}

#[test]
fn every_single_path_combination_matches_the_oracle() {
    let mut cases = 0;
    for now in [15, 100] {
        for pv in ALL {
            for bv in ALL {
                for cv in ALL {
                    let (pe, be, ce) = (make(pv, 10), make(bv, 20), make(cv, 30));
                    let man = |e: &Option<Entry>| m(e.iter().cloned().collect());
                    let (p, b, c) = (man(&pe), man(&be), man(&ce));
                    let plan = plan_checked(&p, &b, &c, t(now));
                    let ctx = format!("P={pv:?} B={bv:?} C={cv:?} now={now}");
                    let expected: Vec<Action> = match oracle(pv, bv, cv) {
                        Expect::Nothing => vec![],
                        Expect::Retime => vec![retime(be.as_ref().unwrap())],
                        Expect::Create => vec![create(
                            be.as_ref().unwrap(),
                            ce.as_ref().map(|c| c.node.kind()),
                        )],
                        Expect::Remove => vec![remove("x", ce.as_ref().unwrap().node.kind())],
                        Expect::Fresh(reason) => {
                            vec![fresh("x", ce.as_ref().unwrap().node.kind(), reason)]
                        }
                    };
                    // B's mtime is 20: with now = 15 it lies in the
                    // future and is moved back to now - 1 s.
                    let restores = matches!(oracle(pv, bv, cv), Expect::Retime | Expect::Create);
                    let shift = if restores && now < 20 { 21 - now } else { 0 };
                    let expected: Vec<Action> = expected
                        .into_iter()
                        .map(|a| match a {
                            Action::Retime {
                                path,
                                kind,
                                mode,
                                mtime,
                            } => Action::Retime {
                                path,
                                kind,
                                mode,
                                mtime: mtime.plus_secs(-shift),
                            },
                            Action::Create {
                                mut entry,
                                replaces,
                            } => {
                                entry.mtime = entry.mtime.plus_secs(-shift);
                                Action::Create { entry, replaces }
                            }
                            other => other,
                        })
                        .collect();
                    assert_eq!(plan.actions, expected, "{ctx}");
                    let fresh = if restores && now >= 20 {
                        now.max(21)
                    } else {
                        now
                    };
                    assert_eq!(plan.fresh_mtime, t(fresh), "{ctx}");
                    assert_eq!(
                        plan.shifted_back_nanos,
                        shift as i128 * 1_000_000_000,
                        "{ctx}"
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 8 * 8 * 8);
}

// ------------------------------------------------ directories and types

/// P = C: a directory `d` with `d/a` and `d/s/b`.
fn dir_tree(mtime: i64) -> Vec<Entry> {
    vec![
        dir("d", 0o755, mtime),
        file("d/a", 1, 0o644, mtime),
        dir("d/s", 0o755, mtime),
        file("d/s/b", 2, 0o644, mtime),
    ]
}

#[test]
fn build_turned_dir_into_file_or_symlink_replaces_empty_dir() {
    for new in [file("d", 9, 0o644, 20), link("d", "elsewhere", 20)] {
        let p = m(dir_tree(10));
        let b = m(vec![new.clone()]);
        let c = m(dir_tree(30));
        let plan = plan_checked(&p, &b, &c, NOW);
        assert_eq!(
            plan.actions,
            vec![
                create(&new, Some(Kind::Dir)),
                remove("d/a", Kind::File),
                remove("d/s", Kind::Dir),
                remove("d/s/b", Kind::File),
            ]
        );
    }
}

#[test]
fn build_turned_dir_into_file_but_user_changed_a_child() {
    let p = m(dir_tree(10));
    let b = m(vec![file("d", 9, 0o644, 20)]);
    let mut c = dir_tree(30);
    c[3] = file("d/s/b", 3, 0o644, 30);
    let plan = plan_checked(&p, &b, &m(c), NOW);
    assert_eq!(
        plan.actions,
        vec![
            skip("d", SkipReason::DirectoryNotEmpty),
            remove("d/a", Kind::File),
            skip("d/s", SkipReason::DirectoryNotEmpty),
            fresh("d/s/b", Kind::File, FreshReason::Changed),
        ]
    );
}

#[test]
fn build_deleted_dir_kept_for_user_file() {
    let p = m(dir_tree(10));
    let b = m(vec![]);
    let mut c = dir_tree(30);
    c.push(file("d/s/new", 4, 0o644, 30));
    let plan = plan_checked(&p, &b, &m(c), NOW);
    assert_eq!(
        plan.actions,
        vec![
            skip("d", SkipReason::DirectoryNotEmpty),
            remove("d/a", Kind::File),
            skip("d/s", SkipReason::DirectoryNotEmpty),
            remove("d/s/b", Kind::File),
            fresh("d/s/new", Kind::File, FreshReason::New),
        ]
    );
}

#[test]
fn build_deleted_dir_with_unchanged_contents_is_removed() {
    let p = m(dir_tree(10));
    let b = m(vec![]);
    let plan = plan_checked(&p, &b, &m(dir_tree(30)), NOW);
    assert_eq!(
        plan.actions,
        vec![
            remove("d", Kind::Dir),
            remove("d/a", Kind::File),
            remove("d/s", Kind::Dir),
            remove("d/s/b", Kind::File),
        ]
    );
}

#[test]
fn build_turned_file_or_symlink_into_dir() {
    for old in [file("d", 1, 0o644, 10), link("d", "t", 10)] {
        let p = m(vec![old.clone()]);
        let b_entries = vec![dir("d", 0o755, 20), file("d/o", 5, 0o644, 21)];
        let b = m(b_entries.clone());
        let c = m(vec![with_mtime(&old, t(30))]);
        let plan = plan_checked(&p, &b, &c, NOW);
        assert_eq!(
            plan.actions,
            vec![
                create(&b_entries[0], Some(old.node.kind())),
                create(&b_entries[1], None),
            ]
        );
        assert_eq!(plan.fresh_mtime, NOW);

        // The user changed the file: it stays, B's children cannot go in.
        let c = m(vec![file("d", 7, 0o644, 30)]);
        let plan = plan_checked(&p, &b, &c, NOW);
        assert_eq!(
            plan.actions,
            vec![
                fresh("d", Kind::File, FreshReason::Changed),
                skip("d/o", not_dir("d")),
            ]
        );
    }
}

#[test]
fn build_changed_dir_mode_is_a_retime() {
    let p = m(dir_tree(10));
    let mut b = dir_tree(20);
    b[0].mode = 0o700;
    let plan = plan_checked(&p, &m(b.clone()), &m(dir_tree(30)), NOW);
    assert_eq!(plan.actions, b.iter().map(retime).collect::<Vec<_>>());
}

#[test]
fn user_replaced_dir_by_symlink_or_file_blocks_products() {
    for repl in [link("d", "elsewhere", 30), file("d", 8, 0o644, 30)] {
        let p = m(vec![dir("d", 0o755, 10), file("d/a", 1, 0o644, 10)]);
        let b = m(vec![
            dir("d", 0o755, 20),
            file("d/a", 1, 0o644, 20),
            file("d/p.o", 2, 0o644, 20),
            dir("d/sub", 0o755, 20),
            file("d/sub/x.o", 3, 0o644, 20),
        ]);
        let c = m(vec![repl.clone()]);
        let plan = plan_checked(&p, &b, &c, NOW);
        assert_eq!(
            plan.actions,
            vec![
                fresh("d", repl.node.kind(), FreshReason::Changed),
                skip("d/p.o", not_dir("d")),
                skip("d/sub", not_dir("d")),
                skip("d/sub/x.o", not_dir("d")),
            ]
        );
        assert_eq!(plan.fresh_mtime, NOW, "nothing restored");
    }
}

#[test]
fn symlink_planted_where_build_made_a_dir() {
    let p = m(vec![]);
    let b = m(vec![dir("d", 0o755, 20), file("d/x", 1, 0o644, 20)]);
    let c = m(vec![link("d", "/tmp", 30)]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        plan.actions,
        vec![
            fresh("d", Kind::Symlink, FreshReason::New),
            skip("d/x", not_dir("d")),
        ]
    );
}

#[test]
fn products_in_a_dir_the_user_deleted_are_not_resurrected() {
    let p = m(vec![dir("d", 0o755, 10), file("d/a", 1, 0o644, 10)]);
    let b = m(vec![
        dir("d", 0o755, 20),
        file("d/a", 1, 0o644, 20),
        file("d/a.o", 2, 0o644, 20),
        dir("d/s", 0o755, 20),
        file("d/s/x", 2, 0o644, 20),
    ]);
    let plan = plan_checked(&p, &b, &m(vec![]), NOW);
    assert_eq!(
        plan.actions,
        vec![
            skip("d/a.o", removed("d")),
            skip("d/s", removed("d")),
            skip("d/s/x", removed("d")),
        ]
    );
}

#[test]
fn new_entries_under_new_dir_are_all_new() {
    let p = m(vec![]);
    let b = m(vec![dir("n", 0o755, 20)]);
    let c = m(vec![
        dir("n", 0o755, 30),
        dir("n/m", 0o755, 30),
        file("n/m/f", 1, 0o644, 30),
    ]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        plan.actions,
        vec![
            retime(&dir("n", 0o755, 20)),
            fresh("n/m", Kind::Dir, FreshReason::New),
            fresh("n/m/f", Kind::File, FreshReason::New),
        ]
    );
}

#[test]
fn siblings_sorting_between_dir_and_children_are_not_children() {
    // "d-x" and "d.y" sort between "d" and "d/a"; they are not inside "d".
    let p = m(vec![dir("d", 0o755, 10), file("d/a", 1, 0o644, 10)]);
    let b = m(vec![file("d", 3, 0o644, 20), file("d-x", 4, 0o644, 20)]);
    let c = m(vec![
        dir("d", 0o755, 30),
        file("d-x", 5, 0o644, 30),
        file("d.y", 6, 0o644, 30),
        file("d/a", 1, 0o644, 30),
    ]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        plan.actions,
        vec![
            create(&b.entries()[0], Some(Kind::Dir)),
            fresh("d-x", Kind::File, FreshReason::New),
            fresh("d.y", Kind::File, FreshReason::New),
            remove("d/a", Kind::File),
        ]
    );
}

#[test]
fn user_replaced_file_by_dir_products_go_in() {
    // The user's directory stays; B's products under B's own directory at
    // that path are placed inside it (a real directory, not a symlink).
    let p = m(vec![file("d", 1, 0o644, 10)]);
    let b = m(vec![dir("d", 0o755, 20), file("d/o", 2, 0o644, 20)]);
    let c = m(vec![dir("d", 0o755, 30), file("d/u", 3, 0o644, 30)]);
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        plan.actions,
        vec![
            fresh("d", Kind::Dir, FreshReason::Changed),
            create(&b.entries()[1], None),
            fresh("d/u", Kind::File, FreshReason::New),
        ]
    );
}

// ------------------------------------------------------ symlink targets

/// P = B = C apart from what the test changes: files `a`, `b`, directory
/// `sub` with `sub/l -> ../a` and `sub/f`, a directory `d` with `d/f`.
fn base(mtime: i64) -> Vec<Entry> {
    vec![
        file("a", 1, 0o644, mtime),
        file("b", 2, 0o644, mtime),
        dir("d", 0o755, mtime),
        file("d/f", 3, 0o644, mtime),
        dir("sub", 0o755, mtime),
        file("sub/f", 4, 0o644, mtime),
        link("sub/l", "../a", mtime),
    ]
}

fn with(mut entries: Vec<Entry>, extra: Vec<Entry>) -> Manifest {
    for e in extra {
        entries.retain(|x| x.path != e.path);
        entries.push(e);
    }
    m(entries)
}

fn target_plan(c_extra: Vec<Entry>, b_extra: Vec<Entry>) -> Plan {
    let p = m(base(10));
    let b = with(base(20), b_extra);
    let c = with(base(30), c_extra);
    plan_checked(&p, &b, &c, NOW)
}

#[test]
fn retargeted_symlink_freshens_its_target() {
    for (target, fresh_path) in [
        ("../b", Some("b")),
        ("f", Some("sub/f")),
        ("./f", Some("sub/f")),
        ("../d/f", Some("d/f")),
        ("../sub/../d//f", Some("d/f")),
        ("../../a", None), // escapes the root
        ("/a", None),      // absolute
        ("../d", None),    // a directory
        ("../b/", None),   // trailing slash on a file
        ("../b/x", None),  // through a file
        ("../nope", None), // dangling
    ] {
        let plan = target_plan(vec![link("sub/l", target, 30)], vec![]);
        assert_eq!(
            action_at(&plan, "sub/l"),
            Some(&fresh("sub/l", Kind::Symlink, FreshReason::Changed)),
            "{target}"
        );
        for path in ["a", "b", "d/f", "sub/f"] {
            let expected = if Some(path) == fresh_path {
                fresh(path, Kind::File, FreshReason::SymlinkTarget)
            } else {
                retime(&with(base(20), vec![]).get(&rp(path)).unwrap().clone())
            };
            assert_eq!(action_at(&plan, path), Some(&expected), "{target} {path}");
        }
    }
}

#[test]
fn symlink_chains_and_symlinked_dirs_are_followed() {
    // l -> m (unchanged symlink) -> d/f: d/f is freshened, m is not.
    let plan = target_plan(
        vec![link("l", "m", 30), link("m", "d/f", 30)],
        vec![link("m", "d/f", 20)],
    );
    assert_eq!(
        action_at(&plan, "l"),
        Some(&fresh("l", Kind::Symlink, FreshReason::New))
    );
    // m is B's symlink made again: B's time.
    assert_eq!(action_at(&plan, "m"), Some(&retime(&link("m", "d/f", 20))));
    assert_eq!(
        action_at(&plan, "d/f"),
        Some(&fresh("d/f", Kind::File, FreshReason::SymlinkTarget))
    );

    // A link through a symlinked directory: sd -> d, l -> sd/f.
    let p = with(base(10), vec![link("sd", "d", 10)]);
    let b = with(base(20), vec![link("sd", "d", 20)]);
    let c = with(
        base(30),
        vec![link("sd", "d", 30), link("sub/l", "../sd/f", 30)],
    );
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        action_at(&plan, "sd"),
        Some(&retime(b.get(&rp("sd")).unwrap()))
    );
    assert_eq!(
        action_at(&plan, "d/f"),
        Some(&fresh("d/f", Kind::File, FreshReason::SymlinkTarget))
    );

    // ".." after a symlinked directory is physical: sd/../a is a (d/.. = root).
    let c = with(
        base(30),
        vec![link("sd", "d", 30), link("sub/l", "../sd/../b", 30)],
    );
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!(
        action_at(&plan, "b"),
        Some(&fresh("b", Kind::File, FreshReason::SymlinkTarget))
    );

    // A loop ends.
    let plan = target_plan(vec![link("x", "y", 30), link("y", "x", 30)], vec![]);
    assert_eq!(plan.counts().freshened, 2);
}

#[test]
fn unchanged_symlink_leaves_its_target_alone() {
    let plan = target_plan(vec![], vec![]);
    assert_eq!(plan.counts().retimed, plan.actions.len());
}

#[test]
fn symlink_target_keeps_its_own_fresh_reason() {
    let plan = target_plan(
        vec![link("sub/l", "../b", 30), file("b", 9, 0o644, 30)],
        vec![],
    );
    assert_eq!(
        action_at(&plan, "b"),
        Some(&fresh("b", Kind::File, FreshReason::Changed))
    );
}

#[test]
fn symlink_target_that_is_created_gets_the_fresh_mtime() {
    // The target is a product (newest of all in B) and, in a second case, a
    // file the build rewrote: B's content is written, with the fresh mtime.
    for (b_extra, replaces) in [
        (vec![file("prod", 5, 0o644, 500)], None),
        (vec![file("b", 6, 0o644, 500)], Some(Kind::File)),
    ] {
        let target = b_extra[0].path.to_string();
        let plan = target_plan(
            vec![link("sub/l", &format!("../{target}"), 30)],
            b_extra.clone(),
        );
        // The target gets the fresh mtime, not its own 500.
        assert_eq!(plan.fresh_mtime, NOW);
        assert_eq!(
            action_at(&plan, &target),
            Some(&create(&with_mtime(&b_extra[0], NOW), replaces))
        );
        assert!(plan.to_string().contains("fresh: symlink target"));
    }
}

#[test]
fn symlink_to_removed_or_deleted_target_freshens_nothing() {
    // B deleted b (Remove), the user deleted a: neither is kept.
    let p = m(base(10));
    let mut b = base(20);
    b.retain(|e| e.path != rp("b"));
    let mut c = base(30);
    c.retain(|e| e.path != rp("a"));
    let c = with(c, vec![link("l2", "b", 30), link("sub/l", "../a", 30)]);
    let plan = plan_checked(&p, &m(b), &c, NOW);
    assert_eq!(action_at(&plan, "b"), Some(&remove("b", Kind::File)));
    assert_eq!(action_at(&plan, "a"), None);
    assert_eq!(plan.counts().freshened, 1, "only l2 (sub/l is unchanged)");
}

// -------------------------------------------------------- fresh_mtime

#[test]
fn fresh_mtime_is_after_every_restored_mtime_and_not_before_now() {
    let p = m(vec![dir("d", 0o755, 10), file("d/f", 1, 0o644, 10)]);
    let b = m(vec![
        Entry {
            mtime: Timestamp::new(90, 700),
            ..dir("d", 0o755, 0)
        },
        file("d/f", 1, 0o644, 40),
        file("d/g", 2, 0o644, 60),
    ]);
    let c = m(vec![dir("d", 0o755, 30), file("d/f", 1, 0o644, 30)]);
    // A directory's restored mtime counts too; nanoseconds are kept. The
    // newest restored (90.7) lies after now - 1 s: all move back together.
    let plan = plan_checked(&p, &b, &c, t(5));
    assert_eq!(plan.fresh_mtime, t(5));
    assert_eq!(plan.shifted_back_nanos, 86_000_000_700);
    assert_eq!(
        action_at(&plan, "d"),
        Some(&Action::Retime {
            path: rp("d"),
            kind: Kind::Dir,
            mode: 0o755,
            mtime: Timestamp::new(4, 0)
        })
    );
    // Not after now: kept, and the fresh mtime is up to 1 s ahead.
    let plan = plan_checked(&p, &b, &c, t(91));
    assert_eq!(
        (plan.fresh_mtime, plan.shifted_back_nanos),
        (Timestamp::new(91, 700), 0)
    );
    let plan = plan_checked(&p, &b, &c, Timestamp::new(90, 700));
    assert_eq!(
        (plan.fresh_mtime, plan.shifted_back_nanos),
        (Timestamp::new(91, 700), 0)
    );
    let plan = plan_checked(&p, &b, &c, Timestamp::new(90, 699));
    assert_eq!(
        (plan.fresh_mtime, plan.shifted_back_nanos),
        (Timestamp::new(90, 699), 1_000_000_001)
    );
    let plan = plan_checked(&p, &b, &c, NOW);
    assert_eq!((plan.fresh_mtime, plan.shifted_back_nanos), (NOW, 0));
}

/// Finding 1 of #12: the earlier build ran on a machine whose clock was an
/// hour ahead. Restored as they are, its products would be newer than what
/// make writes now: the rebuilt `main.o` older than the restored `app`, so
/// no relink. The products move back together instead: order and gaps
/// kept, the newest 1 s before now, the changed source fresh, the old
/// sources where they were.
#[test]
fn clock_skew_products_from_the_future_are_moved_back_keeping_their_order() {
    let now = Timestamp::new(1_700_000_000, 500);
    let hour_ahead = 1_700_003_600;
    let p = m(vec![
        file("main.c", 1, 0o644, 100),
        file("util.c", 2, 0o644, 100),
    ]);
    let b = m(vec![
        file("app", 9, 0o755, hour_ahead + 2),
        file("main.c", 1, 0o644, 100),
        file("main.o", 7, 0o644, hour_ahead + 1),
        file("util.c", 2, 0o644, 100),
        file("util.o", 8, 0o644, hour_ahead),
    ]);
    let c = m(vec![
        file("main.c", 3, 0o644, 1_600_000_000),
        file("util.c", 2, 0o644, 5),
    ]);
    let plan = plan_checked(&p, &b, &c, now);
    let mtime = |path: &str| match action_at(&plan, path) {
        Some(Action::Create { entry, .. }) => entry.mtime,
        Some(Action::Retime { mtime, .. }) => *mtime,
        other => panic!("{path}: {other:?}"),
    };
    let shift = Timestamp::new(hour_ahead + 3, 0).as_nanos() - now.as_nanos();
    assert_eq!(plan.shifted_back_nanos, shift);
    assert_eq!(
        mtime("app").plus_secs(1),
        now,
        "the newest is 1 s before now"
    );
    assert_eq!(mtime("main.o").plus_secs(1), mtime("app"));
    assert_eq!(mtime("util.o").plus_secs(1), mtime("main.o"));
    assert_eq!(mtime("util.c"), t(100), "the sources' old mtimes stay");
    assert_eq!(plan.shifted_from, t(hour_ahead));
    assert_eq!(
        action_at(&plan, "main.c"),
        Some(&fresh("main.c", Kind::File, FreshReason::Changed))
    );
    assert_eq!(plan.fresh_mtime, now, "no need to wait for the clock");
    assert!(
        plan.warnings()[0].contains("moved back"),
        "{:?}",
        plan.warnings()
    );
}

/// The same with a crafted pack: a product dated 2446 is moved to now - 1 s,
/// alone (older products stay). Only a chain of mtimes each closer than the
/// shift to the next takes the older ones with it, so far back that
/// `apply`'s plan check refuses the plan (below what file systems store)
/// rather than restore a time in the future.
#[test]
fn clock_skew_crafted_far_future_mtime_is_moved_back_or_refused() {
    let now = t(1_700_000_000);
    let max = crate::apply::MAX_RESTORED_SECS;
    let root = std::path::Path::new("/build");
    let b = m(vec![
        file("a.o", 1, 0o644, 1_600_000_000),
        file("z.o", 2, 0o644, max),
    ]);
    let plan = plan_checked(&m(vec![]), &b, &m(vec![]), now);
    let mtime = |plan: &Plan, path: &str| match action_at(plan, path) {
        Some(Action::Create { entry, .. }) => entry.mtime,
        other => panic!("{other:?}"),
    };
    assert_eq!(mtime(&plan, "z.o"), t(1_700_000_000 - 1));
    assert_eq!(mtime(&plan, "a.o"), t(1_600_000_000));
    crate::apply::check_plan(root, &plan).unwrap();

    let shift = max + 1 - now.secs;
    let chain = m(vec![
        file("x.o", 1, 0o644, max - shift),
        file("y.o", 3, 0o644, max - shift / 2),
        file("z.o", 2, 0o644, max),
    ]);
    let plan = plan_checked(&m(vec![]), &chain, &m(vec![]), now);
    assert!(mtime(&plan, "x.o").secs < crate::apply::MIN_RESTORED_SECS);
    let err = crate::apply::check_plan(root, &plan).unwrap_err();
    assert!(err.to_string().contains("x.o"), "{err}");
}

// ------------------------------------------------------- display

#[test]
fn display_has_one_line_per_action_and_a_summary() {
    let p = m(vec![
        file("a", 1, 0o644, 10),
        file("r", 1, 0o644, 10),
        dir("d", 0o755, 10),
    ]);
    let b = m(vec![
        file("a", 1, 0o644, 20),
        dir("d", 0o755, 20),
        file("d/o", 3, 0o644, 20),
        file("n", 2, 0o644, 20),
    ]);
    let c = m(vec![
        file("a", 1, 0o644, 30),
        link("d", "x", 30),
        file("r", 1, 0o644, 30),
    ]);
    let text = plan_checked(&p, &b, &c, NOW).to_string();
    assert_eq!(
        text,
        "retime   file    a\n\
         fresh    symlink d  (changed)\n\
         skip             d/o  (d is kept as a non-directory)\n\
         create   file    n  (product)\n\
         remove   file    r\n\
         1 to create, 1 to retime, 1 to remove, 1 fresh, 1 skipped; fresh mtime 1000.000000000\n"
    );
}

// ------------------------------------------------------- determinism

#[test]
fn plan_is_deterministic_and_independent_of_input_order() {
    for (p, b, c, now) in scenarios(50) {
        let first = plan(&p, &b, &c, now);
        assert_eq!(first, plan(&p, &b, &c, now));
        let shuffle = |man: &Manifest| {
            let mut e = man.entries().to_vec();
            e.reverse();
            let n = e.len();
            if n > 2 {
                e.swap(0, n / 2);
            }
            Manifest::new(e).unwrap()
        };
        assert_eq!(first, plan(&shuffle(&p), &shuffle(&b), &shuffle(&c), now));
    }
}

// ------------------------------------------- random trees and edits

/// Names chosen so that siblings sort between a directory and its children.
const NAMES: [&str; 5] = ["a", "b", "a-b", "a.c", "d"];
const TARGETS: [&str; 13] = [
    "a", "b", "d", "a/b", "../a", "../b", "../../a", "a-b/d", "../a.c", "/abs", "a/", "x/../a",
    "../..",
];

type Tree = BTreeMap<Vec<u8>, Entry>;

fn path_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// What an entry is, drawn by [`spec`]: a file (one of a few contents, two
/// modes), a symlink (to one of [`TARGETS`]) or a directory.
#[derive(Debug, Clone)]
enum Spec {
    File(u128, u32),
    Link(&'static str),
    Dir(u32),
}

impl Spec {
    fn entry(&self, path: &str, mtime: i64) -> Entry {
        match *self {
            Spec::File(hash, mode) => file(path, hash, mode, mtime),
            Spec::Link(target) => link(path, target, mtime),
            Spec::Dir(mode) => dir(path, mode, mtime),
        }
    }
}

/// Files twice as often as symlinks or directories (none if `!allow_dir`).
fn spec(contents: u128, allow_dir: bool) -> BoxedStrategy<Spec> {
    let file =
        (0..contents, prop::sample::select(vec![0o644, 0o755])).prop_map(|(h, m)| Spec::File(h, m));
    let link = prop::sample::select(TARGETS.to_vec()).prop_map(Spec::Link);
    let dir = prop::sample::select(vec![0o755, 0o700]).prop_map(Spec::Dir);
    if allow_dir {
        prop_oneof![2 => file, 1 => link, 1 => dir].boxed()
    } else {
        prop_oneof![2 => file, 1 => link].boxed()
    }
}

/// One entry of a generated P, with the mtimes B and C give it, and (for a
/// directory) its children: one slot per name of [`NAMES`].
#[derive(Debug, Clone)]
struct GenEntry {
    spec: Spec,
    mtime: i64,
    b_mtime: i64,
    c_mtime: i64,
    children: Vec<Option<GenEntry>>,
}

/// A directory's children, each name present half the time; directories
/// three levels deep at most.
fn children(depth: u32) -> BoxedStrategy<Vec<Option<GenEntry>>> {
    let entry = (spec(4, depth < 3), 0..20i64, 20..50i64, 0..200i64).prop_flat_map(
        move |(spec, mtime, b_mtime, c_mtime)| {
            let kids = if matches!(spec, Spec::Dir(_)) {
                children(depth + 1)
            } else {
                Just(Vec::new()).boxed()
            };
            kids.prop_map(move |children| GenEntry {
                spec: spec.clone(),
                mtime,
                b_mtime,
                c_mtime,
                children,
            })
        },
    );
    prop::collection::vec(prop::option::of(entry), NAMES.len()).boxed()
}

/// P as a tree, and the mtimes B and C give each of its entries.
fn flatten(prefix: &str, slots: &[Option<GenEntry>], out: &mut Vec<(Entry, i64, i64)>) {
    for (name, slot) in NAMES.iter().zip(slots) {
        let Some(g) = slot else { continue };
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        out.push((g.spec.entry(&path, g.mtime), g.b_mtime, g.c_mtime));
        flatten(&path, &g.children, out);
    }
}

/// One random edit: add, rewrite, delete, chmod, retarget, type change.
#[derive(Debug, Clone)]
enum Edit {
    /// Under a random directory (`None`, or no directory: the root).
    Add(Option<prop::sample::Index>, usize, Spec),
    Rewrite(prop::sample::Index, u128),
    Delete(prop::sample::Index),
    Chmod(prop::sample::Index),
    Retarget(prop::sample::Index, &'static str),
    /// To the first of these whose kind differs from the entry's.
    Retype(prop::sample::Index, [Spec; 3]),
}

/// An edit, and the mtime C gives what it touched.
fn edit_op() -> impl Strategy<Value = (Edit, i64)> {
    use prop::sample::Index;
    let idx = any::<Index>;
    let parent = prop_oneof![1 => Just(None), 2 => idx().prop_map(Some)];
    let edit = prop_oneof![
        (parent, 0..NAMES.len(), spec(4, true)).prop_map(|(p, n, s)| Edit::Add(p, n, s)),
        (idx(), 0..6u128).prop_map(|(i, h)| Edit::Rewrite(i, h)),
        idx().prop_map(Edit::Delete),
        idx().prop_map(Edit::Chmod),
        (idx(), prop::sample::select(TARGETS.to_vec())).prop_map(|(i, t)| Edit::Retarget(i, t)),
        (
            idx(),
            0..3usize,
            (0..4u128, prop::sample::select(vec![0o644, 0o755])),
            prop::sample::select(TARGETS.to_vec()),
            prop::sample::select(vec![0o755, 0o700]),
        )
            .prop_map(|(i, first, (hash, mode), target, dir_mode)| {
                // One spec of each kind, in an order starting at `first`.
                let mut kinds = [
                    Spec::File(hash, mode),
                    Spec::Link(target),
                    Spec::Dir(dir_mode),
                ];
                kinds.rotate_left(first);
                Edit::Retype(i, kinds)
            }),
    ];
    (edit, 0..200i64)
}

fn remove_subtree(tree: &mut Tree, path: &[u8]) {
    tree.remove(path);
    let mut prefix = path.to_vec();
    prefix.push(b'/');
    let inside: Vec<Vec<u8>> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in inside {
        tree.remove(&k);
    }
}

/// Applies `edits` to `tree`; touched entries get `mtime`. Returns the
/// paths each edit touched, with the mtime C gives them.
fn edit(tree: &mut Tree, edits: &[(Edit, i64)], mtime: i64) -> BTreeMap<Vec<u8>, i64> {
    let mut touched = BTreeMap::new();
    for (op, c_mtime) in edits {
        let keys: Vec<Vec<u8>> = tree.keys().cloned().collect();
        let (key, new) = match op {
            Edit::Add(parent, name, spec) => {
                let dirs: Vec<&Vec<u8>> =
                    keys.iter().filter(|k| tree[*k].node == Node::Dir).collect();
                let parent = match parent {
                    Some(i) if !dirs.is_empty() => path_str(dirs[i.index(dirs.len())]).to_string(),
                    _ => String::new(),
                };
                let name = NAMES[*name];
                let path = if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}/{name}")
                };
                if parent.split('/').count() < 4 && !tree.contains_key(path.as_bytes()) {
                    touched.insert(path.clone().into_bytes(), *c_mtime);
                    let e = spec.entry(&path, mtime);
                    tree.insert(path.into_bytes(), e);
                }
                continue;
            }
            _ if keys.is_empty() => continue,
            Edit::Rewrite(i, _)
            | Edit::Delete(i)
            | Edit::Chmod(i)
            | Edit::Retarget(i, _)
            | Edit::Retype(i, _) => {
                let key = keys[i.index(keys.len())].clone();
                let path = path_str(&key).to_string();
                let old = tree[&key].clone();
                let new = match (op, &old.node) {
                    (Edit::Rewrite(_, h), Node::File { .. }) => {
                        Some(file(&path, *h, old.mode, mtime))
                    }
                    (Edit::Delete(_), _) => None,
                    (Edit::Chmod(_), Node::File { .. } | Node::Dir) => Some(Entry {
                        mode: old.mode ^ 0o022,
                        mtime: t(mtime),
                        ..old.clone()
                    }),
                    (Edit::Retarget(_, target), Node::Symlink { .. }) => {
                        Some(link(&path, target, mtime))
                    }
                    (Edit::Retype(_, kinds), _) => kinds
                        .iter()
                        .map(|s| s.entry(&path, mtime))
                        .find(|e| e.node.kind() != old.node.kind()),
                    _ => continue,
                };
                if new.as_ref().map(|e| e.node.kind()) != Some(Kind::Dir) || old.node != Node::Dir {
                    remove_subtree(tree, &key);
                }
                (key, new)
            }
        };
        touched.insert(key.clone(), *c_mtime);
        if let Some(e) = new {
            tree.insert(key, e);
        }
    }
    touched
}

fn manifest(tree: &Tree) -> Manifest {
    Manifest::new(tree.values().cloned().collect()).unwrap()
}

fn tree_of(man: &Manifest) -> Tree {
    man.entries()
        .iter()
        .map(|e| (e.path.as_bytes().to_vec(), e.clone()))
        .collect()
}

/// P, B, C and now: the input of one plan.
type Scenario = (Manifest, Manifest, Manifest, Timestamp);

/// The one generator of random trees and edits: P random; B = P + build
/// edits (touched at 100..150, the rest at 20..50); C = P + user edits,
/// every entry of C with an arbitrary mtime (a fresh unpack).
fn scenario() -> impl Strategy<Value = Scenario> {
    (
        children(0),
        prop::collection::vec(edit_op(), 0..8),
        100..150i64,
        prop::collection::vec(edit_op(), 0..6),
        0..300i64,
    )
        .prop_map(|(slots, build_edits, build_time, user_edits, now)| {
            let mut flat = Vec::new();
            flatten("", &slots, &mut flat);
            let mut p = Tree::new();
            let mut b = Tree::new();
            let mut c_mtimes = BTreeMap::new();
            for (e, b_mtime, c_mtime) in flat {
                let key = e.path.as_bytes().to_vec();
                b.insert(
                    key.clone(),
                    Entry {
                        mtime: t(b_mtime),
                        ..e.clone()
                    },
                );
                c_mtimes.insert(key.clone(), c_mtime);
                p.insert(key, e);
            }
            edit(&mut b, &build_edits, build_time);
            let mut c = p.clone();
            c_mtimes.extend(edit(&mut c, &user_edits, 0));
            for (k, e) in c.iter_mut() {
                e.mtime = t(c_mtimes[k]);
            }
            (manifest(&p), manifest(&b), manifest(&c), t(now))
        })
}

/// `n` scenarios, the same in every run (for the tests that count).
fn scenarios(n: usize) -> Vec<Scenario> {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = scenario();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

// ------------------------------------------- simulated application

fn parent_of(path: &[u8]) -> Option<&[u8]> {
    path.iter().rposition(|&b| b == b'/').map(|i| &path[..i])
}

fn ancestors_are_dirs(tree: &Tree, path: &[u8]) -> Result<(), String> {
    let mut p = path;
    while let Some(parent) = parent_of(p) {
        match tree.get(parent) {
            Some(e) if e.node == Node::Dir => {}
            other => {
                return Err(format!(
                    "{}: ancestor {} is {other:?}",
                    path_str(path),
                    path_str(parent)
                ))
            }
        }
        p = parent;
    }
    Ok(())
}

fn has_children(tree: &Tree, path: &[u8]) -> bool {
    let mut prefix = path.to_vec();
    prefix.push(b'/');
    tree.range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// Applies `plan` to C the way `apply` does, checking every precondition:
/// removals deepest first, creations parents first, then times.
fn simulate(c: &Manifest, plan: &Plan) -> Result<Tree, String> {
    let mut tree = tree_of(c);
    for action in plan.actions.iter().rev() {
        let (path, kind) = match action {
            Action::Remove { path, kind } => (path, *kind),
            Action::Create {
                entry,
                replaces: Some(kind),
            } => (&entry.path, *kind),
            _ => continue,
        };
        let key = path.as_bytes();
        ancestors_are_dirs(&tree, key)?;
        match tree.get(key) {
            Some(e) if e.node.kind() == kind => {}
            other => return Err(format!("remove {path}: found {other:?}")),
        }
        if has_children(&tree, key) {
            return Err(format!("remove {path}: directory not empty"));
        }
        tree.remove(key);
    }
    for action in &plan.actions {
        if let Action::Create { entry, .. } = action {
            let key = entry.path.as_bytes();
            ancestors_are_dirs(&tree, key)?;
            if tree.contains_key(key) {
                return Err(format!("create {}: exists", entry.path));
            }
            tree.insert(key.to_vec(), entry.clone());
        }
    }
    for action in &plan.actions {
        match action {
            Action::Retime {
                path,
                kind,
                mode,
                mtime,
            } => {
                ancestors_are_dirs(&tree, path.as_bytes())?;
                let e = tree
                    .get_mut(path.as_bytes())
                    .ok_or(format!("retime {path}: missing"))?;
                if e.node.kind() != *kind {
                    return Err(format!("retime {path}: kind"));
                }
                e.mode = *mode;
                e.mtime = *mtime;
            }
            Action::Freshen { path, kind, .. } => {
                ancestors_are_dirs(&tree, path.as_bytes())?;
                let e = tree
                    .get_mut(path.as_bytes())
                    .ok_or(format!("freshen {path}: missing"))?;
                if e.node.kind() != *kind {
                    return Err(format!("freshen {path}: kind"));
                }
                e.mtime = plan.fresh_mtime;
            }
            _ => {}
        }
    }
    Ok(tree)
}

/// The file a symlink at `link` names in `tree`, written independently of
/// the planner: split the path, walk, substitute symlinks.
fn resolve_in(tree: &Tree, link: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    let mut cur: Vec<Vec<u8>> = link.split(|&b| b == b'/').map(|c| c.to_vec()).collect();
    cur.pop();
    let mut todo: Vec<Vec<u8>> = vec![target.to_vec()];
    let mut hops = 0;
    let mut result: Option<Vec<u8>> = None;
    while let Some(t) = todo.pop() {
        if t.starts_with(b"/") {
            return None;
        }
        let mut comps: Vec<Vec<u8>> = t.split(|&b| b == b'/').map(|c| c.to_vec()).collect();
        if comps.len() > 1 && comps.last().unwrap().is_empty() {
            *comps.last_mut().unwrap() = b".".to_vec();
        }
        comps.retain(|c| !c.is_empty());
        let mut rest = comps.into_iter();
        while let Some(comp) = rest.next() {
            if result.is_some() {
                return None;
            }
            match &comp[..] {
                b"." => {}
                b".." => {
                    cur.pop()?;
                }
                _ => {
                    let mut full = cur.clone();
                    full.push(comp.clone());
                    let key = full.join(&b'/');
                    match &tree.get(&key)?.node {
                        Node::Dir => cur = full,
                        Node::File { .. } => result = Some(key),
                        Node::Symlink { target, .. } => {
                            hops += 1;
                            if hops > 40 {
                                return None;
                            }
                            // Continue with the link's target, then the rest.
                            let remaining: Vec<Vec<u8>> = rest.collect();
                            if !remaining.is_empty() {
                                todo.push(remaining.join(&b'/'));
                            }
                            todo.push(target.to_vec());
                            break;
                        }
                    }
                }
            }
        }
    }
    result
}

/// What each path of the merged tree should hold, path by path, straight
/// from the table (mtime: B's for restored entries, `fresh` for the user's).
fn naive(
    p: Option<&Entry>,
    b: Option<&Entry>,
    c: Option<&Entry>,
    fresh: Timestamp,
    restored: impl Fn(Timestamp) -> Timestamp,
) -> Option<Entry> {
    let b = b.map(|b| with_mtime(b, restored(b.mtime)));
    let b = b.as_ref();
    match (p, b, c) {
        (None, Some(b), Some(c)) if b.same_content_and_mode(c) => Some(Entry {
            mode: b.mode,
            mtime: b.mtime,
            ..c.clone()
        }),
        (None, _, Some(c)) => Some(with_mtime(c, fresh)),
        (Some(p), _, Some(c)) if !p.same_content_and_mode(c) => Some(with_mtime(c, fresh)),
        (Some(_), Some(b), Some(c)) => {
            let same_node =
                b.same_content_and_mode(c) || (b.node == Node::Dir && c.node == Node::Dir);
            if same_node {
                Some(Entry {
                    mode: b.mode,
                    mtime: b.mtime,
                    ..c.clone()
                })
            } else {
                Some(b.clone())
            }
        }
        (Some(_), None, Some(_)) => None,
        (None, Some(b), None) => Some(b.clone()),
        (_, _, None) => None,
    }
}

fn check_scenario(p: &Manifest, b: &Manifest, c: &Manifest, now: Timestamp) -> Result<(), String> {
    let plan = plan_checked(p, b, c, now);
    let fin = simulate(c, &plan).map_err(|e| format!("{e}\n{plan}"))?;
    // The result is a valid tree.
    Manifest::new(fin.values().cloned().collect()).map_err(|e| e.to_string())?;

    let fresh = plan.fresh_mtime;
    // Targets of the user's symlinks, resolved in the result.
    let mut targets = BTreeSet::new();
    for e in c.entries() {
        let changed = p.get(&e.path).is_none_or(|pe| !pe.same_content_and_mode(e));
        if let (true, Node::Symlink { target, .. }) = (changed, &e.node) {
            if let Some(f) = resolve_in(&fin, e.path.as_bytes(), target) {
                targets.insert(f);
            }
        }
    }
    let mut paths: BTreeSet<RelPath> = BTreeSet::new();
    for man in [p, b, c] {
        paths.extend(man.entries().iter().map(|e| e.path.clone()));
    }
    let mut restored = Vec::new();
    for path in &paths {
        let key = path.as_bytes();
        let (pe, be, ce) = (p.get(path), b.get(path), c.get(path));
        let got = fin.get(key);
        let action = plan.actions.iter().find(|a| a.path() == path);
        let ctx = || {
            format!("{path}: P={pe:?}\nB={be:?}\nC={ce:?}\ngot={got:?}\naction={action:?}\n{plan}")
        };
        // Never resurrected; the user's changes always win.
        if pe.is_some() && ce.is_none() && got.is_some() {
            return Err(format!("resurrected {}", ctx()));
        }
        if let Some(ce) = ce {
            if pe.is_none_or(|pe| !pe.same_content_and_mode(ce))
                && got.is_none_or(|g| !g.same_content_and_mode(ce) || g.node != ce.node)
            {
                return Err(format!("user change lost {}", ctx()));
            }
        }
        match action {
            Some(Action::Skip { reason, .. }) => {
                // Skipped: C's entry (if any) is untouched, and the reason holds.
                if got != ce {
                    return Err(format!("skip changed C {}", ctx()));
                }
                if be.is_none() && *reason != SkipReason::DirectoryNotEmpty {
                    return Err(format!("pointless skip {}", ctx()));
                }
                let ok = match reason {
                    SkipReason::DirectoryNotEmpty => {
                        ce.is_some_and(|c| c.node == Node::Dir)
                            && has_children(&fin, key)
                            && naive(pe, be, ce, fresh, |t| plan.restored_mtime(t))
                                .is_none_or(|n| n.node != Node::Dir)
                    }
                    SkipReason::AncestorNotDirectory(a) => {
                        path.is_inside(a)
                            && ce.is_none()
                            && fin.get(a.as_bytes()).is_some_and(|e| e.node != Node::Dir)
                    }
                    SkipReason::AncestorRemoved(a) => {
                        path.is_inside(a) && ce.is_none() && !fin.contains_key(a.as_bytes())
                    }
                    // The planner never makes these; `restore` does, for make builds.
                    SkipReason::StaticArchive => false,
                    // Random scenarios have nothing hidden from the scan.
                    SkipReason::Occupied | SkipReason::LinkedOutside => false,
                };
                if !ok {
                    return Err(format!("unjustified skip {}", ctx()));
                }
            }
            _ => {
                let mut want = naive(pe, be, ce, fresh, |t| plan.restored_mtime(t));
                if targets.contains(key) {
                    if let Some(w) = want.as_mut() {
                        w.mtime = fresh;
                    }
                }
                if got != want.as_ref() {
                    return Err(format!("want {want:?} {}", ctx()));
                }
            }
        }
        if let Some(Action::Create { entry, .. }) = action {
            if entry.mtime != fresh {
                restored.push(entry.mtime);
            }
        }
        if let Some(Action::Retime { mtime, .. }) = action {
            restored.push(*mtime);
        }
    }
    // Mtime order: everything the plan freshened is strictly newer than
    // everything it restored.
    let newest = restored.iter().max().copied();
    for action in &plan.actions {
        let freshened = match action {
            Action::Freshen { .. } => true,
            Action::Create { entry, .. } => entry.mtime == fresh,
            _ => false,
        };
        if freshened {
            let m = fin[action.path().as_bytes()].mtime;
            if m != fresh || newest.is_some_and(|n| n >= m) || m < now {
                return Err(format!("mtime order {action:?}\n{plan}"));
            }
        }
    }
    Ok(())
}

proptest! {
    // 5000: the 3000 seeds and the 2000 cases of the two tests this was.
    #![proptest_config(ProptestConfig::with_cases(5000))]
    #[test]
    fn random_scenarios_apply_to_the_expected_tree((p, b, c, now) in scenario()) {
        if let Err(e) = check_scenario(&p, &b, &c, now) {
            prop_assert!(false, "{}", e);
        }
    }
}

// ------------------------------------------------------- performance

#[test]
#[ignore = "performance: cargo test --release --lib plan::tests::perf -- --ignored --nocapture"]
fn perf_200k_entries() {
    let mut p = Vec::new();
    let mut b = Vec::new();
    let mut c = Vec::new();
    for d in 0..2000 {
        let dp = format!("dir{d:04}");
        p.push(dir(&dp, 0o755, 10));
        b.push(dir(&dp, 0o755, 20));
        c.push(dir(&dp, 0o755, 30));
        for f in 0..50 {
            let src = format!("{dp}/src{f:02}.c");
            let obj = format!("{dp}/src{f:02}.o");
            let h = (d * 100 + f) as u128;
            p.push(file(&src, h, 0o644, 10));
            b.push(file(&src, h, 0o644, 20));
            b.push(file(&obj, h + 1_000_000, 0o644, 21));
            let ch = if f == 7 { h + 7 } else { h };
            c.push(file(&src, ch, 0o644, 30));
        }
    }
    let (p, b, c) = (m(p), m(b), m(c));
    assert!(b.len() >= 200_000);
    let start = std::time::Instant::now();
    let plan = plan(&p, &b, &c, NOW);
    let took = start.elapsed();
    let counts = plan.counts();
    println!("plan of {} entries took {took:?}: {counts:?}", b.len());
    assert_eq!(counts.freshened, 2000);
    assert_eq!(counts.created, 100_000);
}

/// The generator reaches every kind of action, skip and freshening, so the
/// property tests above exercise all of them.
#[test]
fn random_scenarios_cover_every_action() {
    let mut seen = BTreeSet::new();
    for (p, b, c, now) in scenarios(3000) {
        let plan = plan(&p, &b, &c, now);
        for a in &plan.actions {
            seen.insert(match a {
                Action::Create { entry, replaces } => format!(
                    "create {:?} {:?}{}",
                    entry.node.kind(),
                    replaces,
                    if entry.mtime == plan.fresh_mtime {
                        " fresh"
                    } else {
                        ""
                    }
                ),
                Action::Skip { reason, .. } => format!("skip {:?}", std::mem::discriminant(reason)),
                Action::Freshen { reason, .. } => format!("fresh {reason:?}"),
                Action::Retime { kind, .. } => format!("retime {kind:?}"),
                Action::Remove { kind, .. } => format!("remove {kind:?}"),
            });
        }
    }
    // 3 kinds x 4 replaces, fresh creates, 3 skips, 3 freshens, 3 retimes,
    // 3 removes; only "create Dir Some(Dir)" never happens (a Retime).
    let fresh_creates = seen.iter().filter(|k| k.ends_with(" fresh")).count();
    assert!(fresh_creates >= 1, "{seen:?}");
    assert_eq!(seen.len() - fresh_creates, 11 + 3 + 3 + 3 + 3, "{seen:?}");
}

// ------------------------------------ what the scan saw but did not record

fn plan_seen(p: &Manifest, b: &Manifest, c: &Manifest, hidden: &[&str], linked: &[&str]) -> Plan {
    let hidden: Vec<RelPath> = hidden.iter().map(|s| rp(s)).collect();
    let linked: Vec<RelPath> = linked.iter().map(|s| rp(s)).collect();
    let plan = plan_with(
        p,
        b,
        c,
        Unrecorded {
            hidden: &hidden,
            linked_outside: &linked,
        },
        NOW,
    );
    check_invariants(p, b, c, NOW, &plan);
    plan
}

/// Finding 2 of #12, tree side: a fifo (or socket, device, excluded name)
/// in the new tree where B has a product, or under a directory B removes
/// or replaces. The scan leaves those out, so the planner used to plan a
/// `Create` there (and `apply` failed at `O_EXCL`, "File exists", after its
/// first write) or a `Remove` of their directory ("Directory not empty").
#[test]
fn special_file_where_the_checkpoint_has_a_product_is_skipped() {
    let p = m(vec![]);
    let b = m(vec![
        dir("d", 0o755, 20),
        file("d/x.o", 1, 0o644, 20),
        file("p.o", 2, 0o644, 20),
        file("q.o", 3, 0o644, 20),
    ]);
    let c = m(vec![]);
    let plan = plan_seen(&p, &b, &c, &["d", "p.o"], &[]);
    assert_eq!(
        plan.actions,
        vec![
            skip("d", SkipReason::Occupied),
            skip("d/x.o", not_dir("d")),
            skip("p.o", SkipReason::Occupied),
            create(&b.entries()[3], None),
        ]
    );
    assert!(plan
        .warnings()
        .iter()
        .any(|w| w.contains("2 products not restored")));
    assert!(plan
        .to_string()
        .contains("occupied by an entry the scan does not record"));
    // Hidden where B has nothing: no action at all.
    let plan = plan_seen(&p, &m(vec![]), &c, &["fifo"], &[]);
    assert_eq!(plan.actions, vec![]);
}

#[test]
fn special_file_inside_a_directory_the_checkpoint_removes_keeps_it() {
    let p = m(vec![dir("d", 0o755, 10), file("d/a", 1, 0o644, 10)]);
    let c = m(vec![dir("d", 0o755, 30), file("d/a", 1, 0o644, 30)]);
    // B deleted d, or replaced it by a file: d stays, d/a goes.
    for b in [m(vec![]), m(vec![file("d", 5, 0o644, 20)])] {
        let plan = plan_seen(&p, &b, &c, &["d/fifo"], &[]);
        assert_eq!(
            plan.actions,
            vec![
                skip("d", SkipReason::DirectoryNotEmpty),
                remove("d/a", Kind::File),
            ],
            "{b:?}"
        );
    }
    // Without the fifo, d is removed (or replaced) as before.
    let plan = plan_seen(&p, &m(vec![]), &c, &[], &[]);
    assert_eq!(
        plan.actions,
        vec![remove("d", Kind::Dir), remove("d/a", Kind::File)]
    );
}

/// Finding 4 of #12: a file of the new tree that is a hard link to a file
/// outside it. A `Retime` (or a freshen) would set the outside file's
/// mtime. Unchanged, it is left alone (`Skip { LinkedOutside }`: its own
/// mtime is as safe as any for an unchanged source); changed, new or the
/// target of a changed symlink, it would need the fresh mtime, so the plan
/// names it in `cannot_freshen` and restore falls back.
#[test]
fn hard_link_to_a_file_outside_is_never_retimed() {
    let p = m(vec![file("h.c", 1, 0o644, 10), file("k.c", 2, 0o644, 10)]);
    let b = m(vec![file("h.c", 1, 0o644, 20), file("k.c", 2, 0o644, 20)]);
    let c = m(vec![file("h.c", 1, 0o644, 30), file("k.c", 2, 0o644, 30)]);
    let plan = plan_seen(&p, &b, &c, &[], &["h.c"]);
    assert_eq!(
        plan.actions,
        vec![
            skip("h.c", SkipReason::LinkedOutside),
            retime(&b.entries()[1])
        ]
    );
    assert_eq!(plan.fall_back_reason(), None);
    assert!(plan.warnings().iter().any(|w| w.contains("hard links")));

    // Changed: it would need the fresh mtime.
    let c2 = m(vec![file("h.c", 9, 0o644, 30), file("k.c", 2, 0o644, 30)]);
    let plan = plan_seen(&p, &b, &c2, &[], &["h.c"]);
    assert_eq!(plan.cannot_freshen, vec![rp("h.c")]);
    assert!(plan.fall_back_reason().unwrap().contains("h.c changed"));

    // The target of a changed symlink, too.
    let c3 = with(c.entries().to_vec(), vec![link("l", "h.c", 30)]);
    let plan = plan_seen(&p, &b, &c3, &[], &["h.c"]);
    assert_eq!(plan.cannot_freshen, vec![rp("h.c")]);
}
