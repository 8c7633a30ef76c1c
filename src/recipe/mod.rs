//! The build's recipe: every variable of the build, and the pure comparison
//! that decides whether a checkpoint made under one recipe may be restored
//! into a build under another.
//!
//! A checkpoint's products are only valid for a build that would make the
//! same products from the same sources. The sources are compared file by
//! file (`plan`); everything else that reaches the build step reaches it
//! through a variable: `makeFlags`, `NIX_CFLAGS_COMPILE` (read by the cc
//! wrapper, seen by no build tool), `configureFlags`, the inputs and the
//! `PATH` they make. So the whole shell state at the snapshot is recorded
//! (the setup hook dumps every variable, which under `__structuredAttrs`
//! includes what `.attrs.sh` defined), masked so that what differs between
//! any two builds of the same recipe (own output paths, the build root, the
//! `-frandom-seed` derived from `$out`) compares equal.
//!
//! [`compare`] sorts each difference into a [`Class`]:
//!
//! - [`Class::Free`]: cannot change what the build step produces. The list
//!   ([`FREE_NAMES`], [`FREE_PREFIXES`]) and why each entry is safe are in
//!   docs/design.md: the sandbox's own variables, bash's, the sources and
//!   patches (their effect is the tree, which the restore compares file by
//!   file), everything that only runs after the build step (check, install,
//!   fixup, dist, reference checks), parallelism, and nix-checkpoint's own.
//! - [`Class::Configure`]: consumed by the configure phase only. A change
//!   makes configure run; build tools that record their commands (Ninja,
//!   CMake, kbuild) then rebuild what the new configuration changed, make
//!   alone cannot, so there the restore falls back.
//! - [`Class::Build`]: anything else. A change makes the restore fall back.
//!
//! No I/O: the caller reads the dump or the environment and passes bytes.

use crate::build_info::BuildInfo;
use crate::rewrite::store_path::HASH_LEN;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One variable's value, as bash holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Scalar(Vec<u8>),
    /// An indexed array, in index order.
    Array(Vec<Vec<u8>>),
    /// An associative array, sorted by key.
    Assoc(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Every variable of a build, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipe {
    pub vars: BTreeMap<String, Value>,
}

/// The variable that lists names a user allows to differ
/// (`nixCheckpointIgnoreChanges = [ "FOO" ]`), read from the new build.
pub const IGNORE_VARIABLE: &str = "nixCheckpointIgnoreChanges";
/// The variable in which the Nix functions pass the check inputs' store paths.
pub const CHECK_INPUTS_VARIABLE: &str = "nixCheckpointCheckInputs";

/// How a difference in one variable matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Free,
    Configure,
    Build,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Free => "free",
            Class::Configure => "configure",
            Class::Build => "build",
        })
    }
}

/// Variables that cannot change what the build step produces.
pub const FREE_NAMES: &[&str] = &[
    // The sandbox and the process: differ between any two builds.
    "NIX_BUILD_TOP",
    "TMPDIR",
    "TEMPDIR",
    "TMP",
    "TEMP",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "HOME",
    "NIX_LOG_FD",
    "TERM",
    "NIX_ATTRS_JSON_FILE",
    "NIX_ATTRS_SH_FILE",
    "_",
    // Bash's own.
    "RANDOM",
    "SRANDOM",
    "SECONDS",
    "LINENO",
    "EPOCHREALTIME",
    "EPOCHSECONDS",
    "PIPESTATUS",
    "FUNCNAME",
    "GROUPS",
    "HISTCMD",
    "COLUMNS",
    "LINES",
    "DIRSTACK",
    "PPID",
    "UID",
    "EUID",
    "SHELLOPTS",
    "OPTIND",
    "OPTARG",
    "OPTERR",
    "HOSTNAME",
    "HOSTTYPE",
    "MACHTYPE",
    "OSTYPE",
    "PS1",
    "PS2",
    "PS4",
    "MAILCHECK",
    "HISTFILE",
    "HISTFILESIZE",
    "HISTSIZE",
    // nixpkgs' setup.sh: the build's and the phase's times, for its timings.
    "startTime",
    "endTime",
    // Sources: what they bring is the tree, compared file by file.
    "src",
    "srcs",
    "sourceRoot",
    "setSourceRoot",
    "unpackPhase",
    "preUnpack",
    "postUnpack",
    "unpackCmd",
    "dontUnpack",
    "dontMakeSourcesWritable",
    "curSrc",
    // setup.sh's unpack and patch loops leave their variable behind.
    "i",
    // Patches: likewise (the snapshot is taken after the patch phase, so
    // shell state they set is recorded as itself).
    "patches",
    "patchPhase",
    "prePatch",
    "postPatch",
    "patchFlags",
    "dontPatch",
    // nixpkgs' substitute: whether it already warned about --replace.
    "_substituteStream_has_warned_replace_deprecation",
    // autoreconfHook runs before the snapshot: its effect is the tree.
    "preAutoreconf",
    "postAutoreconf",
    "autoreconfFlags",
    "autoreconfPhase",
    // Only after the build step: the new build runs them itself.
    "doCheck",
    "checkPhase",
    "preCheck",
    "postCheck",
    "checkTarget",
    "checkFlags",
    "checkFlagsArray",
    "checkInputs",
    "nativeCheckInputs",
    "dontUseNinjaCheck",
    "dontUseMesonCheck",
    "doInstallCheck",
    "installCheckPhase",
    "preInstallCheck",
    "postInstallCheck",
    "installCheckTarget",
    "installCheckFlags",
    "installCheckFlagsArray",
    "installCheckInputs",
    "nativeInstallCheckInputs",
    "fixupPhase",
    "preFixup",
    "postFixup",
    "dontFixup",
    "dontStrip",
    "dontStripHost",
    "dontStripTarget",
    "stripDebugList",
    "stripAllList",
    "stripDebugFlags",
    "stripAllFlags",
    "dontPatchShebangs",
    "dontPatchELF",
    "dontGzipMan",
    "dontMoveSbin",
    "dontMoveLib64",
    "dontPruneLibtoolFiles",
    "separateDebugInfo",
    // multiple-outputs.sh's fixup: moving and patching installed files.
    "moveToDev",
    "doDist",
    "distPhase",
    "preDist",
    "postDist",
    "distTarget",
    "distFlags",
    "tarballs",
    "postPhases",
    "outputChecks",
    "allowedReferences",
    "allowedRequisites",
    "disallowedReferences",
    "disallowedRequisites",
    "preferLocalBuild",
    "allowSubstitutes",
    "requiredSystemFeatures",
    "meta",
    "passthru",
    // Parallelism changes when things run, not what they produce.
    "NIX_BUILD_CORES",
    "enableParallelBuilding",
    "enableParallelChecking",
    "enableParallelInstalling",
    // The checkpoint output itself.
    "checkpoint",
];

/// The install phase's variables: free unless the build step is skipped
/// (`dontBuild`), when `make install` is the build.
pub const INSTALL_NAMES: &[&str] = &[
    "installPhase",
    "preInstall",
    "postInstall",
    "installFlags",
    "installFlagsArray",
    "installTargets",
    "dontInstall",
];

/// Name prefixes of free variables: bash's, nix-checkpoint's.
pub const FREE_PREFIXES: &[&str] = &[
    "BASH",
    "COMP_",
    "nixCheckpoint",
    "_nixCheckpoint",
    "_nckp",
    "NIX_CHECKPOINT_",
];

/// Variables only the configure phase reads.
pub const CONFIGURE_NAMES: &[&str] = &[
    "configurePhase",
    "preConfigure",
    "postConfigure",
    "configureScript",
    "configureFlags",
    "configureFlagsArray",
    "dontConfigure",
    "prefixKey",
    "dontAddPrefix",
    "dontAddDisableDepTrack",
    "dontDisableStatic",
    "dontFixLibtool",
    "dontAddStaticConfigureFlags",
    "configurePlatforms",
    "setOutputFlags",
    "dontPatchShebangsInConfigure",
    "cmakeFlags",
    "cmakeFlagsArray",
    "cmakeDir",
    "cmakeBuildDir",
    "cmakeBuildType",
    "dontUseCmakeConfigure",
    "dontUseCmakeBuildDir",
    "dontFixCmake",
    "mesonFlags",
    "mesonFlagsArray",
    "mesonBuildType",
    "mesonBuildDir",
    "dontUseMesonConfigure",
];

pub fn classify(name: &str, dont_build: bool) -> Class {
    if FREE_NAMES.contains(&name) || FREE_PREFIXES.iter().any(|p| name.starts_with(p)) {
        Class::Free
    } else if INSTALL_NAMES.contains(&name) {
        if dont_build {
            Class::Build
        } else {
            Class::Free
        }
    } else if CONFIGURE_NAMES.contains(&name) {
        Class::Configure
    } else {
        Class::Build
    }
}

/// A variable name as the environment can carry it: printable ASCII without
/// `=`, at most 255 bytes (shell variables are a subset).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
}

impl Recipe {
    /// Parses the setup hook's dump of the shell's variables: NUL-separated
    /// fields, per variable `s NAME VALUE`, `a NAME N ITEM×N` or
    /// `A NAME N (KEY VALUE)×N`.
    pub fn parse_shell_dump(dump: &[u8]) -> Result<Recipe, String> {
        let mut fields = dump.split(|&b| b == 0);
        let mut vars = BTreeMap::new();
        let mut next = |what: &str, name: &str| {
            fields
                .next()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("the dump ends inside {what} of variable {name:?}"))
        };
        while let Ok(kind) = next("a kind", "-") {
            if kind.is_empty() {
                // The final NUL leaves one empty field.
                break;
            }
            let name = String::from_utf8(next("the name", "-")?)
                .map_err(|_| "a variable name is not UTF-8".to_string())?;
            if !is_valid_name(&name) {
                return Err(format!("bad variable name {name:?}"));
            }
            let mut count = || -> Result<usize, String> {
                let n = next("the length", &name)?;
                std::str::from_utf8(&n)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("bad length of variable {name:?}"))
            };
            let value = match kind.as_slice() {
                b"s" => Value::Scalar(next("the value", &name)?),
                b"a" => {
                    let n = count()?;
                    Value::Array(
                        (0..n)
                            .map(|_| next("an item", &name))
                            .collect::<Result<_, _>>()?,
                    )
                }
                b"A" => {
                    let n = count()?;
                    let mut pairs = (0..n)
                        .map(|_| Ok((next("a key", &name)?, next("a value", &name)?)))
                        .collect::<Result<Vec<_>, String>>()?;
                    pairs.sort();
                    Value::Assoc(pairs)
                }
                other => {
                    return Err(format!(
                        "unknown kind {:?} of variable {name:?}",
                        String::from_utf8_lossy(other)
                    ))
                }
            };
            vars.insert(name, value);
        }
        Ok(Recipe { vars })
    }

    /// The recipe of a build run without the setup hook: its environment.
    pub fn from_env<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Recipe {
        Recipe {
            vars: vars
                .into_iter()
                .filter(|(k, _)| is_valid_name(k))
                .map(|(k, v)| (k.to_string(), Value::Scalar(v.as_bytes().to_vec())))
                .collect(),
        }
    }

    /// Adds the attributes of a structured-attrs JSON file that the
    /// environment does not have (under `__structuredAttrs` only the outputs
    /// and `env.*` are exported).
    pub fn add_structured_attrs(&mut self, json: &serde_json::Value) {
        let Some(attrs) = json.as_object() else {
            return;
        };
        for (name, value) in attrs {
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.as_bytes().to_vec(),
                other => other.to_string().into_bytes(),
            };
            let value = match value {
                serde_json::Value::Array(items) => Value::Array(items.iter().map(text).collect()),
                serde_json::Value::Object(map) => Value::Assoc(
                    map.iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), text(v)))
                        .collect(),
                ),
                other => Value::Scalar(text(other)),
            };
            self.vars.entry(name.clone()).or_insert(value);
        }
    }

    /// The recipe with what differs between any two builds of the same
    /// derivation masked: each own output path becomes `@output:NAME@`, the
    /// build root `@root@`, and `-frandom-seed=` followed by the start of an
    /// own output hash (nixpkgs' reproducible-builds hook) `-frandom-seed=@seed@`.
    pub fn masked(&self, info: &BuildInfo) -> Recipe {
        // The replacements, in the order they apply, made once for all values.
        let mut replacements: Vec<(Vec<u8>, Vec<u8>)> = info
            .outputs
            .iter()
            .map(|(name, path)| {
                (
                    path.as_bytes().to_vec(),
                    format!("@output:{name}@").into_bytes(),
                )
            })
            .collect();
        if !info.root.is_empty() && info.root != b"/" {
            replacements.push((info.root.clone(), b"@root@".to_vec()));
        }
        for (_, path) in &info.outputs {
            let mut seed = b"-frandom-seed=".to_vec();
            seed.extend_from_slice(&path.hash()[..10]);
            replacements.push((seed, b"-frandom-seed=@seed@".to_vec()));
        }
        let mask = |bytes: &[u8]| -> Vec<u8> {
            let mut out = bytes.to_vec();
            for (from, to) in &replacements {
                out = replace_all(&out, from, to);
            }
            out
        };
        let vars = self
            .vars
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::Scalar(v) => Value::Scalar(mask(v)),
                    Value::Array(items) => Value::Array(items.iter().map(|i| mask(i)).collect()),
                    Value::Assoc(pairs) => {
                        Value::Assoc(pairs.iter().map(|(k, v)| (k.clone(), mask(v))).collect())
                    }
                };
                (name.clone(), value)
            })
            .collect();
        Recipe { vars }
    }

    /// One line per variable, `NAME (class) = value`, escaped: for `inspect`.
    pub fn lines(&self) -> Vec<String> {
        self.vars
            .iter()
            .map(|(name, value)| {
                let text = shown(&Some(value.clone()), &None);
                format!("{name} ({}) = {text}", classify(name, false))
            })
            .collect()
    }

    fn words(&self, name: &str) -> Vec<Vec<u8>> {
        match self.vars.get(name) {
            Some(Value::Scalar(v)) => split_words(v)
                .into_iter()
                .map(|(_, w)| w.to_vec())
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .flat_map(|i| split_words(i).into_iter().map(|(_, w)| w.to_vec()))
                .collect(),
            Some(Value::Assoc(pairs)) => pairs.iter().map(|(_, v)| v.clone()).collect(),
            None => Vec::new(),
        }
    }

    /// Set to something non-empty (bash's `[ -n "$NAME" ]`).
    pub fn is_set(&self, name: &str) -> bool {
        match self.vars.get(name) {
            Some(Value::Scalar(v)) => !v.is_empty(),
            Some(Value::Array(items)) => !items.is_empty(),
            Some(Value::Assoc(pairs)) => !pairs.is_empty(),
            None => false,
        }
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// White space and `:`: the separators of flag lists and search paths.
fn is_sep(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b':'
}

/// Splits at runs of separators ([`is_sep`]): `(separator before, word)`
/// pairs.
fn split_words(value: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < value.len() {
        let sep_start = i;
        while i < value.len() && is_sep(value[i]) {
            i += 1;
        }
        let word_start = i;
        while i < value.len() && !is_sep(value[i]) {
            i += 1;
        }
        if word_start < i || sep_start < word_start {
            out.push((&value[sep_start..word_start], &value[word_start..i]));
        }
    }
    out
}

/// What may be dropped from a value before comparing: words that name a
/// check input, nix-checkpoint's own package, or nix-checkpoint's own phases
/// and hooks, which differ between a prepared build (it saves) and a
/// checkpointed one (it restores).
struct Noise {
    store_prefixes: Vec<Vec<u8>>,
}

impl Noise {
    fn new(old: &Recipe, new: &Recipe) -> Noise {
        let mut store_prefixes: BTreeSet<Vec<u8>> = BTreeSet::new();
        for recipe in [old, new] {
            for word in recipe.words(CHECK_INPUTS_VARIABLE) {
                if word.len() > HASH_LEN {
                    store_prefixes.insert(word);
                }
            }
        }
        Noise {
            store_prefixes: store_prefixes.into_iter().collect(),
        }
    }

    fn drops(&self, name: &str, word: &[u8]) -> bool {
        if word.starts_with(b"nixCheckpoint") || word.starts_with(b"_nixCheckpoint") {
            return true;
        }
        if name == "outputs" && word == b"checkpoint" {
            return true;
        }
        if self.store_prefixes.iter().any(|p| word.starts_with(p)) {
            return true;
        }
        is_own_package(word)
    }

    fn normalize_bytes(&self, name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len());
        for (sep, word) in split_words(value) {
            if word.is_empty() || !self.drops(name, word) {
                out.extend_from_slice(sep);
                out.extend_from_slice(word);
            }
        }
        // Separators left at either end by a dropped word.
        let end = out.iter().rposition(|&b| !is_sep(b)).map_or(0, |i| i + 1);
        out.truncate(end);
        let start = out.iter().position(|&b| !is_sep(b)).unwrap_or(out.len());
        out.drain(..start);
        out
    }

    fn normalize(&self, name: &str, value: Option<&Value>) -> Value {
        match value {
            None => Value::Scalar(Vec::new()),
            Some(Value::Scalar(v)) => Value::Scalar(self.normalize_bytes(name, v)),
            Some(Value::Array(items)) => {
                let items: Vec<Vec<u8>> = items
                    .iter()
                    .map(|i| self.normalize_bytes(name, i))
                    .filter(|i| !i.is_empty())
                    .collect();
                if items.is_empty() {
                    Value::Scalar(Vec::new())
                } else {
                    Value::Array(items)
                }
            }
            Some(Value::Assoc(pairs)) => {
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs
                    .iter()
                    .filter(|(k, _)| !self.drops(name, k))
                    .map(|(k, v)| (k.clone(), self.normalize_bytes(name, v)))
                    .collect();
                if pairs.is_empty() {
                    Value::Scalar(Vec::new())
                } else {
                    Value::Assoc(pairs)
                }
            }
        }
    }
}

/// A store path (or a path inside one) of nix-checkpoint's own package:
/// another version of the tool does not change the build.
fn is_own_package(word: &[u8]) -> bool {
    const NAME: &[u8] = b"nix-checkpoint";
    word.starts_with(b"/")
        && word.windows(HASH_LEN + 2 + NAME.len()).any(|w| {
            w[0] == b'/'
                && w[1..=HASH_LEN]
                    .iter()
                    .all(|&b| crate::rewrite::store_path::is_base32(b))
                && w[HASH_LEN + 1] == b'-'
                && w.ends_with(NAME)
        })
}

/// One variable that differs, normalized values for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub name: String,
    pub class: Class,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// How two recipes differ, by class; free differences are not kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipeDiff {
    pub differences: Vec<Difference>,
}

impl RecipeDiff {
    pub fn of_class(&self, class: Class) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(move |d| d.class == class)
    }

    pub fn has(&self, class: Class) -> bool {
        self.of_class(class).next().is_some()
    }

    /// `NAME: 'old' -> 'new'; …` for the differences of one class: the
    /// first few, then how many more (`inspect --list` shows them all).
    pub fn describe(&self, class: Class) -> String {
        const SHOWN: usize = 4;
        let all: Vec<&Difference> = self.of_class(class).collect();
        let mut text = all
            .iter()
            .take(SHOWN)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        if all.len() > SHOWN {
            let rest: Vec<&str> = all[SHOWN..].iter().map(|d| d.name.as_str()).collect();
            text.push_str(&format!("; and {} more: {}", rest.len(), rest.join(", ")));
        }
        text
    }
}

/// Compares the recipe of the checkpoint's build with the new build's.
/// Pure: the classes come from the names, the opt-out list and the check
/// inputs from the recipes themselves.
pub fn compare(old: &Recipe, new: &Recipe) -> RecipeDiff {
    let noise = Noise::new(old, new);
    let ignored: BTreeSet<Vec<u8>> = new.words(IGNORE_VARIABLE).into_iter().collect();
    let dont_build = new.is_set("dontBuild") || old.is_set("dontBuild");
    let names: BTreeSet<&String> = old.vars.keys().chain(new.vars.keys()).collect();
    let mut differences = Vec::new();
    for name in names {
        let class = classify(name, dont_build);
        let (old_value, new_value) = (old.vars.get(name), new.vars.get(name));
        // Normalising is a function of the name and the value: equal values
        // (most of them, PATH among them) normalise alike.
        if class == Class::Free || ignored.contains(name.as_bytes()) || old_value == new_value {
            continue;
        }
        let (o, n) = (
            noise.normalize(name, old_value),
            noise.normalize(name, new_value),
        );
        if o != n {
            let keep = |v: Value| (v != Value::Scalar(Vec::new())).then_some(v);
            differences.push(Difference {
                name: name.clone(),
                class,
                old: keep(o),
                new: keep(n),
            });
        }
    }
    RecipeDiff { differences }
}

/// A value for a one-line message: quoted, escaped, and cut around the
/// first place where it differs from `other`.
fn shown(value: &Option<Value>, other: &Option<Value>) -> String {
    fn flat(v: &Option<Value>) -> Option<Vec<u8>> {
        Some(match v.as_ref()? {
            Value::Scalar(s) => s.clone(),
            Value::Array(items) => {
                let mut out = b"(".to_vec();
                out.extend(items.join(&b' '));
                out.push(b')');
                out
            }
            Value::Assoc(pairs) => {
                let mut out = b"(".to_vec();
                let parts: Vec<Vec<u8>> = pairs
                    .iter()
                    .map(|(k, v)| [b"[", &k[..], b"]=", &v[..]].concat())
                    .collect();
                out.extend(parts.join(&b' '));
                out.push(b')');
                out
            }
        })
    }
    let Some(mine) = flat(value) else {
        return "unset".into();
    };
    let theirs = flat(other).unwrap_or_default();
    let common = mine
        .iter()
        .zip(theirs.iter())
        .take_while(|(a, b)| a == b)
        .count();
    const CONTEXT: usize = 24;
    const WIDTH: usize = 72;
    let start = common.saturating_sub(CONTEXT);
    let end = (start + WIDTH).min(mine.len());
    let mut text = String::new();
    if start > 0 {
        text.push('…');
    }
    text.push_str(
        &String::from_utf8_lossy(&mine[start..end])
            .escape_debug()
            .to_string(),
    );
    if end < mine.len() {
        text.push('…');
    }
    format!("'{text}'")
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} -> {}",
            self.name,
            shown(&self.old, &self.new),
            shown(&self.new, &self.old)
        )
    }
}

#[cfg(test)]
mod tests;
