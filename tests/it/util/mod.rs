//! The one harness of the integration tests: a [`Workspace`] (a build root
//! at a fixed path, so that a clean build and a restored build compile
//! identical objects, a canary directory beside it and a fake store), a
//! Nix-like lifecycle (unpack with mtime 1, configure, snapshot, build,
//! save, store canonicalisation), a byte-for-byte [`picture`] of any
//! directory (content, symlink targets, modes, nanosecond mtimes), and the
//! built binary, run either for its [`Output`] or as a [`Run`] with its exit
//! code, stderr and peak memory.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[macro_use]
pub mod skip;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nix-checkpoint")
}

/// One entry of a [`Picture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shot {
    Dir {
        mode: u32,
        mtime: (i64, i64),
    },
    File {
        mode: u32,
        mtime: (i64, i64),
        content: Vec<u8>,
        ino_links: u64,
    },
    Symlink {
        target: Vec<u8>,
        mtime: (i64, i64),
    },
    Other {
        mode: u32,
        mtime: (i64, i64),
    },
}

/// Everything under (and including) a path, never following a symlink.
pub type Picture = BTreeMap<Vec<u8>, Shot>;

pub fn picture(path: &Path) -> Picture {
    let mut out = Picture::new();
    if std::fs::symlink_metadata(path).is_err() {
        return out;
    }
    for entry in walkdir::WalkDir::new(path)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let mtime = (meta.mtime(), meta.mtime_nsec());
        let mode = meta.mode();
        let ft = meta.file_type();
        let shot = if ft.is_symlink() {
            Shot::Symlink {
                target: std::fs::read_link(entry.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
                mtime,
            }
        } else if ft.is_dir() {
            Shot::Dir { mode, mtime }
        } else if ft.is_file() {
            Shot::File {
                mode,
                mtime,
                content: std::fs::read(entry.path()).unwrap_or_else(|_| b"<unreadable>".to_vec()),
                ino_links: meta.nlink(),
            }
        } else {
            Shot::Other { mode, mtime }
        };
        let rel = entry.path().strip_prefix(path).unwrap();
        out.insert(rel.as_os_str().as_bytes().to_vec(), shot);
    }
    out
}

/// Asserts two pictures are equal, naming the first difference.
pub fn assert_same(what: &str, before: &Picture, after: &Picture) {
    if before == after {
        return;
    }
    for (k, v) in before {
        match after.get(k) {
            None => panic!("{what}: {} disappeared", String::from_utf8_lossy(k)),
            Some(w) if w != v => panic!(
                "{what}: {} changed:\n  before {v:?}\n  after  {w:?}",
                String::from_utf8_lossy(k)
            ),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            panic!("{what}: {} appeared", String::from_utf8_lossy(k));
        }
    }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set size of the child, in KiB (from `wait4`).
    pub max_rss_kib: i64,
}

impl Run {
    pub fn assert_code(&self, code: i32, what: &str) -> &Run {
        assert_eq!(
            self.code, code,
            "{what}: expected exit {code}, got {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }
    pub fn assert_stderr_has(&self, needle: &str, what: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "{what}: stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `cmd` with a clean environment and stdin from /dev/null, in a fresh
/// process: a child forked straight from the test would inherit the test's
/// own peak RSS (at `execve` the kernel keeps the old image's high-water
/// mark), so it is started by a small one, which reports its peak RSS.
/// That is `/usr/bin/time` where it exists, or else (an unprivileged
/// machine without it, the Nix sandbox) this test binary itself, re-run to
/// do nothing but [`rss_probe`]: it spawns `cmd` and reads its peak from
/// `getrusage(RUSAGE_CHILDREN)`.
pub fn run_cmd(cmd: Command) -> Run {
    if is_executable(Path::new(TIME)) {
        run_timed(cmd)
    } else {
        run_probed(cmd)
    }
}

const TIME: &str = "/usr/bin/time";

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn run_timed(cmd: Command) -> Run {
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new(TIME);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    // A clean environment: the recipe of every checkpoint the harness makes
    // or crafts is then the same (empty), whatever runs the tests.
    timed.env_clear().stdin(Stdio::null());
    let out = timed.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let rss = std::fs::read_to_string(rss_file.path()).unwrap_or_default();
    // GNU time prints "Command exited with non-zero status N" first.
    let max_rss_kib = rss
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(-1);
    Run {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        max_rss_kib,
    }
}

/// Set, for a re-run of this test binary, to the directory of a
/// [`rss_probe`] request.
const PROBE_ENV: &str = "NIX_CHECKPOINT_RSS_PROBE";

/// libtest's name of [`rss_probe`]: this module's path without the crate.
fn probe_test_name() -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, m)| m);
    format!("{module}::rss_probe")
}

/// The request is `dir/argv` (program and arguments, each ended by a NUL)
/// and, optionally, `dir/cwd`; the probe writes `dir/stdout`, `dir/stderr`
/// and `dir/result` (`<exit code> <peak RSS in KiB>`).
fn run_probed(cmd: Command) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut argv = Vec::new();
    for a in std::iter::once(cmd.get_program()).chain(cmd.get_args()) {
        argv.extend_from_slice(a.as_bytes());
        argv.push(0);
    }
    std::fs::write(dir.path().join("argv"), argv).unwrap();
    if let Some(cwd) = cmd.get_current_dir() {
        std::fs::write(dir.path().join("cwd"), cwd.as_os_str().as_bytes()).unwrap();
    }
    let probe = Command::new(std::env::current_exe().unwrap())
        .args([&probe_test_name(), "--exact", "--test-threads=1", "--quiet"])
        .env(PROBE_ENV, dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let result = std::fs::read_to_string(dir.path().join("result")).unwrap_or_else(|_| {
        panic!(
            "the RSS probe ran nothing: {}{}",
            String::from_utf8_lossy(&probe.stdout),
            String::from_utf8_lossy(&probe.stderr)
        )
    });
    let mut fields = result.split_whitespace().map(|f| f.parse().unwrap());
    let read = |name: &str| {
        String::from_utf8_lossy(&std::fs::read(dir.path().join(name)).unwrap()).into_owned()
    };
    Run {
        code: fields.next().unwrap() as i32,
        max_rss_kib: fields.next().unwrap(),
        stdout: read("stdout"),
        stderr: read("stderr"),
    }
}

/// Not a test: the other half of [`run_probed`], doing nothing unless this
/// binary was re-run for it. Spawned by a fresh process (this binary, small
/// at this point), `cmd`'s peak RSS is its own.
#[test]
fn rss_probe() {
    use std::os::unix::process::ExitStatusExt;
    let Some(dir) = std::env::var_os(PROBE_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let argv = std::fs::read(dir.join("argv")).unwrap();
    let mut argv = argv
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(std::ffi::OsStr::from_bytes);
    let mut cmd = Command::new(argv.next().unwrap());
    cmd.args(argv)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    if let Ok(cwd) = std::fs::read(dir.join("cwd")) {
        cmd.current_dir(std::ffi::OsStr::from_bytes(&cwd));
    }
    let status = cmd.status().unwrap();
    // As GNU time exits: the child's code, or 128 + the signal that killed it.
    let code = status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    std::fs::write(dir.join("result"), format!("{code} {}\n", usage.max_rss())).unwrap();
}

pub fn run(args: &[&std::ffi::OsStr]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    run_cmd(cmd)
}

/// How far back [`Workspace::save`] and [`Workspace::run_save`] date what
/// the build wrote, as if the build had ended that long ago (and the
/// snapshot dates what was there before it twice as far back): `restore`
/// returns only once the clock has passed the fresh mtime (the newest
/// restored one + 1 s), which a checkpoint of files written "now" puts up
/// to a second ahead. `save_now` keeps the products as written.
pub const BUILD_ENDED_AGO: Duration = Duration::from_secs(10);

/// A temporary directory holding `build/` (the root, reused at the same
/// path for every build, like `/build`), `canary/` (beside it, every kind
/// of entry, odd modes and mtimes: it must never change) and `store/`
/// (where checkpoints go). [`Workspace::check`] asserts the canary and
/// every checkpoint are exactly as they were at [`Workspace::seal`].
///
/// Its lifecycle comes in two forms: [`Workspace::snapshot`],
/// [`Workspace::save`] and [`Workspace::restore`] (state in the root, as
/// the setup hook keeps it; each must succeed) and [`Workspace::run_snapshot`],
/// [`Workspace::run_save`] and [`Workspace::run_restore`] (state beside the
/// root, in `state`; each returns its [`Run`], exit code and peak memory).
pub struct Workspace {
    pub dir: tempfile::TempDir,
    canary_at_start: Picture,
    sealed: Vec<(PathBuf, Picture)>,
    /// When the last snapshot was taken: what is newer the build wrote.
    snapshot_taken: Mutex<Option<SystemTime>>,
    /// Whether snapshots and saves date the tree back (see
    /// [`BUILD_ENDED_AGO`]); on unless a test measures them.
    pub dating: bool,
}

/// The state file [`Workspace::snapshot`] and [`Workspace::save`] use.
pub const STATE: &str = ".nix-checkpoint-state";

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("build");
        let store = dir.path().join("store");
        std::fs::create_dir_all(root).unwrap();
        std::fs::create_dir_all(store).unwrap();
        let c = dir.path().join("canary");
        std::fs::create_dir_all(c.join("sub/deeper")).unwrap();
        std::fs::write(c.join("keep"), "canary").unwrap();
        std::fs::write(c.join("sub/exec"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(c.join("sub/exec"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(c.join("sub/deeper/ro"), "read-only").unwrap();
        std::fs::set_permissions(
            c.join("sub/deeper/ro"),
            std::fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        std::os::unix::fs::symlink("keep", c.join("link")).unwrap();
        // Same names a hostile checkpoint uses, so an escape would collide.
        std::fs::write(c.join("owned"), "canary").unwrap();
        for e in walkdir::WalkDir::new(&c).contents_first(true) {
            let e = e.unwrap();
            let t = filetime::FileTime::from_unix_time(1_234_567_890, 123_456_789);
            filetime::set_symlink_file_times(e.path(), t, t).unwrap();
        }
        Workspace {
            canary_at_start: picture(&c),
            dir,
            sealed: Vec::new(),
            snapshot_taken: Mutex::new(None),
            dating: true,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("build")
    }
    pub fn canary(&self) -> PathBuf {
        self.dir.path().join("canary")
    }
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    pub fn root_bytes(&self) -> Vec<u8> {
        self.root().as_os_str().as_bytes().to_vec()
    }
    /// The state file of [`Workspace::run_snapshot`] and [`Workspace::run_save`].
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn checkpoint(&self, name: &str) -> PathBuf {
        self.store().join(name)
    }

    /// A fresh, empty build root (like a new sandbox).
    pub fn fresh_root(&self) -> PathBuf {
        let root = self.root();
        // A symlink at the root (a hostile case plants one) goes too.
        if std::fs::symlink_metadata(&root).is_ok() {
            make_writable(&root);
            std::fs::remove_dir_all(&root).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    /// Writes a pack as `store/NAME/checkpoint.nckp`, read-only like the store.
    pub fn put_pack(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let d = self.store().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("checkpoint.nckp");
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
        d
    }

    /// Records the canary and the store (and any `extra` path) as they are now.
    pub fn seal(&mut self, extra: &[&Path]) {
        self.sealed.clear();
        let mut paths = vec![self.canary(), self.store()];
        paths.extend(extra.iter().map(|p| p.to_path_buf()));
        for p in paths {
            let pic = picture(&p);
            self.sealed.push((p, pic));
        }
    }

    /// Asserts every sealed path is byte for byte as sealed.
    pub fn check(&self, what: &str) {
        assert!(!self.sealed.is_empty(), "seal before check");
        for (p, pic) in &self.sealed {
            assert_same(&format!("{what}: {}", p.display()), pic, &picture(p));
        }
        // Nothing new beside the build root either.
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let allowed = ["build", "canary", "outside", "state", "store"];
        for n in names {
            assert!(
                allowed.iter().any(|a| n == *a),
                "{what}: {n:?} appeared beside the build root"
            );
        }
    }

    /// Asserts the canary is byte for byte as [`Workspace::new`] made it.
    pub fn assert_canary_intact(&self) {
        assert_same(
            "the canary beside the build root",
            &self.canary_at_start,
            &picture(&self.canary()),
        );
    }

    /// Runs nix-checkpoint with `args`, `NIX_BUILD_TOP` unset.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs nix-checkpoint with `args` and extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_remove("NIX_BUILD_TOP")
            .env_remove("out")
            .env_remove("outputs");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs nix-checkpoint with `args` in a clean environment, as a [`Run`]:
    /// what it prints then depends on nothing but its arguments and files.
    pub fn run_clean(&self, args: &[&str]) -> Run {
        run_strs(args)
    }

    /// Insta settings that replace what varies from run to run: this
    /// workspace's path (`[WS]`), durations (`[SECS] s`, `"..seconds":
    /// [SECS]`) and the fresh mtime of a plan (`[FRESH]`).
    pub fn insta_settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_snapshot_path("snapshots");
        settings.add_filter(
            &regex_escape(&self.dir.path().display().to_string()),
            "[WS]",
        );
        settings.add_filter(r"\b\d+\.\d+ s\b", "[SECS] s");
        settings.add_filter(r#""(\w*seconds)":\s*[-0-9.e]+"#, r#""$1": "[SECS]""#);
        settings.add_filter(r"fresh mtime \d+\.\d{9}", "fresh mtime [FRESH]");
        settings
    }

    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nix-checkpoint {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Before a snapshot: dates what the last hour wrote in the root (the
    /// unpacked sources, configure's outputs) twice [`BUILD_ENDED_AGO`]
    /// back, and notes the time for [`Workspace::build_ended_ago`]: what
    /// is newer, the build wrote.
    pub fn note_snapshot_time(&self) {
        if !self.dating {
            return;
        }
        let now = SystemTime::now();
        date_back(
            &self.root(),
            now - Duration::from_secs(3600),
            2 * BUILD_ENDED_AGO,
        );
        *self.snapshot_taken.lock().unwrap() = Some(now);
    }

    /// Dates back by [`BUILD_ENDED_AGO`] everything in the root written
    /// since the last snapshot (the build's products), keeping their order.
    pub fn build_ended_ago(&self) {
        if !self.dating {
            return;
        }
        if let Some(since) = *self.snapshot_taken.lock().unwrap() {
            date_back(&self.root(), since, BUILD_ENDED_AGO);
        }
    }

    pub fn snapshot(&self) {
        let root = self.root();
        self.note_snapshot_time();
        self.run_ok(&[
            "snapshot",
            "--root",
            root.to_str().unwrap(),
            "--state",
            root.join(STATE).to_str().unwrap(),
        ]);
    }

    /// `save` into the fake store, then canonicalise it as the Nix store
    /// would: mtime 1, no write bits. The products are dated as of a build
    /// that ended [`BUILD_ENDED_AGO`].
    pub fn save(&self, name: &str) -> PathBuf {
        self.build_ended_ago();
        self.save_now(name)
    }

    /// [`Workspace::save`] with the products' mtimes as the build wrote them.
    pub fn save_now(&self, name: &str) -> PathBuf {
        let root = self.root();
        let out = self.checkpoint(name);
        self.run_ok(&[
            "save",
            "--root",
            root.to_str().unwrap(),
            "--state",
            root.join(STATE).to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        canonicalise_like_the_store(&out);
        out
    }

    pub fn restore(&self, checkpoint: &Path) -> Output {
        let root = self.root();
        self.run_ok(&[
            "restore",
            "--root",
            root.to_str().unwrap(),
            checkpoint.to_str().unwrap(),
        ])
    }

    pub fn run_restore(&self, checkpoint: &Path, extra: &[&str]) -> Run {
        let mut args: Vec<&std::ffi::OsStr> = vec!["restore".as_ref(), "--root".as_ref()];
        let root = self.root();
        args.push(root.as_os_str());
        args.push(checkpoint.as_os_str());
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        run(&args)
    }

    pub fn run_snapshot(&self) -> Run {
        let root = self.root();
        let state = self.state();
        self.note_snapshot_time();
        run(&snapshot_args(&root, &state))
    }

    /// `save` of the root into `output`, the products dated as of a build
    /// that ended [`BUILD_ENDED_AGO`].
    pub fn run_save(&self, output: &Path) -> Run {
        self.build_ended_ago();
        run(&save_args(&self.root(), &self.state(), output))
    }
}

/// The arguments of `snapshot` of `root` into `state`.
pub fn snapshot_args<'a>(root: &'a Path, state: &'a Path) -> Vec<&'a std::ffi::OsStr> {
    vec![
        "snapshot".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
    ]
}

/// `run` with string arguments.
pub fn run_strs(args: &[&str]) -> Run {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    run(&args)
}

/// The arguments of `save` of `root` into `output`.
pub fn save_args<'a>(
    root: &'a Path,
    state: &'a Path,
    output: &'a Path,
) -> Vec<&'a std::ffi::OsStr> {
    vec![
        "save".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ]
}

/// `text` as a regular expression matching it literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Moves back by `by` the mtime of every entry under `dir` (never following
/// a symlink) whose mtime is `since` or later, but the [`STATE`] file. What
/// it cannot reach (beyond PATH_MAX, unreadable) it leaves alone.
pub fn date_back(dir: &Path, since: SystemTime, by: Duration) {
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let Ok(entry) = entry else { continue };
        if entry.file_name() == STATE {
            continue;
        }
        let Ok(mtime) = entry.path().symlink_metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if mtime >= since {
            let t = filetime::FileTime::from_system_time(mtime - by);
            let _ = filetime::set_symlink_file_times(entry.path(), t, t);
        }
    }
}

/// Copies `from` into `to` recursively, giving every entry mtime 1, as an
/// unpack from the Nix store does. Symlinks are copied as symlinks.
pub fn unpack(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in walkdir::WalkDir::new(from).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
    set_all_mtimes(to, 1);
}

pub fn set_all_mtimes(dir: &Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(secs, 0);
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.unwrap();
        filetime::set_symlink_file_times(entry.path(), t, t).unwrap();
    }
}

pub fn canonicalise_like_the_store(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.unwrap();
        if !entry.file_type().is_symlink() {
            let mode = entry.metadata().unwrap().permissions().mode();
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode & !0o222))
                .unwrap();
        }
    }
    set_all_mtimes(dir, 1);
}

pub fn make_writable(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if !entry.file_type().is_symlink() {
            let mode = entry.metadata().unwrap().permissions().mode();
            let _ = std::fs::set_permissions(
                entry.path(),
                std::fs::Permissions::from_mode(mode | 0o700),
            );
        }
    }
}

/// Runs a shell command in `dir`; panics with its output on failure.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{script}` failed in {}:\n{text}",
        dir.display()
    );
    text
}

/// The units a build log says were compiled: lines `CC <file>`.
pub fn compiled_units(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("CC "))
        .map(|s| s.trim().to_string())
        .collect()
}

pub fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
