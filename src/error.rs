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
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
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
            Error::Checkpoint(e) => e.exit_code(),
            Error::Apply(e) => e.exit_code(),
            Error::Threads { .. } => ExitCode::Internal,
        }
    }
}

/// Puts an [`std::io::Error`] in context, as harmonia's `io_context`: the
/// context (an operation and a path, say) is built only on error and turns
/// the `io::Error` into the module's own error, so call sites read
/// `file.sync_all().io_context(|| Writing(Op::Fsync, &temp))?`.
pub trait IoContext<T> {
    fn io_context<C: WithSource>(self, context: impl FnOnce() -> C) -> Result<T, C::Error>;
}

/// A context for [`IoContext::io_context`]: what was being done, to what.
pub trait WithSource {
    type Error;
    /// The error saying that this failed because of `source`.
    fn with_source(self, source: std::io::Error) -> Self::Error;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context<C: WithSource>(self, context: impl FnOnce() -> C) -> Result<T, C::Error> {
        self.map_err(|source| context().with_source(source))
    }
}
