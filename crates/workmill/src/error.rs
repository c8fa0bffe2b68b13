//! `RuntimeError` and `RegistryError`: what can go wrong submitting, running and waiting for tasks, each naming the task.

use std::time::Duration;

use thiserror::Error;
use workmill_core::{CodecError, Failure, InvalidId, JobStatus, QueueError, TaskId, TaskStatus};

/// A handler could not be registered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// Another handler has this name already.
    #[error(
        "a handler named {name:?} is registered already; task names must be unique within a registry"
    )]
    DuplicateName {
        /// The name that is taken.
        name: String,
    },
    /// The name is empty.
    #[error("a task name must not be empty")]
    EmptyName,
}

/// What went wrong in a [`Runtime`](crate::Runtime) operation.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The backend refused or failed the operation; the inner error names the task.
    ///
    /// This is where [`QueueError::DuplicateTask`], [`QueueError::PayloadTooLarge`],
    /// [`QueueError::QueueFull`] and [`QueueError::NotFound`] arrive.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A handler could not be registered.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The task reached a final status other than `Completed`, so it has no result.
    #[error("task {id} ended {status} without a result{}", describe(last_error.as_ref()))]
    TaskFailed {
        /// The task.
        id: TaskId,
        /// `Dead` or `Cancelled`.
        status: TaskStatus,
        /// Why its last attempt failed, if it ran.
        last_error: Option<Failure>,
    },
    /// The task did not finish in time; it keeps running or waiting.
    #[error(
        "task {id} did not finish within {waited:?} (it is {status}); wait longer, or check that a worker with its handler is running"
    )]
    Timeout {
        /// The task waited for.
        id: TaskId,
        /// How long the caller waited.
        waited: Duration,
        /// Its status when the wait ended.
        status: TaskStatus,
    },
    /// A map or the reduce of the job ended dead (out of attempts, a permanent error, a
    /// lapsed last lease, a damaged record), so the job failed without a result.
    #[error(
        "job {id} failed: its task {task} ended dead ({failure}); fix the cause and submit the \
         job again (or, if the reduce failed, requeue it: the maps' results are kept)"
    )]
    JobFailed {
        /// The job.
        id: TaskId,
        /// The map or reduce that failed it.
        task: TaskId,
        /// Why that task's last attempt failed.
        failure: Failure,
    },
    /// A map or the reduce of the job was cancelled (or purged while it waited).
    #[error("job {id} was cancelled (one of its tasks was cancelled or purged); it has no result")]
    JobCancelled {
        /// The job.
        id: TaskId,
    },
    /// The job did not finish in time; it keeps running.
    #[error(
        "job {id} did not finish within {waited:?}: it is {status} with {maps_done} of \
         {maps_total} maps done; wait longer, or check that workers with its map and reduce \
         handlers are running"
    )]
    JobTimeout {
        /// The job.
        id: TaskId,
        /// How long the caller waited.
        waited: Duration,
        /// Its status when the wait ended.
        status: JobStatus,
        /// Maps completed by then.
        maps_done: u32,
        /// Maps in the job.
        maps_total: u32,
    },
    /// The job completed, but the record of its reduce, which holds the result, is gone.
    #[error(
        "job {id} completed, but the record of its reduce {reduce}, which holds the result, is \
         gone (the retention bound or a purge removed it); wait for results sooner, or keep \
         more finished records"
    )]
    JobResultGone {
        /// The job.
        id: TaskId,
        /// Its reduce task.
        reduce: TaskId,
    },
    /// Work was still unfinished when [`Runtime::wait_idle`](crate::Runtime::wait_idle) gave up.
    #[error("{unfinished} tasks were still pending, retrying or running after {waited:?}")]
    IdleTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// Tasks not yet final.
        unfinished: u64,
    },
    /// A task's input could not be encoded at submit.
    #[error("could not encode the input of a {name:?} task: {source}")]
    Encode {
        /// The task's name.
        name: String,
        /// The codec's explanation.
        source: CodecError,
    },
    /// A completed task's result does not decode as the type asked for.
    #[error("task {id}: its result does not decode as the requested type: {source}")]
    DecodeResult {
        /// The task.
        id: TaskId,
        /// The codec's explanation.
        source: CodecError,
    },
    /// A custom task id or a worker id is malformed.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// The runtime's settings do not make sense.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// A worker thread could not be started.
    #[error("could not start worker thread {name}: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A worker process could not install its `SIGTERM`/`SIGINT` handlers.
    #[error(
        "could not install the SIGTERM/SIGINT handlers: {source}; turn signal handling off with \
         RunOptions::handle_signals(false) and stop the worker with its StopHandle"
    )]
    Signals {
        /// The operating system's error.
        source: std::io::Error,
    },
    /// [`Shutdown::Drain`](crate::Shutdown::Drain) was asked for from inside one of the
    /// runtime's own tasks: the drain would wait for that task, which waits for the drain.
    #[error(
        "shutdown(Shutdown::Drain) was called from inside one of the runtime's own tasks, and \
         would wait for that task forever; nothing was stopped. Drain from outside the \
         runtime's tasks, or use Shutdown::Abandon from inside one"
    )]
    DrainFromOwnTask,
    /// The runtime was shut down: it accepts no more tasks (nor requeues), and a wait for a
    /// task or job that its stopped worker loops will not run ends with this.
    #[error(
        "the runtime is shut down: it accepts no more tasks, and a wait for a task that its \
         stopped worker loops will not run ends here"
    )]
    ShutDown,
}

fn describe(failure: Option<&Failure>) -> String {
    failure.map_or_else(String::new, |failure| format!(": {failure}"))
}

impl RuntimeError {
    /// True if the error is the backend's refusal of a taken custom id.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, RuntimeError::Queue(QueueError::DuplicateTask { .. }))
    }

    /// Maps a backend timeout to [`RuntimeError::Timeout`], leaving other errors as they are.
    pub(crate) fn from_wait(error: QueueError) -> RuntimeError {
        match error {
            QueueError::Timeout { id, waited, status } => {
                RuntimeError::Timeout { id, waited, status }
            }
            other => RuntimeError::Queue(other),
        }
    }
}
