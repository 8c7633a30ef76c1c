use super::*;
use crate::exit_code::ExitCode;
use crate::plan::{FreshReason, SkipReason};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

// ---------------------------------------------------------------- helpers

fn rp(s: &str) -> RelPath {
    RelPath::new(s.as_bytes()).unwrap()
}

fn ts(secs: i64, nanos: u32) -> Timestamp {
    Timestamp::new(secs, nanos)
}

fn hash_of(content: &[u8]) -> ContentHash {
    xxhash_rust::xxh3::xxh3_128(content)
}

/// An in-memory checkpoint; optionally fails on one blob, or after `n`
/// successful reads.
#[derive(Default)]
struct Blobs {
    map: HashMap<ContentHash, Vec<u8>>,
    fail_after: Option<usize>,
    reads: AtomicUsize,
}

impl BlobSource for Blobs {
    fn read_blob(
        &self,
        hash: ContentHash,
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.is_some_and(|limit| n >= limit) {
            return Err("pack checksum mismatch".into());
        }
        self.map
            .get(&hash)
            .cloned()
            .ok_or_else(|| format!("no blob {hash:032x}").into())
    }
}

#[derive(Default)]
struct Builder {
    actions: Vec<Action>,
    blobs: Blobs,
}

impl Builder {
    fn file(&mut self, path: &str, content: &[u8], mode: u32, mtime: Timestamp) -> &mut Self {
        self.file_replacing(path, content, mode, mtime, None)
    }

    fn file_replacing(
        &mut self,
        path: &str,
        content: &[u8],
        mode: u32,
        mtime: Timestamp,
        replaces: Option<Kind>,
    ) -> &mut Self {
        let hash = hash_of(content);
        self.blobs.map.insert(hash, content.to_vec());
        self.actions.push(Action::Create {
            entry: Entry {
                path: rp(path),
                node: Node::File {
                    size: content.len() as u64,
                    hash,
                },
                mode,
                mtime,
            },
            replaces,
        });
        self
    }

    fn symlink(&mut self, path: &str, target: &str, mtime: Timestamp) -> &mut Self {
        self.actions.push(Action::Create {
            entry: Entry {
                path: rp(path),
                node: Node::Symlink {
                    target: target.as_bytes().into(),
                    hash: hash_of(target.as_bytes()),
                },
                mode: 0o777,
                mtime,
            },
            replaces: None,
        });
        self
    }

    fn dir(&mut self, path: &str, mode: u32, mtime: Timestamp) -> &mut Self {
        self.dir_replacing(path, mode, mtime, None)
    }

    fn dir_replacing(
        &mut self,
        path: &str,
        mode: u32,
        mtime: Timestamp,
        replaces: Option<Kind>,
    ) -> &mut Self {
        self.actions.push(Action::Create {
            entry: Entry {
                path: rp(path),
                node: Node::Dir,
                mode,
                mtime,
            },
            replaces,
        });
        self
    }

    fn retime(&mut self, path: &str, kind: Kind, mode: u32, mtime: Timestamp) -> &mut Self {
        self.actions.push(Action::Retime {
            path: rp(path),
            kind,
            mode,
            mtime,
        });
        self
    }

    fn remove(&mut self, path: &str, kind: Kind) -> &mut Self {
        self.actions.push(Action::Remove {
            path: rp(path),
            kind,
        });
        self
    }

    fn freshen(&mut self, path: &str, kind: Kind) -> &mut Self {
        self.actions.push(Action::Freshen {
            path: rp(path),
            kind,
            reason: FreshReason::Changed,
        });
        self
    }

    fn skip(&mut self, path: &str) -> &mut Self {
        self.actions.push(Action::Skip {
            path: rp(path),
            reason: SkipReason::DirectoryNotEmpty,
        });
        self
    }

    fn plan(&self, fresh_mtime: Timestamp) -> Plan {
        let mut actions = self.actions.clone();
        actions.sort_by(|a, b| a.path().cmp(b.path()));
        Plan {
            actions,
            fresh_mtime,
            shifted_back_nanos: 0,
            shifted_from: Timestamp::default(),
            cannot_freshen: Vec::new(),
        }
    }
}

fn run(root: &Path, b: &Builder, fresh: Timestamp) -> Result<ApplyStats, ApplyError> {
    apply(root, &b.plan(fresh), &b.blobs, &Rewriter::identity())
}

fn lmeta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mtime(p: &Path) -> Timestamp {
    Timestamp::from_metadata(&lmeta(p))
}

fn mode(p: &Path) -> u32 {
    lmeta(p).permissions().mode() & 0o7777
}

fn set_mtime(p: &Path, t: Timestamp) {
    filetime::set_symlink_file_times(p, t.to_filetime(), t.to_filetime()).unwrap();
}

/// Everything about a directory tree: type, mode, mtime, content/target.
type Snapshot = BTreeMap<PathBuf, (String, u32, Timestamp, Vec<u8>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let ft = meta.file_type();
        let (kind, data) = if ft.is_symlink() {
            let t = std::fs::read_link(entry.path()).unwrap();
            ("symlink", t.into_os_string().into_encoded_bytes())
        } else if ft.is_dir() {
            ("dir", Vec::new())
        } else {
            ("file", std::fs::read(entry.path()).unwrap())
        };
        out.insert(
            entry.path().to_path_buf(),
            (
                kind.to_string(),
                meta.mode() & 0o7777,
                Timestamp::from_metadata(&meta),
                data,
            ),
        );
    }
    out
}

/// A temp dir holding `tree/` (the build root) and `outside/` (a canary
/// with a file and a subdirectory, all with old mtimes).
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir_all(outside.join("inner")).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    std::fs::write(outside.join("inner/f"), b"inner").unwrap();
    std::fs::set_permissions(outside.join("victim"), PermissionsExt::from_mode(0o640)).unwrap();
    for p in ["victim", "inner/f", "inner", ""] {
        set_mtime(&outside.join(p), ts(1_000_000, 7));
    }
    Fixture {
        _tmp: tmp,
        root,
        outside,
    }
}

fn marker_present(root: &Path) -> bool {
    root.join(MARKER).symlink_metadata().is_ok()
}

const T1: Timestamp = Timestamp::new(1_600_000_000, 123_456_789);
const T2: Timestamp = Timestamp::new(1_600_000_100, 1);
const T3: Timestamp = Timestamp::new(1_500_000_000, 999_999_999);
const FRESH: Timestamp = Timestamp::new(1_700_000_000, 424_242_424);

// ---------------------------------------------------------------- creating

#[test]
fn creates_every_kind_with_exact_modes_and_mtimes() {
    let f = fixture();
    let mut b = Builder::default();
    b.dir("d", 0o755, T1)
        .dir("d/ro", 0o555, T2)
        .file("d/ro/inside", b"written into a read-only dir", 0o644, T3)
        .file("d/tool.sh", b"#!/bin/sh\n", 0o755, T2)
        .file("d/readonly", b"ro", 0o444, T1)
        .file("d/empty", b"", 0o600, T3)
        .symlink("d/link", "tool.sh", T3)
        .symlink("d/dangling", "/nonexistent/target", T1)
        .file("top", b"top-level", 0o640, T2)
        .dir("d/sticky", 0o1777, T3);
    let stats = run(&f.root, &b, FRESH).unwrap();

    let r = &f.root;
    assert_eq!(
        std::fs::read(r.join("d/ro/inside")).unwrap(),
        b"written into a read-only dir"
    );
    assert_eq!(std::fs::read(r.join("d/tool.sh")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(std::fs::read(r.join("d/empty")).unwrap(), b"");
    assert_eq!(std::fs::read(r.join("top")).unwrap(), b"top-level");
    assert_eq!(
        std::fs::read_link(r.join("d/link")).unwrap(),
        Path::new("tool.sh")
    );
    assert_eq!(
        std::fs::read_link(r.join("d/dangling")).unwrap(),
        Path::new("/nonexistent/target")
    );
    for (path, want_mode, want_mtime) in [
        ("d", 0o755, T1),
        ("d/ro", 0o555, T2),
        ("d/ro/inside", 0o644, T3),
        ("d/tool.sh", 0o755, T2),
        ("d/readonly", 0o444, T1),
        ("d/empty", 0o600, T3),
        ("top", 0o640, T2),
        ("d/sticky", 0o1777, T3),
    ] {
        assert_eq!(mode(&r.join(path)), want_mode, "mode of {path}");
        assert_eq!(mtime(&r.join(path)), want_mtime, "mtime of {path}");
    }
    assert_eq!(mtime(&r.join("d/link")), T3, "a symlink's own mtime");
    assert_eq!(mtime(&r.join("d/dangling")), T1);
    assert!(lmeta(&r.join("d/link")).file_type().is_symlink());
    assert_eq!(
        stats,
        ApplyStats {
            files_created: 5,
            symlinks_created: 2,
            dirs_created: 3,
            bytes_written: 28 + 10 + 2 + 9,
            ..Default::default()
        }
    );
    assert!(!marker_present(&f.root));
    check_no_interrupted_restore(&f.root).unwrap();
}

#[test]
fn directory_mtimes_survive_child_writes_and_removals() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir(r.join("kept")).unwrap();
    std::fs::write(r.join("kept/old"), b"old").unwrap();
    let mut b = Builder::default();
    b.retime("kept", Kind::Dir, 0o750, T1)
        .remove("kept/old", Kind::File)
        .file("kept/new", b"new", 0o644, T2)
        .dir("kept/nested", 0o700, T2)
        .dir("kept/nested/deeper", 0o755, T3)
        .file("kept/nested/deeper/x", b"x", 0o644, T1)
        .symlink("kept/nested/l", "deeper/x", T1);
    let stats = run(r, &b, FRESH).unwrap();
    assert_eq!(mtime(&r.join("kept")), T1);
    assert_eq!(mode(&r.join("kept")), 0o750);
    assert_eq!(mtime(&r.join("kept/nested")), T2);
    assert_eq!(mode(&r.join("kept/nested")), 0o700);
    assert_eq!(mtime(&r.join("kept/nested/deeper")), T3);
    assert!(!r.join("kept/old").exists());
    assert_eq!(stats.retimed, 1);
    assert_eq!(stats.removed, 1);
}

#[test]
fn many_files_in_many_directories() {
    let f = fixture();
    let mut b = Builder::default();
    for d in 0..40 {
        let dir = format!("dir{d:02}");
        b.dir(&dir, 0o755, ts(1_000 + d, 5));
        for i in 0..60 {
            let content = format!("file {d} {i}");
            b.file(
                &format!("{dir}/f{i:03}"),
                content.as_bytes(),
                0o644,
                ts(2_000 + d * 100 + i, i as u32),
            );
        }
    }
    let stats = run(&f.root, &b, FRESH).unwrap();
    assert_eq!(stats.files_created, 2400);
    assert_eq!(stats.dirs_created, 40);
    for d in 0..40 {
        let dir = f.root.join(format!("dir{d:02}"));
        assert_eq!(mtime(&dir), ts(1_000 + d, 5));
        for i in 0..60 {
            let p = dir.join(format!("f{i:03}"));
            assert_eq!(mtime(&p), ts(2_000 + d * 100 + i, i as u32));
            assert_eq!(
                std::fs::read(&p).unwrap(),
                format!("file {d} {i}").as_bytes()
            );
        }
    }
}

// ---------------------------------------------------------------- other actions

#[test]
fn retime_sets_mode_and_mtime_without_touching_content_or_link_targets() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir(r.join("d")).unwrap();
    std::fs::write(r.join("d/f"), b"content").unwrap();
    std::fs::write(r.join("target"), b"t").unwrap();
    set_mtime(&r.join("target"), T3);
    let target_mode = mode(&r.join("target"));
    std::os::unix::fs::symlink("target", r.join("link")).unwrap();
    let mut b = Builder::default();
    b.retime("d", Kind::Dir, 0o711, T1)
        .retime("d/f", Kind::File, 0o600, T2)
        .retime("link", Kind::Symlink, 0o777, T1);
    let stats = run(r, &b, FRESH).unwrap();
    assert_eq!((mode(&r.join("d")), mtime(&r.join("d"))), (0o711, T1));
    assert_eq!((mode(&r.join("d/f")), mtime(&r.join("d/f"))), (0o600, T2));
    assert_eq!(std::fs::read(r.join("d/f")).unwrap(), b"content");
    assert_eq!(mtime(&r.join("link")), T1);
    assert_eq!(
        mtime(&r.join("target")),
        T3,
        "the link's target is untouched"
    );
    assert_eq!(mode(&r.join("target")), target_mode);
    assert_eq!(stats.retimed, 3);
}

#[test]
fn freshen_sets_the_fresh_mtime_on_files_dirs_and_links_themselves() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir(r.join("d")).unwrap();
    std::fs::write(r.join("d/f"), b"user edit").unwrap();
    std::fs::set_permissions(r.join("d/f"), PermissionsExt::from_mode(0o604)).unwrap();
    std::fs::write(r.join("target"), b"t").unwrap();
    set_mtime(&r.join("target"), T3);
    std::os::unix::fs::symlink("target", r.join("link")).unwrap();
    let mut b = Builder::default();
    b.freshen("d", Kind::Dir)
        .freshen("d/f", Kind::File)
        .freshen("link", Kind::Symlink)
        .file("d/g", b"restored", 0o644, T1);
    let stats = run(r, &b, FRESH).unwrap();
    assert_eq!(mtime(&r.join("d")), FRESH);
    assert_eq!(mtime(&r.join("d/f")), FRESH);
    assert_eq!(mode(&r.join("d/f")), 0o604, "freshen keeps the mode");
    assert_eq!(std::fs::read(r.join("d/f")).unwrap(), b"user edit");
    assert_eq!(mtime(&r.join("link")), FRESH);
    assert_eq!(mtime(&r.join("target")), T3);
    assert_eq!(stats.freshened, 3);
}

#[test]
fn remove_goes_deepest_first_and_removes_links_not_targets() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir_all(r.join("a/b/c")).unwrap();
    std::fs::write(r.join("a/b/c/f"), b"f").unwrap();
    std::fs::write(r.join("a/g"), b"g").unwrap();
    std::os::unix::fs::symlink(&f.outside, r.join("a/b/to_outside")).unwrap();
    std::os::unix::fs::symlink(f.outside.join("victim"), r.join("file_link")).unwrap();
    let before = snapshot(&f.outside);
    let mut b = Builder::default();
    b.remove("a", Kind::Dir)
        .remove("a/b", Kind::Dir)
        .remove("a/b/c", Kind::Dir)
        .remove("a/b/c/f", Kind::File)
        .remove("a/b/to_outside", Kind::Symlink)
        .remove("a/g", Kind::File)
        .remove("file_link", Kind::Symlink)
        .skip("elsewhere");
    let stats = run(r, &b, FRESH).unwrap();
    assert!(!r.join("a").exists());
    assert!(r.join("file_link").symlink_metadata().is_err());
    assert_eq!(snapshot(&f.outside), before);
    assert_eq!(stats.removed, 7);
    assert_eq!(stats.skipped, 1);
    let names: Vec<_> = std::fs::read_dir(r).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn create_replaces_each_kind() {
    let f = fixture();
    let r = &f.root;
    std::fs::write(r.join("was_file"), b"old").unwrap();
    std::fs::create_dir_all(r.join("was_dir/sub")).unwrap();
    std::fs::write(r.join("was_dir/sub/x"), b"x").unwrap();
    std::os::unix::fs::symlink("nowhere", r.join("was_link")).unwrap();
    let mut b = Builder::default();
    b.dir_replacing("was_file", 0o755, T1, Some(Kind::File))
        .file("was_file/inside", b"in", 0o644, T2)
        .remove("was_dir/sub/x", Kind::File)
        .remove("was_dir/sub", Kind::Dir)
        .file_replacing("was_dir", b"now a file", 0o600, T3, Some(Kind::Dir))
        .file_replacing(
            "was_link",
            b"now a file too",
            0o644,
            T1,
            Some(Kind::Symlink),
        );
    run(r, &b, FRESH).unwrap();
    assert!(lmeta(&r.join("was_file")).is_dir());
    assert_eq!(mtime(&r.join("was_file")), T1);
    assert_eq!(std::fs::read(r.join("was_file/inside")).unwrap(), b"in");
    assert_eq!(std::fs::read(r.join("was_dir")).unwrap(), b"now a file");
    assert_eq!(
        (mode(&r.join("was_dir")), mtime(&r.join("was_dir"))),
        (0o600, T3)
    );
    assert!(lmeta(&r.join("was_link")).is_file());
    assert_eq!(
        std::fs::read(r.join("was_link")).unwrap(),
        b"now a file too"
    );
}

// ---------------------------------------------------------------- hostile trees

#[test]
fn symlinked_parent_is_refused_and_nothing_outside_changes() {
    let f = fixture();
    let r = &f.root;
    std::os::unix::fs::symlink(&f.outside, r.join("sub")).unwrap();
    let before = snapshot(&f.outside);
    let mut b = Builder::default();
    // The plan believes `sub` is a directory the tree still has.
    b.retime("sub", Kind::Dir, 0o777, T1)
        .file("sub/victim", b"pwned", 0o777, T1)
        .file("sub/new", b"pwned", 0o777, T1)
        .file("sub/inner/f", b"pwned", 0o777, T1);
    let err = run(r, &b, FRESH).unwrap_err();
    assert_eq!(
        snapshot(&f.outside),
        before,
        "nothing outside the root changed"
    );
    assert!(
        matches!(&err, ApplyError::SymlinkInTheWay { symlink, .. } if symlink == &r.join("sub")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&r.join("sub").display().to_string()), "{msg}");
    assert!(msg.contains("symlink"), "{msg}");
    assert_eq!(err.exit_code(), ExitCode::WriteFailed);
    assert!(marker_present(r), "a refused restore leaves the marker");
    assert!(lmeta(&r.join("sub")).file_type().is_symlink());
}

#[test]
fn symlink_deep_in_the_path_is_refused() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir_all(r.join("a/b")).unwrap();
    std::os::unix::fs::symlink(&f.outside, r.join("a/b/c")).unwrap();
    let before = snapshot(&f.outside);
    let mut b = Builder::default();
    b.file("a/b/c/inner/f", b"pwned", 0o644, T1);
    let err = run(r, &b, FRESH).unwrap_err();
    assert_eq!(snapshot(&f.outside), before);
    match &err {
        ApplyError::SymlinkInTheWay { op, path, symlink } => {
            assert_eq!(*op, Op::CreateFile);
            assert_eq!(path, &r.join("a/b/c/inner/f"));
            assert_eq!(symlink, &r.join("a/b/c"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn symlink_as_the_final_component_is_replaced_not_followed() {
    let f = fixture();
    let r = &f.root;
    std::os::unix::fs::symlink(f.outside.join("victim"), r.join("out")).unwrap();
    std::os::unix::fs::symlink(f.outside.join("inner"), r.join("outdir")).unwrap();
    let before = snapshot(&f.outside);
    let mut b = Builder::default();
    b.file_replacing("out", b"restored", 0o644, T1, Some(Kind::Symlink))
        .dir_replacing("outdir", 0o755, T2, Some(Kind::Symlink))
        .file("outdir/f", b"restored too", 0o644, T2);
    run(r, &b, FRESH).unwrap();
    assert_eq!(snapshot(&f.outside), before);
    assert!(lmeta(&r.join("out")).is_file());
    assert_eq!(std::fs::read(r.join("out")).unwrap(), b"restored");
    assert!(lmeta(&r.join("outdir")).is_dir());
    assert_eq!(std::fs::read(r.join("outdir/f")).unwrap(), b"restored too");
}

#[test]
fn unexpected_symlink_at_a_created_name_is_never_written_through() {
    let f = fixture();
    let r = &f.root;
    std::os::unix::fs::symlink(f.outside.join("victim"), r.join("out")).unwrap();
    let before = snapshot(&f.outside);
    let mut b = Builder::default();
    // The plan thinks `out` is absent (no `replaces`).
    b.file("out", b"pwned", 0o777, T1);
    let err = run(r, &b, FRESH).unwrap_err();
    assert_eq!(snapshot(&f.outside), before);
    assert!(
        matches!(
            &err,
            ApplyError::Io {
                op: Op::CreateFile,
                errno: Errno::EEXIST,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::WriteFailed);
}

#[test]
fn retime_of_a_file_that_is_now_a_symlink_is_refused() {
    let f = fixture();
    let r = &f.root;
    std::os::unix::fs::symlink(f.outside.join("victim"), r.join("f")).unwrap();
    std::os::unix::fs::symlink(f.outside.join("inner"), r.join("d")).unwrap();
    let before = snapshot(&f.outside);
    for (path, kind) in [("f", Kind::File), ("d", Kind::Dir)] {
        let mut b = Builder::default();
        b.retime(path, kind, 0o777, T1);
        let err = run(r, &b, FRESH).unwrap_err();
        assert!(
            matches!(&err, ApplyError::SymlinkInTheWay { op: Op::SetMode, symlink, .. } if symlink == &r.join(path)),
            "{err:?}"
        );
        std::fs::remove_file(r.join(MARKER)).unwrap();
    }
    assert_eq!(snapshot(&f.outside), before);
}

#[test]
fn remove_through_a_symlinked_parent_is_refused() {
    let f = fixture();
    let r = &f.root;
    std::os::unix::fs::symlink(&f.outside, r.join("sub")).unwrap();
    let before = snapshot(&f.outside);
    let mut b = Builder::default();
    b.remove("sub/victim", Kind::File)
        .remove("sub/inner/f", Kind::File)
        .remove("sub/inner", Kind::Dir);
    let err = run(r, &b, FRESH).unwrap_err();
    assert_eq!(snapshot(&f.outside), before);
    assert!(
        matches!(&err, ApplyError::SymlinkInTheWay { op: Op::Remove, symlink, .. } if symlink == &r.join("sub")),
        "{err:?}"
    );
    assert!(err.to_string().contains("remove"), "{err}");
}

#[test]
fn a_file_where_a_directory_is_expected_is_an_error() {
    let f = fixture();
    let r = &f.root;
    std::fs::write(r.join("notdir"), b"").unwrap();
    let mut b = Builder::default();
    b.file("notdir/f", b"x", 0o644, T1);
    let err = run(r, &b, FRESH).unwrap_err();
    match &err {
        ApplyError::Io { op, path, errno } => {
            assert_eq!((*op, *errno), (Op::OpenDir, Errno::ENOTDIR));
            assert_eq!(path, &r.join("notdir"));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- hostile checkpoints

#[test]
fn unsafe_plans_are_refused_before_anything_is_written() {
    type Case = (&'static str, Box<dyn Fn(&mut Builder)>, ExitCode);
    let cases: Vec<Case> = vec![
        (
            "beneath its own symlink",
            Box::new(|b: &mut Builder| {
                b.symlink("l", "/", T1)
                    .file("l/etc/passwd", b"x", 0o644, T1);
            }),
            ExitCode::CheckpointUnsafe,
        ),
        (
            "beneath its own file",
            Box::new(|b: &mut Builder| {
                b.file("f", b"", 0o644, T1).file("f/g", b"x", 0o644, T1);
            }),
            ExitCode::CheckpointUnsafe,
        ),
        (
            "setuid",
            Box::new(|b: &mut Builder| {
                b.file("su", b"x", 0o4755, T1);
            }),
            ExitCode::CheckpointUnsafe,
        ),
        (
            "the marker",
            Box::new(|b: &mut Builder| {
                b.file(MARKER, b"x", 0o644, T1);
            }),
            ExitCode::CheckpointUnsafe,
        ),
        (
            "bad nanoseconds",
            Box::new(|b: &mut Builder| {
                b.file("t", b"x", 0o644, ts(1, 1_000_000_000));
            }),
            ExitCode::CheckpointUnsafe,
        ),
        (
            "NUL in a symlink target",
            Box::new(|b: &mut Builder| {
                b.symlink("l", "a\0b", T1);
            }),
            ExitCode::CheckpointUnsafe,
        ),
        (
            "two actions on one path",
            Box::new(|b: &mut Builder| {
                b.file("x", b"x", 0o644, T1).remove("x", Kind::File);
            }),
            ExitCode::Internal,
        ),
        (
            "beneath a removed directory",
            Box::new(|b: &mut Builder| {
                b.remove("d", Kind::Dir).file("d/x", b"x", 0o644, T1);
            }),
            ExitCode::Internal,
        ),
    ];
    for (name, build, code) in cases {
        let f = fixture();
        std::fs::write(f.root.join("existing"), b"e").unwrap();
        let before = snapshot(&f.root);
        let mut b = Builder::default();
        b.file("first", b"would be written", 0o644, T1);
        build(&mut b);
        let err = run(&f.root, &b, FRESH).unwrap_err();
        assert_eq!(err.exit_code(), code, "{name}: {err}");
        assert_eq!(err.op(), Op::ValidatePlan, "{name}");
        assert_eq!(
            snapshot(&f.root),
            before,
            "{name}: nothing written, no marker"
        );
    }
}

#[test]
fn a_corrupt_blob_fails_midway_and_leaves_the_marker() {
    let f = fixture();
    let r = &f.root;
    let mut b = Builder::default();
    b.dir("d", 0o755, T1);
    for i in 0..300 {
        b.file(&format!("d/f{i}"), format!("{i}").as_bytes(), 0o644, T1);
    }
    b.blobs.fail_after = Some(150);
    let err = run(r, &b, FRESH).unwrap_err();
    assert!(matches!(err, ApplyError::Blob { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitCode::CheckpointCorrupt);
    assert!(err.to_string().contains("pack checksum mismatch"), "{err}");
    assert!(marker_present(r));

    let err = check_no_interrupted_restore(r).unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::RestoreInterrupted);
    assert_eq!(
        err.to_string(),
        format!(
            "an earlier restore into {} was interrupted; the tree is half restored: start the \
             build from a fresh tree",
            r.display()
        )
    );
    // A second restore refuses to start.
    b.blobs.fail_after = None;
    let err = run(r, &b, FRESH).unwrap_err();
    assert!(matches!(err, ApplyError::Interrupted { .. }), "{err:?}");
}

#[test]
fn marker_is_absent_after_success_and_check_passes() {
    let f = fixture();
    check_no_interrupted_restore(&f.root).unwrap();
    let mut b = Builder::default();
    b.file("x", b"x", 0o644, T1);
    run(&f.root, &b, FRESH).unwrap();
    assert!(!marker_present(&f.root));
    check_no_interrupted_restore(&f.root).unwrap();
    // A marker of any type counts, even a dangling symlink.
    std::os::unix::fs::symlink("/nonexistent", f.root.join(MARKER)).unwrap();
    let err = check_no_interrupted_restore(&f.root).unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::RestoreInterrupted);
}

#[test]
fn a_blob_of_the_wrong_size_is_corrupt_and_not_written() {
    let f = fixture();
    let mut b = Builder::default();
    b.file("x", b"12345", 0o644, T1);
    if let Action::Create { entry, .. } = &mut b.actions[0] {
        entry.node = Node::File {
            size: 6,
            hash: hash_of(b"12345"),
        };
    }
    let err = run(&f.root, &b, FRESH).unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::SizeMismatch {
                expected: 6,
                actual: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::CheckpointCorrupt);
    assert!(f.root.join("x").symlink_metadata().is_err());
}

// ---------------------------------------------------------------- disk full

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_is_write_failed_and_says_so() {
    // Unprivileged (the Nix sandbox of nix/package.nix) there is no mount:
    // say so past libtest's capture, as tests/it/util/skip.rs does.
    if !nix::unistd::geteuid().is_root() {
        use std::io::Write;
        let name = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let _ = writeln!(std::io::stderr(), "{name}: skipped: needs root (mount)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a 64 KiB tmpfs failed ({status}); this test needs root and mount permission"
    );
    let _guard = Unmount(mnt.clone());
    let mut b = Builder::default();
    for i in 0..10 {
        b.file(
            &format!("big{i}"),
            &vec![b'a' + i as u8; 16 * 1024],
            0o644,
            T1,
        );
    }
    let err = run(&mnt, &b, FRESH).unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::Io {
                errno: Errno::ENOSPC,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), ExitCode::WriteFailed);
    let msg = err.to_string();
    assert!(msg.contains("disk is full"), "{msg}");
    assert!(msg.contains(&mnt.display().to_string()), "{msg}");
}

// ---------------------------------------------------------------- errors

#[test]
fn exit_codes_and_messages() {
    let io = |errno| ApplyError::Io {
        op: Op::Write,
        path: PathBuf::from("/build/x"),
        errno,
    };
    for errno in [Errno::ENOSPC, Errno::EROFS, Errno::EACCES, Errno::EIO] {
        assert_eq!(io(errno).exit_code(), ExitCode::WriteFailed);
    }
    assert_eq!(
        io(Errno::ENOSPC).to_string(),
        "cannot write file /build/x: no space left on device: the disk is full"
    );
    assert!(io(Errno::EROFS).to_string().contains("read-only"));
    let check = ApplyError::Io {
        op: Op::CheckMarker,
        path: PathBuf::from("/build/.nix-checkpoint-restoring"),
        errno: Errno::EACCES,
    };
    assert_eq!(check.exit_code(), ExitCode::TreeUnreadable);
}

// ---------------------------------------------------------------- the walker

#[test]
fn cursor_reuses_and_refuses() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir_all(r.join("a/b/c")).unwrap();
    std::fs::create_dir_all(r.join("a/x")).unwrap();
    std::os::unix::fs::symlink(&f.outside, r.join("a/b/link")).unwrap();
    std::fs::write(r.join("a/file"), b"").unwrap();
    let root = SafeRoot::open(r).unwrap();
    let mut cursor = root.cursor();
    for dir in ["a/b/c", "a/b", "a/x", "a", "a/b/c", ""] {
        let fd = cursor.dir(dir.as_bytes()).unwrap();
        assert!(safe_dir::exists(fd, b".").unwrap(), "{dir}");
    }
    let fd = cursor.dir(b"a/b").unwrap();
    assert!(safe_dir::exists(fd, b"c").unwrap());
    assert_eq!(
        cursor.dir(b"a/b/link").unwrap_err(),
        WalkError::Symlink {
            at: b"a/b/link".to_vec()
        }
    );
    assert_eq!(
        cursor.dir(b"a/b/link/inner").unwrap_err(),
        WalkError::Symlink {
            at: b"a/b/link".to_vec()
        }
    );
    // The per-component walk (the fallback without openat2) alone.
    let walk = |p: &[u8]| safe_dir::walk(root.fd(), b"", p);
    assert!(walk(b"a/b/c").is_ok());
    assert_eq!(
        walk(b"a/b/link/inner").unwrap_err(),
        WalkError::Symlink {
            at: b"a/b/link".to_vec()
        }
    );
    let b_fd = walk(b"a/b").unwrap();
    assert_eq!(
        safe_dir::walk(b_fd.as_fd(), b"a/b/", b"link").unwrap_err(),
        WalkError::Symlink {
            at: b"a/b/link".to_vec()
        }
    );
    // From a fresh cursor, in one openat2 (or the fallback walk).
    assert_eq!(
        root.cursor().dir(b"a/b/link/inner").unwrap_err(),
        WalkError::Symlink {
            at: b"a/b/link".to_vec()
        }
    );
    assert_eq!(
        root.cursor().dir(b"a/file/x").unwrap_err(),
        WalkError::Errno {
            at: b"a/file".to_vec(),
            errno: Errno::ENOTDIR
        }
    );
    assert_eq!(
        root.cursor().dir(b"a/missing/x").unwrap_err(),
        WalkError::Errno {
            at: b"a/missing".to_vec(),
            errno: Errno::ENOENT
        }
    );
}

#[test]
fn a_symlink_within_the_tree_is_not_followed_either() {
    let f = fixture();
    let r = &f.root;
    std::fs::create_dir_all(r.join("real/deep")).unwrap();
    std::os::unix::fs::symlink("real", r.join("alias")).unwrap();
    let mut before = snapshot(r);
    let mut b = Builder::default();
    b.file("alias/deep/f", b"through a link", 0o644, T1)
        .retime("alias/deep", Kind::Dir, 0o700, T1);
    let err = run(r, &b, FRESH).unwrap_err();
    assert!(
        matches!(&err, ApplyError::SymlinkInTheWay { symlink, .. } if symlink == &r.join("alias")),
        "{err:?}"
    );
    let mut after = snapshot(r);
    after.remove(&r.join(MARKER));
    // The marker changed the root's own mtime.
    after.remove(r);
    before.remove(r);
    assert_eq!(after, before);
}

/// `cargo test --release --lib apply::tests::many_small_files -- --ignored --nocapture`
#[test]
#[ignore]
fn many_small_files() {
    let f = fixture();
    let mut b = Builder::default();
    for d in 0..1000 {
        let dir = format!("d{d:04}");
        b.dir(&dir, 0o755, T1);
        for i in 0..100 {
            b.file(
                &format!("{dir}/f{i:03}.o"),
                format!("{d}/{i}").as_bytes(),
                0o644,
                T2,
            );
        }
    }
    let plan = b.plan(FRESH);
    let start = std::time::Instant::now();
    let stats = apply(&f.root, &plan, &b.blobs, &Rewriter::identity()).unwrap();
    eprintln!("{stats:?} in {:?}", start.elapsed());
}
