//! The abuse harness: a build root with a canary directory beside it and a
//! checkpoint in a fake store, a byte-for-byte picture of any directory
//! (content, symlink targets, modes, nanosecond mtimes), and the built
//! binary run with its exit code, stderr and peak memory.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// A temporary directory holding `build/` (the root), `canary/` (beside
/// it, every kind of entry, odd modes and mtimes) and `store/` (where
/// checkpoints go). [`Arena::check`] asserts the canary and every
/// checkpoint are exactly as they were at [`Arena::seal`].
pub struct Arena {
    pub dir: tempfile::TempDir,
    sealed: Vec<(PathBuf, Picture)>,
}

impl Arena {
    pub fn new() -> Arena {
        let dir = tempfile::tempdir().unwrap();
        let a = Arena {
            dir,
            sealed: Vec::new(),
        };
        std::fs::create_dir_all(a.root()).unwrap();
        std::fs::create_dir_all(a.store()).unwrap();
        let c = a.canary();
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
        a
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

    pub fn restore(&self, checkpoint: &Path, extra: &[&str]) -> Run {
        let mut args: Vec<&std::ffi::OsStr> = vec!["restore".as_ref(), "--root".as_ref()];
        let root = self.root();
        args.push(root.as_os_str());
        args.push(checkpoint.as_os_str());
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        run(&args)
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn snapshot(&self) -> Run {
        let root = self.root();
        let state = self.state();
        run(&[
            "snapshot".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ])
    }

    pub fn save(&self, output: &Path) -> Run {
        let root = self.root();
        let state = self.state();
        run(&[
            "save".as_ref(),
            "--root".as_ref(),
            root.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
        ])
    }
}
