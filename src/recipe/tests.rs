use super::*;
use crate::rewrite::store_path::StorePath;

const H_OUT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const H_OUT2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const H_CK: &str = "cccccccccccccccccccccccccccccccc";
const H_GCC: &str = "dddddddddddddddddddddddddddddddd";
const H_PY: &str = "ffffffffffffffffffffffffffffffff";
const H_TOOL: &str = "gggggggggggggggggggggggggggggggg";
const H_TOOL2: &str = "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh";

fn sp(hash: &str, name: &str) -> String {
    format!("/nix/store/{hash}-{name}")
}

fn info(out_hash: &str, with_checkpoint: bool) -> BuildInfo {
    let mut outputs = vec![(
        "out".to_string(),
        StorePath::parse(b"/nix/store", sp(out_hash, "hello-2.10").as_bytes()).unwrap(),
    )];
    if with_checkpoint {
        outputs.insert(
            0,
            (
                "checkpoint".to_string(),
                StorePath::parse(b"/nix/store", sp(H_CK, "hello-2.10-checkpoint").as_bytes())
                    .unwrap(),
            ),
        );
    }
    BuildInfo {
        root: b"/build".to_vec(),
        store_dir: b"/nix/store".to_vec(),
        outputs,
        ..Default::default()
    }
}

fn scalars(vars: &[(&str, &str)]) -> Recipe {
    Recipe::from_env(vars.iter().copied())
}

/// A build's variables, as a prepared (checkpoint output) or a later build sees them.
fn base(out_hash: &str, prepared: bool) -> Vec<(String, String)> {
    let out = sp(out_hash, "hello-2.10");
    let mut v = vec![
        ("out".into(), out.clone()),
        ("prefix".into(), out.clone()),
        (
            "outputs".into(),
            if prepared { "out checkpoint" } else { "out" }.into(),
        ),
        (
            "nativeBuildInputs".into(),
            format!(
                "{} {}",
                sp(H_GCC, "gcc-12"),
                sp(H_TOOL, "nix-checkpoint-0.1.0")
            ),
        ),
        (
            "PATH".into(),
            format!(
                "{}/bin:{}/bin:/usr/bin",
                sp(H_GCC, "gcc-12"),
                sp(H_TOOL, "nix-checkpoint-0.1.0")
            ),
        ),
        (
            "NIX_CFLAGS_COMPILE".into(),
            format!(" -frandom-seed={}", &out_hash[..10]),
        ),
        ("NIX_BUILD_TOP".into(), "/build".into()),
        ("configureFlags".into(), "--disable-nls".into()),
        ("makeFlags".into(), "PREFIX=/build/out".into()),
        (
            "postPhases".into(),
            if prepared {
                " nixCheckpointSavePhase"
            } else {
                ""
            }
            .into(),
        ),
    ];
    if prepared {
        v.push(("checkpoint".into(), sp(H_CK, "hello-2.10-checkpoint")));
    } else {
        v.push((
            "nixCheckpointRestore".into(),
            sp(H_CK, "hello-2.10-checkpoint"),
        ));
    }
    v
}

fn recipe_of(vars: &[(String, String)], info: &BuildInfo) -> Recipe {
    Recipe::from_env(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))).masked(info)
}

fn set(vars: &mut Vec<(String, String)>, name: &str, value: &str) {
    vars.retain(|(k, _)| k != name);
    vars.push((name.into(), value.into()));
}

fn prepared_and_later(edit: impl FnOnce(&mut Vec<(String, String)>)) -> (Recipe, Recipe) {
    let old = recipe_of(&base(H_OUT, true), &info(H_OUT, true));
    let mut new_vars = base(H_OUT2, false);
    edit(&mut new_vars);
    (old, recipe_of(&new_vars, &info(H_OUT2, false)))
}

fn names(diff: &RecipeDiff, class: Class) -> Vec<String> {
    diff.of_class(class).map(|d| d.name.clone()).collect()
}

#[test]
fn a_prepared_build_and_a_later_one_of_the_same_recipe_compare_equal() {
    // Own outputs, the random seed, the checkpoint output, the hook's phase,
    // the restore variable and nix-checkpoint's own path all differ.
    let (old, new) = prepared_and_later(|_| {});
    assert_eq!(compare(&old, &new), RecipeDiff::default());
}

#[test]
fn another_version_of_nix_checkpoint_does_not_count() {
    let (old, new) = prepared_and_later(|v| {
        let tool2 = sp(H_TOOL2, "nix-checkpoint-0.2.0");
        set(
            v,
            "nativeBuildInputs",
            &format!("{} {tool2}", sp(H_GCC, "gcc-12")),
        );
        set(
            v,
            "PATH",
            &format!("{}/bin:{tool2}/bin:/usr/bin", sp(H_GCC, "gcc-12")),
        );
    });
    assert_eq!(compare(&old, &new), RecipeDiff::default());
}

#[test]
fn every_class_of_change_is_sorted_and_named() {
    let cases: &[(&str, &str, Class)] = &[
        ("makeFlags", "PREFIX=/build/out CFLAGS=-O1", Class::Build),
        (
            "NIX_CFLAGS_COMPILE",
            " -frandom-seed=bbbbbbbbbb -fno-omit-frame-pointer",
            Class::Build,
        ),
        (
            "configureFlags",
            "--disable-nls CFLAGS=-O1",
            Class::Configure,
        ),
        ("cmakeFlags", "-DFOO=ON", Class::Configure),
        ("mesonFlags", "-Dfoo=true", Class::Configure),
        (
            "buildInputs",
            "/nix/store/dddddddddddddddddddddddddddddddd-zlib",
            Class::Build,
        ),
        ("SOURCE_DATE_EPOCH", "12", Class::Build),
        ("postPatch", "sed -i s/a/b/ x.c", Class::Free),
        (
            "src",
            "/nix/store/dddddddddddddddddddddddddddddddd-hello.tar.gz",
            Class::Free,
        ),
        ("doCheck", "", Class::Free),
        ("postInstall", "rm -r $out/share", Class::Free),
        ("enableParallelBuilding", "1", Class::Free),
        ("NIX_BUILD_CORES", "16", Class::Free),
    ];
    for &(name, value, class) in cases {
        let (old, new) = prepared_and_later(|v| set(v, name, value));
        let diff = compare(&old, &new);
        for c in [Class::Build, Class::Configure] {
            let expected: Vec<String> = if c == class {
                vec![name.into()]
            } else {
                vec![]
            };
            assert_eq!(names(&diff, c), expected, "{name} -> {class:?}");
        }
        assert!(!diff.has(Class::Free));
    }
}

#[test]
fn install_variables_count_when_the_build_step_is_skipped() {
    let (old, new) = prepared_and_later(|v| set(v, "installFlags", "CFLAGS=-O1"));
    assert!(compare(&old, &new).differences.is_empty());
    let (old, new) = prepared_and_later(|v| {
        set(v, "installFlags", "CFLAGS=-O1");
        set(v, "dontBuild", "1");
    });
    let diff = compare(&old, &new);
    assert_eq!(
        names(&diff, Class::Build),
        vec!["dontBuild", "installFlags"]
    );
}

#[test]
fn the_user_may_ignore_a_variable() {
    let (old, new) = prepared_and_later(|v| {
        set(v, "makeFlags", "PREFIX=/build/out V=1");
        set(v, IGNORE_VARIABLE, "makeFlags");
    });
    assert_eq!(compare(&old, &new), RecipeDiff::default());
}

#[test]
fn check_inputs_dropped_by_do_check_false_do_not_count() {
    let py = sp(H_PY, "python3-3.11");
    let mut old_vars = base(H_OUT, true);
    set(
        &mut old_vars,
        "nativeBuildInputs",
        &format!(
            "{} {py} {}",
            sp(H_GCC, "gcc-12"),
            sp(H_TOOL, "nix-checkpoint-0.1.0")
        ),
    );
    set(
        &mut old_vars,
        "PATH",
        &format!(
            "{py}/bin:{}/bin:{}/bin:/usr/bin",
            sp(H_GCC, "gcc-12"),
            sp(H_TOOL, "nix-checkpoint-0.1.0")
        ),
    );
    set(&mut old_vars, "doCheck", "1");
    set(&mut old_vars, CHECK_INPUTS_VARIABLE, &py);
    let old = recipe_of(&old_vars, &info(H_OUT, true));
    // Without the variable the check input is a dependency like any other.
    let mut new_vars = base(H_OUT2, false);
    let new = recipe_of(&new_vars, &info(H_OUT2, false));
    let mut unaware = old_vars.clone();
    unaware.retain(|(k, _)| k != CHECK_INPUTS_VARIABLE);
    let diff = compare(&recipe_of(&unaware, &info(H_OUT, true)), &new);
    assert_eq!(
        names(&diff, Class::Build),
        vec!["PATH", "nativeBuildInputs"]
    );
    // With it, from either side, they are ignored.
    assert_eq!(compare(&old, &new), RecipeDiff::default());
    set(&mut new_vars, CHECK_INPUTS_VARIABLE, &py);
    let new = recipe_of(&new_vars, &info(H_OUT2, false));
    assert_eq!(compare(&old, &new), RecipeDiff::default());
}

#[test]
fn a_check_input_that_is_also_a_build_input_still_counts_elsewhere() {
    // The check input's path is dropped from values only; a variable that
    // only it sets still differs (and names itself).
    let py = sp(H_PY, "python3-3.11");
    let mut old_vars = base(H_OUT, true);
    set(&mut old_vars, CHECK_INPUTS_VARIABLE, &py);
    set(&mut old_vars, "PYTHONHASHSEED", "0");
    let old = recipe_of(&old_vars, &info(H_OUT, true));
    let new = recipe_of(&base(H_OUT2, false), &info(H_OUT2, false));
    assert_eq!(
        names(&compare(&old, &new), Class::Build),
        vec!["PYTHONHASHSEED"]
    );
}

#[test]
fn masking_replaces_outputs_root_and_seed() {
    let r = scalars(&[
        (
            "a",
            &format!("{}/lib -I/build/src", sp(H_OUT, "hello-2.10")),
        ),
        ("b", &format!("-frandom-seed={} -O2", &H_OUT[..10])),
        ("c", "/buildx stays"),
    ])
    .masked(&info(H_OUT, true));
    let get = |n: &str| match &r.vars[n] {
        Value::Scalar(v) => String::from_utf8(v.clone()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(get("a"), "@output:out@/lib -I@root@/src");
    assert_eq!(get("b"), "-frandom-seed=@seed@ -O2");
    // Root masking is textual: "/buildx" has the root as a prefix.
    assert_eq!(get("c"), "@root@x stays");
}

#[test]
fn shell_dump_round_trips_scalars_arrays_and_assoc_arrays() {
    let dump = b"s\0name\0hello\0a\0flags\x002\0-O2\0-g x\0A\0outputs\x002\0out\0/o\0checkpoint\0/c\0a\0empty\x000\0s\0nl\0a\nb\0";
    let r = Recipe::parse_shell_dump(dump).unwrap();
    assert_eq!(r.vars["name"], Value::Scalar(b"hello".to_vec()));
    assert_eq!(
        r.vars["flags"],
        Value::Array(vec![b"-O2".to_vec(), b"-g x".to_vec()])
    );
    assert_eq!(
        r.vars["outputs"],
        Value::Assoc(vec![
            (b"checkpoint".to_vec(), b"/c".to_vec()),
            (b"out".to_vec(), b"/o".to_vec())
        ])
    );
    assert_eq!(r.vars["empty"], Value::Array(vec![]));
    assert_eq!(r.vars["nl"], Value::Scalar(b"a\nb".to_vec()));
}

#[test]
fn structured_outputs_drop_the_checkpoint_entry() {
    let old = Recipe::parse_shell_dump(b"A\0outputs\x002\0out\0/o\0checkpoint\0/c\0").unwrap();
    let new = Recipe::parse_shell_dump(b"A\0outputs\x001\0out\0/o\0").unwrap();
    assert_eq!(compare(&old, &new), RecipeDiff::default());
}

#[test]
fn an_array_and_a_string_of_the_same_words_differ() {
    // Bash passes them differently to a command: not the same recipe.
    let old = Recipe::parse_shell_dump(b"a\0makeFlags\x001\0A=1 B=2\0").unwrap();
    let new = Recipe::parse_shell_dump(b"a\0makeFlags\x002\0A=1\0B=2\0").unwrap();
    assert_eq!(names(&compare(&old, &new), Class::Build), vec!["makeFlags"]);
}

#[test]
fn bad_dumps_are_refused_with_the_variable_named() {
    for (dump, needle) in [
        (&b"s\0name"[..], "name"),
        (b"a\0flags\0x\0", "length"),
        (b"a\0flags\x003\0a\0", "flags"),
        (b"q\0x\0y\0", "unknown kind"),
        (b"s\0bad name\0v\0", "bad variable name"),
    ] {
        let e = Recipe::parse_shell_dump(dump).unwrap_err();
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    }
}

#[test]
fn a_difference_shows_both_values_around_the_change() {
    let long = "x".repeat(200);
    let old = scalars(&[("makeFlags", &format!("{long} CFLAGS=-O2"))]);
    let new = scalars(&[("makeFlags", &format!("{long} CFLAGS=-O1"))]);
    let diff = compare(&old, &new);
    let text = diff.describe(Class::Build);
    assert!(text.starts_with("makeFlags: '…"), "{text}");
    assert!(
        text.contains("CFLAGS=-O2'") && text.contains("CFLAGS=-O1'"),
        "{text}"
    );
    assert!(text.len() < 250, "{text}");
    let unset = compare(&scalars(&[]), &scalars(&[("FOO", "1")]));
    assert_eq!(unset.describe(Class::Build), "FOO: unset -> '1'");
}

#[test]
fn classification_lists_are_disjoint() {
    for name in FREE_NAMES {
        assert!(
            !CONFIGURE_NAMES.contains(name) && !INSTALL_NAMES.contains(name),
            "{name}"
        );
    }
    for name in CONFIGURE_NAMES {
        assert!(!INSTALL_NAMES.contains(name), "{name}");
        assert_eq!(classify(name, false), Class::Configure, "{name}");
    }
}
