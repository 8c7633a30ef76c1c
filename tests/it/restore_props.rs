//! Property test of the whole engine through the binary: a random source
//! tree P, a random "build" that turns it into B, a random user change that
//! turns P into C; after `restore`, the tree must be exactly what the merge
//! promises, with the mtime order that make needs.

use crate::util::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File(Vec<u8>, u32),
    Link(String),
}

type Tree = BTreeMap<String, Node>;

const DIRS: [&str; 3] = ["src", "src/sub", "obj"];

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z ]{0,40}\n".prop_map(|s| s.into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn file_name() -> impl Strategy<Value = String> {
    (0..DIRS.len() + 1, "[a-d]{1,2}(\\.c|\\.o|\\.h)?").prop_map(|(d, n)| {
        if d == DIRS.len() {
            n
        } else {
            format!("{}/{n}", DIRS[d])
        }
    })
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        4 => (content(), prop::sample::select(vec![0o644u32, 0o755, 0o444])).prop_map(|(c, m)| Node::File(c, m)),
        1 => "[a-d]{1,2}".prop_map(Node::Link),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    prop::collection::btree_map(file_name(), node(), 1..12)
}

/// Edits: put a node at a path (add, change, retarget, chmod) or delete it.
fn edits() -> impl Strategy<Value = Vec<(String, Option<Node>)>> {
    prop::collection::vec((file_name(), prop::option::weighted(0.8, node())), 0..8)
}

fn apply_edits(tree: &Tree, edits: &[(String, Option<Node>)]) -> Tree {
    let mut tree = tree.clone();
    for (path, node) in edits {
        match node {
            Some(node) => tree.insert(path.clone(), node.clone()),
            None => tree.remove(path),
        };
    }
    tree
}

fn materialise(root: &Path, tree: &Tree, mtime: i64) {
    for dir in DIRS {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (path, node) in tree {
        let full = root.join(path);
        let _ = std::fs::remove_file(&full);
        match node {
            Node::File(content, mode) => {
                std::fs::write(&full, content).unwrap();
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            Node::Link(target) => symlink(target, &full).unwrap(),
        }
    }
    set_all_mtimes(root, mtime);
}

fn read_tree(root: &Path) -> (Tree, BTreeMap<String, filetime::FileTime>) {
    let mut tree = Tree::new();
    let mut times = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if rel.starts_with(".nix-checkpoint") {
            continue;
        }
        let meta = entry.path().symlink_metadata().unwrap();
        times.insert(
            rel.clone(),
            filetime::FileTime::from_last_modification_time(&meta),
        );
        if entry.file_type().is_symlink() {
            tree.insert(
                rel,
                Node::Link(
                    std::fs::read_link(entry.path())
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                ),
            );
        } else if entry.file_type().is_file() {
            tree.insert(
                rel,
                Node::File(
                    std::fs::read(entry.path()).unwrap(),
                    meta.permissions().mode() & 0o7777,
                ),
            );
        }
    }
    (tree, times)
}

/// What the merge promises, per path: the user's change wins; what the
/// change deleted stays deleted; otherwise the build's result.
fn expected(p: &Tree, b: &Tree, c: &Tree) -> (Tree, Vec<String>, Vec<String>) {
    let mut result = Tree::new();
    let (mut fresh, mut restored) = (Vec::new(), Vec::new());
    let paths: std::collections::BTreeSet<&String> =
        p.keys().chain(b.keys()).chain(c.keys()).collect();
    for path in paths {
        let changed_by_user = c.get(path).is_some_and(|now| p.get(path) != Some(now));
        if changed_by_user {
            result.insert(path.clone(), c[path].clone());
            fresh.push(path.clone());
        } else if p.contains_key(path) && !c.contains_key(path) {
        } else if let Some(node) = b.get(path) {
            result.insert(path.clone(), node.clone());
            restored.push(path.clone());
        }
    }
    (result, fresh, restored)
}

/// The file that the symlink at `path` resolves to in `tree`, following
/// further links (targets are names in the link's own directory) as the
/// kernel does, at most 40; `None` for a dangling link, a loop or a path
/// that is not a link.
fn final_file(tree: &Tree, path: &str) -> Option<String> {
    let mut at = path.to_string();
    for _ in 0..=40 {
        match tree.get(&at)? {
            Node::File(..) => return (at != path).then_some(at),
            Node::Link(target) => {
                at = match at.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{target}"),
                    None => target.clone(),
                }
            }
        }
    }
    None
}

/// The property: restore makes the merged tree, restored entries keep the
/// build's mtimes and fresh ones are newer than all of them.
fn check_restore(
    p: &Tree,
    build: &[(String, Option<Node>)],
    user: &[(String, Option<Node>)],
) -> Result<(), TestCaseError> {
    let ws = Workspace::new();
    let mut b = apply_edits(p, build);
    // What gcc -MD leaves: with it, restore trusts make to see a
    // changed header (without, it falls back: not what this tests).
    b.insert(
        "deps.d".into(),
        Node::File(b"a.o: a.c a.h\n".to_vec(), 0o644),
    );
    let c = apply_edits(p, user);

    let root = ws.fresh_root();
    materialise(&root, p, 1);
    ws.snapshot();
    materialise(&root, &b, 0);
    for (path, node) in &b {
        if !p.contains_key(path) || p[path] != *node {
            // the build wrote these just now: distinct ns mtimes
            filetime::set_symlink_file_times(
                root.join(path),
                filetime::FileTime::from_unix_time(1000, 7),
                filetime::FileTime::from_unix_time(1_700_000_000, 123_456_789),
            )
            .unwrap();
        }
    }
    for (path, node) in p {
        if !b.contains_key(path) {
            let _ = node;
            let _ = std::fs::remove_file(root.join(path));
        }
    }
    let (_, b_times) = read_tree(&root);
    let checkpoint = ws.save("cp");

    let root = ws.fresh_root();
    materialise(&root, &c, 1);
    ws.restore(&checkpoint);
    let (got, times) = read_tree(&root);
    let (want, mut fresh, mut restored) = expected(p, &b, &c);
    prop_assert_eq!(&got, &want);
    // make stats through symlinks: the file a changed link ends at
    // (through more links) is fresh too.
    let targets: Vec<String> = fresh.iter().filter_map(|f| final_file(&want, f)).collect();
    restored.retain(|r| !targets.contains(r));
    fresh.extend(targets);
    let newest_restored = restored.iter().map(|r| times[r]).max();
    for r in &restored {
        prop_assert_eq!(times[r], b_times[r], "{} keeps the build's mtime", r);
    }
    for f in &fresh {
        if let Some(newest) = newest_restored {
            prop_assert!(
                times[f] > newest,
                "{} must be newer than every restored file",
                f
            );
        }
    }
    ws.assert_canary_intact();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn restore_gives_the_merged_tree(p in tree(), build in edits(), user in edits()) {
        check_restore(&p, &build, &user)?;
    }
}

/// A changed link whose target is a link too: the file at the end of the
/// chain is fresh (make stats through every link), not restored.
#[test]
fn a_retargeted_link_to_a_link_freshens_the_file_at_the_end() {
    let file = |text: &str| Node::File(text.as_bytes().to_vec(), 0o644);
    let link = |to: &str| Some(Node::Link(to.to_string()));
    let p: Tree = [
        ("src/a".to_string(), Node::Link("c".into())),
        ("src/b".to_string(), Node::Link("d".into())),
        ("src/c".to_string(), file("c\n")),
        ("src/d".to_string(), file("d\n")),
    ]
    .into();
    let build = [("obj/a.o".to_string(), Some(file("object\n")))];
    let user = [("src/a".to_string(), link("b"))];
    check_restore(&p, &build, &user).unwrap();
}
