//! Tests of the pack and state formats: round trips, determinism, every
//! single-byte flip and truncation, hostile content, atomic writes.

use super::codec::{header_bytes, trailer_bytes, Trailer, HEADER_LEN};
use super::*;
use crate::exit_code::ExitCode;
use crate::rewrite::store_path::StorePath;
use crate::tree::{Entry, Manifest, Node, RelPath, Timestamp};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_128;

const H1: &str = "0c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";
const H2: &str = "1c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";
const H3: &str = "2c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";

fn info() -> BuildInfo {
    let sp = |s: String| StorePath::parse(b"/nix/store", s.as_bytes()).unwrap();
    BuildInfo {
        root: b"/build/source".to_vec(),
        store_dir: b"/nix/store".to_vec(),
        outputs: vec![
            ("dev".into(), sp(format!("/nix/store/{H1}-hello-dev"))),
            ("out".into(), sp(format!("/nix/store/{H2}-hello"))),
        ],
        dependencies: vec![sp(format!("/nix/store/{H3}-gcc-13"))],
        recipe: crate::recipe::Recipe::parse_shell_dump(
            b"s\0makeFlags\0-j4\0a\0configureFlags\x002\0--a\0--b c\0A\0outputs\x001\0out\0@output:out@\0",
        )
        .unwrap(),
    }
}

fn rel(p: &[u8]) -> RelPath {
    RelPath::new(p).unwrap()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::new(secs, 123_456_789)
}

fn dir(p: &[u8], secs: i64) -> Entry {
    Entry {
        path: rel(p),
        node: Node::Dir,
        mode: 0o755,
        mtime: t(secs),
    }
}

fn file(p: &[u8], content: &[u8], mode: u32, secs: i64) -> Entry {
    Entry {
        path: rel(p),
        node: Node::File {
            size: content.len() as u64,
            hash: xxh3_128(content),
        },
        mode,
        mtime: t(secs),
    }
}

fn link(p: &[u8], target: &[u8], secs: i64) -> Entry {
    Entry {
        path: rel(p),
        node: Node::Symlink {
            target: target.into(),
            hash: xxh3_128(target),
        },
        mode: 0o777,
        mtime: t(secs),
    }
}

/// A build tree on disk with P and B, and the blobs `save` would pass.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    before: Manifest,
    after: Manifest,
    blobs: Vec<BlobFile>,
    contents: BTreeMap<u128, Vec<u8>>,
}

fn fixture(big: usize) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    let main_c = b"int main() { return 0; }\n".to_vec();
    let header = b"#define X 1\n".to_vec();
    let readme = b"hello\n".to_vec();
    let object = b"\x7fELF object code \x00\x01\x02".repeat(50);
    let weird = b"non-utf8 named product".to_vec();
    let big_content: Vec<u8> = (0..big)
        .map(|i| (i % 251) as u8 ^ (i / 7000) as u8)
        .collect();
    let random: Vec<u8> = (0..4000u32)
        .map(|i| (xxh3_128(&i.to_le_bytes()) >> 64) as u8)
        .collect();
    let before = Manifest::new(vec![
        dir(b"src", 10),
        file(b"src/main.c", &main_c, 0o644, 11),
        file(b"src/unchanged.h", &header, 0o644, 12),
        file(b"README", &readme, 0o644, 13),
        link(b"link", b"src/main.c", 14),
        file(b"gone", b"deleted by the build", 0o644, 15),
    ])
    .unwrap();
    let mut after = vec![
        dir(b"src", 10),
        file(b"src/main.c", &main_c, 0o644, 11),
        file(b"src/unchanged.h", &header, 0o644, 12),
        // Same content, new mode: stored.
        file(b"README", &readme, 0o755, 20),
        link(b"link", b"src/main.c", 14),
        dir(b"build", 21),
        file(b"build/main.o", &object, 0o644, 22),
        file(b"build/copy.o", &object, 0o644, 23),
        file(b"build/\xff\xfe-bin", &weird, 0o755, 24),
        dir(b"build/\xff\xfe-dir", 25),
        file(b"build/\xff\xfe-dir/random", &random, 0o644, 26),
        link(b"build/latest", b"main.o", 27),
        link(b"build/\x80abs", b"/nix/store/x-\xff", 28),
        file(b"build/empty", b"", 0o600, -5),
    ];
    if big > 0 {
        after.push(file(b"build/big.bin", &big_content, 0o644, 29));
    }
    let after = Manifest::new(after).unwrap();

    let mut contents = BTreeMap::new();
    for (p, c) in [
        (&b"src/main.c"[..], &main_c),
        (b"src/unchanged.h", &header),
        (b"README", &readme),
        (b"build/main.o", &object),
        (b"build/copy.o", &object),
        (b"build/\xff\xfe-bin", &weird),
        (b"build/\xff\xfe-dir/random", &random),
        (b"build/empty", &Vec::new()),
        (b"build/big.bin", &big_content),
    ] {
        if p == b"build/big.bin" && big == 0 {
            continue;
        }
        let path = root.join(rel(p).as_path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, c).unwrap();
        contents.insert(xxh3_128(c), c.clone());
    }
    let blobs = files_to_store(&before, &after)
        .map(|e| match e.node {
            Node::File { size, hash } => BlobFile {
                hash,
                path: root.join(e.path.as_path()),
                size,
            },
            _ => unreachable!(),
        })
        .collect();
    Fixture {
        _tmp: tmp,
        root,
        before,
        after,
        blobs,
        contents,
    }
}

fn write(fx: &Fixture, out: &Path, options: &WriteOptions) -> WriteStats {
    write_checkpoint(
        out,
        &info(),
        &fx.before,
        &fx.after,
        fx.blobs.clone(),
        options,
    )
    .unwrap()
}

fn without_mtimes(m: &Manifest) -> Manifest {
    Manifest::new(
        m.entries()
            .iter()
            .map(|e| Entry {
                mtime: Timestamp::default(),
                ..e.clone()
            })
            .collect(),
    )
    .unwrap()
}

fn opts(level: i32, max_in_flight: u64) -> WriteOptions {
    WriteOptions {
        level,
        max_in_flight,
    }
}

#[test]
fn round_trip_at_each_level_and_memory_budget() {
    for (level, budget) in [
        (3, 64 << 20),
        (0, 64 << 20),
        (3, 4096),
        (0, 4096),
        (19, 1 << 20),
    ] {
        let fx = fixture(300_000);
        let out = fx.root.parent().unwrap().join("out/nested");
        let stats = write(&fx, &out, &opts(level, budget));
        assert_eq!(stats.path, out.join(PACK_FILE_NAME));
        let pack = PackReader::open(&out).unwrap();
        let cp = pack.checkpoint();
        assert_eq!(cp.info, info());
        assert_eq!(cp.after, fx.after);
        assert_eq!(cp.before, without_mtimes(&fx.before));
        // README (mode), main.o = copy.o (dedup), weird, random, empty, big.
        assert_eq!(cp.blobs.len(), 6, "level {level}");
        assert_eq!(stats.blobs, 6);
        assert!(!cp
            .blobs
            .iter()
            .any(|b| b.hash == xxh3_128(b"#define X 1\n")));
        for b in &cp.blobs {
            assert_eq!(&pack.read_blob(b.hash).unwrap(), &fx.contents[&b.hash]);
            let via_trait = crate::apply::BlobSource::read_blob(&pack, b.hash).unwrap();
            assert_eq!(&via_trait, &fx.contents[&b.hash]);
            let mut streamed = Vec::new();
            let identity = crate::rewrite::Rewriter::identity();
            crate::apply::BlobSource::stream_blob(&pack, b.hash, &identity, &mut streamed).unwrap();
            assert_eq!(&streamed, &fx.contents[&b.hash]);
        }
        let v = pack.verify().unwrap();
        assert_eq!(v.blobs, 6);
        assert_eq!(v.raw_bytes, stats.raw_bytes);
        assert_eq!(v.stored_bytes, stats.stored_bytes);
        // Also opens by file path.
        let by_file = PackReader::open(&out.join(PACK_FILE_NAME)).unwrap();
        assert_eq!(by_file.checkpoint(), cp);

        let bytes = std::fs::read(out.join(PACK_FILE_NAME)).unwrap();
        assert_eq!(bytes.len() as u64, stats.pack_bytes);
        assert_eq!(&bytes[..8], &PACK_MAGIC);
        let mode = std::fs::metadata(out.join(PACK_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0, "pack must not be executable");
        // Raw blobs are the content byte for byte at their (logical) offset.
        let bytes = super::testing::remove_guards(&bytes).unwrap();
        for r in pack.blobs() {
            if r.compression == Compression::Raw {
                let at = &bytes[r.offset as usize..(r.offset + r.stored_len) as usize];
                assert_eq!(at, &fx.contents[&r.hash][..]);
            } else {
                assert!(level != 0);
            }
        }
        if level == 0 {
            assert!(pack
                .blobs()
                .iter()
                .all(|r| r.compression == Compression::Raw));
        } else {
            // Compressible contents are compressed, random data is not.
            let big = pack.blob(xxh3_128(
                &fx.contents.values().max_by_key(|c| c.len()).unwrap()[..],
            ));
            assert_eq!(big.unwrap().compression, Compression::Zstd);
            assert!(stats.stored_bytes < stats.raw_bytes);
        }
    }
}

#[test]
fn bytes_do_not_depend_on_thread_count() {
    // The second case streams a file larger than a zstd multithreading job.
    for (budget, big) in [(64 << 20, 200_000), (8192, 12 << 20)] {
        let fx = fixture(big);
        let base = fx.root.parent().unwrap().to_owned();
        let mut packs = Vec::new();
        for threads in [1, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let out = base.join(format!("out-{threads}"));
            let mut blobs = fx.blobs.clone();
            if threads == 4 {
                blobs.reverse();
            }
            pool.install(|| {
                write_checkpoint(
                    &out,
                    &info(),
                    &fx.before,
                    &fx.after,
                    blobs,
                    &opts(3, budget),
                )
                .unwrap()
            });
            packs.push(std::fs::read(out.join(PACK_FILE_NAME)).unwrap());
        }
        assert_eq!(packs[0], packs[1]);
    }
}

fn is_rejection(code: ExitCode) -> bool {
    matches!(
        code,
        ExitCode::CheckpointCorrupt | ExitCode::CheckpointUnsupported | ExitCode::CheckpointUnsafe
    )
}

/// Opens and verifies a pack: Ok only if everything checks out.
fn open_and_verify(path: &Path) -> Result<PackReader, CheckpointError> {
    let pack = PackReader::open(path)?;
    pack.verify()?;
    Ok(pack)
}

fn small_fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir_all(root.join("d")).unwrap();
    let a = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa compressible".to_vec();
    let b = b"xyz".to_vec();
    std::fs::write(root.join("d/a"), &a).unwrap();
    std::fs::write(root.join("b"), &b).unwrap();
    let before = Manifest::new(vec![file(b"b", b"old", 0o644, 1)]).unwrap();
    let after = Manifest::new(vec![
        file(b"b", &b, 0o644, 2),
        dir(b"d", 3),
        file(b"d/a", &a, 0o644, 4),
        link(b"l", b"d/a", 5),
    ])
    .unwrap();
    let blobs = vec![
        BlobFile {
            hash: xxh3_128(&a),
            path: root.join("d/a"),
            size: a.len() as u64,
        },
        BlobFile {
            hash: xxh3_128(&b),
            path: root.join("b"),
            size: b.len() as u64,
        },
    ];
    let contents = [(xxh3_128(&a), a), (xxh3_128(&b), b)].into_iter().collect();
    Fixture {
        _tmp: tmp,
        root,
        before,
        after,
        blobs,
        contents,
    }
}

#[test]
fn every_single_byte_flip_is_detected() {
    for level in [3, 0] {
        let fx = small_fixture();
        let out = fx.root.parent().unwrap().join("out");
        write(&fx, &out, &opts(level, 64 << 20));
        let good = std::fs::read(out.join(PACK_FILE_NAME)).unwrap();
        let bad_path = out.join("flipped.nckp");
        for i in 0..good.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                std::fs::write(&bad_path, &bad).unwrap();
                match open_and_verify(&bad_path) {
                    Ok(_) => panic!(
                        "level {level}: flip {mask:#x} at byte {i} of {} went unnoticed",
                        good.len()
                    ),
                    Err(e) => assert!(is_rejection(e.exit_code()), "byte {i}: {e}"),
                }
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_is_detected() {
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out");
    write(&fx, &out, &opts(3, 64 << 20));
    let good = std::fs::read(out.join(PACK_FILE_NAME)).unwrap();
    let bad_path = out.join("cut.nckp");
    for len in 0..good.len() {
        std::fs::write(&bad_path, &good[..len]).unwrap();
        let e = open_and_verify(&bad_path).unwrap_err();
        assert_eq!(
            e.exit_code(),
            ExitCode::CheckpointCorrupt,
            "length {len}: {e}"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&bad_path, &longer).unwrap();
    assert_eq!(
        open_and_verify(&bad_path).unwrap_err().exit_code(),
        ExitCode::CheckpointCorrupt
    );
}

#[test]
fn missing_and_foreign_files() {
    let tmp = tempfile::tempdir().unwrap();
    let e = PackReader::open(&tmp.path().join("nope")).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointMissing);
    assert!(e.to_string().contains("nope"), "{e}");
    // An empty checkpoint directory: the pack is missing.
    let e = PackReader::open(tmp.path()).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointMissing);
    assert!(e.to_string().contains(PACK_FILE_NAME), "{e}");
    for foreign in [
        &b"\x7fELF\x02\x01\x01\0 and much more"[..],
        b"#!/bin/sh\necho hi\n",
    ] {
        std::fs::write(tmp.path().join(PACK_FILE_NAME), foreign).unwrap();
        let e = PackReader::open(tmp.path()).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::CheckpointUnsupported);
    }
    // A future version.
    let mut future = header_bytes(&PACK_MAGIC).to_vec();
    future[8] = 3;
    future.extend_from_slice(&[0; 100]);
    std::fs::write(tmp.path().join(PACK_FILE_NAME), &future).unwrap();
    let e = PackReader::open(tmp.path()).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointUnsupported);
    assert!(e.to_string().contains("version 3"), "{e}");
    // The previous version, which kept no recipe: a checkpoint of an older
    // nix-checkpoint is refused as unsupported, never read as a recipe-less one.
    future[8] = 1;
    std::fs::write(tmp.path().join(PACK_FILE_NAME), &future).unwrap();
    let e = PackReader::open(tmp.path()).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointUnsupported);
}

// ------------------------------------------------------- hostile content

fn open_bytes(bytes: &[u8]) -> Result<PackReader, CheckpointError> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join(PACK_FILE_NAME);
    std::fs::write(&p, bytes).unwrap();
    open_and_verify(&p)
}

#[test]
fn crafted_pack_is_accepted_when_sound() {
    // The crafting kit itself produces acceptable packs, so each hostile
    // case of the corpus fails for its own reason.
    let pack = open_bytes(&super::testing::sound_pack(b"/build").to_bytes()).unwrap();
    assert_eq!(pack.read_blob(xxh3_128(b"object a")).unwrap(), b"object a");
    let cp = pack.checkpoint();
    crate::apply::check_checkpoint(Path::new("/build"), &cp.after, Timestamp::now()).unwrap();
}

/// Every pack of the hostile corpus (`testing::hostile_packs`, which the
/// integration tests restore with the binary too) is refused by what
/// `verify` runs (open, verify, the check of what restore would write),
/// with its exit code and for its own reason.
#[test]
fn hostile_packs_are_refused_for_their_own_reason() {
    let root = Path::new("/build");
    let cases = super::testing::hostile_packs(root.as_os_str().as_bytes());
    for c in &cases {
        let (code, message) = match open_bytes(&c.bytes) {
            Err(e) => (e.exit_code(), e.to_string()),
            Ok(pack) => {
                let cp = pack.checkpoint();
                match crate::apply::check_checkpoint(root, &cp.after, Timestamp::now()) {
                    Err(e) => (ExitCode::CheckpointUnsafe, e.to_string()),
                    Ok(()) => panic!("{}: accepted", c.name),
                }
            }
        };
        assert_eq!(code.code(), c.code, "{}: {message}", c.name);
        assert!(is_rejection(code), "{}: {message}", c.name);
        assert!(
            message.contains(c.reason),
            "{}: {message} lacks {:?}",
            c.name,
            c.reason
        );
    }
    assert!(cases.len() >= 80, "{} cases", cases.len());
}

#[test]
fn zstd_bombs_are_unsafe() {
    let zeros = vec![0u8; 20 << 20];
    let bomb = zstd::bulk::compress(&zeros, 1).unwrap();
    assert!(bomb.len() < 10_000);
    // Manifest section: declared small, decompresses to 20 MiB.
    let header = header_bytes(&PACK_MAGIC);
    let trailer = Trailer {
        section_offset: HEADER_LEN,
        section_stored: bomb.len() as u64,
        section_raw: 1000,
        compression: 1,
        section_checksum: xxh3_128(&bomb),
    };
    let pack = super::testing::add_guards(
        &[&header[..], &bomb, &trailer_bytes(&header, &trailer)].concat(),
    );
    let e = open_bytes(&pack).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointUnsafe, "{e}");
    assert!(e.to_string().contains("decompression bomb"), "{e}");

    // A blob that decompresses beyond its declared (and entry) size.
    let c = b"0123456789";
    let mut crafted = super::testing::RawPack::new(b"/build").with_file(b"a", c);
    crafted.blobs[0] = super::testing::RawBlob {
        hash: xxh3_128(c),
        stored: bomb.clone(),
        raw_size: 10,
        zstd: true,
        checksum: xxh3_128(c),
    };
    let bytes = crafted.to_bytes();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join(PACK_FILE_NAME);
    std::fs::write(&p, &bytes).unwrap();
    let pack = PackReader::open(&p).unwrap();
    let e = pack.read_blob(xxh3_128(c)).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointUnsafe, "{e}");
    assert_eq!(
        pack.verify().unwrap_err().exit_code(),
        ExitCode::CheckpointUnsafe
    );
}

// ------------------------------------------------------- atomic writes

use super::testing::leftovers;

#[test]
fn failed_writes_leave_nothing() {
    // A directory of a temporary file's name is not ours: left alone (the
    // temporary file has a unique name, so it is not in the way either).
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out");
    std::fs::create_dir_all(out.join(format!(".{PACK_FILE_NAME}.tmp"))).unwrap();
    write(&fx, &out, &opts(3, 1 << 20));
    let mut left = leftovers(&out);
    left.sort();
    assert_eq!(
        left,
        vec![format!(".{PACK_FILE_NAME}.tmp"), PACK_FILE_NAME.to_string()]
    );

    // A source file vanishing while the pack is written: temp removed.
    let out = fx.root.parent().unwrap().join("out2");
    std::fs::remove_file(fx.root.join("b")).unwrap();
    let e = write_checkpoint(
        &out,
        &info(),
        &fx.before,
        &fx.after,
        fx.blobs.clone(),
        &opts(3, 1 << 20),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::TreeUnreadable, "{e}");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));

    // A source file that changed size since the scan.
    std::fs::write(fx.root.join("b"), b"longer than before").unwrap();
    for budget in [1 << 20, 1] {
        let e = write_checkpoint(
            &out,
            &info(),
            &fx.before,
            &fx.after,
            fx.blobs.clone(),
            &opts(3, budget),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::TreeUnreadable, "{e}");
        assert!(leftovers(&out).is_empty());
    }

    // A failed write keeps the previous pack intact.
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out3");
    write(&fx, &out, &opts(3, 1 << 20));
    let old = std::fs::read(out.join(PACK_FILE_NAME)).unwrap();
    std::fs::remove_file(fx.root.join("d/a")).unwrap();
    assert!(write_checkpoint(
        &out,
        &info(),
        &fx.before,
        &fx.after,
        fx.blobs.clone(),
        &opts(0, 1)
    )
    .is_err());
    assert_eq!(std::fs::read(out.join(PACK_FILE_NAME)).unwrap(), old);
    assert_eq!(leftovers(&out), vec![PACK_FILE_NAME.to_string()]);
}

#[test]
fn unwritable_output_dir_is_write_failed() {
    if nix::unistd::geteuid().is_root() {
        return; // root ignores permissions
    }
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("ro");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let e = write_checkpoint(
        &out,
        &info(),
        &fx.before,
        &fx.after,
        fx.blobs.clone(),
        &opts(3, 1 << 20),
    )
    .unwrap_err();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(e.exit_code(), ExitCode::WriteFailed);
    assert!(e.to_string().contains("permission"), "{e}");
    assert!(leftovers(&out).is_empty());
}

#[test]
fn inconsistent_inputs_are_refused_before_writing() {
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out");
    // A changed file without its blob.
    let e = write_checkpoint(
        &out,
        &info(),
        &fx.before,
        &fx.after,
        fx.blobs[..1].to_vec(),
        &opts(3, 1 << 20),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Internal, "{e}");
    // A build info the reader would refuse.
    let e = write_checkpoint(
        &out,
        &BuildInfo::default(),
        &fx.before,
        &fx.after,
        fx.blobs.clone(),
        &opts(3, 1 << 20),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::Internal, "{e}");
    assert!(leftovers(&out).is_empty());
    // Extra and duplicate blobs are ignored.
    let mut blobs = fx.blobs.clone();
    blobs.extend(fx.blobs.clone());
    blobs.push(BlobFile {
        hash: 42,
        path: "/nonexistent".into(),
        size: 3,
    });
    write_checkpoint(
        &out,
        &info(),
        &fx.before,
        &fx.after,
        blobs,
        &opts(3, 1 << 20),
    )
    .unwrap();
    assert_eq!(open_and_verify(&out).unwrap().blobs().len(), 2);
}

// ------------------------------------------------------- state

fn state() -> Snapshot {
    Snapshot {
        info: info(),
        before: Manifest::new(vec![
            dir(b"src", 1),
            file(b"src/\xffname.c", b"x", 0o644, -3),
            link(b"src/l", b"\xff", 2),
        ])
        .unwrap(),
    }
}

#[test]
fn state_round_trip_and_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("state");
    write_snapshot(&p, &state()).unwrap();
    assert_eq!(read_snapshot(&p).unwrap(), state());
    assert_eq!(leftovers(tmp.path()), vec!["state".to_string()]);
    // Overwrite.
    let mut s2 = state();
    s2.before = Manifest::default();
    write_snapshot(&p, &s2).unwrap();
    assert_eq!(read_snapshot(&p).unwrap(), s2);
    write_snapshot(&p, &state()).unwrap();

    let good = std::fs::read(&p).unwrap();
    let bad = tmp.path().join("bad");
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        std::fs::write(&bad, &b).unwrap();
        let e = read_snapshot(&bad).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::StateInvalid, "byte {i}: {e}");
    }
    for len in 0..good.len() {
        std::fs::write(&bad, &good[..len]).unwrap();
        assert_eq!(
            read_snapshot(&bad).unwrap_err().exit_code(),
            ExitCode::StateInvalid
        );
    }
    let e = read_snapshot(&tmp.path().join("missing")).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::StateInvalid);
    assert!(e.to_string().contains("snapshot"), "{e}");
    // A state is not a pack and vice versa.
    assert_eq!(
        PackReader::open(&p).unwrap_err().exit_code(),
        ExitCode::CheckpointUnsupported
    );
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out");
    write(&fx, &out, &opts(3, 1 << 20));
    assert_eq!(
        read_snapshot(&out.join(PACK_FILE_NAME))
            .unwrap_err()
            .exit_code(),
        ExitCode::StateInvalid
    );
    // A failed state write leaves nothing (and no temp).
    let e = write_snapshot(&tmp.path().join("no/such/dir/state"), &state()).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::WriteFailed);
}

// ------------------------------------------------------- property

mod random {
    use super::*;
    use proptest::prelude::*;

    /// Random trees: paths of up to 3 components over a tiny alphabet (with
    /// non-UTF-8 bytes), every ancestor a directory, random leaf kinds.
    /// (path, kind 0 dir / 1 file / 2 symlink, content, mode, also in P)
    type Leaf = (Vec<u8>, u8, Vec<u8>, u32, bool);

    fn tree() -> impl Strategy<Value = Vec<Leaf>> {
        let name = prop::sample::select(vec![&b"a"[..], b"b", b"\xff", b"c.o", b"\x80x"]);
        let path = prop::collection::vec(name, 1..=3).prop_map(|c| c.join(&b'/'));
        prop::collection::vec(
            (
                path,
                0u8..3,
                prop::collection::vec(any::<u8>(), 0..64),
                prop::sample::select(vec![0o644u32, 0o755, 0o600]),
                any::<bool>(),
            ),
            0..24,
        )
    }

    fn manifest(leaves: &[Leaf], secs: i64) -> Manifest {
        let mut by_path: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (p, ..) in leaves {
            for (i, _) in p.iter().enumerate().filter(|(_, &b)| b == b'/') {
                dirs.insert(p[..i].to_vec());
            }
        }
        for (p, kind, content, mode, _) in leaves {
            let e = if dirs.contains(p) || *kind == 0 {
                dir(p, secs)
            } else if *kind == 1 {
                file(p, content, *mode, secs)
            } else {
                let mut target = content.clone();
                target.retain(|&b| b != 0);
                target.push(b'x');
                link(p, &target, secs)
            };
            by_path.insert(p.clone(), e);
        }
        for d in dirs {
            by_path.insert(d.clone(), dir(&d, secs));
        }
        Manifest::new(by_path.into_values().collect()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn random_checkpoints_round_trip(leaves in tree(), level in prop::sample::select(vec![0, 1, 3])) {
            let after = manifest(&leaves, 1_700_000_000);
            // P: the leaves flagged `true`, content altered for some.
            let kept: Vec<_> = leaves
                .iter()
                .filter(|l| l.4)
                .map(|(p, k, c, m, _)| {
                    let mut c = c.clone();
                    if c.len() % 3 == 0 { c.push(7); }
                    (p.clone(), *k, c, *m, true)
                })
                .collect();
            let before = manifest(&kept, 5);
            let tmp = tempfile::tempdir().unwrap();
            let mut blobs = Vec::new();
            let mut contents = BTreeMap::new();
            for (_, _, c, _, _) in &leaves {
                let h = xxh3_128(c);
                let p = tmp.path().join(format!("{h:032x}"));
                std::fs::write(&p, c).unwrap();
                contents.insert(h, c.clone());
                blobs.push(BlobFile { hash: h, path: p, size: c.len() as u64 });
            }
            let out = tmp.path().join("out");
            write_checkpoint(&out, &info(), &before, &after, blobs, &opts(level, 256)).unwrap();
            let pack = open_and_verify(&out).unwrap();
            prop_assert_eq!(&pack.checkpoint().after, &after);
            prop_assert_eq!(&pack.checkpoint().before, &without_mtimes(&before));
            let needed: std::collections::BTreeSet<u128> = files_to_store(&before, &after)
                .map(|e| match e.node { Node::File { hash, .. } => hash, _ => unreachable!() })
                .collect();
            prop_assert_eq!(pack.blobs().len(), needed.len());
            for h in needed {
                prop_assert_eq!(&pack.read_blob(h).unwrap(), &contents[&h]);
            }
        }
    }
}

#[test]
fn reader_is_sync_and_a_stale_temp_file_is_replaced() {
    fn assert_sync<T: Sync + Send>() {}
    assert_sync::<PackReader>();

    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join(format!(".{PACK_FILE_NAME}.tmp")),
        b"left by a killed save (old name)",
    )
    .unwrap();
    std::fs::write(
        out.join(format!(".{PACK_FILE_NAME}.tmp.123.abc.0")),
        b"left by a killed save",
    )
    .unwrap();
    write(&fx, &out, &opts(3, 1 << 20));
    assert_eq!(leftovers(&out), vec![PACK_FILE_NAME.to_string()]);
    open_and_verify(&out).unwrap();
}

#[test]
fn a_file_in_place_of_a_directory_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), b"x").unwrap();
    let e = PackReader::open(&tmp.path().join("f/checkpoint.nckp")).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointMissing, "{e}");
}

/// Finding 5 of #12: two saves into one `--output` at once. The temporary
/// name was fixed, and the second save deleted the first's live temporary
/// file as "stale", so the first renamed the second's half-written file
/// into place. Now a writer holds an exclusive lock on the directory from
/// creating its (uniquely named) temporary file until the rename: a second
/// writer waits, and only then removes what is left of killed writers.
#[test]
fn two_writers_into_one_directory_take_turns() {
    let fx = small_fixture();
    let out = fx.root.parent().unwrap().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join(PACK_FILE_NAME);
    let first = crate::checkpoint::atomic::AtomicFile::create(&dest).unwrap();
    std::io::Write::write_all(&mut first.file(), b"first").unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writer = {
        let out = out.clone();
        let before = fx.before.clone();
        let after = fx.after.clone();
        let blobs = fx.blobs.clone();
        std::thread::spawn(move || {
            let r = write_checkpoint(&out, &info(), &before, &after, blobs, &opts(3, 1 << 20));
            done_tx.send(()).unwrap();
            r.map(|_| ())
        })
    };
    assert!(
        done_rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "the second writer did not wait for the first"
    );
    assert!(first.temp.exists(), "the live temporary file was removed");
    assert_eq!(std::fs::read(&first.temp).unwrap(), b"first");
    first.commit().unwrap();
    writer.join().unwrap().unwrap();
    // The second wrote after the first: its complete pack is in place.
    open_and_verify(&out).unwrap();
    assert_eq!(leftovers(&out), vec![PACK_FILE_NAME.to_string()]);
}

/// Finding 3 of #12: a 3 MiB pack within every format limit (2 x 8 388 608
/// directory entries) cost 2.3 GB to inspect or verify and 4.1 GB to
/// restore. The reader now charges the decompressed section and a cost per
/// declared entry against `MEMORY_BUDGET` before decoding the entries, and
/// refuses (unsafe, exit 8) what would exceed it; a pack just within it is
/// read.
#[test]
fn pack_needing_more_memory_than_the_budget_is_refused_before_decoding() {
    use crate::checkpoint::codec::{ENTRY_COST, MEMORY_BUDGET};
    use crate::checkpoint::testing::{many_dirs_pack, open_bytes};
    // Per pair of entries: two entry costs, ~42 bytes of section, 16 of paths.
    let fits = (MEMORY_BUDGET / (2 * ENTRY_COST + 80)) as u32;
    let over = (MEMORY_BUDGET / ENTRY_COST / 2 + 1_000) as u32;
    let reader = open_bytes(&many_dirs_pack(b"/build", fits, fits)).unwrap();
    assert_eq!(reader.checkpoint().after.len(), fits as usize);
    drop(reader);
    let e = open_bytes(&many_dirs_pack(b"/build", over, over)).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::CheckpointUnsafe, "{e}");
    assert!(e.to_string().contains("MiB of memory"), "{e}");
}

// ------------------------------------------------- no store path in a pack

use crate::rewrite::store_path::NIX_BASE32;

/// The longest run of consecutive bytes of `bytes` that are all in the
/// base-32 alphabet. Nix records a reference to a store path when its
/// 32-character hash occurs in an output: a file without a run of 32 refers
/// to no store path at all, whichever paths the build's closure holds.
fn longest_base32_run(bytes: &[u8]) -> usize {
    let (mut run, mut longest) = (0, 0);
    for b in bytes {
        run = if crate::rewrite::store_path::is_base32(*b) {
            run + 1
        } else {
            0
        };
        longest = longest.max(run);
    }
    longest
}

/// A store path whose hash is derived from `n`, `/nix/store/<hash>-name`.
fn store_path_text(n: u64, name: &str) -> String {
    let mut x = xxh3_128(&n.to_le_bytes());
    let hash: String = (0..32)
        .map(|_| {
            let c = NIX_BASE32[(x % 32) as usize] as char;
            x /= 32;
            c
        })
        .collect();
    format!("/nix/store/{hash}-{name}")
}

#[test]
fn guard_offsets_round_trip() {
    use super::guard::{file_offset, is_guard, logical_len};
    for logical in HEADER_LEN..2000 {
        let len = file_offset(logical);
        assert_eq!(logical_len(len), Some(logical), "logical {logical}");
        // The byte before each logical byte's file offset is a guard only
        // at the start of a run.
        assert!(!is_guard(len) || logical_len(len + 1).is_none());
    }
    let impossible = (0..2000).filter(|&l| logical_len(l).is_none()).count();
    assert_eq!(impossible, (2000 - HEADER_LEN as usize) / 32);
    // Every 32nd byte from offset 15 on is a guard or the flags' last byte.
    let file = super::testing::add_guards(&vec![0xffu8; 1000]);
    for (i, &b) in file.iter().enumerate() {
        let at_guard = i % 32 == 15 && i > 15;
        assert_eq!(is_guard(i as u64), at_guard, "offset {i}");
        assert_eq!(b == 0, at_guard, "offset {i}");
    }
    assert_eq!(
        super::testing::remove_guards(&file).unwrap(),
        vec![0xff; 1000]
    );
}

#[test]
fn guarded_writes_do_not_depend_on_how_the_bytes_are_split() {
    let logical: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8 | 1).collect();
    let whole = super::testing::add_guards(&logical);
    for pieces in [1usize, 5, 30, 31, 32, 33, 1000, 65_536, 100_000] {
        let mut w = super::guard::GuardedWriter::new(logical[..16].to_vec());
        for (i, chunk) in logical[16..].chunks(pieces).enumerate() {
            // Vary the split a little too.
            let (a, b) = chunk.split_at((i * 7) % chunk.len().max(1));
            w.write_all(a).unwrap();
            w.write_all(b).unwrap();
        }
        assert_eq!(w.file_len(), whole.len() as u64);
        assert!(w.inner == whole, "pieces of {pieces}");
    }
}

#[test]
fn guarded_ranges_read_back_and_every_bad_guard_is_caught() {
    use std::io::Read;
    let logical: Vec<u8> = (0..700u32).map(|i| (i % 251) as u8 | 1).collect();
    let good = super::testing::add_guards(&logical);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("guarded");
    std::fs::write(&path, &good).unwrap();
    let f = std::fs::File::open(&path).unwrap();
    // Every range, through every buffer size, including reads that stop
    // just before a guard.
    for start in (16..700u64).step_by(7) {
        for end in [start, start + 1, start + 31, start + 62, 700].map(|e| e.min(700)) {
            let want = &logical[start as usize..end as usize];
            let whole = super::guard::read_logical(&f, start, want.len()).unwrap();
            assert_eq!(whole, want);
            for chunk in [1, 2, 31, 32, 33, 100] {
                let mut r = super::guard::LogicalRange {
                    file: &f,
                    pos: start,
                    end,
                };
                let mut got = Vec::new();
                let mut buf = vec![0u8; chunk];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, want, "{start}..{end} by {chunk}");
            }
        }
    }
    // A guard that is not zero fails every read that passes over it.
    for g in (0..good.len() as u64).filter(|&i| super::guard::is_guard(i)) {
        let mut bad = good.clone();
        bad[g as usize] = b'a';
        std::fs::write(&path, &bad).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        assert!(
            super::guard::read_logical(&f, 16, 700 - 16).is_err(),
            "guard {g}"
        );
        for chunk in [1, 31, 32, 64] {
            let mut r = super::guard::LogicalRange {
                file: &f,
                pos: 16,
                end: 700,
            };
            let mut buf = vec![0u8; chunk];
            let failed = loop {
                match r.read(&mut buf) {
                    Ok(0) => break false,
                    Ok(_) => {}
                    Err(e) => break e.kind() == std::io::ErrorKind::InvalidData,
                }
            };
            assert!(failed, "guard {g} by {chunk}");
        }
    }
}

/// Build info, recipe, manifests and blobs full of store paths (raw and
/// zstd, small and streamed, a pack of this format itself among them): no
/// 32 consecutive bytes of the pack or of the state are base-32
/// characters, and everything reads back exactly.
#[test]
fn no_store_hash_survives_in_a_pack_or_a_state() {
    let sp = |n: u64, name: &str| {
        StorePath::parse(b"/nix/store", store_path_text(n, name).as_bytes()).unwrap()
    };
    let mut deps: Vec<StorePath> = (100..140).map(|n| sp(n, "dep")).collect();
    deps.sort();
    let path_var: Vec<String> = (200..230)
        .map(|n| format!("{}/bin", store_path_text(n, "tool")))
        .collect();
    let dump = format!(
        "s\0PATH\0{}\0s\0CC\0{}/bin/cc\0a\0buildInputs\x002\0{}\0{}\0A\0env\x001\0{}\0{}\0",
        path_var.join(":"),
        store_path_text(300, "gcc-wrapper"),
        store_path_text(301, "zlib"),
        store_path_text(302, "openssl"),
        store_path_text(303, "key"),
        store_path_text(304, "value"),
    );
    let info = BuildInfo {
        root: b"/build/source".to_vec(),
        store_dir: b"/nix/store".to_vec(),
        outputs: vec![
            ("dev".into(), sp(1, "pkg-dev")),
            ("out".into(), sp(2, "pkg")),
        ],
        dependencies: deps,
        recipe: crate::recipe::Recipe::parse_shell_dump(dump.as_bytes()).unwrap(),
    };

    let paths = |from: u64, n: u64| -> Vec<u8> {
        (from..from + n)
            .flat_map(|i| format!("{}/lib/libx.so\0", store_path_text(i, "lib")).into_bytes())
            .collect()
    };
    let noise = |seed: u64, n: usize| -> Vec<u8> {
        (0..n as u64)
            .map(|i| (xxh3_128(&(seed ^ (i << 8)).to_le_bytes()) >> 64) as u8)
            .collect()
    };
    // A store hash with every byte's high bit set: what an XOR-with-0x80
    // transform would turn back into the hash.
    let high: Vec<u8> = store_path_text(400, "x")
        .bytes()
        .map(|b| b | 0x80)
        .collect();
    let mut contents: Vec<(&[u8], Vec<u8>)> = vec![
        // Compressible: zstd at level 3.
        (b"small.o", paths(1000, 20)),
        // Incompressible but for one path: raw even at level 3.
        (
            b"random.bin",
            [noise(1, 3000), paths(2000, 1), noise(2, 3000)].concat(),
        ),
        (
            b"high.bin",
            [noise(3, 3000), high.clone(), noise(4, 3000)].concat(),
        ),
        // Large: streamed (more than a quarter of the 64 KiB budget).
        (b"large.so", paths(3000, 3000)),
        (
            b"large-random.bin",
            [noise(5, 40_000), paths(4000, 1), noise(6, 40_000)].concat(),
        ),
        // Nothing but base-32 characters.
        (
            b"hashes.txt",
            store_path_text(500, "h").as_bytes()[11..43].repeat(300),
        ),
    ];
    // A pack of this very format as a build product (as in a build that
    // runs nix-checkpoint's own tests): stored as is, guards and all.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir_all(root.join("build")).unwrap();
    let inner = super::testing::RawPack::new(b"/build/source")
        .with_file(
            store_path_text(600, "in-pack").as_bytes()[1..].as_ref(),
            &paths(5000, 50),
        )
        .to_bytes();
    contents.push((b"inner.nckp", inner));

    let mut after = vec![dir(b"build", 1)];
    let mut blobs = Vec::new();
    for (i, (name, content)) in contents.iter().enumerate() {
        let rel_name = [&b"build/"[..], name].concat();
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(&rel_name)), content).unwrap();
        after.push(file(&rel_name, content, 0o644, 10 + i as i64));
        blobs.push(BlobFile {
            hash: xxh3_128(content),
            path: root.join(std::ffi::OsStr::from_bytes(&rel_name)),
            size: content.len() as u64,
        });
    }
    // Store paths in names and symlink targets too.
    let h = store_path_text(700, "name");
    after.push(dir(format!("build/{}", &h[11..]).as_bytes(), 2));
    after.push(link(
        b"build/link",
        store_path_text(701, "target").as_bytes(),
        3,
    ));
    after.sort_by(|a, b| a.path.cmp(&b.path));
    let after = Manifest::new(after).unwrap();
    let before = Manifest::new(vec![link(b"src", h.as_bytes(), 4)]).unwrap();

    for (level, budget) in [(3, 64 << 10), (0, 64 << 10), (19, 64 << 20)] {
        let out = tmp.path().join(format!("out-{level}-{budget}"));
        write_checkpoint(
            &out,
            &info,
            &before,
            &after,
            blobs.clone(),
            &opts(level, budget),
        )
        .unwrap();
        let bytes = std::fs::read(out.join(PACK_FILE_NAME)).unwrap();
        let run = longest_base32_run(&bytes);
        assert!(run < 32, "level {level}: {run} base-32 characters in a row");
        if level == 0 {
            // The test means something: without its guards, the pack is
            // full of store paths.
            let logical = super::testing::remove_guards(&bytes).unwrap();
            assert!(longest_base32_run(&logical) >= 32);
            let needle = store_path_text(303, "key");
            assert!(logical
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()));
        }

        let pack = PackReader::open(&out).unwrap();
        let cp = pack.checkpoint();
        assert_eq!(cp.info, info);
        assert_eq!(cp.after, after);
        assert_eq!(cp.before, without_mtimes(&before));
        let kinds: Vec<Compression> = pack.blobs().iter().map(|r| r.compression).collect();
        if level == 0 {
            assert!(kinds.iter().all(|&c| c == Compression::Raw));
        } else {
            assert!(kinds.contains(&Compression::Raw) && kinds.contains(&Compression::Zstd));
        }
        pack.verify().unwrap();
        for (_, content) in &contents {
            let hash = xxh3_128(content);
            assert_eq!(&pack.read_blob(hash).unwrap(), content);
            let mut streamed = Vec::new();
            crate::apply::BlobSource::stream_blob(
                &pack,
                hash,
                &crate::rewrite::Rewriter::identity(),
                &mut streamed,
            )
            .unwrap();
            assert_eq!(&streamed, content);
        }
    }

    // The state file shares the container, guards included.
    let state_path = tmp.path().join("state");
    let state = Snapshot {
        info: info.clone(),
        before: after.clone(),
    };
    write_snapshot(&state_path, &state).unwrap();
    let bytes = std::fs::read(&state_path).unwrap();
    assert!(longest_base32_run(&bytes) < 32);
    assert_eq!(read_snapshot(&state_path).unwrap(), state);
}

/// The `pack_reader` fuzz seeds are sound packs of the current format (a
/// stale seed only exercises the version check). They are written by the
/// writer at level 0 (`raw.nckp`) and 3 (`zstd.nckp`); regenerate them
/// after a format change with
/// `NCKP_WRITE_FUZZ_SEEDS=1 cargo test --lib fuzz_seeds_are_current`.
#[test]
fn fuzz_seeds_are_current() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/pack_reader");
    let fx = fixture(20_000);
    for (name, level) in [("raw.nckp", 0), ("zstd.nckp", 3)] {
        if std::env::var_os("NCKP_WRITE_FUZZ_SEEDS").is_some() {
            let out = fx.root.parent().unwrap().join(name);
            write(&fx, &out, &opts(level, 64 << 20));
            std::fs::copy(out.join(PACK_FILE_NAME), seeds.join(name)).unwrap();
        }
        let pack = open_and_verify(&seeds.join(name)).unwrap_or_else(|e| {
            panic!(
                "fuzz/seeds/pack_reader/{name}: {e}; regenerate: \
                 NCKP_WRITE_FUZZ_SEEDS=1 cargo test --lib fuzz_seeds_are_current"
            )
        });
        let compressed = pack
            .blobs()
            .iter()
            .any(|r| r.compression == Compression::Zstd);
        assert_eq!(compressed, level != 0, "{name}");
        // The fuzz target's checksum fixer leaves a sound pack as it is.
        let seed = std::fs::read(seeds.join(name)).unwrap();
        let mut fixed = seed.clone();
        assert!(super::testing::fix_checksums(&mut fixed));
        assert!(fixed == seed, "{name}: fix_checksums changed a sound pack");
    }
}
