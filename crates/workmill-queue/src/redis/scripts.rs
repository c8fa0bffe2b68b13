//! The Lua scripts (in `lua/`, each behind the shared `prelude.lua` and the libraries it uses)
//! and the reading of their replies.

use std::sync::LazyLock;

use redis::{Script, Value};
use workmill_core::{QueueError, TaskStatus};

use super::pool::BACKEND;

/// A script: `prelude.lua`, then the libraries it uses (`add_tasks.lua`, `jobs.lua`), then its
/// own body, as one text (so `EVALSHA` needs nothing loaded beforehand).
macro_rules! script {
    ($name:ident, $($file:literal),+) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                $(include_str!(concat!("lua/", $file))),+
            ))
        });
    };
}

script!(ENQUEUE, "add_tasks.lua", "enqueue.lua");
script!(RESERVE, "reserve.lua");
script!(COMPLETE, "jobs.lua", "complete.lua");
script!(FAIL, "jobs.lua", "fail.lua");
script!(LAPSED, "lapsed.lua");
script!(HEARTBEAT, "heartbeat.lua");
script!(RELEASE, "release.lua");
script!(CANCEL, "jobs.lua", "cancel.lua");
script!(REQUEUE, "jobs.lua", "requeue.lua");
script!(PURGE, "jobs.lua", "purge.lua");
script!(LIST, "list.lua");
script!(NEXT_DUE, "next_due.lua");
script!(SUBMIT_JOB, "add_tasks.lua", "jobs.lua", "submit_job.lua");
script!(JOB_RESULTS, "job_results.lua");

/// The statuses from which the transition table allows a move to `to`, for a script to
/// check against: the scripts apply the table, they do not keep their own.
pub(crate) fn sources_of(to: TaskStatus) -> impl Iterator<Item = &'static str> {
    TaskStatus::ALL
        .into_iter()
        .filter(move |from| from.can_become(to))
        .map(TaskStatus::as_str)
}

/// A reply that does not have the shape the script returns: a bug or a foreign key.
pub(crate) fn malformed(operation: &'static str, what: impl std::fmt::Display) -> QueueError {
    QueueError::backend(
        BACKEND,
        operation,
        format!("unexpected reply from the script: {what}"),
    )
}

/// Reads script replies, naming the operation in any error.
pub(crate) struct Reply {
    operation: &'static str,
}

impl Reply {
    pub(crate) fn of(operation: &'static str) -> Reply {
        Reply { operation }
    }

    /// An array reply's elements.
    pub(crate) fn items(&self, value: Value) -> Result<Vec<Value>, QueueError> {
        match value {
            Value::Array(items) | Value::Set(items) => Ok(items),
            Value::Nil => Ok(Vec::new()),
            other => Err(malformed(
                self.operation,
                format_args!("expected an array, got {other:?}"),
            )),
        }
    }

    /// A string reply's bytes (integers are spelled in decimal).
    pub(crate) fn bytes(&self, value: Value) -> Result<Vec<u8>, QueueError> {
        match value {
            Value::BulkString(bytes) => Ok(bytes),
            Value::SimpleString(text) => Ok(text.into_bytes()),
            Value::Int(n) => Ok(n.to_string().into_bytes()),
            other => Err(malformed(
                self.operation,
                format_args!("expected a string, got {other:?}"),
            )),
        }
    }

    /// A string reply as text.
    pub(crate) fn text(&self, value: Value) -> Result<String, QueueError> {
        String::from_utf8(self.bytes(value)?)
            .map_err(|_| malformed(self.operation, "a string that is not UTF-8"))
    }

    /// An integer reply (or a string holding one).
    pub(crate) fn int(&self, value: Value) -> Result<i64, QueueError> {
        match value {
            Value::Int(n) => Ok(n),
            other => {
                let text = self.text(other)?;
                text.parse().map_err(|_| {
                    malformed(self.operation, format_args!("{text:?} is not an integer"))
                })
            }
        }
    }

    /// A non-negative integer reply, as microseconds or a counter.
    pub(crate) fn uint(&self, value: Value) -> Result<u64, QueueError> {
        let n = self.int(value)?;
        u64::try_from(n).map_err(|_| malformed(self.operation, format_args!("{n} is negative")))
    }
}
