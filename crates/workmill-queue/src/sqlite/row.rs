//! Reading task rows back into `TaskRecord`s, and writing retry policies as plain columns.
//!
//! Every column is checked as it is read: a value of the wrong type, out of
//! range, or a payload whose checksum does not match becomes
//! [`QueueError::Corrupt`] for that one task, with the column named.

use rusqlite::Row;
use rusqlite::types::ValueRef;
use workmill_core::{
    Failure, FailureKind, Payload, Priority, QueueError, RetryPolicy, TaskId, TaskName, TaskRecord,
    TaskStatus, Timestamp, WorkerId,
};

pub(crate) use crate::stored::{PolicyColumns, payload_checksum};

/// The columns [`read_record`] expects, in order, as a literal for `concat!`.
macro_rules! record_columns {
    () => {
        "rowid, id, name, payload, payload_checksum, status, priority, attempts, max_attempts, \
         backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by, \
         created_at, run_at, started_at, finished_at, last_error_kind, last_error_message, \
         worker, result"
    };
}
pub(crate) use record_columns;

/// The columns [`read_policy`] expects, in order, starting at its `first` index.
pub(crate) const POLICY_COLUMNS: &str =
    "max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by";

/// Reads a row selected with [`record_columns!`].
///
/// The outer error is the store failing; the inner one is this task's record being unreadable.
pub(crate) fn read_record(row: &Row<'_>) -> rusqlite::Result<Result<TaskRecord, QueueError>> {
    let rowid: i64 = row.get(0)?;
    let id = match text(row, 1, "id").and_then(|t| TaskId::new(t).map_err(|e| e.to_string())) {
        Ok(id) => id,
        Err(detail) => {
            return Ok(Err(QueueError::Corrupt {
                id: placeholder_id(rowid),
                detail,
            }));
        }
    };
    Ok(decode(row, &id).map_err(|detail| QueueError::Corrupt { id, detail }))
}

/// The job a task row links to (selected as `CAST(job_id AS TEXT)`), or `None` for a plain task.
///
/// Job ids are written as UTF-8 text; a link that is not (a hand edit) names no stored job,
/// so the task is moved as a plain one, with a warning naming it, instead of failing the
/// transaction that moves it and every later one that meets the row.
pub(crate) fn job_link(row: &Row<'_>, idx: usize, task: &TaskId) -> Option<String> {
    optional_text(row, idx, "job_id")
        .map(|job| job.map(str::to_owned))
        .unwrap_or_else(|damage| {
            tracing::warn!(task = %task, damage, "the job link cannot be read; moving the task as a plain one");
            None
        })
}

/// A name for a row whose stored id is itself unreadable.
pub(crate) fn placeholder_id(rowid: i64) -> TaskId {
    TaskId::new(format!("rowid:{rowid}")).unwrap_or_else(|_| TaskId::generate())
}

fn decode(row: &Row<'_>, id: &TaskId) -> Result<TaskRecord, String> {
    // Checked where it lies in the row, and copied once, into the record's payload.
    let payload = blob(row, 3, "payload")?;
    let stored_checksum = integer(row, 4, "payload_checksum")?;
    let actual = payload_checksum(payload);
    if stored_checksum != actual {
        return Err(format!(
            "the payload does not match its checksum (stored {stored_checksum:#x}, computed {actual:#x}): \
             it was damaged after it was stored; resubmit the task with its original input"
        ));
    }
    let status_text = text(row, 5, "status")?;
    let status: TaskStatus = status_text
        .parse()
        .map_err(|_| format!("column status: {status_text:?} is not a task status"))?;
    let last_error = match optional_text(row, 19, "last_error_kind")? {
        None => None,
        Some(kind) => {
            let kind = FailureKind::parse(kind)
                .ok_or_else(|| format!("column last_error_kind: unknown kind {kind:?}"))?;
            let message = optional_text(row, 20, "last_error_message")?.unwrap_or_default();
            Some(Failure::new(kind, message))
        }
    };
    let worker = optional_text(row, 21, "worker")?
        .map(|w| WorkerId::new(w).map_err(|e| format!("column worker: {e}")))
        .transpose()?;
    let result = match row.get_ref(22).map_err(|e| e.to_string())? {
        ValueRef::Null => None,
        ValueRef::Blob(bytes) => Some(Payload::copy_from_slice(bytes)),
        other => {
            return Err(format!(
                "column result: expected a blob, found {:?}",
                other.data_type()
            ));
        }
    };
    Ok(TaskRecord {
        id: id.clone(),
        name: TaskName::from(text(row, 2, "name")?),
        payload: Payload::copy_from_slice(payload),
        status,
        priority: priority(row, 6)?,
        attempts: attempts(row, 7)?,
        retry: read_policy(row, 8)?,
        created_at: timestamp(row, 15, "created_at")?,
        run_at: timestamp(row, 16, "run_at")?,
        started_at: optional_timestamp(row, 17, "started_at")?,
        finished_at: optional_timestamp(row, 18, "finished_at")?,
        last_error,
        worker,
        result,
    })
}

/// Reads the policy stored in [`POLICY_COLUMNS`] starting at column `first`.
pub(crate) fn read_policy(row: &Row<'_>, first: usize) -> Result<RetryPolicy, String> {
    PolicyColumns {
        max_attempts: integer(row, first, "max_attempts")?,
        backoff: text(row, first + 1, "backoff")?,
        initial_us: integer(row, first + 2, "backoff_initial_us")?,
        factor: real(row, first + 3, "backoff_factor")?,
        max_us: integer(row, first + 4, "backoff_max_us")?,
        jitter: real(row, first + 5, "jitter")?,
        demote_by: integer(row, first + 6, "demote_by")?,
    }
    .into_policy()
}

/// Reads a priority column.
pub(crate) fn priority(row: &Row<'_>, idx: usize) -> Result<Priority, String> {
    u16::try_from(integer(row, idx, "priority")?)
        .map(Priority::new)
        .map_err(|_| "column priority: out of range 0..=65535".to_owned())
}

/// Reads an attempts column.
pub(crate) fn attempts(row: &Row<'_>, idx: usize) -> Result<u32, String> {
    u32::try_from(integer(row, idx, "attempts")?)
        .map_err(|_| "column attempts: out of range".to_owned())
}

fn value<'r>(row: &'r Row<'_>, idx: usize, name: &str) -> Result<ValueRef<'r>, String> {
    row.get_ref(idx).map_err(|e| format!("column {name}: {e}"))
}

fn wrong_type(name: &str, expected: &str, found: ValueRef<'_>) -> String {
    format!(
        "column {name}: expected {expected}, found {:?}",
        found.data_type()
    )
}

/// Reads an integer column, or says which column is not one.
pub(crate) fn integer(row: &Row<'_>, idx: usize, name: &str) -> Result<i64, String> {
    match value(row, idx, name)? {
        ValueRef::Integer(v) => Ok(v),
        other => Err(wrong_type(name, "an integer", other)),
    }
}

fn real(row: &Row<'_>, idx: usize, name: &str) -> Result<f64, String> {
    match value(row, idx, name)? {
        ValueRef::Real(v) => Ok(v),
        ValueRef::Integer(v) => Ok(v as f64),
        other => Err(wrong_type(name, "a number", other)),
    }
}

/// Reads a text column (UTF-8), or says which column is not one.
pub(crate) fn text<'r>(row: &'r Row<'_>, idx: usize, name: &str) -> Result<&'r str, String> {
    match value(row, idx, name)? {
        ValueRef::Text(bytes) => {
            std::str::from_utf8(bytes).map_err(|_| format!("column {name}: not valid UTF-8"))
        }
        other => Err(wrong_type(name, "text", other)),
    }
}

/// Reads a text column that may be NULL.
pub(crate) fn optional_text<'r>(
    row: &'r Row<'_>,
    idx: usize,
    name: &str,
) -> Result<Option<&'r str>, String> {
    match value(row, idx, name)? {
        ValueRef::Null => Ok(None),
        _ => text(row, idx, name).map(Some),
    }
}

fn blob<'r>(row: &'r Row<'_>, idx: usize, name: &str) -> Result<&'r [u8], String> {
    match value(row, idx, name)? {
        ValueRef::Blob(bytes) => Ok(bytes),
        other => Err(wrong_type(name, "a blob", other)),
    }
}

/// Reads a time column (microseconds since the epoch).
pub(crate) fn timestamp(row: &Row<'_>, idx: usize, name: &str) -> Result<Timestamp, String> {
    u64::try_from(integer(row, idx, name)?)
        .map(Timestamp::from_micros)
        .map_err(|_| format!("column {name}: negative time"))
}

/// Reads a time column that may be NULL.
pub(crate) fn optional_timestamp(
    row: &Row<'_>,
    idx: usize,
    name: &str,
) -> Result<Option<Timestamp>, String> {
    match value(row, idx, name)? {
        ValueRef::Null => Ok(None),
        _ => timestamp(row, idx, name).map(Some),
    }
}
