//! Relocating real gcc -O2 objects: the object built with hash h1, relocated
//! h1 -> h2, must equal byte for byte the object built with h2. Without gcc
//! (and ar) on PATH the tests skip themselves, saying so, unless
//! NIX_CHECKPOINT_TESTS_REQUIRE_TOOLS=1 (then a missing gcc fails them).

use nix_checkpoint::build_info::BuildInfo;
use nix_checkpoint::rewrite::store_path::{StorePath, NIX_BASE32};
use nix_checkpoint::rewrite::Rewriter;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::path::Path;
use std::process::Command;

/// Uses of OUT as gcc stores them: strcpy/memcpy of long strings (16-byte
/// vector constants and 8-byte `movabs` immediates), struct initialisers,
/// at every alignment of the path, and gnulib's localcharset.c style.
fn source() -> String {
    let mut c = String::from(
        "#include <string.h>\n#include <stdlib.h>\nstruct s { char a[96]; char b[96]; };\n",
    );
    for p in 0..8 {
        let pre = "P".repeat(p);
        c += &format!(
            "void f{p}(char *b) {{ strcpy(b, \"{pre}\" OUT \"/share/locale/xx\"); }}\n\
             void g{p}(char *b) {{ memcpy(b, \"{pre}\" OUT \"/lib\", sizeof(\"{pre}\" OUT \"/lib\")); }}\n\
             void k{p}(struct s *q) {{ struct s v = {{ \"{pre}\" OUT \"/share/locale\", \"{pre}\" OUT \"/lib/charset.alias\" }}; *q = v; }}\n"
        );
    }
    c += r#"
#define LIBDIR OUT "/lib"
const char *charset_dir(void) {
    const char *dir = getenv("CHARSETALIASDIR");
    if (dir == NULL || dir[0] == '\0') dir = LIBDIR;
    return dir;
}
char *alias_file(void) {
    static char buf[256];
    strcpy(buf, LIBDIR "/charset.alias");
    return buf;
}
"#;
    c
}

fn compile(dir: &Path, hash: &str) -> Vec<u8> {
    let status = Command::new("gcc")
        .current_dir(dir)
        .args(["-O2", "-c", "-w", "-frandom-seed=nix-checkpoint"])
        .arg(format!("-DOUT=\"/nix/store/{hash}-hello-2.10\""))
        .args(["t.c", "-o", "t.o"])
        .status()
        .expect("gcc must be installed to run this test");
    assert!(status.success(), "gcc failed");
    std::fs::read(dir.join("t.o")).unwrap()
}

fn info(hash: &str) -> BuildInfo {
    let path = format!("/nix/store/{hash}-hello-2.10");
    BuildInfo {
        root: b"/build".to_vec(),
        store_dir: b"/nix/store".to_vec(),
        outputs: vec![(
            "out".into(),
            StorePath::parse(b"/nix/store", path.as_bytes()).unwrap(),
        )],
        dependencies: vec![],
        recipe: Default::default(),
    }
}

/// A store path hash: 32 characters of Nix's base32.
fn store_hash() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NIX_BASE32.to_vec()), 32)
        .prop_map(|chars| chars.into_iter().map(char::from).collect())
}

/// Runs `check` on `cases` pairs of store hashes; a failure shrinks to the
/// simplest pair, which the panic message names.
fn for_hash_pairs(cases: u32, check: impl Fn(&str, &str)) {
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let pairs = (store_hash(), store_hash()).prop_filter("two hashes", |(a, b)| a != b);
    if let Err(e) = runner.run(&pairs, |(h1, h2)| {
        check(&h1, &h2);
        Ok(())
    }) {
        panic!("{e}");
    }
}

#[test]
fn relocated_gcc_objects_equal_fresh_ones() {
    require_tools!("gcc");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.c"), source()).unwrap();
    for_hash_pairs(32, |h1, h2| {
        let pair = format!("{h1} -> {h2}");
        let a = compile(dir.path(), h1);
        let b = compile(dir.path(), h2);
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b, "the objects must embed the hash");
        let (i1, i2) = (info(h1), info(h2));

        let mut moved = a.clone();
        let ranges = Rewriter::relocating(&i1, &i2)
            .unwrap()
            .rewrite_in_place(&mut moved);
        let whole = a.windows(32).filter(|w| *w == h1.as_bytes()).count();
        assert!(
            ranges > whole,
            "pair {pair}: expected fragments besides {whole} whole hashes, got {ranges} ranges"
        );
        if moved != b {
            let at = moved.iter().zip(&b).position(|(x, y)| x != y).unwrap();
            let show = |v: &[u8]| {
                String::from_utf8_lossy(&v[at.saturating_sub(16)..(at + 16).min(v.len())])
                    .into_owned()
            };
            panic!(
                "pair {pair}: relocated object differs at {at}: {:?} vs {:?}",
                show(&moved),
                show(&b)
            );
        }
        let (mut ma, mut mb) = (a.clone(), b.clone());
        Rewriter::masking(&i1).rewrite_in_place(&mut ma);
        Rewriter::masking(&i2).rewrite_in_place(&mut mb);
        if let Some(at) = ma.iter().zip(&mb).position(|(x, y)| x != y) {
            let show = |v: &[u8]| {
                String::from_utf8_lossy(&v[at.saturating_sub(24)..(at + 24).min(v.len())])
                    .into_owned()
            };
            panic!(
                "pair {pair}: masked objects differ at {at}: {:?} vs {:?} (unmasked {:?} vs {:?})",
                show(&ma),
                show(&mb),
                show(&a),
                show(&b)
            );
        }
        assert_eq!(
            Rewriter::masking(&i1).hash(&a),
            Rewriter::masking(&i2).hash(&b),
            "pair {pair}: masked hashes"
        );
    });
}

/// `ar rcD` of a padding member of `pad` bytes, then `object`: the object's
/// member starts at an offset that is not 16-aligned in the archive.
fn archive(dir: &Path, pad: usize, object: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("pad"), vec![b'p'; pad]).unwrap();
    std::fs::write(dir.join("member.o"), object).unwrap();
    let _ = std::fs::remove_file(dir.join("lib.a"));
    let status = Command::new("ar")
        .current_dir(dir)
        .args(["rcD", "lib.a", "pad", "member.o"])
        .status()
        .expect("ar must be installed");
    assert!(status.success(), "ar failed");
    std::fs::read(dir.join("lib.a")).unwrap()
}

/// Regression: hello's `lib/libhello.a` holds `localcharset.o`, whose
/// 16-byte pieces are aligned within the object, not within the archive;
/// judging alignment from the archive's start left the piece
/// `<last hash char>-hello-2.10/lib` unrewritten.
#[test]
fn relocated_static_libraries_equal_fresh_ones() {
    require_tools!("gcc", "ar");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.c"), source()).unwrap();
    for_hash_pairs(6, |h1, h2| {
        let pair = format!("{h1} -> {h2}");
        let (a, b) = (compile(dir.path(), h1), compile(dir.path(), h2));
        let relocate = Rewriter::relocating(&info(h1), &info(h2)).unwrap();
        for pad in [2, 6, 10, 12] {
            let (lib_a, lib_b) = (archive(dir.path(), pad, &a), archive(dir.path(), pad, &b));
            let mut moved = lib_a.clone();
            relocate.rewrite_in_place(&mut moved);
            assert!(
                moved == lib_b,
                "pair {pair}, pad {pad}: relocated archive differs from a fresh one"
            );
            let mut streamed = Vec::new();
            relocate.copy_rewriting(&lib_a[..], &mut streamed).unwrap();
            assert!(
                streamed == lib_b,
                "pair {pair}, pad {pad}: streamed relocation differs"
            );
            assert_eq!(
                Rewriter::masking(&info(h1)).hash(&lib_a),
                Rewriter::masking(&info(h2)).hash(&lib_b),
                "pair {pair}, pad {pad}: masked hashes"
            );
        }
    });
}
