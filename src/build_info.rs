//! What a checkpoint must know about the build that made it: where it ran,
//! its own output paths, and the store paths it was built with.
//!
//! [`BuildInfo::from_env`] is pure: `config` hands it the environment as data.

use crate::recipe::Recipe;
use crate::rewrite::store_path::{find_store_paths, StorePath};
use std::collections::BTreeSet;

pub const DEFAULT_STORE_DIR: &[u8] = b"/nix/store";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInfo {
    /// Absolute path of the build root, as raw bytes.
    pub root: Vec<u8>,
    pub store_dir: Vec<u8>,
    /// `(output name, store path)`, sorted by output name.
    pub outputs: Vec<(String, StorePath)>,
    /// Store paths of inputs and toolchain, sorted and unique.
    pub dependencies: Vec<StorePath>,
    /// Every variable of the build, masked (see [`Recipe::masked`]).
    pub recipe: Recipe,
}

/// Variables whose store paths are dependencies, besides every variable named
/// `*Inputs` or `deps*`. Store paths seen only elsewhere (`src`, `patches`,
/// phase scripts) are sources: the tree comparison already sees what they do.
const DEPENDENCY_VARIABLES: &[&str] = &[
    "stdenv",
    "PATH",
    "NIX_CC",
    "NIX_BINTOOLS",
    "CC",
    "CXX",
    "LD",
    "AR",
];

fn is_dependency_variable(name: &str) -> bool {
    DEPENDENCY_VARIABLES.contains(&name)
        || name.ends_with("Inputs")
        || (name.starts_with("deps") && name.len() > 4)
        || (name.starts_with("NIX_") && (name.contains("FLAGS") || name.ends_with("_LINK")))
}

impl BuildInfo {
    /// Reads the build's identity from environment variables.
    ///
    /// `excluded` are store paths never counted as dependencies (the
    /// checkpoint being restored, `nix-checkpoint` itself); the build's own
    /// outputs are always excluded. The recipe is `recipe` (the setup hook's
    /// dump), or else the environment, masked either way.
    pub fn from_env<'a>(
        root: Vec<u8>,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
        excluded: &[StorePath],
        recipe: Option<Recipe>,
    ) -> BuildInfo {
        let vars: Vec<(&str, &str)> = vars.into_iter().collect();
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let store_dir = lookup("NIX_STORE")
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_else(|| DEFAULT_STORE_DIR.to_vec());

        let mut outputs: Vec<(String, StorePath)> = lookup("outputs")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|name| {
                let path = StorePath::parse(&store_dir, lookup(name)?.as_bytes())?;
                Some((name.to_string(), path))
            })
            .collect();
        outputs.sort_by(|a, b| a.0.cmp(&b.0));
        outputs.dedup_by(|a, b| a.0 == b.0);

        let is_excluded = |p: &StorePath| {
            excluded
                .iter()
                .chain(outputs.iter().map(|(_, o)| o))
                .any(|x| x.hash() == p.hash())
        };
        let dependencies: BTreeSet<StorePath> = vars
            .iter()
            .filter(|(name, _)| is_dependency_variable(name))
            .flat_map(|(_, value)| find_store_paths(&store_dir, value.as_bytes()))
            .filter(|p| !is_excluded(p))
            .collect();

        let mut info = BuildInfo {
            root,
            store_dir,
            outputs,
            dependencies: dependencies.into_iter().collect(),
            recipe: Recipe::default(),
        };
        let recipe = recipe.unwrap_or_else(|| Recipe::from_env(vars.iter().copied()));
        info.recipe = recipe.masked(&info);
        info
    }

    pub fn output(&self, name: &str) -> Option<&StorePath> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(hash_char: char, name: &str) -> String {
        format!("/nix/store/{}-{name}", hash_char.to_string().repeat(32))
    }

    #[test]
    fn reads_outputs_and_dependencies() {
        let (out, dev, gcc, zlib, src, me) = (
            path('a', "hello-2.10"),
            path('b', "hello-2.10-dev"),
            path('c', "gcc-12"),
            path('d', "zlib-1.3"),
            path('f', "hello.tar.gz"),
            path('g', "nix-checkpoint-0.1"),
        );
        let vars = vec![
            ("outputs", "out dev".to_string()),
            ("out", out.clone()),
            ("dev", dev.clone()),
            ("nativeBuildInputs", format!("{gcc} {me}")),
            ("buildInputs", zlib.to_string()),
            (
                "NIX_CFLAGS_COMPILE",
                format!("-isystem {zlib}/include -DOUT={out}"),
            ),
            ("PATH", format!("{gcc}/bin:{me}/bin:/usr/bin")),
            ("src", src.clone()),
            ("postPatch", format!("cp {src} x")),
        ];
        let me_path = StorePath::parse(b"/nix/store", me.as_bytes()).unwrap();
        let info = BuildInfo::from_env(
            b"/build".to_vec(),
            vars.iter().map(|(k, v)| (*k, v.as_str())),
            &[me_path],
            None,
        );
        assert_eq!(
            info.outputs
                .iter()
                .map(|(n, p)| (n.as_str(), p.to_string()))
                .collect::<Vec<_>>(),
            vec![("dev", dev), ("out", out)]
        );
        assert_eq!(
            info.dependencies
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            vec![gcc, zlib]
        );
    }
}
