//! Abuse of the built binary: hostile checkpoints, hostile build trees,
//! full disks and killed processes. Every case checks, byte for byte
//! (content, modes, nanosecond mtimes), that the canary directory beside
//! the build root and the checkpoint itself are unchanged, and, where the
//! command must refuse, that the build tree is too.
//!
//! Needs root (mknod, mount, setpriv) for some cases, and make, ninja and
//! cc for others; those skip themselves, saying so, when run unprivileged
//! or without the tool (`util/skip.rs`), as in the Nix sandbox.

use crate::util::*;
use nix_checkpoint::checkpoint::testing::{
    hostile_packs, sorted, sound_pack, RawBlob, RawEntry, RawNode, RawPack,
};
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use xxhash_rust::xxh3::xxh3_128;

const MARKER: &str = ".nix-checkpoint-restoring";
/// Peak RSS allowed for any run against a hostile checkpoint.
const RSS_LIMIT_KIB: i64 = 100 * 1024;

use crate::util::skip::is_root;

/// A small source tree in the workspace's root.
fn populate_sources(root: &Path) {
    std::fs::create_dir_all(root.join("src/sub")).unwrap();
    std::fs::write(root.join("src/main.c"), "int main(void){return 0;}\n").unwrap();
    std::fs::write(root.join("src/sub/util.h"), "#define X 1\n").unwrap();
    std::os::unix::fs::symlink("main.c", root.join("src/alias.c")).unwrap();
    let t = filetime::FileTime::from_unix_time(1, 0);
    for e in walkdir::WalkDir::new(root).contents_first(true) {
        filetime::set_symlink_file_times(e.unwrap().path(), t, t).unwrap();
    }
}

// ------------------------------------------------ validation before writing

/// Every hostile checkpoint is refused with its exit code and a message
/// naming the file, what is wrong and what to do, before anything is
/// written; with --fallback-on-error the same checkpoints give exit 3.
/// Peak memory stays bounded throughout.
#[test]
fn hostile_checkpoints_are_refused_before_the_first_write() {
    let mut ws = Workspace::new();
    populate_sources(&ws.root());
    let cases = hostile_packs(&ws.root_bytes());
    let mut dirs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        dirs.push(ws.put_pack(&format!("cp{i}"), &c.bytes));
    }
    ws.seal(&[]);
    let tree = picture(&ws.root());
    let mut max_rss = 0;
    for (c, dir) in cases.iter().zip(&dirs) {
        let pack = dir.join("checkpoint.nckp");
        for target in [dir, &pack] {
            let run = ws.run_restore(target, &[]);
            let what = format!("{} ({})", c.name, target.display());
            run.assert_code(c.code.into(), &what)
                .assert_stderr_has(&pack.display().to_string(), &what)
                .assert_stderr_has(c.reason, &what)
                .assert_stderr_has("checkpoint", &what);
            assert!(
                run.stderr.contains("rebuild the checkpoint")
                    || run.stderr.contains("prepareCheckpointBuild"),
                "{what}: no advice in {}",
                run.stderr
            );
            max_rss = max_rss.max(run.max_rss_kib);
            assert!(
                run.max_rss_kib < RSS_LIMIT_KIB,
                "{what}: {} KiB",
                run.max_rss_kib
            );
            assert_same(&what, &tree, &picture(&ws.root()));
            ws.check(&what);
        }
        let run = ws.run_restore(dir, &["--fallback-on-error"]);
        run.assert_code(3, &format!("{} with --fallback-on-error", c.name))
            .assert_stderr_has("NOTHING RESTORED", &c.name)
            .assert_stderr_has(c.reason, &c.name);
        assert_same(&c.name, &tree, &picture(&ws.root()));
        ws.check(&c.name);
        // verify refuses the same (it checks blobs too, and everything
        // restore checks before writing: "intact" means "restorable").
        let run = run_strs(&["verify", dir.to_str().unwrap()]);
        assert_eq!(
            run.code,
            i32::from(c.code),
            "verify {}: {}",
            c.name,
            run.stderr
        );
        assert!(
            run.stderr.contains(c.reason),
            "verify {}: {}",
            c.name,
            run.stderr
        );
        assert!(
            run.max_rss_kib < RSS_LIMIT_KIB,
            "verify {}: {} KiB",
            c.name,
            run.max_rss_kib
        );
        ws.check(&c.name);
    }
    eprintln!(
        "{} hostile checkpoints refused; peak RSS {max_rss} KiB",
        cases.len()
    );
}

#[test]
fn missing_checkpoint_is_exit_5_naming_the_file() {
    let mut ws = Workspace::new();
    populate_sources(&ws.root());
    ws.seal(&[]);
    let tree = picture(&ws.root());
    for missing in [
        ws.store().join("nope"),
        ws.store().join("nope/checkpoint.nckp"),
    ] {
        let run = ws.run_restore(&missing, &[]);
        run.assert_code(5, "missing")
            .assert_stderr_has("nope", "missing")
            .assert_stderr_has("not found", "missing")
            .assert_stderr_has("prepareCheckpointBuild", "missing");
        ws.run_restore(&missing, &["--fallback-on-error"])
            .assert_code(3, "missing, fallback")
            .assert_stderr_has("NOTHING RESTORED", "missing, fallback")
            .assert_stderr_has("not found", "missing, fallback");
    }
    // An existing directory without a pack is missing too.
    std::fs::create_dir_all(ws.store().join("empty")).unwrap();
    ws.seal(&[]);
    ws.run_restore(&ws.store().join("empty"), &[])
        .assert_code(5, "empty checkpoint dir");
    assert_same("missing", &tree, &picture(&ws.root()));
    ws.check("missing");
}

/// A sound crafted pack is accepted and restored exactly (so each hostile
/// case above is refused for its own reason, not for a crafting mistake).
#[test]
fn sound_crafted_pack_restores_exactly() {
    let mut ws = Workspace::new();
    let dir = ws.put_pack("sound", &sound_pack(&ws.root_bytes()).to_bytes());
    ws.seal(&[]);
    ws.run_restore(&dir, &[]).assert_code(0, "sound");
    ws.check("sound");
    let root = ws.root();
    assert_eq!(std::fs::read(root.join("out/a.o")).unwrap(), b"object a");
    assert_eq!(
        std::fs::read(root.join("out/big")).unwrap(),
        vec![b'z'; 10_000]
    );
    assert_eq!(
        std::fs::read_link(root.join("out/link")).unwrap(),
        Path::new("a.o")
    );
    assert!(!root.join(MARKER).exists());
    let run = run_strs(&["verify", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// A symlink the checkpoint creates may point anywhere: it is created,
/// never followed, and nothing is ever written through it.
#[test]
fn checkpoint_symlinks_pointing_outside_are_created_not_followed() {
    let mut ws = Workspace::new();
    let canary = ws.canary();
    let pack = RawPack::new(&ws.root_bytes())
        .with_symlink(b"abs", canary.as_os_str().as_bytes())
        .with_symlink(b"rel", b"../canary")
        .with_symlink(b"owned", b"../canary/owned")
        .with_file(b"z-after", b"written after the links");
    let pack = sorted(pack);
    let dir = ws.put_pack("links", &pack.to_bytes());
    ws.seal(&[]);
    ws.run_restore(&dir, &[]).assert_code(0, "links");
    ws.check("links");
    let root = ws.root();
    assert_eq!(
        std::fs::read_link(root.join("rel")).unwrap(),
        Path::new("../canary")
    );
    assert_eq!(std::fs::read_link(root.join("abs")).unwrap(), canary);
}

// ------------------------------------------------ a real checkpoint

/// Snapshot of the sources, a "build" that makes products in `out/` (and
/// `build/`, `deep/x/y`), a save into the store. Returns the checkpoint.
fn real_checkpoint(ws: &Workspace, name: &str) -> PathBuf {
    let root = ws.root();
    populate_sources(&root);
    ws.run_snapshot().assert_code(0, "snapshot");
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::create_dir_all(root.join("build/obj")).unwrap();
    std::fs::create_dir_all(root.join("deep/x/y")).unwrap();
    for i in 0..20 {
        std::fs::write(
            root.join(format!("build/obj/f{i}.o")),
            format!("object {i}\n").repeat(50),
        )
        .unwrap();
    }
    std::fs::write(root.join("out/app"), b"\x7fELF app").unwrap();
    std::fs::set_permissions(root.join("out/app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("deep/x/y/owned"), "product").unwrap();
    std::os::unix::fs::symlink("../out/app", root.join("build/app-link")).unwrap();
    let cp = ws.store().join(name);
    ws.run_save(&cp).assert_code(0, "save");
    cp
}

fn reset_root(ws: &Workspace) {
    populate_sources(&ws.fresh_root());
}

/// The user's tree has a symlink where the checkpoint has a directory
/// (`build -> <canary>`, relative or absolute), as a parent component
/// (`deep/x -> ../canary`), or as the last component (`out/app ->
/// canary/owned`): restore keeps the user's symlinks and writes nothing
/// through them.
#[test]
fn planted_symlinks_in_the_tree_are_kept_and_never_followed() {
    let mut ws = Workspace::new();
    let cp = real_checkpoint(&ws, "cp");
    let canary = ws.canary();
    let plants: Vec<(&str, PathBuf)> = vec![
        ("build", canary.clone()),
        ("build", PathBuf::from("../canary")),
        ("deep", canary.join("sub")),
        ("deep/x", PathBuf::from("../../canary")),
        ("deep/x/y", canary.join("sub/deeper")),
        ("out", PathBuf::from("../canary")),
        ("out/app", canary.join("owned")),
        ("out/app", PathBuf::from("../../canary/keep")),
        ("build/obj/f3.o", canary.join("owned")),
    ];
    for (at, target) in plants {
        reset_root(&ws);
        let root = ws.root();
        let link = root.join(at);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        ws.seal(&[]);
        let what = format!("{at} -> {}", target.display());
        for dry in [true, false] {
            let extra: &[&str] = if dry { &["--dry-run"] } else { &[] };
            let run = ws.run_restore(&cp, extra);
            run.assert_code(0, &what);
            ws.check(&what);
        }
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            target,
            "{what}: the user's symlink was replaced"
        );
        assert!(!root.join(MARKER).exists());
        // What is not under the symlink is restored.
        if !at.starts_with("out") {
            assert_eq!(
                std::fs::read(root.join("out/app")).unwrap(),
                b"\x7fELF app",
                "{what}"
            );
        }
    }
}

/// Non-UTF-8 names survive snapshot, save and restore byte for byte.
#[test]
fn non_utf8_names_round_trip() {
    let mut ws = Workspace::new();
    let root = ws.root();
    let name = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
    std::fs::create_dir_all(root.join(name(b"src-\xe9"))).unwrap();
    std::fs::write(root.join(name(b"src-\xe9/caf\xe9.c")), "x").unwrap();
    ws.run_snapshot().assert_code(0, "snapshot");
    std::fs::create_dir_all(root.join(name(b"obj\xff\xfe"))).unwrap();
    std::fs::write(root.join(name(b"obj\xff\xfe/caf\xe9.o")), b"product \xff").unwrap();
    std::os::unix::fs::symlink(name(b"caf\xe9.o"), root.join(name(b"obj\xff\xfe/l\x80"))).unwrap();
    let cp = ws.store().join("cp");
    ws.run_save(&cp).assert_code(0, "save");
    let expected = picture(&root.join(name(b"obj\xff\xfe")));
    std::fs::remove_dir_all(root.join(name(b"obj\xff\xfe"))).unwrap();
    ws.seal(&[]);
    ws.run_restore(&cp, &[]).assert_code(0, "restore");
    ws.check("non-UTF-8");
    let got = picture(&root.join(name(b"obj\xff\xfe")));
    // The directory's own mtime is restored too: compare everything.
    assert_eq!(expected, got);
}

// ------------------------------------------------ odd trees

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// Fifos, sockets and devices are skipped with a warning naming them, never
/// opened (opening a fifo would block: the test would hang), in snapshot
/// and save; hardlinks and symlink loops are ordinary entries.
#[test]
fn special_files_hardlinks_and_symlink_loops() {
    let mut ws = Workspace::new();
    let root = ws.root();
    populate_sources(&root);
    mkfifo(&root.join("src/fifo"));
    let _sock = std::os::unix::net::UnixListener::bind(root.join("src/sock")).unwrap();
    let mut specials = vec!["src/fifo", "src/sock"];
    if is_root() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        mknod(
            &root.join("src/null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        mknod(
            &root.join("src/loop"),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(7, 0),
        )
        .unwrap();
        specials.extend(["src/null", "src/loop"]);
    } else {
        crate::util::skip::note("device nodes not covered: needs root (mknod)");
    }
    std::os::unix::fs::symlink("loop-b", root.join("src/loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.join("src/loop-b")).unwrap();
    std::os::unix::fs::symlink("self", root.join("src/self")).unwrap();
    std::fs::hard_link(root.join("src/main.c"), root.join("src/main-hard.c")).unwrap();
    let snap = with_timeout(|| ws.run_snapshot(), "snapshot with special files");
    snap.assert_code(0, "snapshot");
    for s in &specials {
        snap.assert_stderr_has(s, "snapshot warning");
    }
    snap.assert_stderr_has("warning", "snapshot");
    // Build: products, including new specials, hardlinks and loops.
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(root.join("out/p.o"), "product").unwrap();
    std::fs::hard_link(root.join("out/p.o"), root.join("out/p-hard.o")).unwrap();
    mkfifo(&root.join("out/fifo"));
    std::os::unix::fs::symlink("out-loop", root.join("out/out-loop")).unwrap();
    let cp = ws.store().join("cp");
    let save = with_timeout(|| ws.run_save(&cp), "save with special files");
    save.assert_code(0, "save")
        .assert_stderr_has("out/fifo", "save warning");
    // Restore into a fresh tree with the same specials.
    std::fs::remove_dir_all(root.join("out")).unwrap();
    ws.seal(&[]);
    let run = with_timeout(|| ws.run_restore(&cp, &[]), "restore with special files");
    run.assert_code(0, "restore");
    ws.check("special files");
    assert_eq!(std::fs::read(root.join("out/p.o")).unwrap(), b"product");
    assert_eq!(
        std::fs::read(root.join("out/p-hard.o")).unwrap(),
        b"product"
    );
    assert_eq!(
        std::fs::read_link(root.join("out/out-loop")).unwrap(),
        Path::new("out-loop")
    );
    assert!(
        !root.join("out/fifo").exists(),
        "a skipped fifo is not restored"
    );
}

/// Runs `f` on a thread and fails the test if it takes over 60 s (a fifo
/// opened for reading blocks forever).
fn with_timeout<T: Send + 'static>(f: impl FnOnce() -> T + Send, what: &str) -> T {
    std::thread::scope(|s| {
        let h = s.spawn(f);
        let start = std::time::Instant::now();
        while !h.is_finished() {
            assert!(
                start.elapsed().as_secs() < 60,
                "{what}: hung (a special file was opened?)"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        h.join().unwrap()
    })
}

/// 10,000 nested directories (far beyond PATH_MAX): snapshot neither
/// overflows its stack nor crashes; it fails with exit 9 naming the path.
/// Restore of a checkpoint into such a tree is refused the same way.
#[test]
fn ten_thousand_levels_of_nesting() {
    let mut ws = Workspace::new();
    let root = ws.root();
    populate_sources(&root);
    // mkdirat one level at a time: the absolute path would exceed PATH_MAX.
    let mut fd = nix::fcntl::open(
        &root,
        nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    for _ in 0..10_000 {
        nix::sys::stat::mkdirat(
            Some(fd),
            "d",
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .unwrap();
        let next = nix::fcntl::openat(
            Some(fd),
            "d",
            nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        nix::unistd::close(fd).unwrap();
        fd = next;
    }
    std::fs::write("/dev/null", "").unwrap();
    nix::unistd::close(fd).unwrap();
    ws.seal(&[]);
    let run = with_timeout(|| ws.run_snapshot(), "deep snapshot");
    assert!(
        run.code == 9 || run.code == 0,
        "deep snapshot: exit {} {}",
        run.code,
        run.stderr
    );
    if run.code == 9 {
        run.assert_stderr_has("d/d/d/d", "deep snapshot names the path");
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    eprintln!(
        "10,000 levels: snapshot exit {}: {}",
        run.code,
        run.stderr.chars().take(300).collect::<String>()
    );
    ws.check("deep");
    // rm -rf copes with the depth; tempdir's cleanup may not.
    let st = Command::new("rm")
        .arg("-rf")
        .arg(root.join("d"))
        .status()
        .unwrap();
    assert!(st.success());
}

fn setpriv_nobody(args: &[&OsStr]) -> Run {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
    cmd.args(args);
    run_cmd(cmd)
}

/// As `nobody`, a root-owned tree with a 000 file (and, separately, a 000
/// directory): snapshot fails with exit 9 naming the file; save too.
#[test]
#[ignore = "needs root (mount, setpriv): run with cargo test --test it -- --ignored hardening::root_"]
fn root_unreadable_file_or_directory_is_exit_9_naming_it() {
    require_root!("setpriv, to run as nobody");
    require_tools!("setpriv");
    let mut ws = Workspace::new();
    std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = ws.root();
    populate_sources(&root);
    let state_dir = ws.dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let state = state_dir.join("s");
    for (what, path, is_dir) in [
        ("file", "src/secret.c", false),
        ("directory", "src/secret", true),
    ] {
        let p = root.join(path);
        if is_dir {
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("inside"), "x").unwrap();
        } else {
            std::fs::write(&p, "secret").unwrap();
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        ws.seal(&[&root]);
        let run = setpriv_nobody(&snapshot_args(&root, &state));
        run.assert_code(9, what).assert_stderr_has(path, what);
        assert!(!state.exists(), "{what}: no state after a failed snapshot");
        ws.check(what);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        if is_dir {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

fn mount_tmpfs(at: &Path, opts: &str) -> bool {
    std::fs::create_dir_all(at).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(at)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A read-only tree (a read-only tmpfs) can be snapshotted.
#[test]
#[ignore = "needs root (mount, setpriv): run with cargo test --test it -- --ignored hardening::root_"]
fn root_read_only_tree_snapshot_works() {
    require_root!("mount");
    let mut ws = Workspace::new();
    let root = ws.root();
    assert!(mount_tmpfs(&root, "size=4m"), "mount tmpfs");
    let _m = Mount(root.clone());
    populate_sources(&root);
    assert!(Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&root)
        .status()
        .unwrap()
        .success());
    ws.seal(&[&root]);
    ws.run_snapshot().assert_code(0, "read-only snapshot");
    ws.check("read-only");
    assert!(ws.state().exists());
    // A restore there fails cleanly: it cannot even create its marker.
    let cp = ws.store().join("none");
    let pack = RawPack::new(&ws.root_bytes()).with_file(b"p.o", b"x");
    let cp_dir = ws.put_pack("ro", &pack.to_bytes());
    let _ = cp;
    ws.seal(&[&root]);
    let run = ws.run_restore(&cp_dir, &[]);
    run.assert_code(10, "restore into a read-only tree")
        .assert_stderr_has("read-only", "restore ro");
    ws.check("restore ro");
}

// ------------------------------------------------ full disks

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

use nix_checkpoint::checkpoint::testing::leftovers;

/// `save` into a 1 MiB tmpfs with 4 MiB of incompressible products: exit
/// 10, "disk full", and neither a checkpoint nor a temporary file left.
#[test]
#[ignore = "needs root (mount, setpriv): run with cargo test --test it -- --ignored hardening::root_"]
fn root_save_into_a_full_disk_is_exit_10_and_leaves_nothing() {
    require_root!("mount");
    let mut ws = Workspace::new();
    let root = ws.root();
    populate_sources(&root);
    ws.run_snapshot().assert_code(0, "snapshot");
    std::fs::write(root.join("big.o"), random_bytes(4 << 20, 7)).unwrap();
    let small = ws.dir.path().join("outside");
    assert!(mount_tmpfs(&small, "size=1m"));
    let _m = Mount(small.clone());
    for level in ["0", "3"] {
        let out = small.join(format!("cp{level}"));
        ws.seal(&[&root]);
        let run = run_strs(&[
            "save",
            "--root",
            root.to_str().unwrap(),
            "--state",
            ws.state().to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--level",
            level,
        ]);
        run.assert_code(10, "save into a full disk")
            .assert_stderr_has("disk full", "save full")
            .assert_stderr_has(out.to_str().unwrap(), "save full names the file");
        assert_eq!(
            leftovers(&out),
            Vec::<String>::new(),
            "level {level}: left behind"
        );
        ws.check("save full");
    }
}

/// `restore` into a full tmpfs: exit 10 with a message, the marker stays,
/// and the next restore, snapshot and save fail with exit 11.
#[test]
#[ignore = "needs root (mount, setpriv): run with cargo test --test it -- --ignored hardening::root_"]
fn root_restore_into_a_full_disk_is_exit_10_then_11() {
    require_root!("mount");
    let mut ws = Workspace::new();
    let root = ws.root();
    assert!(mount_tmpfs(&root, "size=4m"));
    let _m = Mount(root.clone());
    populate_sources(&root);
    ws.run_snapshot().assert_code(0, "snapshot");
    std::fs::create_dir(root.join("out")).unwrap();
    for i in 0..6 {
        std::fs::write(root.join(format!("out/{i}.o")), random_bytes(400 << 10, i)).unwrap();
    }
    let cp = ws.store().join("cp");
    ws.run_save(&cp).assert_code(0, "save");
    std::fs::remove_dir_all(root.join("out")).unwrap();
    // The user's tree now leaves about 1 MiB free: the restore needs 2.4.
    std::fs::write(root.join("filler"), random_bytes(3 << 20, 1)).unwrap();
    ws.seal(&[]);
    let run = ws.run_restore(&cp, &[]);
    run.assert_code(10, "restore into a full disk")
        .assert_stderr_has("disk is full", "restore full")
        .assert_stderr_has(root.to_str().unwrap(), "restore full names the file");
    ws.check("restore full");
    assert!(root.join(MARKER).exists(), "the marker must stay");
    for (what, run) in [
        ("restore", ws.run_restore(&cp, &[])),
        (
            "restore --fallback-on-error",
            ws.run_restore(&cp, &["--fallback-on-error"]),
        ),
        ("snapshot", ws.run_snapshot()),
        ("save", ws.run_save(&ws.store().join("cp2"))),
    ] {
        run.assert_code(11, what)
            .assert_stderr_has("interrupted", what);
    }
    ws.check("after full");
}

// ------------------------------------------------ killed processes

/// Starts the binary as [`run_cmd`] runs it (a clean environment: `out`,
/// `outputs` and the rest of a Nix build's variables, which the check phase
/// of nix/package.nix has, would change the recipe), without waiting.
fn spawn(args: &[&OsStr]) -> std::process::Child {
    Command::new(bin())
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILLs `child` `delay_us` after now, unless it ended before: returns
/// as soon as it has, whether it succeeded.
fn kill_after(mut child: std::process::Child, delay_us: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_micros(delay_us);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(std::time::Duration::from_micros(200)));
    }
    // SAFETY: kill(2) on our own child, which is not reaped yet.
    unsafe { nix::libc::kill(child.id() as nix::libc::pid_t, nix::libc::SIGKILL) };
    let status = child.wait().unwrap();
    status.success()
}

/// A save SIGKILLed at 40 points in time (0 to 3.9 s, past its end) leaves either no checkpoint or a
/// complete one that `verify` accepts; the next save succeeds.
#[test]
fn killed_save_leaves_no_checkpoint_or_a_valid_one() {
    let mut ws = Workspace::new();
    let root = ws.root();
    populate_sources(&root);
    ws.run_snapshot().assert_code(0, "snapshot");
    std::fs::create_dir(root.join("out")).unwrap();
    for i in 0..300 {
        std::fs::write(root.join(format!("out/{i}.o")), random_bytes(20 << 10, i)).unwrap();
    }
    std::fs::write(root.join("out/large"), random_bytes(24 << 20, 99)).unwrap();
    // As every save below dates them (it is then a no-op).
    ws.build_ended_ago();
    ws.seal(&[&root]);
    let (mut none, mut complete) = (0, 0);
    for i in 0..40u64 {
        let out = ws.dir.path().join("outside").join(format!("k{i}"));
        let child = spawn(&[
            "save".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
            "--state".as_ref(),
            ws.state().as_os_str(),
            "--output".as_ref(),
            out.as_os_str(),
        ]);
        let finished = kill_after(child, i * i * 2500);
        let pack = out.join("checkpoint.nckp");
        if pack.exists() {
            let v = run_strs(&["verify", out.to_str().unwrap()]);
            assert_eq!(
                v.code,
                0,
                "kill after {} us: a checkpoint that does not verify: {}",
                i * i * 2500,
                v.stderr
            );
            complete += 1;
        } else {
            assert!(!finished, "a successful save left no checkpoint");
            none += 1;
        }
        for name in leftovers(&out) {
            assert!(
                name == "checkpoint.nckp" || name.starts_with(".checkpoint.nckp.tmp."),
                "left {name}"
            );
        }
        // A save after the kill, into the same directory, succeeds.
        if i % 8 == 0 {
            ws.run_save(&out).assert_code(0, "save after a kill");
            assert_eq!(run_strs(&["verify", out.to_str().unwrap()]).code, 0);
            assert_eq!(leftovers(&out), vec!["checkpoint.nckp".to_string()]);
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    ws.check("killed saves");
    eprintln!("killed saves: {none} left nothing, {complete} left a complete checkpoint");
    assert!(
        none > 0,
        "no kill landed during the save: the loop proves nothing"
    );
}

/// The tree's names, kinds and contents (no mtimes: fresh ones differ by
/// run), for comparing restore outcomes.
fn shape(root: &Path) -> Vec<(Vec<u8>, String)> {
    picture(root)
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Shot::Dir { .. } => "dir".to_string(),
                Shot::File { content, mode, .. } => format!("file {mode:o} {}", xxh3_128(&content)),
                Shot::Symlink { target, .. } => {
                    format!("link {}", String::from_utf8_lossy(&target))
                }
                Shot::Other { .. } => "other".to_string(),
            };
            (k, s)
        })
        .collect()
}

/// A restore SIGKILLed at 40 points in time: either it had not started
/// writing (the tree is as it was), or it finished (the tree is the
/// complete restore), or the marker is there and the next restore,
/// snapshot and save fail with exit 11. Never a silently half-restored tree.
#[test]
fn killed_restore_is_detected_by_the_next_step() {
    let mut ws = Workspace::new();
    let root = ws.root();
    populate_sources(&root);
    ws.run_snapshot().assert_code(0, "snapshot");
    for d in 0..20 {
        std::fs::create_dir_all(root.join(format!("out/d{d}"))).unwrap();
        for i in 0..100 {
            std::fs::write(
                root.join(format!("out/d{d}/{i}.o")),
                random_bytes(2 << 10, d * 1000 + i),
            )
            .unwrap();
        }
    }
    std::fs::write(root.join("out/large"), random_bytes(16 << 20, 5)).unwrap();
    let cp = ws.store().join("cp");
    ws.run_save(&cp).assert_code(0, "save");
    reset_root(&ws);
    let untouched = shape(&root);
    let started = std::time::Instant::now();
    ws.run_restore(&cp, &[]).assert_code(0, "reference restore");
    // How long a whole restore takes here: a debug or a release build (the
    // check phase of nix/package.nix), a loaded machine or not.
    let span_us = (started.elapsed().as_micros() as u64).max(2_000);
    let complete = shape(&root);
    ws.seal(&[]);
    let (mut before, mut after, mut interrupted) = (0, 0, 0);
    for i in 0..40u64 {
        reset_root(&ws);
        let child = spawn(&[
            "restore".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
            cp.as_os_str(),
        ]);
        // Spread over the whole restore and a little past it (the reference
        // took span_us): blob checks first, then writes.
        let delay = span_us * 11 * i * i / (10 * 39 * 39);
        let finished = kill_after(child, delay);
        let now = shape(&root);
        if root.join(MARKER).exists() {
            interrupted += 1;
            assert!(!finished);
            for (what, run) in [
                ("restore", ws.run_restore(&cp, &[])),
                (
                    "restore --fallback-on-error",
                    ws.run_restore(&cp, &["--fallback-on-error"]),
                ),
                ("snapshot", ws.run_snapshot()),
                ("save", ws.run_save(&ws.store().join("x"))),
            ] {
                run.assert_code(11, &format!("{what} after a restore killed at {delay} us"));
            }
        } else if now == untouched {
            before += 1;
        } else {
            assert_eq!(
                now, complete,
                "killed at {delay} us: no marker, yet neither untouched nor complete"
            );
            after += 1;
        }
        ws.check("killed restore");
    }
    eprintln!("killed restores: {before} before the first write, {interrupted} detected (exit 11), {after} complete");
    assert!(
        interrupted > 0,
        "no kill landed mid-restore: the loop proves nothing"
    );
}

// ------------------------------------------------ memory

/// An honest checkpoint holding one 2 GiB file (zeros: a few KiB of zstd,
/// at level 1, which takes a second where 19 took nine) is restored in
/// bounded memory: the blob is streamed, not held whole.
#[test]
fn large_blob_restores_in_bounded_memory() {
    let mut ws = Workspace::new();
    let size: u64 = 2 << 30;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        enc.write_all(&chunk).unwrap();
        hasher.update(&chunk);
    }
    let stored = enc.finish().unwrap();
    let hash = hasher.digest128();
    let mut pack = RawPack::new(&ws.root_bytes());
    pack.after.push(RawEntry {
        node: RawNode::File { size, hash },
        ..RawEntry::file(b"huge.o", b"")
    });
    pack.blobs.push(RawBlob {
        hash,
        stored,
        raw_size: size,
        zstd: true,
        checksum: hash,
    });
    let dir = ws.put_pack("huge", &pack.to_bytes());
    ws.seal(&[]);
    let run = ws.run_restore(&dir, &[]);
    run.assert_code(0, "huge");
    ws.check("huge");
    assert_eq!(
        std::fs::metadata(ws.root().join("huge.o")).unwrap().len(),
        size
    );
    eprintln!("restore of a 2 GiB blob: peak RSS {} KiB", run.max_rss_kib);
    assert!(
        run.max_rss_kib < RSS_LIMIT_KIB,
        "restore of a 2 GiB blob: {} KiB",
        run.max_rss_kib
    );
    std::fs::remove_file(ws.root().join("huge.o")).unwrap();
}

/// One million files: snapshot and save stay within a memory budget.
/// `cargo test --test it -- --ignored million` (prints the numbers).
#[test]
#[ignore]
fn million_files_in_bounded_memory() {
    let mut ws = Workspace::new();
    // Timed below: the snapshot and save alone.
    ws.dating = false;
    let root = ws.root();
    let _m = if is_root() && mount_tmpfs(&root, "size=2g,nr_inodes=2000000") {
        Some(Mount(root.clone()))
    } else {
        None
    };
    let start = std::time::Instant::now();
    for d in 0..1000 {
        let dir = root.join(format!("d{d:03}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            std::fs::File::create(dir.join(format!("f{f:03}.c"))).unwrap();
        }
    }
    eprintln!(
        "generated 1,000,000 files in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let start = std::time::Instant::now();
    let run = ws.run_snapshot();
    run.assert_code(0, "snapshot");
    eprintln!(
        "snapshot of 1,000,000 files: {:.1} s, peak RSS {} MiB",
        start.elapsed().as_secs_f64(),
        run.max_rss_kib / 1024
    );
    assert!(
        run.max_rss_kib < 1024 * 1024,
        "snapshot: {} KiB",
        run.max_rss_kib
    );
    std::fs::write(root.join("d000/new.o"), "product").unwrap();
    let start = std::time::Instant::now();
    let run = ws.run_save(&ws.store().join("cp"));
    run.assert_code(0, "save");
    eprintln!(
        "save of 1,000,000 files: {:.1} s, peak RSS {} MiB",
        start.elapsed().as_secs_f64(),
        run.max_rss_kib / 1024
    );
    assert!(
        run.max_rss_kib < 1024 * 1024,
        "save: {} KiB",
        run.max_rss_kib
    );
}

// ------------------------------------------------ regressions

/// Bug: `snapshot --state state` (a bare relative name) wrote the file, then
/// failed to fsync its directory (`File::open("")`) and reported "no
/// checkpoint was written".
#[test]
fn relative_state_path_without_a_directory() {
    let ws = Workspace::new();
    populate_sources(&ws.root());
    let mut cmd = Command::new(bin());
    cmd.current_dir(ws.dir.path())
        .args(["snapshot", "--root", "build", "--state", "state"]);
    let run = run_cmd(cmd);
    run.assert_code(0, "relative state");
    assert!(ws.dir.path().join("state").is_file());
}

/// Bug (found by fuzz/merge_plan): a checkpoint whose product mtime is
/// `i64::MAX` made `fresh_mtime` saturate to the same second, so a changed
/// source did not look newer than the restored products: a silently stale
/// build. Such plans are now refused before any write (exit 8); the
/// crafted-pack cases "product mtime ..." above cover it through the binary.
#[test]
fn fuzz_fresh_mtime_saturates_at_i64_max() {
    use nix_checkpoint::plan::plan;
    use nix_checkpoint::tree::{Entry, Manifest, Node, RelPath, Timestamp};
    let dir = |secs: i64| Entry {
        path: RelPath::new(b"a").unwrap(),
        node: Node::Dir,
        mode: 0o755,
        mtime: Timestamp::new(secs, 375_000_000),
    };
    let p = Manifest::new(vec![dir(0)]).unwrap();
    let b = Manifest::new(vec![dir(i64::MAX)]).unwrap();
    let c = Manifest::new(vec![dir(1)]).unwrap();
    let now = Timestamp::new(1_700_000_000, 0);
    let plan = plan(&p, &b, &c, now);
    // The planner moves it back (#12, 1), so it no longer lies in the future...
    assert_eq!(plan.fresh_mtime, now);
    assert!(plan.actions.iter().all(|a| match a {
        nix_checkpoint::plan::Action::Retime { mtime, .. } => mtime.plus_secs(1) <= now,
        _ => true,
    }));
    // ...and restore (and verify) refuse such a checkpoint before planning.
    let err = nix_checkpoint::apply::check_checkpoint(Path::new("/build"), &b, now).unwrap_err();
    assert!(
        err.to_string().contains("outside what file systems store"),
        "{err}"
    );
    assert_eq!(
        err.exit_code(),
        nix_checkpoint::exit_code::ExitCode::CheckpointUnsafe
    );
    // The latest accepted mtime is accepted, and moved back too.
    let b = Manifest::new(vec![dir(nix_checkpoint::apply::MAX_RESTORED_SECS)]).unwrap();
    nix_checkpoint::apply::check_checkpoint(Path::new("/build"), &b, now).unwrap();
    let plan = nix_checkpoint::plan::plan(&p, &b, &c, now);
    nix_checkpoint::apply::check_plan(Path::new("/build"), &plan).unwrap();
    assert_eq!(plan.fresh_mtime, now);
}

/// Bug: a fifo in place of `checkpoint.nckp` (or of the snapshot state)
/// made `restore` (or `save`) block forever in open(2). Now exit 7, "not a
/// regular file", tree untouched.
#[test]
fn fifo_in_place_of_the_pack_does_not_hang() {
    let mut ws = Workspace::new();
    populate_sources(&ws.root());
    let dir = ws.store().join("fifo");
    std::fs::create_dir_all(&dir).unwrap();
    mkfifo(&dir.join("checkpoint.nckp"));
    ws.seal(&[&ws.root()]);
    let run = with_timeout(|| ws.run_restore(&dir, &[]), "restore from a fifo");
    run.assert_code(7, "fifo pack")
        .assert_stderr_has("not a regular file", "fifo pack");
    let run = with_timeout(
        || ws.run_restore(&dir, &["--fallback-on-error"]),
        "restore from a fifo",
    );
    run.assert_code(3, "fifo pack, fallback")
        .assert_stderr_has("NOTHING RESTORED", "fifo pack, fallback")
        .assert_stderr_has("not a regular file", "fifo pack, fallback");
    ws.check("fifo pack");
    // The same for the state file read by save.
    mkfifo(&ws.state());
    ws.seal(&[&ws.root()]);
    let run = with_timeout(
        || ws.run_save(&ws.dir.path().join("outside/cp")),
        "save from a fifo state",
    );
    run.assert_code(4, "fifo state");
    ws.check("fifo state");
}

// ------------------------------------------------------------- clock skew

/// Finding 1 of #12: builds `project` (make or ninja), dates every product
/// an hour ahead (the earlier build ran on a machine whose clock was), saves,
/// then edits `main.c` in a fresh tree, restores and builds again: the build
/// tool must recompile `main.o` *and relink* `app`, so that the new `app`
/// prints the new text. Before the fix, restore waited its 2 s and returned;
/// make rebuilt `main.o` at the real time, older than the restored `app`,
/// and did not relink ("Clock skew detected").
fn clock_skewed_products_relink(tool: &str) {
    let ws = Workspace::new();
    let v1 = ws.dir.path().join("v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(
        v1.join("Makefile"),
        "app: main.o util.o\n\t@echo LD app\n\t@$(CC) -o $@ main.o util.o\n\
         %.o: %.c\n\t@echo CC $<\n\t@$(CC) -c -o $@ $<\n",
    )
    .unwrap();
    std::fs::write(
        v1.join("build.ninja"),
        "rule cc\n  command = cc -c -o $out $in\n  description = CC $in\n\
         rule ld\n  command = cc -o $out $in\n  description = LD $out\n\
         build main.o: cc main.c\nbuild util.o: cc util.c\nbuild app: ld main.o util.o\n",
    )
    .unwrap();
    std::fs::write(
        v1.join("main.c"),
        "#include <stdio.h>\nint twice(int);\nint main(void){printf(\"one %d\\n\", twice(1));return 0;}\n",
    )
    .unwrap();
    std::fs::write(v1.join("util.c"), "int twice(int x){return 2*x;}\n").unwrap();
    let build = if tool == "make" { "make" } else { "ninja" };

    let project = ws.root().join("project");
    ws.fresh_root();
    crate::util::unpack(&v1, &project);
    ws.snapshot();
    crate::util::sh(&project, build);
    let ahead = filetime::FileTime::from_unix_time(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600,
        0,
    );
    for product in ["main.o", "util.o", "app", ".ninja_log", ".ninja_deps"] {
        if project.join(product).exists() {
            filetime::set_file_mtime(project.join(product), ahead).unwrap();
        }
    }
    let checkpoint = ws.save("skewed");

    ws.fresh_root();
    crate::util::unpack(&v1, &project);
    let main_c = std::fs::read_to_string(project.join("main.c")).unwrap();
    std::fs::write(project.join("main.c"), main_c.replace("one", "two")).unwrap();
    ws.snapshot();
    let started = std::time::Instant::now();
    let out = ws.restore(&checkpoint);
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("moved back"),
        "no clock-skew warning: {stderr}"
    );
    assert!(waited.as_secs_f64() < 1.5, "restore waited {waited:?}");
    let now = std::time::SystemTime::now();
    for e in walkdir::WalkDir::new(ws.root()) {
        let e = e.unwrap();
        let mtime = e.metadata().unwrap().modified().unwrap();
        assert!(mtime <= now, "{} lies in the future", e.path().display());
    }
    let log = crate::util::sh(&project, build);
    assert!(
        log.contains("CC main.c"),
        "{tool} did not recompile main.c:\n{log}"
    );
    assert!(
        !log.contains("CC util.c"),
        "{tool} recompiled util.c:\n{log}"
    );
    assert!(log.contains("LD app"), "{tool} did not relink app:\n{log}");
    assert!(!log.contains("skew"), "{tool}: {log}");
    assert_eq!(crate::util::sh(&project, "./app"), "two 2\n");
    ws.assert_canary_intact();
}

#[test]
fn clock_skewed_checkpoint_still_relinks_with_make() {
    require_tools!("make", "cc");
    clock_skewed_products_relink("make");
}

#[test]
fn clock_skewed_checkpoint_still_relinks_with_ninja() {
    require_tools!("ninja", "cc");
    clock_skewed_products_relink("ninja");
}

// ------------------------------------- names the scan leaves out (#12, 2)

/// Finding 2 of #12, checkpoint side: B lists a name the scan leaves out
/// (`env-vars`, which Nix writes into every build directory, the state, a
/// passAsFile `.attr-*`). Restore used to plan a `Create` there and fail at
/// `O_EXCL` after its first write (exit 10, marker left, even with
/// `--fallback-on-error`). Now refused before the first write: exit 8, and
/// 3 with `--fallback-on-error`, the tree untouched; `verify` agrees.
#[test]
fn checkpoint_entry_at_a_name_the_scan_leaves_out_is_refused_before_the_first_write() {
    let mut ws = Workspace::new();
    populate_sources(&ws.root());
    std::fs::write(ws.root().join("env-vars"), "declare -x out=/nix/store/x\n").unwrap();
    std::fs::write(ws.root().join(".nix-checkpoint-state"), "state").unwrap();
    std::fs::write(ws.root().join(".attr-0"), "attr").unwrap();
    let root = ws.root_bytes();
    let mut dirs = Vec::new();
    for (i, name) in [
        &b"env-vars"[..],
        b".nix-checkpoint-state",
        b".attr-0",
        b".attr-new",
    ]
    .iter()
    .enumerate()
    {
        let pack = sorted(
            RawPack::new(&root)
                .with_file(b"a.o", b"product")
                .with_file(name, b"crafted"),
        );
        dirs.push((
            String::from_utf8_lossy(name).into_owned(),
            ws.put_pack(&format!("excl{i}"), &pack.to_bytes()),
        ));
    }
    ws.seal(&[]);
    let tree = picture(&ws.root());
    for (name, dir) in &dirs {
        ws.run_restore(dir, &[])
            .assert_code(8, name)
            .assert_stderr_has(name, name)
            .assert_stderr_has("reserved", name);
        ws.run_restore(dir, &["--fallback-on-error"])
            .assert_code(3, name)
            .assert_stderr_has("NOTHING RESTORED", name);
        let run = run_strs(&["verify", dir.to_str().unwrap()]);
        run.assert_code(8, name).assert_stderr_has("reserved", name);
        assert_same(name, &tree, &picture(&ws.root()));
        assert!(!ws.root().join(MARKER).exists());
        ws.check(name);
    }
}

/// Finding 8 of #12: `verify` said "intact" for packs `restore` refuses at
/// its plan check. Now it makes every check restore makes on the checkpoint
/// before writing, and both refuse the same packs with the same exit code
/// and reason (here also the clock case: mtimes spanning so much that
/// moving the future ones back would land the oldest before 1901).
#[test]
fn verify_says_intact_only_for_packs_restore_accepts() {
    let mut ws = Workspace::new();
    populate_sources(&ws.root());
    let root = ws.root_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut setuid = RawPack::new(&root).with_file(b"su", b"x");
    setuid.after[0].mode = 0o4755;
    let mut marker = RawPack::new(&root).with_file(MARKER.as_bytes(), b"x");
    marker.after[0].mode = 0o644;
    let mut year_3000 = RawPack::new(&root).with_file(b"late.o", b"x");
    year_3000.after[0].mtime = (32_503_680_000, 0);
    let mut span = RawPack::new(&root)
        .with_file(b"new.o", b"new")
        .with_file(b"old.o", b"old");
    span.after[0].mtime = (now + 3600, 0);
    span.after[1].mtime = (nix_checkpoint::apply::MIN_RESTORED_SECS, 0);
    let cases = [
        ("setuid", setuid, "setuid"),
        ("marker", marker, "reserved"),
        ("year 3000", year_3000, "outside what file systems store"),
        ("span", span, "outside what file systems store"),
    ];
    let mut dirs = Vec::new();
    for (i, (name, pack, reason)) in cases.into_iter().enumerate() {
        let dir = ws.put_pack(&format!("v{i}"), &sorted(pack).to_bytes());
        dirs.push((name, dir, reason));
    }
    ws.seal(&[]);
    for (name, dir, reason) in &dirs {
        let verify = run_strs(&["verify", dir.to_str().unwrap()]);
        verify.assert_code(8, name).assert_stderr_has(reason, name);
        assert!(
            !verify.stderr.contains("intact"),
            "{name}: {}",
            verify.stderr
        );
        ws.run_restore(dir, &[])
            .assert_code(8, name)
            .assert_stderr_has(reason, name);
        ws.check(name);
    }
    // And a sound pack is both intact and restorable.
    let dir = ws.put_pack("sound", &sound_pack(&root).to_bytes());
    run_strs(&["verify", dir.to_str().unwrap()])
        .assert_code(0, "sound")
        .assert_stderr_has("intact and restorable", "sound");
}

/// Finding 2 of #12, tree side, through the binary: a fifo where the
/// checkpoint has a product, and a fifo inside a directory the checkpoint
/// removes. Restore used to fail after its first write ("File exists",
/// "Directory not empty": exit 10, marker left). Now the product is
/// skipped, the directory kept (only what B deleted inside it removed),
/// exit 0, and the fifos are never opened.
#[test]
fn special_file_in_the_new_tree_where_the_checkpoint_writes_is_skipped() {
    let mut ws = Workspace::new();
    let root = ws.root();
    std::fs::create_dir(root.join("d")).unwrap();
    std::fs::write(root.join("d/a"), "A").unwrap();
    mkfifo(&root.join("d/fifo"));
    mkfifo(&root.join("p.o"));
    let mut pack = RawPack::new(&ws.root_bytes())
        .with_file(b"p.o", b"product")
        .with_file(b"q.o", b"other product");
    pack.before = vec![RawEntry::dir(b"d"), RawEntry::file(b"d/a", b"A")];
    let dir = ws.put_pack("fifo", &sorted(pack).to_bytes());
    ws.seal(&[]);
    let run = with_timeout(
        {
            let root = root.clone();
            let dir = dir.clone();
            move || {
                run(&[
                    "restore".as_ref(),
                    "--root".as_ref(),
                    root.as_os_str(),
                    dir.as_os_str(),
                ])
            }
        },
        "restore over fifos",
    );
    run.assert_code(0, "fifos")
        .assert_stderr_has("products not restored", "fifos");
    let ft = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(ft("p.o").is_fifo(), "the fifo stays");
    assert!(ft("d/fifo").is_fifo());
    assert!(ft("d").is_dir(), "the directory holding it stays");
    assert!(!root.join("d/a").exists(), "what B deleted goes");
    assert_eq!(std::fs::read(root.join("q.o")).unwrap(), b"other product");
    assert!(!root.join(MARKER).exists());
    ws.check("fifos");
}

/// Finding 4 of #12: a file of the new tree hard-linked to a file outside
/// it. Restore used to set the outside file's mtime (to 1 s through a
/// `Retime`). Now an unchanged one is not re-timed (exit 0, warning), and a
/// changed one, which would need the fresh mtime, makes restore fall back
/// (exit 3, nothing restored). Either way the outside file is untouched.
#[test]
fn hard_link_to_a_file_outside_the_tree_is_never_retimed() {
    let mut ws = Workspace::new();
    let root = ws.root();
    let outside = ws.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("h.c"), "int h;\n").unwrap();
    let odd = filetime::FileTime::from_unix_time(1_500_000_000, 123_456_789);
    filetime::set_file_mtime(outside.join("h.c"), odd).unwrap();
    std::fs::hard_link(outside.join("h.c"), root.join("h.c")).unwrap();
    std::fs::write(root.join("k.c"), "int k;\n").unwrap();

    // Unchanged since P; B re-times it to 1 s.
    let mut pack = RawPack::new(&ws.root_bytes()).with_file(b"p.o", b"product");
    pack.before = vec![
        RawEntry::file(b"h.c", b"int h;\n"),
        RawEntry::file(b"k.c", b"int k;\n"),
    ];
    pack.after
        .push(RawEntry::file(b"h.c", b"int h;\n").with_mtime(1, 0));
    pack.after
        .push(RawEntry::file(b"k.c", b"int k;\n").with_mtime(1, 0));
    let unchanged = ws.put_pack("unchanged", &sorted(pack.clone()).to_bytes());
    // Changed since P: it would need the fresh mtime.
    pack.before[0] = RawEntry::file(b"h.c", b"int old_h;\n");
    pack.after[1] = RawEntry::file(b"h.c", b"int old_h;\n").with_mtime(1, 0);
    let changed = ws.put_pack("changed", &sorted(pack).to_bytes());
    ws.seal(&[&outside]);

    let tree = picture(&root);
    ws.run_restore(&changed, &[])
        .assert_code(3, "changed")
        .assert_stderr_has("hard link to a file outside", "changed");
    assert_same("changed", &tree, &picture(&root));
    ws.check("changed");

    ws.run_restore(&unchanged, &[])
        .assert_code(0, "unchanged")
        .assert_stderr_has("hard links", "unchanged");
    ws.check("unchanged");
    let mtime = |p: &Path| filetime::FileTime::from_last_modification_time(&p.metadata().unwrap());
    assert_eq!(mtime(&outside.join("h.c")), odd);
    assert_eq!(
        mtime(&root.join("k.c")),
        filetime::FileTime::from_unix_time(1, 0)
    );
    assert_eq!(std::fs::read(root.join("p.o")).unwrap(), b"product");
}

// ------------------------------------------- concurrent saves (#12, 5)

/// Finding 5 of #12: two saves into one `--output` at once (9 of 12 times
/// the save that exited 0 lost its pack to the other), and one of them
/// killed mid-write (2 of 5 times `checkpoint.nckp` was its truncated file,
/// the previous good pack gone). Now every save writes its own temporary
/// file under a lock on the directory: after any such round the pack is
/// byte for byte one of the two complete packs, and it verifies.
#[test]
fn concurrent_saves_into_one_output_leave_a_complete_pack() {
    let mut ws = Workspace::new();
    let roots = [ws.root(), ws.dir.path().join("outside/build2")];
    let states = [ws.state(), ws.dir.path().join("outside/state2")];
    let shared = ws.dir.path().join("outside/shared");
    let mut references = Vec::new();
    for (i, (root, state)) in roots.iter().zip(&states).enumerate() {
        std::fs::create_dir_all(root).unwrap();
        populate_sources(root);
        run(&snapshot_args(root, state)).assert_code(0, "snapshot");
        std::fs::create_dir(root.join("out")).unwrap();
        for f in 0..200 {
            std::fs::write(
                root.join(format!("out/{f}.o")),
                random_bytes(20 << 10, f + 1000 * i as u64),
            )
            .unwrap();
        }
        let reference = ws.dir.path().join(format!("outside/ref{i}"));
        run(&save_args(root, state, &reference)).assert_code(0, "reference save");
        references.push(std::fs::read(reference.join("checkpoint.nckp")).unwrap());
    }
    assert_ne!(references[0], references[1]);
    ws.seal(&[&roots[0], &roots[1]]);
    let check = |what: &str| {
        let pack = std::fs::read(shared.join("checkpoint.nckp")).unwrap();
        assert!(
            references.contains(&pack),
            "{what}: not one of the two complete packs"
        );
        assert_eq!(
            run_strs(&["verify", shared.to_str().unwrap()]).code,
            0,
            "{what}"
        );
    };
    for round in 0..12 {
        let children: Vec<_> = (0..2)
            .map(|i| spawn(&save_args(&roots[i], &states[i], &shared)))
            .collect();
        for mut child in children {
            assert!(
                child.wait().unwrap().success(),
                "round {round}: a save failed"
            );
        }
        check(&format!("round {round}"));
    }
    // One of the two killed mid-write: the other's pack, or the previous one.
    let mut killed_mid_write = 0;
    for round in 0..8u64 {
        let survivor = spawn(&save_args(&roots[0], &states[0], &shared));
        let victim = spawn(&save_args(&roots[1], &states[1], &shared));
        if !kill_after(victim, 2_000 + round * 15_000) {
            killed_mid_write += 1;
        }
        let mut survivor = survivor;
        assert!(survivor.wait().unwrap().success(), "kill round {round}");
        check(&format!("kill round {round}"));
    }
    eprintln!("concurrent saves: 12 rounds of two, 8 with one killed ({killed_mid_write} before it finished)");
    ws.check("concurrent saves");
}

/// Finding 6 of #12: `inspect --list` printed checkpoint-controlled names
/// raw: an escape sequence reached the terminal, a newline forged a
/// listing line, distinct non-UTF-8 names printed alike (and `--json` was
/// lossy too). Now every name and target is escaped unambiguously.
#[test]
fn inspect_list_escapes_checkpoint_names() {
    let ws = Workspace::new();
    let pack = sorted(
        RawPack::new(&ws.root_bytes())
            .with_file(
                b"a\nproduct   file    644          1 1.000000000 forged",
                b"1",
            )
            .with_file(b"esc\x1b[2J", b"2")
            .with_file(b"n\xff", b"3")
            .with_file(b"n\xfe", b"4")
            .with_symlink(b"link", b"t\x1b]0;title\x07"),
    );
    let dir = ws.put_pack("names", &pack.to_bytes());
    let list = run_strs(&["inspect", "--list", dir.to_str().unwrap()]);
    list.assert_code(0, "inspect --list");
    let json = run_strs(&["--json", "inspect", dir.to_str().unwrap()]);
    json.assert_code(0, "inspect --json");
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let json_text: String = parsed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} -> {}\n", e["path"].as_str().unwrap(), e["target"]))
        .collect();
    for (what, out) in [("list", &list.stdout), ("json", &json_text)] {
        assert!(
            !out.contains('\x1b') && !out.contains('\x07'),
            "{what}: raw escape: {out:?}"
        );
        assert!(!out.contains('\u{fffd}'), "{what}: lossy: {out:?}");
        assert!(
            out.contains("n\\xff") && out.contains("n\\xfe"),
            "{what}: {out}"
        );
        assert!(out.contains("esc\\u{1b}[2J"), "{what}: {out}");
    }
    let product_lines = list
        .stdout
        .lines()
        .filter(|l| l.starts_with("product"))
        .count();
    assert_eq!(
        product_lines, 5,
        "one line per entry, none forged:\n{}",
        list.stdout
    );
    assert!(list.stdout.contains("a\\nproduct"), "{}", list.stdout);
}

/// Finding 7 of #12: `save` recorded the snapshot state's root, not
/// `--root`, so a state taken in another tree was accepted silently (and a
/// state with other outputs only warned). Both are now refused, exit 4,
/// naming the state file and what differs, and no pack is written.
#[test]
fn save_refuses_a_state_taken_in_another_tree_or_for_other_outputs() {
    let ws = Workspace::new();
    let root = ws.fresh_root();
    let other = ws.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("a.c"), "int a;\n").unwrap();
    std::fs::write(root.join("b.c"), "int b;\n").unwrap();
    let state = ws.dir.path().join("state");
    let (root_s, other_s, state_s) = (
        root.to_str().unwrap(),
        other.to_str().unwrap(),
        state.to_str().unwrap(),
    );
    let out = ws.dir.path().join("cp");
    let out_s = out.to_str().unwrap();
    ws.run_ok(&["snapshot", "--root", other_s, "--state", state_s]);
    let saved = ws.run(&[
        "save", "--root", root_s, "--state", state_s, "--output", out_s,
    ]);
    let stderr = String::from_utf8_lossy(&saved.stderr);
    assert_eq!(saved.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(state_s) && stderr.contains(other_s) && stderr.contains(root_s),
        "{stderr}"
    );
    assert!(stderr.contains("snapshot"), "no advice: {stderr}");
    assert!(!out.join("checkpoint.nckp").exists());

    let store = |name: &str| format!("/nix/store/{}-{name}", "0".repeat(32));
    let env = |name: &str| [("outputs", "out".to_string()), ("out", store(name))];
    let snap_env = env("hello-1");
    let snap_env: Vec<(&str, &str)> = snap_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ws.run_env(
        &["snapshot", "--root", root_s, "--state", state_s],
        &snap_env,
    );
    let save_env = env("hello-2");
    let save_env: Vec<(&str, &str)> = save_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = ws.run_env(
        &[
            "save", "--root", root_s, "--state", state_s, "--output", out_s,
        ],
        &save_env,
    );
    let stderr = String::from_utf8_lossy(&saved.stderr);
    assert_eq!(saved.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("hello-1") && stderr.contains("hello-2"),
        "{stderr}"
    );
    assert!(!out.join("checkpoint.nckp").exists());
    // The matching save works.
    let saved = ws.run_env(
        &[
            "save", "--root", root_s, "--state", state_s, "--output", out_s,
        ],
        &snap_env,
    );
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
}
