//! What each command has to say when it ends: one typed report per
//! command, `Display` for the one-line summary on stderr and `Serialize`
//! for `--json` on stdout.
//!
//! The JSON of a report is its fields plus `command` and `exit_code`,
//! which [`Report::json`] adds, so that the exit code a program reads is
//! always the one the process exits with. Keys come out sorted (a
//! `serde_json::Map` without `preserve_order` is a `BTreeMap`); the tests
//! below pin every report's bytes, which are a contract with the setup
//! hook and with users' scripts.

use super::human_bytes;
use crate::apply::ApplyStats;
use crate::checkpoint::CheckpointError;
use crate::exit_code::ExitCode;
use crate::plan::PlanCounts;
use crate::rewrite::RelocationError;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// What a command ended with: its report, longer output for stdout (a
/// dry-run plan, an inspect listing), and warnings to print before the
/// summary.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub body: Option<String>,
    pub warnings: Vec<String>,
}

impl Outcome {
    pub fn new(report: impl Into<Report>) -> Outcome {
        Outcome {
            report: report.into(),
            body: None,
            warnings: Vec::new(),
        }
    }

    pub fn with_body(mut self, body: Option<String>) -> Outcome {
        self.body = body;
        self
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Outcome {
        self.warnings = warnings;
        self
    }
}

/// The report of one command.
#[derive(Debug)]
pub enum Report {
    Snapshot(SnapshotReport),
    TrackConfigure(TrackConfigureReport),
    Save(SaveReport),
    Restore(RestoreReport),
    Inspect(InspectReport),
    Verify(VerifyReport),
}

impl Report {
    /// The subcommand's name, as typed and as `command` in the JSON.
    pub fn command(&self) -> &'static str {
        match self {
            Report::Snapshot(_) => "snapshot",
            Report::TrackConfigure(_) => "track-configure",
            Report::Save(_) => "save",
            Report::Restore(_) => "restore",
            Report::Inspect(_) => "inspect",
            Report::Verify(_) => "verify",
        }
    }

    /// The process's exit code: success, unless restore fell back or
    /// deferred.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Report::Restore(RestoreReport::FellBack { .. }) => ExitCode::FellBack,
            Report::Restore(RestoreReport::Deferred { .. }) => ExitCode::Deferred,
            _ => ExitCode::Success,
        }
    }

    /// The `--json` summary: the report's fields, `command` and
    /// `exit_code`, keys sorted.
    pub fn json(&self) -> serde_json::Value {
        let fields = match self {
            Report::Snapshot(r) => serde_json::to_value(r),
            Report::TrackConfigure(r) => serde_json::to_value(r),
            Report::Save(r) => serde_json::to_value(r),
            Report::Restore(r) => serde_json::to_value(r),
            Report::Inspect(r) => serde_json::to_value(r),
            Report::Verify(r) => serde_json::to_value(r),
        };
        // Numbers, strings and paths: only a path that is not UTF-8 fails
        // (serde refuses it), which panics as `serde_json::json!` always did.
        let mut value = fields.expect("a report serialises to JSON");
        if let Some(map) = value.as_object_mut() {
            map.insert("command".into(), self.command().into());
            map.insert("exit_code".into(), self.exit_code().code().into());
        }
        value
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Snapshot(r) => r.fmt(f),
            Report::TrackConfigure(r) => r.fmt(f),
            Report::Save(r) => r.fmt(f),
            Report::Restore(r) => r.fmt(f),
            Report::Inspect(r) => r.fmt(f),
            Report::Verify(r) => r.fmt(f),
        }
    }
}

macro_rules! into_report {
    ($($variant:ident($ty:ident)),*) => {
        $(impl From<$ty> for Report {
            fn from(r: $ty) -> Report {
                Report::$variant(r)
            }
        })*
    };
}

into_report!(
    Snapshot(SnapshotReport),
    TrackConfigure(TrackConfigureReport),
    Save(SaveReport),
    Restore(RestoreReport),
    Inspect(InspectReport),
    Verify(VerifyReport)
);

/// The JSON of an error: `{"error": "...", "exit_code": N}`.
pub fn error_json(e: &crate::error::Error) -> serde_json::Value {
    serde_json::json!({ "exit_code": e.exit_code().code(), "error": e.to_string() })
}

/// `snapshot`: the tree as the build starts (fields in key order).
#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    pub bytes: u64,
    pub dependencies: usize,
    pub directories: u64,
    pub files: u64,
    pub seconds: f64,
    pub skipped_special: u64,
    pub state: PathBuf,
    pub symlinks: u64,
}

impl fmt::Display for SnapshotReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot: {} files ({}), {} symlinks, {} directories hashed in {:.2} s -> {}",
            self.files,
            human_bytes(self.bytes),
            self.symlinks,
            self.directories,
            self.seconds,
            self.state.display()
        )
    }
}

/// `track-configure --start` / `--finish`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TrackConfigureReport {
    /// `--start`: this many files of the snapshot are watched for reads.
    Start { seconds: f64, watching: usize },
    /// `--finish`: configure read this many of them (`known: false`: the
    /// file system records no access times).
    Finish {
        known: bool,
        read: usize,
        seconds: f64,
    },
}

impl fmt::Display for TrackConfigureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackConfigureReport::Start { seconds, watching } => write!(
                f,
                "track-configure: watching {watching} files for reads ({seconds:.2} s)"
            ),
            TrackConfigureReport::Finish {
                known: true,
                read,
                seconds,
            } => write!(
                f,
                "track-configure: configure read {read} files -> {} ({seconds:.2} s)",
                crate::gate::READS_FILE
            ),
            TrackConfigureReport::Finish {
                known: false,
                seconds,
                ..
            } => write!(
                f,
                "track-configure: this file system records no access times; later builds will \
                 run configure ({seconds:.2} s)"
            ),
        }
    }
}

/// `save`: what the checkpoint holds (fields in key order).
#[derive(Debug, Serialize)]
pub struct SaveReport {
    pub blobs: u64,
    pub checkpoint: PathBuf,
    pub entries: usize,
    pub pack_bytes: u64,
    /// New or changed files stored.
    pub products: usize,
    pub raw_bytes: u64,
    pub seconds: f64,
}

impl fmt::Display for SaveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "save: {} new or changed files ({} raw, {} stored) of {} entries in {:.2} s -> {}",
            self.products,
            human_bytes(self.raw_bytes),
            human_bytes(self.pack_bytes),
            self.entries,
            self.seconds,
            self.checkpoint.display()
        )
    }
}

/// Whether configure runs, as `restore` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Configure {
    /// Restored before configure, which is skipped.
    Skipped,
    /// Restored before configure, which still runs.
    Runs,
    /// Restored after configure.
    Ran,
}

impl Configure {
    pub fn new(skip: bool, before_configure: bool) -> Configure {
        match (skip, before_configure) {
            (true, _) => Configure::Skipped,
            (false, true) => Configure::Runs,
            (false, false) => Configure::Ran,
        }
    }
}

/// Why restore restored nothing and the build runs in full.
#[derive(Debug)]
pub enum FallBack {
    /// The checkpoint is one of nixpkgs' `checkpointBuildTools`.
    NixpkgsCheckpoint { path: PathBuf },
    /// The checkpoint cannot be read or is unsafe (`--fallback-on-error`).
    Unusable(CheckpointError),
    /// The build's store paths or root cannot be relocated.
    Relocation(RelocationError),
    /// What the gate or the plan says.
    Refused(String),
}

impl fmt::Display for FallBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallBack::NixpkgsCheckpoint { path } => write!(
                f,
                "{} is {}",
                path.display(),
                crate::checkpoint::pack::NIXPKGS_CHECKPOINT
            ),
            FallBack::Unusable(e) => write!(f, "the checkpoint is unusable ({e})"),
            FallBack::Relocation(e) => e.fmt(f),
            FallBack::Refused(why) => f.write_str(why),
        }
    }
}

/// The time a restore took to compare the recipes and to scan the tree.
#[derive(Debug, Clone, Copy)]
pub struct RestoreTimes {
    /// Comparing the recipes (not rounded: it takes microseconds).
    pub recipe_seconds: f64,
    /// Scanning the tree (rounded to milliseconds).
    pub checked_seconds: f64,
    /// The whole command.
    pub seconds: f64,
}

/// `restore`, by outcome.
#[derive(Debug)]
pub enum RestoreReport {
    /// Nothing restored; the build runs in full.
    FellBack { reason: FallBack, seconds: f64 },
    /// Nothing restored yet: restore again after configure.
    Deferred { reason: String, seconds: f64 },
    /// `--dry-run`: the plan, not carried out.
    DryRun {
        note: String,
        configure: Configure,
        plan: PlanCounts,
        times: RestoreTimes,
    },
    /// The checkpoint restored.
    Restored {
        note: String,
        configure: Configure,
        plan: PlanCounts,
        applied: ApplyStats,
        times: RestoreTimes,
    },
}

impl Serialize for RestoreReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Keys in sorted order, as the rest of the JSON.
        let mut map = serializer.serialize_map(None)?;
        match self {
            RestoreReport::FellBack { reason, seconds } => {
                map.serialize_entry("fell_back", &true)?;
                map.serialize_entry("reason", &reason.to_string())?;
                map.serialize_entry("seconds", seconds)?;
            }
            RestoreReport::Deferred { reason, seconds } => {
                map.serialize_entry("configure", &Configure::Runs)?;
                map.serialize_entry("deferred", &true)?;
                map.serialize_entry("reason", reason)?;
                map.serialize_entry("seconds", seconds)?;
            }
            RestoreReport::DryRun {
                note,
                configure,
                plan,
                times,
            } => {
                map.serialize_entry("checked_seconds", &times.checked_seconds)?;
                map.serialize_entry("configure", configure)?;
                map.serialize_entry("dry_run", &true)?;
                map.serialize_entry("note", note)?;
                map.serialize_entry("plan", plan)?;
                map.serialize_entry("recipe_seconds", &times.recipe_seconds)?;
                map.serialize_entry("seconds", &times.seconds)?;
            }
            RestoreReport::Restored {
                note,
                configure,
                plan,
                applied,
                times,
            } => {
                map.serialize_entry("applied", applied)?;
                map.serialize_entry("checked_seconds", &times.checked_seconds)?;
                map.serialize_entry("configure", configure)?;
                map.serialize_entry("dry_run", &false)?;
                map.serialize_entry("note", note)?;
                map.serialize_entry("plan", plan)?;
                map.serialize_entry("recipe_seconds", &times.recipe_seconds)?;
                map.serialize_entry("seconds", &times.seconds)?;
            }
        }
        map.end()
    }
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreReport::FellBack { reason, seconds } => write!(
                f,
                "restore: NOTHING RESTORED, the build runs in full: {reason} ({seconds:.2} s)"
            ),
            RestoreReport::Deferred { reason, seconds } => {
                write!(
                    f,
                    "restore: nothing restored yet: {reason} ({seconds:.2} s)"
                )
            }
            RestoreReport::DryRun {
                note, plan, times, ..
            } => write!(
                f,
                "restore --dry-run: {note}; would create {}, re-time {}, remove {}, keep fresh \
                 {}, skip {}; nothing changed (recipe compared in {:.4} s, tree in {:.3} s; \
                 {:.2} s)",
                plan.created,
                plan.retimed,
                plan.removed,
                plan.freshened,
                plan.skipped,
                times.recipe_seconds,
                times.checked_seconds,
                times.seconds
            ),
            RestoreReport::Restored {
                note,
                plan,
                applied,
                times,
                ..
            } => write!(
                f,
                "restore: {note}; {} created ({} written), {} re-timed, {} removed, {} kept \
                 fresh, {} skipped in {:.2} s (recipe compared in {:.4} s, tree in {:.3} s)",
                plan.created,
                human_bytes(applied.bytes_written),
                plan.retimed,
                plan.removed,
                plan.freshened,
                plan.skipped,
                times.seconds,
                times.recipe_seconds,
                times.checked_seconds
            ),
        }
    }
}

/// `inspect`: what a checkpoint holds (fields in key order).
#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub after_entries: usize,
    pub before_entries: usize,
    pub blobs: usize,
    pub checkpoint: PathBuf,
    pub deleted_by_build: usize,
    pub dependencies: Vec<String>,
    /// Every entry of B (left empty unless `--json` or `--list`).
    pub entries: Vec<InspectEntry>,
    pub outputs: Vec<InspectOutput>,
    pub raw_bytes: u64,
    pub recipe: Vec<String>,
    /// Escaped.
    pub root: String,
    pub seconds: f64,
    pub stored_bytes: u64,
}

/// One output of the checkpoint's build.
#[derive(Debug, Serialize)]
pub struct InspectOutput {
    pub name: String,
    pub path: String,
}

/// One entry of B as `inspect` shows it (fields in key order).
#[derive(Debug, Serialize)]
pub struct InspectEntry {
    /// `file`, `symlink` or `dir`.
    pub kind: &'static str,
    pub mode: u32,
    pub mtime: InspectMtime,
    /// Escaped.
    pub path: String,
    /// 0 for symlinks and directories.
    pub size: u64,
    /// `product`, `unchanged` or `changed`: how it relates to P.
    pub status: &'static str,
    /// A symlink's target, escaped.
    pub target: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct InspectMtime {
    pub nanos: u32,
    pub secs: i64,
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inspect: {} entries before, {} after, {} blobs ({} stored) in {:.2} s",
            self.before_entries,
            self.after_entries,
            self.blobs,
            human_bytes(self.stored_bytes),
            self.seconds
        )
    }
}

/// `verify`: the checkpoint is intact and restorable.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub blobs: u64,
    pub raw_bytes: u64,
    pub seconds: f64,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verify: manifest and {} blobs ({}) intact and restorable in {:.2} s",
            self.blobs,
            human_bytes(self.raw_bytes),
            self.seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary line and the `--json` line of a report, as printed.
    fn printed(report: impl Into<Report>) -> (String, String) {
        let report = report.into();
        (report.to_string(), report.json().to_string())
    }

    #[test]
    fn snapshot_report() {
        let (summary, json) = printed(SnapshotReport {
            bytes: 1536,
            dependencies: 2,
            directories: 3,
            files: 4,
            seconds: 0.016,
            skipped_special: 5,
            state: "/build/.nix-checkpoint-state".into(),
            symlinks: 6,
        });
        assert_eq!(
            summary,
            "snapshot: 4 files (1.5 KiB), 6 symlinks, 3 directories hashed in 0.02 s -> \
             /build/.nix-checkpoint-state"
        );
        assert_eq!(
            json,
            r#"{"bytes":1536,"command":"snapshot","dependencies":2,"directories":3,"exit_code":0,"files":4,"seconds":0.016,"skipped_special":5,"state":"/build/.nix-checkpoint-state","symlinks":6}"#
        );
    }

    #[test]
    fn track_configure_reports() {
        let (summary, json) = printed(TrackConfigureReport::Start {
            seconds: 0.0,
            watching: 2,
        });
        assert_eq!(
            summary,
            "track-configure: watching 2 files for reads (0.00 s)"
        );
        assert_eq!(
            json,
            r#"{"command":"track-configure","exit_code":0,"seconds":0.0,"watching":2}"#
        );
        let (summary, json) = printed(TrackConfigureReport::Finish {
            known: true,
            read: 1,
            seconds: 0.25,
        });
        assert_eq!(
            summary,
            "track-configure: configure read 1 files -> .nckp-configure/reads (0.25 s)"
        );
        assert_eq!(
            json,
            r#"{"command":"track-configure","exit_code":0,"known":true,"read":1,"seconds":0.25}"#
        );
        let (summary, json) = printed(TrackConfigureReport::Finish {
            known: false,
            read: 0,
            seconds: 0.0,
        });
        assert_eq!(
            summary,
            "track-configure: this file system records no access times; later builds will run \
             configure (0.00 s)"
        );
        assert_eq!(
            json,
            r#"{"command":"track-configure","exit_code":0,"known":false,"read":0,"seconds":0.0}"#
        );
    }

    #[test]
    fn save_report() {
        let (summary, json) = printed(SaveReport {
            blobs: 1,
            checkpoint: "/nix/store/x-cp/checkpoint.nckp".into(),
            entries: 3,
            pack_bytes: 1011,
            products: 2,
            raw_bytes: 11,
            seconds: 0.005,
        });
        assert_eq!(
            summary,
            "save: 2 new or changed files (11 B raw, 1011 B stored) of 3 entries in 0.01 s -> \
             /nix/store/x-cp/checkpoint.nckp"
        );
        assert_eq!(
            json,
            r#"{"blobs":1,"checkpoint":"/nix/store/x-cp/checkpoint.nckp","command":"save","entries":3,"exit_code":0,"pack_bytes":1011,"products":2,"raw_bytes":11,"seconds":0.005}"#
        );
    }

    #[test]
    fn verify_report() {
        let (summary, json) = printed(VerifyReport {
            blobs: 1,
            raw_bytes: 2048,
            seconds: 0.0,
        });
        assert_eq!(
            summary,
            "verify: manifest and 1 blobs (2.0 KiB) intact and restorable in 0.00 s"
        );
        assert_eq!(
            json,
            r#"{"blobs":1,"command":"verify","exit_code":0,"raw_bytes":2048,"seconds":0.0}"#
        );
    }

    #[test]
    fn inspect_report() {
        let (summary, json) = printed(InspectReport {
            after_entries: 3,
            before_entries: 2,
            blobs: 1,
            checkpoint: "/nix/store/x-cp/checkpoint.nckp".into(),
            deleted_by_build: 0,
            dependencies: vec!["/nix/store/a-zlib".into()],
            entries: vec![
                InspectEntry {
                    kind: "file",
                    mode: 0o644,
                    mtime: InspectMtime {
                        nanos: 5,
                        secs: 200,
                    },
                    path: "src/a.o".into(),
                    size: 11,
                    status: "product",
                    target: None,
                },
                InspectEntry {
                    kind: "symlink",
                    mode: 0o777,
                    mtime: InspectMtime { nanos: 0, secs: 1 },
                    path: "l".into(),
                    size: 0,
                    status: "unchanged",
                    target: Some("a\\x01".into()),
                },
            ],
            outputs: vec![InspectOutput {
                name: "out".into(),
                path: "/nix/store/b-out".into(),
            }],
            raw_bytes: 11,
            recipe: vec!["makeFlags (build) = 'x'".into()],
            root: "/build".into(),
            seconds: 0.001,
            stored_bytes: 1011,
        });
        assert_eq!(
            summary,
            "inspect: 2 entries before, 3 after, 1 blobs (1011 B stored) in 0.00 s"
        );
        assert_eq!(
            json,
            r#"{"after_entries":3,"before_entries":2,"blobs":1,"checkpoint":"/nix/store/x-cp/checkpoint.nckp","command":"inspect","deleted_by_build":0,"dependencies":["/nix/store/a-zlib"],"entries":[{"kind":"file","mode":420,"mtime":{"nanos":5,"secs":200},"path":"src/a.o","size":11,"status":"product","target":null},{"kind":"symlink","mode":511,"mtime":{"nanos":0,"secs":1},"path":"l","size":0,"status":"unchanged","target":"a\\x01"}],"exit_code":0,"outputs":[{"name":"out","path":"/nix/store/b-out"}],"raw_bytes":11,"recipe":["makeFlags (build) = 'x'"],"root":"/build","seconds":0.001,"stored_bytes":1011}"#
        );
    }

    #[test]
    fn restore_fell_back_report() {
        let report = Report::from(RestoreReport::FellBack {
            reason: FallBack::Relocation(RelocationError::RootLength {
                old: "/build".into(),
                new: "/build-moved".into(),
            }),
            seconds: 0.005,
        });
        assert_eq!(report.exit_code(), ExitCode::FellBack);
        assert_eq!(
            report.to_string(),
            "restore: NOTHING RESTORED, the build runs in full: build root changed length, from \
             /build to /build-moved (0.01 s)"
        );
        assert_eq!(
            report.json().to_string(),
            r#"{"command":"restore","exit_code":3,"fell_back":true,"reason":"build root changed length, from /build to /build-moved","seconds":0.005}"#
        );
        let (summary, json) = printed(RestoreReport::FellBack {
            reason: FallBack::NixpkgsCheckpoint {
                path: "/nix/store/x".into(),
            },
            seconds: 0.0,
        });
        assert!(
            summary.starts_with(
                "restore: NOTHING RESTORED, the build runs in full: /nix/store/x is a checkpoint \
                 of nixpkgs' own checkpointBuildTools"
            ),
            "{summary}"
        );
        assert!(
            json.starts_with(
                r#"{"command":"restore","exit_code":3,"fell_back":true,"reason":"/nix/store/x is a checkpoint of nixpkgs' own"#
            ),
            "{json}"
        );
        let (summary, json) = printed(RestoreReport::FellBack {
            reason: FallBack::Refused("a build description changed (Makefile)".into()),
            seconds: 1.0,
        });
        assert_eq!(
            summary,
            "restore: NOTHING RESTORED, the build runs in full: a build description changed \
             (Makefile) (1.00 s)"
        );
        assert_eq!(
            json,
            r#"{"command":"restore","exit_code":3,"fell_back":true,"reason":"a build description changed (Makefile)","seconds":1.0}"#
        );
    }

    #[test]
    fn restore_unusable_checkpoint_names_the_error() {
        let e = CheckpointError::Unsafe {
            role: crate::checkpoint::Role::Checkpoint,
            path: "/nix/store/x/checkpoint.nckp".into(),
            op: crate::checkpoint::error::Op::CheckRestorePlan,
            detail: crate::checkpoint::error::DecodeError::Unrestorable("a: reserved".into())
                .into(),
        };
        let text = e.to_string();
        let report = RestoreReport::FellBack {
            reason: FallBack::Unusable(e),
            seconds: 0.0,
        };
        assert_eq!(
            report.to_string(),
            format!("restore: NOTHING RESTORED, the build runs in full: the checkpoint is unusable ({text}) (0.00 s)")
        );
    }

    #[test]
    fn restore_deferred_report() {
        let report = Report::from(RestoreReport::Deferred {
            reason: "configure runs: configure changed".into(),
            seconds: 0.001,
        });
        assert_eq!(report.exit_code(), ExitCode::Deferred);
        assert_eq!(
            report.to_string(),
            "restore: nothing restored yet: configure runs: configure changed (0.00 s)"
        );
        assert_eq!(
            report.json().to_string(),
            r#"{"command":"restore","configure":"runs","deferred":true,"exit_code":12,"reason":"configure runs: configure changed","seconds":0.001}"#
        );
    }

    fn counts() -> PlanCounts {
        PlanCounts {
            created: 1,
            retimed: 2,
            removed: 3,
            freshened: 4,
            skipped: 5,
        }
    }

    const TIMES: RestoreTimes = RestoreTimes {
        recipe_seconds: 0.000194863,
        checked_seconds: 0.002,
        seconds: 0.013,
    };

    #[test]
    fn restore_dry_run_report() {
        let (summary, json) = printed(RestoreReport::DryRun {
            note: "restoring after configure".into(),
            configure: Configure::new(false, false),
            plan: counts(),
            times: TIMES,
        });
        assert_eq!(
            summary,
            "restore --dry-run: restoring after configure; would create 1, re-time 2, remove 3, \
             keep fresh 4, skip 5; nothing changed (recipe compared in 0.0002 s, tree in 0.002 \
             s; 0.01 s)"
        );
        assert_eq!(
            json,
            r#"{"checked_seconds":0.002,"command":"restore","configure":"ran","dry_run":true,"exit_code":0,"note":"restoring after configure","plan":{"created":1,"freshened":4,"removed":3,"retimed":2,"skipped":5},"recipe_seconds":0.000194863,"seconds":0.013}"#
        );
    }

    #[test]
    fn restore_restored_report() {
        let report = Report::from(RestoreReport::Restored {
            note: "configure skipped".into(),
            configure: Configure::new(true, true),
            plan: counts(),
            applied: ApplyStats {
                files_created: 1,
                symlinks_created: 2,
                dirs_created: 3,
                bytes_written: 3 << 20,
                retimed: 4,
                removed: 5,
                freshened: 6,
                skipped: 7,
            },
            times: TIMES,
        });
        assert_eq!(report.exit_code(), ExitCode::Success);
        assert_eq!(
            report.to_string(),
            "restore: configure skipped; 1 created (3.0 MiB written), 2 re-timed, 3 removed, 4 \
             kept fresh, 5 skipped in 0.01 s (recipe compared in 0.0002 s, tree in 0.002 s)"
        );
        assert_eq!(
            report.json().to_string(),
            r#"{"applied":{"bytes_written":3145728,"dirs_created":3,"files_created":1,"freshened":6,"removed":5,"retimed":4,"skipped":7,"symlinks_created":2},"checked_seconds":0.002,"command":"restore","configure":"skipped","dry_run":false,"exit_code":0,"note":"configure skipped","plan":{"created":1,"freshened":4,"removed":3,"retimed":2,"skipped":5},"recipe_seconds":0.000194863,"seconds":0.013}"#
        );
        assert_eq!(Configure::new(false, true), Configure::Runs);
    }
}
