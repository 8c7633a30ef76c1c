//! Turns raw flags into a validated plan. The only module that reads the
//! environment (`NIX_BUILD_TOP`, the output variables, the dependency
//! variables) or asks where the running binary lives.

use crate::build_info::BuildInfo;
use crate::cli::{Cli, CliCommand, RecipeArg, RootArg};
use crate::recipe::Recipe;
use crate::rewrite::store_path::StorePath;
use crate::scan::Exclusions;
use crate::tree::RelPath;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Config {
    pub command: Command,
    pub json: bool,
    pub quiet: bool,
    pub jobs: Option<usize>,
}

#[derive(Debug)]
pub enum Command {
    Snapshot {
        tree: TreeConfig,
        state: PathBuf,
    },
    TrackConfigure {
        tree: TreeConfig,
        state: PathBuf,
        finish: bool,
    },
    Save {
        tree: TreeConfig,
        state: PathBuf,
        output: PathBuf,
        level: i32,
    },
    Restore {
        tree: TreeConfig,
        checkpoint: PathBuf,
        dry_run: bool,
        force: bool,
        fallback_on_error: bool,
        before_configure: bool,
    },
    Inspect {
        checkpoint: PathBuf,
        list: bool,
    },
    Verify {
        checkpoint: PathBuf,
    },
}

/// The build tree a command works on, and the build it belongs to.
#[derive(Debug)]
pub struct TreeConfig {
    /// Absolute (not canonicalised: the recorded root must be the path the
    /// build sees).
    pub root: PathBuf,
    pub exclusions: Exclusions,
    /// The current build's identity, from the environment.
    pub info: BuildInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no build directory: pass --root DIR (or run inside a Nix build, where $NIX_BUILD_TOP is set)")]
    NoRoot,
    #[error("cannot resolve {path}: {source}")]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the build directory {0} is not a directory")]
    RootNotDirectory(PathBuf),
    #[error("cannot read the shell variables {path}: {detail} (the setup hook writes this file; rerun the build)")]
    ShellVars { path: PathBuf, detail: String },
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let env_ref = || env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let build_top = std::env::var_os("NIX_BUILD_TOP").map(PathBuf::from);

        let tree = |root: RootArg,
                    state: Option<&Path>,
                    output: Option<&Path>,
                    checkpoint: Option<&Path>,
                    recipe: Option<RecipeArg>|
         -> Result<TreeConfig, ConfigError> {
            let root = root
                .root
                .or_else(|| build_top.clone())
                .ok_or(ConfigError::NoRoot)?;
            let root = absolute(&root)?;
            if !root.is_dir() {
                return Err(ConfigError::RootNotDirectory(root));
            }
            let mut exclusions = Exclusions::nix_builder_files();
            for inside in [state, output].into_iter().flatten() {
                if let Some(rel) = relative_inside(&root, &absolute(inside)?) {
                    exclusions.paths.push(rel);
                }
            }
            let mut excluded = Vec::new();
            excluded.extend(own_store_path());
            if let Some(checkpoint) = checkpoint {
                excluded.extend(store_path_of(checkpoint));
            }
            let recipe = read_recipe(recipe.and_then(|r| r.shell_vars).as_deref(), env_ref())?;
            let info = BuildInfo::from_env(
                root.as_os_str().as_bytes().to_vec(),
                env_ref(),
                &excluded,
                recipe,
            );
            Ok(TreeConfig {
                root,
                exclusions,
                info,
            })
        };

        let command = match cli.command {
            CliCommand::Snapshot {
                root,
                state,
                recipe,
            } => Command::Snapshot {
                tree: tree(root, Some(&state), None, None, Some(recipe))?,
                state,
            },
            CliCommand::TrackConfigure {
                root,
                state,
                start: _,
                finish,
            } => Command::TrackConfigure {
                tree: tree(root, Some(&state), None, None, None)?,
                state,
                finish,
            },
            CliCommand::Save {
                root,
                state,
                output,
                level,
            } => Command::Save {
                tree: tree(root, Some(&state), Some(&output), None, None)?,
                state,
                output,
                level,
            },
            CliCommand::Restore {
                root,
                checkpoint,
                dry_run,
                force,
                fallback_on_error,
                before_configure,
                recipe,
            } => Command::Restore {
                tree: tree(root, None, None, Some(&checkpoint), Some(recipe))?,
                checkpoint,
                dry_run,
                force,
                fallback_on_error,
                before_configure,
            },
            CliCommand::Inspect { checkpoint, list } => Command::Inspect { checkpoint, list },
            CliCommand::Verify { checkpoint } => Command::Verify { checkpoint },
        };
        Ok(Config {
            command,
            json: cli.json,
            quiet: cli.quiet,
            jobs: cli.jobs,
        })
    }
}

/// The recipe from the setup hook's dump of the shell variables, or, without
/// one, under structured attrs, the environment plus the attrs file (`None`:
/// the environment alone, which `BuildInfo::from_env` already took).
fn read_recipe<'a>(
    shell_vars: Option<&Path>,
    env: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<Option<Recipe>, ConfigError> {
    if let Some(path) = shell_vars {
        let bytes = std::fs::read(path).map_err(|e| ConfigError::ShellVars {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        let recipe = Recipe::parse_shell_dump(&bytes).map_err(|detail| ConfigError::ShellVars {
            path: path.to_owned(),
            detail,
        })?;
        return Ok(Some(recipe));
    }
    let Some((_, attrs)) = env.clone().find(|(k, _)| *k == "NIX_ATTRS_JSON_FILE") else {
        return Ok(None);
    };
    let attrs = Path::new(attrs);
    let json: serde_json::Value = std::fs::read(attrs)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ConfigError::ShellVars {
            path: attrs.to_owned(),
            detail: "not readable as JSON".into(),
        })?;
    let mut recipe = Recipe::from_env(env);
    recipe.add_structured_attrs(&json);
    Ok(Some(recipe))
}

fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(path).map_err(|source| ConfigError::Resolve {
        path: path.to_path_buf(),
        source,
    })
}

/// `path` relative to `root` when it lies inside it.
fn relative_inside(root: &Path, path: &Path) -> Option<RelPath> {
    RelPath::new(path.strip_prefix(root).ok()?.as_os_str().as_bytes()).ok()
}

/// The store path this binary was installed from, if any: never a dependency.
fn own_store_path() -> Option<StorePath> {
    store_path_of(&std::env::current_exe().ok()?)
}

fn store_path_of(path: &Path) -> Option<StorePath> {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let store_dir = std::env::var_os("NIX_STORE")
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_else(|| crate::build_info::DEFAULT_STORE_DIR.to_vec());
    StorePath::parse(&store_dir, resolved.as_os_str().as_bytes())
        .or_else(|| StorePath::parse(&store_dir, path.as_os_str().as_bytes()))
}
