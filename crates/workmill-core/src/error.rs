//! The error types of workmill: each message says what failed, on which task or key, and what to do.

use std::error::Error as StdError;
use std::time::Duration;

use thiserror::Error;

use crate::id::TaskId;
use crate::job::JobStatus;
use crate::status::TaskStatus;

/// A task or worker id that breaks the rules (1 to 128 bytes, no whitespace or control characters).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "invalid {kind} id {id:?}: {reason}; ids are 1 to 128 bytes without whitespace or control characters"
)]
pub struct InvalidId {
    /// `"task"` or `"worker"`.
    pub kind: &'static str,
    /// The refused id, shortened to 128 characters.
    pub id: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

/// A retry policy that cannot be applied as written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid retry policy: {reason}")]
pub struct InvalidRetryPolicy {
    /// Which rule the policy broke.
    pub reason: &'static str,
}

impl InvalidRetryPolicy {
    pub(crate) fn new(reason: &'static str) -> InvalidRetryPolicy {
        InvalidRetryPolicy { reason }
    }
}

/// A move the task lifecycle does not allow, such as `completed -> running`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("a task cannot move from {from} to {to}")]
pub struct IllegalTransition {
    /// The status the task is in.
    pub from: TaskStatus,
    /// The status that was asked for.
    pub to: TaskStatus,
}

/// A status name that is not one of `pending`, `running`, `retrying`, `completed`, `dead`, `cancelled`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "unknown task status {0:?}; expected one of pending, running, retrying, completed, dead, cancelled"
)]
pub struct UnknownStatus(pub String);

/// A job status name that is not one of `mapping`, `reducing`, `completed`, `failed`, `cancelled`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "unknown job status {0:?}; expected one of mapping, reducing, completed, failed, cancelled"
)]
pub struct UnknownJobStatus(pub String);

/// Whether a codec failed turning a value into bytes or bytes into a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecOp {
    /// Value to bytes.
    Encode,
    /// Bytes to value.
    Decode,
}

/// A value that could not be encoded, or bytes that do not decode to the expected type.
///
/// Corrupted or truncated bytes always produce this error; decoding never panics.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{codec} could not {} {type_name}: {message}", match .op { CodecOp::Encode => "encode", CodecOp::Decode => "decode bytes as" })]
pub struct CodecError {
    /// The codec's name, e.g. `"postcard"`.
    pub codec: &'static str,
    /// Encode or decode.
    pub op: CodecOp,
    /// The Rust type that was being encoded or decoded.
    pub type_name: &'static str,
    /// The codec's own explanation.
    pub message: String,
}

/// Why a balancer could not choose a worker.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BalanceError {
    /// The pool has no workers at all.
    #[error("no workers to choose from; add at least one worker to the pool")]
    NoWorkers,
    /// Every worker is marked unhealthy or ejected.
    #[error("no healthy workers: all {total} workers are unhealthy or ejected")]
    NoHealthyWorkers {
        /// How many workers there are.
        total: usize,
    },
    /// Every healthy worker is at its capacity.
    #[error("all {healthy} healthy workers are at capacity; retry later or raise their capacity")]
    AllAtCapacity {
        /// How many healthy workers were full.
        healthy: usize,
    },
}

/// What went wrong in a [`Queue`](crate::Queue) operation.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A task with this id exists already; ids double as idempotency keys.
    #[error("task {id} already exists; a custom id can be submitted only once")]
    DuplicateTask {
        /// The id that is taken.
        id: TaskId,
    },
    /// No task with this id is known (never submitted, purged, or evicted by retention).
    #[error(
        "task {id} not found; it was never submitted, or was purged or evicted by the retention bound"
    )]
    NotFound {
        /// The id that was looked up.
        id: TaskId,
    },
    /// A bounded queue is full.
    #[error(
        "queue is full: {capacity} tasks are waiting; retry later, wait for room, or raise the capacity"
    )]
    QueueFull {
        /// The configured bound on waiting tasks.
        capacity: usize,
    },
    /// A payload larger than the configured limit was refused at submit.
    #[error("task {id}: payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The task that was refused.
        id: TaskId,
        /// Its payload size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The caller's lease is gone: it lapsed and the task went back to the queue, or the task was cancelled.
    #[error(
        "task {id}: lease {token} is no longer held (it lapsed, or the task was released or cancelled); the result was not recorded"
    )]
    LeaseLost {
        /// The task whose lease was lost.
        id: TaskId,
        /// The token of the lost lease.
        token: u64,
    },
    /// The task's status does not allow the requested operation.
    #[error("task {id}: {source}")]
    IllegalTransition {
        /// The task.
        id: TaskId,
        /// The refused move.
        source: IllegalTransition,
    },
    /// The retry policy given at submit is unusable.
    #[error("task {id}: {source}")]
    InvalidPolicy {
        /// The task that was refused.
        id: TaskId,
        /// What is wrong with the policy.
        source: InvalidRetryPolicy,
    },
    /// A task's stored record cannot be read; only this task is affected.
    #[error("task {id}: stored record is corrupt: {detail}")]
    Corrupt {
        /// The unreadable task.
        id: TaskId,
        /// What could not be read.
        detail: String,
    },
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// An id broke the id rules.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// A wait for a task's final status ran out of time.
    #[error("task {id} did not finish within {waited:?} (it is {status})")]
    Timeout {
        /// The task waited for.
        id: TaskId,
        /// How long the caller waited.
        waited: Duration,
        /// Its status when the wait ended.
        status: TaskStatus,
    },
    /// A backend URL could not be understood.
    #[error("invalid backend URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store itself failed: connection lost, disk full, server error. Usually transient.
    #[error("{backend} backend failed to {operation}: {source}")]
    Backend {
        /// The backend's name, e.g. `"sqlite"`.
        backend: &'static str,
        /// What it was doing, e.g. `"reserve tasks"`.
        operation: &'static str,
        /// The underlying error.
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// A job with this id exists already; job ids, like task ids, can be submitted only once.
    #[error("job {id} already exists; a custom job id can be submitted only once")]
    DuplicateJob {
        /// The job id that is taken.
        id: TaskId,
    },
    /// No job with this id is known (never submitted, or purged).
    #[error("job {id} not found; it was never submitted, or was purged")]
    JobNotFound {
        /// The job id that was looked up.
        id: TaskId,
    },
    /// A job that cannot be run as submitted, such as one without map tasks.
    #[error("job {id} was refused: {reason}")]
    InvalidJob {
        /// The job that was refused.
        id: TaskId,
        /// What is wrong with it.
        reason: String,
    },
    /// A job's map results were asked for before every map completed.
    #[error(
        "job {id} is {status} with {maps_done} of {maps_total} maps done; its map results are \
         available once every map has completed (when the job is reducing)"
    )]
    JobIncomplete {
        /// The job.
        id: TaskId,
        /// Its status when asked.
        status: JobStatus,
        /// Maps completed so far.
        maps_done: u32,
        /// Maps in the job.
        maps_total: u32,
    },
    /// The queue was shut down and takes no more work.
    #[error("the queue is shut down and accepts no more tasks")]
    ShutDown,
    /// The store cannot be used by this build or this process: a schema written by a newer
    /// workmill, a file that is not a database, a database this process may only read. Not
    /// transient: trying again cannot help; upgrading, or mending the store, can.
    #[error("{backend} store cannot be used: {reason}")]
    Incompatible {
        /// The backend's name, e.g. `"sqlite"`.
        backend: &'static str,
        /// What does not match, and what to do.
        reason: String,
    },
}

impl QueueError {
    /// Wraps a store error, naming the backend and the operation that failed.
    pub fn backend(
        backend: &'static str,
        operation: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> QueueError {
        QueueError::Backend {
            backend,
            operation,
            source: source.into(),
        }
    }

    /// True when trying again later may succeed (the store failed), false when the
    /// request itself is at fault and would fail again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            QueueError::Backend { .. } | QueueError::QueueFull { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_task_and_the_fix() {
        let id = TaskId::new("order-7").unwrap();
        let msg = QueueError::DuplicateTask { id: id.clone() }.to_string();
        assert!(
            msg.contains("order-7") && msg.contains("already exists"),
            "{msg}"
        );
        let msg = QueueError::PayloadTooLarge {
            id: id.clone(),
            size: 2_000,
            limit: 1_000,
        }
        .to_string();
        assert!(
            msg.contains("order-7") && msg.contains("2000") && msg.contains("1000"),
            "{msg}"
        );
        let msg = QueueError::IllegalTransition {
            id,
            source: IllegalTransition {
                from: TaskStatus::Completed,
                to: TaskStatus::Running,
            },
        }
        .to_string();
        assert_eq!(
            msg,
            "task order-7: a task cannot move from completed to running"
        );
    }

    #[test]
    fn backend_errors_are_transient_and_say_where() {
        let err = QueueError::backend("sqlite", "reserve tasks", "database is locked");
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "sqlite backend failed to reserve tasks: database is locked"
        );
        assert!(!QueueError::ShutDown.is_transient());
    }

    #[test]
    fn job_messages_name_the_job_and_the_progress() {
        let id = TaskId::new("wordcount").unwrap();
        let msg = QueueError::JobIncomplete {
            id: id.clone(),
            status: JobStatus::Mapping,
            maps_done: 3,
            maps_total: 8,
        }
        .to_string();
        assert_eq!(
            msg,
            "job wordcount is mapping with 3 of 8 maps done; its map results are available once \
             every map has completed (when the job is reducing)"
        );
        let msg = QueueError::JobNotFound { id: id.clone() }.to_string();
        assert!(msg.starts_with("job wordcount not found"), "{msg}");
        let msg = QueueError::DuplicateJob { id: id.clone() }.to_string();
        assert!(msg.contains("job wordcount already exists"), "{msg}");
        let msg = QueueError::InvalidJob {
            id,
            reason: "it has no map tasks".to_owned(),
        }
        .to_string();
        assert_eq!(msg, "job wordcount was refused: it has no map tasks");
    }
}
