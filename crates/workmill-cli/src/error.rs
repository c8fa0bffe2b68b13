//! `CliError`: what a command can fail with, and the exit code each failure gets.

use thiserror::Error;
use workmill::{QueueError, RegistryError, RuntimeError};

/// Exit code of a usage error: bad arguments, a bad backend URL, an unknown id or task name.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of every other failure (the store failed, a demo check failed, ...).
pub const EXIT_FAILURE: u8 = 1;

/// A command's failure, printed as one line on stderr.
#[derive(Debug, Error)]
pub enum CliError {
    /// The command line asked for something that cannot be done as written.
    #[error("{0}")]
    Usage(String),
    /// The backend refused or failed the operation.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A runtime operation failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The built-in tasks could not be registered.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Output could not be written or encoded.
    #[error("could not write the output: {0}")]
    Output(String),
    /// A demo step could not run, or some of its checks failed.
    #[error("{0}")]
    Demo(String),
}

impl CliError {
    /// The process exit code for this failure: [`EXIT_USAGE`] when the caller can fix the
    /// command line (a bad URL, an unknown or malformed id), [`EXIT_FAILURE`] otherwise.
    pub fn exit_code(&self) -> u8 {
        let usage = |error: &QueueError| {
            matches!(
                error,
                QueueError::InvalidUrl { .. }
                    | QueueError::NotFound { .. }
                    | QueueError::JobNotFound { .. }
                    | QueueError::InvalidId(_)
                    | QueueError::DuplicateTask { .. }
            )
        };
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Queue(error) | CliError::Runtime(RuntimeError::Queue(error))
                if usage(error) =>
            {
                EXIT_USAGE
            }
            _ => EXIT_FAILURE,
        }
    }
}

impl From<serde_json::Error> for CliError {
    fn from(error: serde_json::Error) -> CliError {
        CliError::Output(error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> CliError {
        CliError::Output(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use workmill::TaskId;

    use super::*;

    #[test]
    fn caller_mistakes_exit_2_and_failures_exit_1() {
        let Err(bad_url) = workmill::backend::open("nope://x") else {
            panic!("nope:// opened")
        };
        assert_eq!(CliError::from(bad_url).exit_code(), EXIT_USAGE);
        let missing = QueueError::NotFound {
            id: TaskId::new("t1").unwrap(),
        };
        assert_eq!(CliError::from(missing).exit_code(), EXIT_USAGE);
        let missing = RuntimeError::Queue(QueueError::NotFound {
            id: TaskId::new("t1").unwrap(),
        });
        assert_eq!(CliError::from(missing).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(
            CliError::Demo("a check failed".into()).exit_code(),
            EXIT_FAILURE
        );
        assert_eq!(
            CliError::from(QueueError::ShutDown).exit_code(),
            EXIT_FAILURE
        );
    }
}
