//! The pool's errors: why a task was refused, failed or never ran, and why a pool could not be built.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use workmill_core::{BalanceError, InvalidRetryPolicy, TaskError};

use crate::health::InvalidHealthConfig;
use crate::metrics::InvalidMetricsWindows;

/// Why a task has no result.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No worker could take the task (none, none healthy, or all at capacity).
    #[error(transparent)]
    Balance(#[from] BalanceError),
    /// The pool is shut down.
    #[error("the pool is shut down and takes no more tasks")]
    ShutDown,
    /// Every attempt failed, or one failed permanently.
    #[error("task #{task} failed after {attempts} attempt(s), last on worker {worker:?}: {error}")]
    Failed {
        /// The task's number in this pool.
        task: u64,
        /// Attempts made.
        attempts: u32,
        /// The worker of the last attempt.
        worker: String,
        /// The last attempt's error.
        error: TaskError,
    },
    /// A worker dropped the task without running it, as a worker does when it shuts down.
    #[error("task #{task} was dropped by worker {worker:?} without running; submit it again")]
    NotRun {
        /// The task's number in this pool.
        task: u64,
        /// The worker that dropped it.
        worker: String,
    },
    /// A wait for the result ran out of time; the task goes on and may still finish.
    #[error("task #{task} did not finish within {waited:?}; wait again or drop the handle")]
    Timeout {
        /// The task's number in this pool.
        task: u64,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The pool was dropped while a retry of the task waited for a worker.
    #[error("task #{task} was abandoned: the pool was dropped while it waited for a retry")]
    Abandoned {
        /// The task's number in this pool.
        task: u64,
    },
}

/// A task the pool would not take, handed back with the reason, so nothing is lost.
pub struct Refused<T> {
    /// The task, untouched.
    pub task: T,
    /// Why the pool refused it: [`PoolError::Balance`] or [`PoolError::ShutDown`].
    pub error: PoolError,
}

impl<T> fmt::Debug for Refused<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refused")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Refused<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the pool refused the task: {}", self.error)
    }
}

impl<T> std::error::Error for Refused<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Why a pool could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A pool needs at least one worker.
    #[error("a pool needs at least one worker; add one with PoolBuilder::worker")]
    NoWorkers,
    /// The health configuration is inconsistent.
    #[error(transparent)]
    Health(#[from] InvalidHealthConfig),
    /// The measurement windows are unusable.
    #[error(transparent)]
    Windows(#[from] InvalidMetricsWindows),
    /// The retry policy is unusable.
    #[error(transparent)]
    Retry(#[from] InvalidRetryPolicy),
    /// The health monitor thread could not be started.
    #[error("could not start the health monitor thread: {0}")]
    Monitor(#[from] std::io::Error),
}
