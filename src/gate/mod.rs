//! Whether a checkpoint may be restored into this build, and whether the
//! configure phase may then be skipped: the decision `restore` takes before
//! it plans anything. Pure: manifests, the recipe comparison and what the
//! old configure run read come in, a [`Gate`] with its reason goes out.
//!
//! The rules (docs/design.md, "When restore falls back"):
//!
//! 1. A build-class recipe difference ([`Class::Build`]) falls back.
//! 2. Before configure, configure *must run* when a configure-class variable
//!    changed, when the checkpoint does not say what configure read (no
//!    record, or the file system keeps no access times), when an entry was
//!    added to or removed from the source tree while configure read
//!    anything (a new file is what a glob or an existence test would see),
//!    when a file it read changed, or when the user opted out. Otherwise the
//!    restore happens now and configure is skipped.
//! 3. When configure must run, build tools that record their commands
//!    (Ninja, CMake, kbuild: [`BuildTool::Tracked`]) get the restore after
//!    configure ([`Gate::Defer`]), on the tree a clean configure made; they
//!    rebuild whatever the new configuration changed. make alone compares
//!    mtimes only: a changed compiler flag or rule leaves its old objects
//!    looking up to date, so the restore falls back.
//! 4. For the same reason, in make builds a change to a build description
//!    (a makefile, a configure script or its templates, see
//!    [`is_build_description`]) falls back; so does a changed header when
//!    the old build left no dependency files (`.d`, automake's `.deps/*.Po`):
//!    then make could not know which objects include it.

use crate::recipe::{Class, RecipeDiff};
use crate::tree::{Entry, Manifest, RelPath};
use std::collections::BTreeSet;

/// Where the new build's tree stands when `restore` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// After unpack and patch, before the configure phase.
    BeforeConfigure,
    /// After configure (the deferred restore, or a build whose phases the
    /// hook could not place a restore before).
    AfterConfigure,
}

/// Whether the build tool of the checkpoint's tree records commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildTool {
    /// Records each output's command and rebuilds when it changes; the name
    /// says which evidence was found.
    Tracked(&'static str),
    /// make, which compares mtimes only.
    Make,
}

impl BuildTool {
    /// Judged from the tree the old build left (B).
    pub fn of(after: &Manifest) -> BuildTool {
        for entry in after.entries() {
            let name = entry.path.file_name();
            if name == b".ninja_log" {
                return BuildTool::Tracked("Ninja");
            }
            if name == b"CMakeCache.txt" {
                return BuildTool::Tracked("CMake");
            }
            // kbuild's `.main.o.cmd`: the command each object was made with.
            if name.starts_with(b".") && name.ends_with(b".o.cmd") {
                return BuildTool::Tracked("kbuild");
            }
        }
        BuildTool::Make
    }
}

/// What the old build's configure phase read, recorded by
/// `nix-checkpoint configured` into [`READS_FILE`] (a product of the build,
/// so that it travels in the checkpoint and on through chained builds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigureReads {
    /// The file system recorded access times (a probe said so).
    pub known: bool,
    /// Files of the tree before configure that configure read.
    pub paths: BTreeSet<RelPath>,
}

/// The directory, at the top of the build tree, of nix-checkpoint's records
/// of the configure phase. Not left out of scans: it is a product.
pub const RECORD_DIR: &str = ".nckp-configure";
/// `RECORD_DIR/reads`: what configure read.
pub const READS_FILE: &str = ".nckp-configure/reads";
/// `RECORD_DIR/shell-state.sh`: the variables and working directory the
/// configure phase left (written and sourced by the setup hook).
pub const SHELL_STATE_FILE: &str = ".nckp-configure/shell-state.sh";
const READS_MAGIC: &[u8] = b"nix-checkpoint configure reads 1\n";
const UNKNOWN: &[u8] = b"unknown\n";

impl ConfigureReads {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = READS_MAGIC.to_vec();
        if !self.known {
            out.extend_from_slice(UNKNOWN);
            return out;
        }
        for path in &self.paths {
            out.extend_from_slice(path.as_bytes());
            out.push(0);
        }
        out
    }

    /// Parses untrusted bytes (they come from a checkpoint).
    pub fn decode(bytes: &[u8]) -> Result<ConfigureReads, String> {
        let rest = bytes
            .strip_prefix(READS_MAGIC)
            .ok_or("not a configure-reads record")?;
        if rest == UNKNOWN {
            return Ok(ConfigureReads::default());
        }
        let mut paths = BTreeSet::new();
        if !rest.is_empty() {
            let body = rest
                .strip_suffix(b"\0")
                .ok_or("the record does not end with NUL")?;
            for p in body.split(|&b| b == 0) {
                paths.insert(RelPath::new(p).map_err(|e| format!("bad path in the record: {e}"))?);
            }
        }
        Ok(ConfigureReads { known: true, paths })
    }
}

/// Is this file a build description that make reads, or that makes one?
pub fn is_build_description(path: &RelPath) -> bool {
    let name = path.file_name();
    let ends = |s: &[u8]| name.ends_with(s);
    name == b"Makefile"
        || name == b"makefile"
        || name == b"GNUmakefile"
        || name.starts_with(b"Makefile.")
        || name.starts_with(b"makefile.")
        || ends(b".mk")
        || ends(b".mak")
        || ends(b".make")
        || name == b"configure"
        || name == b"configure.ac"
        || name == b"configure.in"
        || ends(b".m4")
        || name == b"config.status"
        || name == b"libtool"
        || name == b"ltmain.sh"
}

/// Is this file a C or C++ header (or an include fragment)?
pub fn is_header(path: &RelPath) -> bool {
    let name = path.file_name();
    [".h", ".hh", ".hpp", ".hxx", ".H", ".inc", ".tcc", ".ipp"]
        .iter()
        .any(|ext| name.ends_with(ext.as_bytes()))
}

/// Did the old build leave make dependency files (gcc's `-MD` output:
/// `*.d`, automake's `.deps/*.Po` / `*.Plo`)? Judged from B.
pub fn has_dependency_files(after: &Manifest) -> bool {
    after.entries().iter().any(|e| {
        let name = e.path.file_name();
        matches!(e.node, crate::tree::Node::File { .. })
            && (name.ends_with(b".d") || name.ends_with(b".Po") || name.ends_with(b".Plo"))
    })
}

/// How the source tree changed between the old build's snapshot (P) and now.
#[derive(Debug, Default)]
pub struct SourceChanges<'a> {
    pub changed: Vec<&'a RelPath>,
    pub added: Vec<&'a RelPath>,
    pub removed: Vec<&'a RelPath>,
}

impl<'a> SourceChanges<'a> {
    pub fn between(before: &'a Manifest, now: &'a Manifest) -> SourceChanges<'a> {
        let mut changes = SourceChanges::default();
        let (p, c) = (before.entries(), now.entries());
        let (mut i, mut j) = (0, 0);
        let own = |e: &Entry| {
            let path = e.path.as_bytes();
            path.strip_prefix(RECORD_DIR.as_bytes())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
        };
        while i < p.len() || j < c.len() {
            match (p.get(i), c.get(j)) {
                (Some(a), Some(b)) if a.path == b.path => {
                    if !a.same_content_and_mode(b) && !own(a) {
                        changes.changed.push(&a.path);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(a), b) if b.is_none_or(|b| a.path < b.path) => {
                    if !own(a) {
                        changes.removed.push(&a.path);
                    }
                    i += 1;
                }
                (_, b) => {
                    let b = b.expect("the loop runs while either list has entries");
                    if !own(b) {
                        changes.added.push(&b.path);
                    }
                    j += 1;
                }
            }
        }
        changes
    }

    fn all(&self) -> impl Iterator<Item = &'a RelPath> + '_ {
        self.changed
            .iter()
            .chain(&self.added)
            .chain(&self.removed)
            .copied()
    }
}

/// Everything the decision depends on.
pub struct Facts<'a> {
    pub stage: Stage,
    pub recipe: &'a RecipeDiff,
    pub tool: BuildTool,
    pub changes: &'a SourceChanges<'a>,
    /// `None`: the checkpoint holds no record of configure's reads.
    pub reads: Option<&'a ConfigureReads>,
    /// The user allows skipping configure (`nixCheckpointSkipConfigure`).
    pub skip_allowed: bool,
    /// The new build has no configure phase (`dontConfigure`).
    pub configure_disabled: bool,
    /// The old build left make dependency files ([`has_dependency_files`]).
    pub dependency_files: bool,
    /// `--force`: restore despite recipe differences.
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Restore now. `skip_configure` only before configure.
    Restore {
        skip_configure: bool,
        /// One line for the build log: why configure is skipped, or runs.
        note: String,
    },
    /// Restore after configure has run: nothing now, the tree untouched.
    Defer { why: String },
    /// Restore nothing: the build runs in full.
    FallBack { why: String },
}

fn first_few(paths: &[&RelPath]) -> String {
    let mut text = paths
        .iter()
        .take(3)
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > 3 {
        text.push_str(&format!(" and {} more", paths.len() - 3));
    }
    text
}

/// Why configure must run, or `None` when it may be skipped.
fn configure_must_run(f: &Facts) -> Option<String> {
    if !f.skip_allowed {
        return Some("skipping it is turned off (nixCheckpointSkipConfigure)".into());
    }
    if f.recipe.has(Class::Configure) {
        return Some(format!(
            "its variables changed: {}",
            f.recipe.describe(Class::Configure)
        ));
    }
    if f.configure_disabled {
        return None;
    }
    let reads = match f.reads {
        None => return Some("the checkpoint has no record of what configure read".into()),
        Some(r) if !r.known => {
            return Some(
                "the checkpoint's build could not record what configure read (no access times)"
                    .into(),
            )
        }
        Some(r) => r,
    };
    if !reads.paths.is_empty() {
        if !f.changes.added.is_empty() {
            return Some(format!("{} added", first_few(&f.changes.added)));
        }
        if !f.changes.removed.is_empty() {
            return Some(format!("{} removed", first_few(&f.changes.removed)));
        }
    }
    let read_changed: Vec<&RelPath> = f
        .changes
        .changed
        .iter()
        .copied()
        .filter(|p| reads.paths.contains(*p))
        .collect();
    if !read_changed.is_empty() {
        return Some(format!("{} changed", first_few(&read_changed)));
    }
    None
}

pub fn decide(f: &Facts) -> Gate {
    let mut forced = String::new();
    if f.recipe.has(Class::Build) {
        let what = f.recipe.describe(Class::Build);
        if !f.force {
            return Gate::FallBack {
                why: format!("the build's recipe changed: {what} (list a variable in nixCheckpointIgnoreChanges if it cannot change the build, or pass --force)"),
            };
        }
        forced = format!(" (restoring although the recipe changed, --force: {what})");
    }
    let description_changed: Vec<&RelPath> = f
        .changes
        .all()
        .filter(|p| is_build_description(p))
        .collect();
    if f.tool == BuildTool::Make && !description_changed.is_empty() {
        return Gate::FallBack {
            why: format!(
                "a build description changed ({}) and make does not record the commands it ran, so it could not tell what to rebuild",
                first_few(&description_changed)
            ),
        };
    }
    let headers_changed: Vec<&RelPath> = f
        .changes
        .changed
        .iter()
        .copied()
        .filter(|p| is_header(p))
        .collect();
    if f.tool == BuildTool::Make && !f.dependency_files && !headers_changed.is_empty() {
        return Gate::FallBack {
            why: format!(
                "a header changed ({}) and the build left no dependency files (.d, .deps/*.Po), so make could not tell which objects include it",
                first_few(&headers_changed)
            ),
        };
    }
    match f.stage {
        Stage::BeforeConfigure => match configure_must_run(f) {
            None => Gate::Restore {
                skip_configure: true,
                note: format!("configure skipped (checkpoint: nothing configure read changed){forced}"),
            },
            Some(why) => match f.tool {
                BuildTool::Tracked(tool) => Gate::Defer {
                    why: format!("configure runs: {why}; restoring after it ({tool} records its commands)"),
                },
                BuildTool::Make => Gate::FallBack {
                    why: format!("configure must run ({why}) and make does not record the commands it ran, so it could not tell what the new configuration changes"),
                },
            },
        },
        Stage::AfterConfigure => {
            if f.tool == BuildTool::Make && f.recipe.has(Class::Configure) {
                return Gate::FallBack {
                    why: format!(
                        "configure's variables changed ({}) and make does not record the commands it ran",
                        f.recipe.describe(Class::Configure)
                    ),
                };
            }
            Gate::Restore {
                skip_configure: false,
                note: format!("restoring after configure{forced}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
