//! [`CheckpointError`]: everything that can go wrong reading or writing a pack or
//! a state file, each variant naming the file and the operation; what was
//! wrong with the bytes is a [`DecodeError`].

use crate::exit_code::ExitCode;
use crate::rewrite::store_path::StorePath;
use crate::tree::manifest::ManifestError;
use crate::tree::rel_path::PathError;
use crate::tree::{ContentHash, RelPath};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Which kind of file a read error is about: it decides the exit code and
/// the advice in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A checkpoint pack (`checkpoint.nckp`), read by `restore`/`verify`.
    Checkpoint,
    /// The snapshot state file, written by `snapshot`, read by `save`.
    Snapshot,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Checkpoint => "checkpoint",
            Role::Snapshot => "snapshot state",
        })
    }
}

impl Role {
    fn remedy_missing(self) -> &'static str {
        match self {
            Role::Checkpoint => "check the path, or build the checkpoint with prepareCheckpointBuild",
            Role::Snapshot => "run `nix-checkpoint snapshot --state FILE` before the build and pass the same --state to `save`",
        }
    }

    fn remedy_rebuild(self) -> &'static str {
        match self {
            Role::Checkpoint => "rebuild the checkpoint with prepareCheckpointBuild",
            Role::Snapshot => "run `nix-checkpoint snapshot --state FILE` again before the build",
        }
    }

    fn remedy_unsupported(self) -> &'static str {
        match self {
            Role::Checkpoint => "this nix-checkpoint reads format version 2: rebuild the checkpoint with prepareCheckpointBuild using this nix-checkpoint",
            Role::Snapshot => "run `snapshot` and `save` with the same nix-checkpoint",
        }
    }

    fn remedy_unsafe(self) -> &'static str {
        match self {
            Role::Checkpoint => "it was refused and nothing was written; rebuild the checkpoint with prepareCheckpointBuild from a trusted source",
            Role::Snapshot => "run `nix-checkpoint snapshot --state FILE` again before the build",
        }
    }
}

/// What was being done when a [`CheckpointError`] happened, for messages
/// ("cannot <op>", "corrupt (<op>)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    // Reading a pack or state file.
    Open,
    Stat,
    ReadHeader,
    ReadTrailer,
    ReadSection,
    DecompressSection,
    CheckManifest,
    CheckSnapshot,
    CheckBelongsToBuild,
    ReadBlob(ContentHash),
    /// Looking a blob up by hash (a caller's bug when absent).
    FindBlob,
    /// What restore refuses in a checkpoint alone (`verify`, `restore`).
    CheckRestorable,
    /// What restore refuses in its plan for this tree.
    CheckRestorePlan,
    // Writing a pack or state file.
    CheckOptions,
    ListBlobs,
    CreateOutputDir,
    OpenDirToLock,
    LockDir,
    RemoveStaleTemp,
    CreateTemp,
    WriteHeader,
    WriteBlobData,
    CompressManifest,
    WriteManifest,
    WriteTrailer,
    WritePack,
    CompressSnapshot,
    WriteSnapshot,
    Fsync,
    /// Renaming this temporary file over the destination.
    RenameIntoPlace(PathBuf),
    FsyncDir,
    // Reading a build-tree file into a pack.
    ReadFile,
    Compress,
    StartCompressing,
    ReadAndCompress,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open",
            Op::Stat => "stat",
            Op::ReadHeader => "read the header",
            Op::ReadTrailer => "read the trailer",
            Op::ReadSection => "read the manifest section",
            Op::DecompressSection => "decompress the manifest section",
            Op::CheckManifest => "check the manifest",
            Op::CheckSnapshot => "check the snapshot state",
            Op::CheckBelongsToBuild => "check that it belongs to this build",
            Op::ReadBlob(hash) => return write!(f, "read blob {hash:032x}"),
            Op::FindBlob => "read a blob",
            Op::CheckRestorable => "check what restore would write",
            Op::CheckRestorePlan => "check the restore plan",
            Op::CheckOptions => "check the options",
            Op::ListBlobs => "list the blobs",
            Op::CreateOutputDir => "create the output directory",
            Op::OpenDirToLock => "open the directory to lock it",
            Op::LockDir => "lock the directory",
            Op::RemoveStaleTemp => "remove a stale temporary file",
            Op::CreateTemp => "create the temporary file",
            Op::WriteHeader => "write the header",
            Op::WriteBlobData => "write blob data",
            Op::CompressManifest => "compress the manifest",
            Op::WriteManifest => "write the manifest",
            Op::WriteTrailer => "write the trailer",
            Op::WritePack => "write the pack",
            Op::CompressSnapshot => "compress the snapshot state",
            Op::WriteSnapshot => "write the snapshot state",
            Op::Fsync => "fsync",
            Op::RenameIntoPlace(temp) => return write!(f, "rename {} into place", temp.display()),
            Op::FsyncDir => "fsync the directory",
            Op::ReadFile => "read",
            Op::Compress => "compress",
            Op::StartCompressing => "start compressing",
            Op::ReadAndCompress => "read and compress",
        })
    }
}

/// What is wrong with the bytes of a pack or state file (or, for the
/// writer's self-check, with what it was about to write). Which
/// [`CheckpointError`] variant carries it (corrupt, unsupported, unsafe)
/// is the caller's call: the same truncation is damage in a container and
/// hostile inside a section whose checksum matched.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    // The container.
    #[error("not a regular file")]
    NotRegularFile,
    #[error("wrong magic bytes (expected a nix-checkpoint {0} file)")]
    WrongMagic(Role),
    #[error("truncated: {0} bytes, shorter than the header")]
    ShorterThanHeader(u64),
    #[error("format version {0}")]
    Version(u32),
    #[error("unknown feature flags {0:#x}")]
    Flags(u32),
    #[error("truncated: {0} bytes, too short or not a possible length")]
    ImpossibleLength(u64),
    #[error("byte {0} is not a zero guard byte")]
    BadGuard(u64),
    #[error("trailer checksum mismatch (truncated or damaged)")]
    TrailerChecksum,
    #[error("reserved bytes are not zero")]
    TrailerReserved,
    #[error("unknown compression {0}")]
    SectionCompression(u8),
    #[error("section at {offset}+{stored} does not fit a {len}-byte file")]
    SectionOutside { offset: u64, stored: u64, len: u64 },
    #[error("section declares {0} bytes, the limit is {limit}", limit = super::MAX_SECTION_RAW)]
    SectionTooLarge(u64),
    #[error(
        "section declares {declared} bytes, more than the {} MiB of memory nix-checkpoint \
         allows for this file",
        budget >> 20
    )]
    SectionOverBudget { declared: u64, budget: usize },
    #[error("raw section with a declared size different from its length")]
    RawSectionSize,
    #[error("manifest checksum mismatch")]
    SectionChecksum,
    #[error("{}", super::pack::NIXPKGS_CHECKPOINT)]
    NixpkgsCheckpoint,

    // Decompression, of the section or a blob.
    #[error("zstd: {0}")]
    Zstd(io::Error),
    #[error("invalid zstd data: {0}")]
    InvalidZstd(io::Error),
    #[error("decompresses beyond its declared {0} bytes (a decompression bomb?)")]
    Bomb(u64),
    #[error("decompresses to {got} bytes, {declared} declared")]
    SectionShort { got: u64, declared: u64 },
    #[error("cannot read or decompress: {0}")]
    BlobRead(io::Error),
    #[error("{got} bytes, {declared} declared")]
    BlobSize { got: u64, declared: u64 },
    #[error("checksum mismatch")]
    BlobChecksum,

    // The section's encoding.
    #[error("needs {need} bytes at offset {at} but only {remain} remain")]
    Truncated {
        need: usize,
        at: usize,
        remain: usize,
    },
    #[error("{what} is {len} bytes long, the limit is {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{n} {what}, the limit is {max}")]
    TooMany {
        what: &'static str,
        n: usize,
        max: usize,
    },
    #[error("declares {n} {what} but only {remain} bytes remain")]
    CountPastEnd {
        what: &'static str,
        n: usize,
        remain: usize,
    },
    #[error(
        "decoding {what} would need more than the {} MiB of memory nix-checkpoint \
         allows for this file (over {} MiB so far)",
        budget >> 20,
        charged >> 20
    )]
    OverBudget {
        what: Charge,
        budget: usize,
        charged: usize,
    },
    #[error("{0} unexpected bytes at the end")]
    TrailingBytes(usize),

    // Build info and recipe.
    #[error("bad recipe variable name {:?}", lossy(.0))]
    RecipeName(Vec<u8>),
    #[error("recipe variable {0:?} is listed twice or out of order")]
    RecipeOrder(String),
    #[error("recipe variable {name:?} has unknown kind {kind}")]
    RecipeKind { name: String, kind: u8 },
    #[error("{what} {:?} is not absolute", lossy(.bytes))]
    NotAbsolute { what: &'static str, bytes: Vec<u8> },
    #[error("{what} contains a NUL byte")]
    Nul { what: &'static str },
    #[error("{what} {:?} is not a store path in {:?}", lossy(.bytes), lossy(.store_dir))]
    NotStorePath {
        what: &'static str,
        bytes: Vec<u8>,
        store_dir: Vec<u8>,
    },
    #[error("the store directory ends with `/`")]
    StoreDirSlash,
    #[error("bad output name {:?}", lossy(.0))]
    OutputName(Vec<u8>),
    #[error("output {0:?} is listed twice or out of order")]
    OutputOrder(String),
    #[error("dependency {0} is listed twice or out of order")]
    DependencyOrder(StorePath),

    // Manifests.
    #[error("{manifest}: path {:?}: {error}", lossy(.raw))]
    Path {
        manifest: &'static str,
        raw: Vec<u8>,
        error: PathError,
    },
    #[error("{manifest}: {path}: {problem}")]
    Entry {
        manifest: &'static str,
        path: RelPath,
        problem: EntryProblem,
    },
    #[error("{manifest}: {error}")]
    Manifest {
        manifest: &'static str,
        error: ManifestError,
    },

    // The blob table.
    #[error("blob {hash:032x}: unknown compression {code}")]
    BlobCompression { hash: ContentHash, code: u8 },
    #[error("blob {0:032x}: reserved bytes are not zero")]
    BlobReserved(ContentHash),
    #[error("blob {0:032x}: listed twice or out of order")]
    BlobOrder(ContentHash),
    #[error("blob {hash:032x} at offset {offset}, expected {expected} (gap or overlap)")]
    BlobGap {
        hash: ContentHash,
        offset: u64,
        expected: u64,
    },
    #[error("blob {0:032x} runs past the blob area")]
    BlobPastArea(ContentHash),
    #[error("blob {hash:032x}: {size} bytes, the limit is {limit}", limit = super::MAX_BLOB_SIZE)]
    BlobTooLarge { hash: ContentHash, size: u64 },
    #[error("blob {hash:032x}: raw blob of {stored} bytes declares {declared}")]
    RawBlobSize {
        hash: ContentHash,
        stored: u64,
        declared: u64,
    },
    #[error("blobs end at {end} but the manifest starts at {section}")]
    BlobsEnd { end: u64, section: u64 },
    #[error("{path}: {size} bytes but its blob {hash:032x} has {blob_size}")]
    BlobSizeDiffers {
        path: RelPath,
        size: u64,
        hash: ContentHash,
        blob_size: u64,
    },
    #[error("{path}: no blob with its content {hash:032x}")]
    NoBlob { path: RelPath, hash: ContentHash },
    #[error("blob {0:032x} is the content of no new or changed file")]
    UnreferencedBlob(ContentHash),
    #[error(
        "{path} and {first} have the same content hash {hash:032x} but sizes {size} and {known}"
    )]
    SameHashSizes {
        path: RelPath,
        first: RelPath,
        hash: ContentHash,
        size: u64,
        known: u64,
    },

    // A state that belongs to another build.
    #[error(
        "it was taken in {}, not in the tree being saved, {}",
        crate::tree::rel_path::escape_bytes(.taken),
        crate::tree::rel_path::escape_bytes(.saving)
    )]
    OtherRoot { taken: Vec<u8>, saving: Vec<u8> },
    #[error(
        "it was taken for the outputs {}, not this build's {}",
        outputs_list(.taken),
        outputs_list(.saving)
    )]
    OtherOutputs {
        taken: Vec<(String, StorePath)>,
        saving: Vec<(String, StorePath)>,
    },

    /// Decoded fine, but restore refuses to write it: the reason the
    /// apply module gives.
    #[error("{0}")]
    Unrestorable(String),
}

/// What a decoder was about to allocate when it ran out of budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    Entries { manifest: &'static str, n: usize },
    Paths,
    BlobRecords(usize),
}

impl fmt::Display for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Charge::Entries { manifest, n } => write!(f, "{manifest}'s {n} entries"),
            Charge::Paths => f.write_str("the paths"),
            Charge::BlobRecords(n) => write!(f, "{n} blob records"),
        }
    }
}

/// What is wrong with one manifest entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("listed twice")]
    ListedTwice,
    #[error("out of order")]
    OutOfOrder,
    #[error("mode {0:#o} has more than permission bits")]
    Mode(u32),
    #[error("{0} nanoseconds")]
    Nanoseconds(u32),
    #[error("size {0} beyond the limit of {limit}", limit = super::MAX_BLOB_SIZE)]
    Size(u64),
    #[error("empty symlink target or NUL in it")]
    SymlinkTarget,
    #[error("unknown entry kind {0}")]
    Kind(u8),
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn outputs_list(outputs: &[(String, StorePath)]) -> String {
    if outputs.is_empty() {
        "none".to_string()
    } else {
        outputs
            .iter()
            .map(|(n, p)| format!("{n}={p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the writer was given that does not fit together (a bug in its
/// caller), or what its self-check refused.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("compression level {0} out of range")]
    Level(i32),
    #[error("{path} has {size} bytes but {} has {file_size}", .file.display())]
    FileSize {
        path: RelPath,
        size: u64,
        file: PathBuf,
        file_size: u64,
    },
    #[error("no file given for the content of {path} ({hash:032x})")]
    NoFile { path: RelPath, hash: ContentHash },
    #[error("the checkpoint has no blob {0:032x}")]
    NoSuchBlob(ContentHash),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// An error about a pack or state file. Every variant carries the file and
/// the operation that failed. Details are boxed: errors are rare, and every
/// `Result` of the module stays small.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file does not exist (or a path component is missing).
    #[error("{}: {role} not found ({op}): {source}; {}", .path.display(), .role.remedy_missing())]
    Missing {
        role: Role,
        path: PathBuf,
        op: Op,
        source: io::Error,
    },
    /// The file exists but reading it failed (I/O error, permission).
    #[error("{}: cannot {op} ({role}): {source}; {}", .path.display(), .role.remedy_rebuild())]
    Read {
        role: Role,
        path: PathBuf,
        op: Op,
        source: io::Error,
    },
    /// Truncated, or a checksum does not match.
    #[error("{}: the {role} is corrupt ({op}): {detail}; {}", .path.display(), .role.remedy_rebuild())]
    Corrupt {
        role: Role,
        path: PathBuf,
        op: Op,
        detail: Box<DecodeError>,
    },
    /// Not a file of ours, or a format version / feature this binary lacks.
    #[error("{}: not a supported {role} ({op}): {detail}; {}", .path.display(), .role.remedy_unsupported())]
    Unsupported {
        role: Role,
        path: PathBuf,
        op: Op,
        detail: Box<DecodeError>,
    },
    /// Checksums match but the content is hostile or inconsistent: a path
    /// escaping the tree, duplicates, a count or size beyond limits, a
    /// decompression bomb, a missing blob.
    #[error("{}: unsafe {role} ({op}): {detail}; {}", .path.display(), .role.remedy_unsafe())]
    Unsafe {
        role: Role,
        path: PathBuf,
        op: Op,
        detail: Box<DecodeError>,
    },
    /// Writing the pack or state file failed; nothing was left behind.
    #[error("{}: cannot {op}: {source}{}", .path.display(), write_hint(.source))]
    Write {
        path: PathBuf,
        op: Op,
        source: io::Error,
    },
    /// Reading a build-tree file to store it failed, or it changed while
    /// being saved.
    #[error("{}: cannot {op}: {source}; the build tree must not change while `save` runs", .path.display())]
    TreeRead {
        path: PathBuf,
        op: Op,
        source: io::Error,
    },
    /// The writer was given inconsistent data (a bug in the caller).
    #[error("{}: cannot {op}: {detail} (this is a bug in nix-checkpoint, please report it)", .path.display())]
    InvalidInput {
        path: PathBuf,
        op: Op,
        detail: Box<InputError>,
    },
}

// ------------------------------------------------------------ io context

/// Reading a pack or state file: `op` on `path` failed. A missing file
/// (or a file where a directory should be) is [`CheckpointError::Missing`];
/// an `io::Error` carrying a [`DecodeError`] (a bad guard byte met while
/// reading) is damage, [`CheckpointError::Corrupt`]; anything else
/// (EACCES, EIO) is [`CheckpointError::Read`], never "corrupt".
pub(crate) struct Reading<'a> {
    pub role: Role,
    pub op: Op,
    pub path: &'a Path,
}

impl crate::error::WithSource for Reading<'_> {
    type Error = CheckpointError;
    fn with_source(self, source: io::Error) -> CheckpointError {
        let Reading { role, op, path } = self;
        let path = path.to_owned();
        if source.get_ref().is_some_and(|e| e.is::<DecodeError>()) {
            let detail = source
                .into_inner()
                .and_then(|e| e.downcast().ok())
                .expect("checked above");
            return CheckpointError::Corrupt {
                role,
                path,
                op,
                detail,
            };
        }
        // NotADirectory: a path component is a file.
        if matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ) {
            CheckpointError::Missing {
                role,
                path,
                op,
                source,
            }
        } else {
            CheckpointError::Read {
                role,
                path,
                op,
                source,
            }
        }
    }
}

/// Writing a pack or state file (or its directory): [`CheckpointError::Write`].
pub(crate) struct Writing<'a>(pub Op, pub &'a Path);

impl crate::error::WithSource for Writing<'_> {
    type Error = CheckpointError;
    fn with_source(self, source: io::Error) -> CheckpointError {
        CheckpointError::Write {
            path: self.1.to_owned(),
            op: self.0,
            source,
        }
    }
}

/// Reading a build-tree file into a pack: [`CheckpointError::TreeRead`].
pub(crate) struct ReadingTree<'a>(pub Op, pub &'a Path);

impl crate::error::WithSource for ReadingTree<'_> {
    type Error = CheckpointError;
    fn with_source(self, source: io::Error) -> CheckpointError {
        CheckpointError::TreeRead {
            path: self.1.to_owned(),
            op: self.0,
            source,
        }
    }
}

fn write_hint(err: &io::Error) -> &'static str {
    use nix::errno::Errno;
    match err.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOSPC) | Some(Errno::EDQUOT) => {
            " (disk full: free space on the build's file system, then save again; no checkpoint was written)"
        }
        Some(Errno::EROFS) => " (read-only file system; no checkpoint was written)",
        Some(Errno::EACCES) | Some(Errno::EPERM) => {
            " (permission denied: the output directory must be writable; no checkpoint was written)"
        }
        _ => " (no checkpoint was written)",
    }
}

impl CheckpointError {
    pub fn exit_code(&self) -> ExitCode {
        let role = match self {
            CheckpointError::Missing { role, .. }
            | CheckpointError::Read { role, .. }
            | CheckpointError::Corrupt { role, .. }
            | CheckpointError::Unsupported { role, .. }
            | CheckpointError::Unsafe { role, .. } => *role,
            CheckpointError::Write { .. } => return ExitCode::WriteFailed,
            CheckpointError::TreeRead { .. } => return ExitCode::TreeUnreadable,
            CheckpointError::InvalidInput { .. } => return ExitCode::Internal,
        };
        if role == Role::Snapshot {
            return ExitCode::StateInvalid;
        }
        match self {
            CheckpointError::Missing { .. } => ExitCode::CheckpointMissing,
            CheckpointError::Read { .. } => ExitCode::CheckpointUnreadable,
            CheckpointError::Corrupt { .. } => ExitCode::CheckpointCorrupt,
            CheckpointError::Unsupported { .. } => ExitCode::CheckpointUnsupported,
            _ => ExitCode::CheckpointUnsafe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_says_so() {
        let e = CheckpointError::Write {
            path: "/out/.checkpoint.nckp.tmp".into(),
            op: Op::WriteBlobData,
            source: io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32),
        };
        let msg = e.to_string();
        assert!(msg.contains("disk full"), "{msg}");
        assert!(msg.contains("/out/.checkpoint.nckp.tmp"), "{msg}");
        assert!(msg.contains("write blob data"), "{msg}");
        assert_eq!(e.exit_code(), ExitCode::WriteFailed);
    }

    #[test]
    fn state_errors_are_state_invalid() {
        let e = CheckpointError::Corrupt {
            role: Role::Snapshot,
            path: "s".into(),
            op: Op::CheckManifest,
            detail: Box::new(DecodeError::TrailingBytes(1)),
        };
        assert_eq!(e.exit_code(), ExitCode::StateInvalid);
        assert!(e.to_string().contains("snapshot"));
        let e = CheckpointError::Corrupt {
            role: Role::Checkpoint,
            path: "s".into(),
            op: Op::CheckManifest,
            detail: Box::new(DecodeError::TrailingBytes(1)),
        };
        assert_eq!(e.exit_code(), ExitCode::CheckpointCorrupt);
        assert!(e.to_string().contains("prepareCheckpointBuild"));
    }

    /// An unreadable checkpoint (EACCES, EIO) is exit 13 and never called
    /// corrupt: the file may be fine, the machine is not.
    #[test]
    fn unreadable_is_not_corrupt() {
        use crate::error::IoContext;
        for errno in [nix::errno::Errno::EACCES, nix::errno::Errno::EIO] {
            let failed: io::Result<()> = Err(io::Error::from_raw_os_error(errno as i32));
            let e = failed
                .io_context(|| Reading {
                    role: Role::Checkpoint,
                    op: Op::Open,
                    path: Path::new("/cp/checkpoint.nckp"),
                })
                .unwrap_err();
            assert_eq!(e.exit_code(), ExitCode::CheckpointUnreadable, "{e}");
            let msg = e.to_string();
            for word in ["corrupt", "truncated", "checksum"] {
                assert!(!msg.contains(word), "{msg}");
            }
            assert!(
                msg.starts_with("/cp/checkpoint.nckp: cannot open (checkpoint): "),
                "{msg}"
            );
        }
        let missing: io::Result<()> = Err(io::Error::from(io::ErrorKind::NotFound));
        let e = missing
            .io_context(|| Reading {
                role: Role::Checkpoint,
                op: Op::Open,
                path: Path::new("/cp"),
            })
            .unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::CheckpointMissing);
    }

    /// A bad guard byte met while reading comes back inside the `io::Error`
    /// as a `DecodeError`: damage, exit 6, with the guard's own message.
    #[test]
    fn a_bad_guard_read_is_corrupt() {
        use crate::error::IoContext;
        let failed: io::Result<()> = Err(io::Error::new(
            io::ErrorKind::InvalidData,
            DecodeError::BadGuard(47),
        ));
        let e = failed
            .io_context(|| Reading {
                role: Role::Checkpoint,
                op: Op::ReadTrailer,
                path: Path::new("p"),
            })
            .unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::CheckpointCorrupt);
        assert_eq!(
            e.to_string(),
            "p: the checkpoint is corrupt (read the trailer): byte 47 is not a zero guard byte; \
             rebuild the checkpoint with prepareCheckpointBuild"
        );
    }

    /// Texts built from data rather than written out in one string: the
    /// same bytes as the `format!` calls they replaced.
    #[test]
    fn composed_texts() {
        let store = b"/nix/store".to_vec();
        let out = StorePath::parse(
            &store,
            format!("/nix/store/{}-hello", "0".repeat(32)).as_bytes(),
        )
        .unwrap();
        let cases: Vec<(String, String)> = vec![
            (
                DecodeError::OtherRoot {
                    taken: b"/a".to_vec(),
                    saving: b"/b".to_vec(),
                }
                .to_string(),
                "it was taken in /a, not in the tree being saved, /b".into(),
            ),
            (
                DecodeError::OtherOutputs {
                    taken: vec![],
                    saving: vec![("out".into(), out.clone()), ("dev".into(), out)],
                }
                .to_string(),
                format!(
                    "it was taken for the outputs none, not this build's out=/nix/store/{0}-hello, \
                     dev=/nix/store/{0}-hello",
                    "0".repeat(32)
                ),
            ),
            (
                DecodeError::OverBudget {
                    what: Charge::Entries {
                        manifest: "after",
                        n: 3,
                    },
                    budget: 256 << 20,
                    charged: 300 << 20,
                }
                .to_string(),
                "decoding after's 3 entries would need more than the 256 MiB of memory \
                 nix-checkpoint allows for this file (over 300 MiB so far)"
                    .into(),
            ),
            (
                DecodeError::NotStorePath {
                    what: "output",
                    bytes: b"/x".to_vec(),
                    store_dir: store,
                }
                .to_string(),
                "output \"/x\" is not a store path in \"/nix/store\"".into(),
            ),
            (
                Op::RenameIntoPlace("/o/.t".into()).to_string(),
                "rename /o/.t into place".into(),
            ),
            (
                Op::ReadBlob(0xab).to_string(),
                format!("read blob {}ab", "0".repeat(30)),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
