//! `TaskRecord`: everything a backend knows about one task, and `Failure`, the stored form of why an attempt failed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{TaskId, WorkerId};
use crate::name::TaskName;
use crate::payload::Payload;
use crate::priority::Priority;
use crate::retry::RetryPolicy;
use crate::status::TaskStatus;
use crate::time::Timestamp;

/// The kind of a failed attempt, which decides whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The handler returned a retryable error.
    Error,
    /// The handler returned a permanent error: no retries.
    Permanent,
    /// The handler panicked; the worker survived and counts it as a failed attempt.
    Panic,
    /// No handler is registered under the task's name where the attempt ran. Retried under
    /// the task's policy, like an error: another worker may know the name, or this one a
    /// moment later (a runtime that registers its handlers after it started reserving), so
    /// it is dead only once its attempts run out.
    UnknownTask,
    /// The payload does not decode to the handler's input type: no retries.
    Decode,
    /// The worker holding the task stopped heartbeating (killed, hung, or partitioned).
    LeaseExpired,
    /// The backend could not read the task's stored record: no retries.
    Corrupt,
}

impl FailureKind {
    /// True when retrying cannot help, so the task is dead-lettered at once.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            FailureKind::Permanent | FailureKind::Decode | FailureKind::Corrupt
        )
    }

    /// The snake_case name used in stores and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Permanent => "permanent",
            FailureKind::Panic => "panic",
            FailureKind::UnknownTask => "unknown_task",
            FailureKind::Decode => "decode",
            FailureKind::LeaseExpired => "lease_expired",
            FailureKind::Corrupt => "corrupt",
        }
    }

    /// Parses the name written by [`as_str`](FailureKind::as_str).
    pub fn parse(name: &str) -> Option<FailureKind> {
        [
            FailureKind::Error,
            FailureKind::Permanent,
            FailureKind::Panic,
            FailureKind::UnknownTask,
            FailureKind::Decode,
            FailureKind::LeaseExpired,
            FailureKind::Corrupt,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// Why an attempt failed, as stored with the task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// The error's message, the panic message, or the decode error.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// Everything a backend records about one task.
///
/// The status moves only along [`TaskStatus::transition`]; timestamps are
/// set as it moves: `started_at` at each reserve, `finished_at` on reaching a
/// final status. `attempts` counts the attempts started, so after a task ends
/// `Completed` on its first try it is 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's id.
    pub id: TaskId,
    /// The registered name of the handler that runs it.
    pub name: TaskName,
    /// The encoded input.
    pub payload: Payload,
    /// Where it is in its life.
    pub status: TaskStatus,
    /// Its current priority (lower runs first), after any retry demotions.
    pub priority: Priority,
    /// Attempts started so far.
    pub attempts: u32,
    /// The retry policy it was submitted with.
    pub retry: RetryPolicy,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// The earliest time it may run (later than `created_at` for delayed tasks and retries).
    pub run_at: Timestamp,
    /// When its latest attempt started.
    pub started_at: Option<Timestamp>,
    /// When it reached a final status.
    pub finished_at: Option<Timestamp>,
    /// Why its latest failed attempt failed.
    pub last_error: Option<Failure>,
    /// The worker that ran (or runs) its latest attempt.
    pub worker: Option<WorkerId>,
    /// The encoded output, once completed.
    pub result: Option<Payload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanence_follows_the_kind() {
        assert!(!FailureKind::Error.is_permanent());
        assert!(!FailureKind::Panic.is_permanent());
        assert!(!FailureKind::LeaseExpired.is_permanent());
        assert!(FailureKind::Permanent.is_permanent());
        assert!(!FailureKind::UnknownTask.is_permanent());
        assert!(FailureKind::Decode.is_permanent());
        assert!(FailureKind::Corrupt.is_permanent());
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in [
            FailureKind::Error,
            FailureKind::Permanent,
            FailureKind::Panic,
            FailureKind::UnknownTask,
            FailureKind::Decode,
            FailureKind::LeaseExpired,
            FailureKind::Corrupt,
        ] {
            assert_eq!(FailureKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FailureKind::parse("nope"), None);
        assert_eq!(
            Failure::new(FailureKind::Panic, "boom").to_string(),
            "panic: boom"
        );
    }
}
