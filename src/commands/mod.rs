//! One function per subcommand, each returning its typed report (see
//! [`report`]) in an [`Outcome`].

mod inspect;
pub mod report;
mod restore;
mod save;
mod snapshot;
mod track_configure;
mod verify;

pub use report::{Outcome, Report};

use crate::config::{Command, Config};
use crate::error::Error;
use std::time::Instant;

pub fn run(config: &Config) -> Result<Outcome, Error> {
    if let Some(threads) = config.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| Error::Threads {
                threads,
                message: e.to_string(),
            })?;
    }
    let started = Instant::now();
    match &config.command {
        Command::Snapshot { tree, state } => snapshot::run(tree, state, started),
        Command::TrackConfigure {
            tree,
            state,
            finish,
        } => track_configure::run(tree, state, *finish, started),
        Command::Save {
            tree,
            state,
            output,
            level,
        } => save::run(tree, state, output, *level, started),
        Command::Restore {
            tree,
            checkpoint,
            dry_run,
            force,
            fallback_on_error,
            before_configure,
        } => restore::run(
            tree,
            checkpoint,
            restore::Options {
                dry_run: *dry_run,
                force: *force,
                fallback_on_error: *fallback_on_error,
                before_configure: *before_configure,
            },
            started,
        ),
        Command::Inspect { checkpoint, list } => {
            inspect::run(checkpoint, *list, config.json, started)
        }
        Command::Verify { checkpoint } => verify::run(checkpoint, started),
    }
}

/// `1234567` -> `1.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn seconds(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_picks_the_unit() {
        assert_eq!(super::human_bytes(999), "999 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 << 30), "3.0 GiB");
    }
}
