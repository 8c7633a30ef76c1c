//! The error of a whole command: one variant per module's error, each
//! mapped to its documented exit code.

use crate::exit_code::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
    #[error(transparent)]
    Format(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error("cannot start {threads} worker threads: {message}")]
    Threads { threads: usize, message: String },
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::Usage,
            Error::Scan(_) => ExitCode::TreeUnreadable,
            Error::Format(e) => e.exit_code(),
            Error::Apply(e) => e.exit_code(),
            Error::Threads { .. } => ExitCode::Internal,
        }
    }
}
