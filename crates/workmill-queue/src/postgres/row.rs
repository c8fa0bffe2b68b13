//! Reading rows of `tasks` back into `TaskRecord`s, every column checked.
//!
//! PostgreSQL enforces column types, so what can go wrong is a value workmill would never write:
//! a payload whose checksum does not match, an id or worker name that breaks the id rules, a
//! number out of range, an unknown failure kind or backoff schedule. Each becomes
//! [`QueueError::Corrupt`] for that one task, naming the column.

use postgres::Row;
use postgres::types::FromSql;
use workmill_core::{
    Failure, FailureKind, Payload, Priority, QueueError, RetryPolicy, TaskId, TaskName, TaskRecord,
    TaskStatus, Timestamp, WorkerId,
};

use super::store::readable_id;
use crate::stored::{PolicyColumns, payload_checksum};

/// The columns [`read_record`] expects, in order, as a literal for `concat!`.
macro_rules! record_columns {
    () => {
        "id, name, payload, payload_checksum, status, priority, attempts, max_attempts, backoff, \
         backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by, created_at, run_at, \
         started_at, finished_at, last_error_kind, last_error_message, worker, result"
    };
}
pub(crate) use record_columns;

/// The columns [`read_policy`] expects, in order, as a literal for `concat!`.
macro_rules! policy_columns {
    () => {
        "max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by"
    };
}
pub(crate) use policy_columns;

/// Reads a row selected with [`record_columns!`]; an unreadable record is `Corrupt`, naming the task.
pub(crate) fn read_record(row: &Row) -> Result<TaskRecord, QueueError> {
    let stored: String = get(row, 0, "id").map_err(|detail| QueueError::Corrupt {
        id: readable_id("unreadable"),
        detail,
    })?;
    let id = TaskId::new(&stored).map_err(|err| QueueError::Corrupt {
        id: readable_id(&stored),
        detail: format!("column id: {err}"),
    })?;
    decode(row, &id).map_err(|detail| QueueError::Corrupt { id, detail })
}

fn decode(row: &Row, id: &TaskId) -> Result<TaskRecord, String> {
    // Checked where it lies in the row, and copied once, into the record's payload.
    let payload: &[u8] = get(row, 2, "payload")?;
    check_payload(payload, get(row, 3, "payload_checksum")?)?;
    let status_text: &str = get(row, 4, "status")?;
    let status: TaskStatus = status_text
        .parse()
        .map_err(|_| format!("column status: {status_text:?} is not a task status"))?;
    let last_error = match get::<Option<&str>>(row, 18, "last_error_kind")? {
        None => None,
        Some(kind) => {
            let kind = FailureKind::parse(kind)
                .ok_or_else(|| format!("column last_error_kind: unknown kind {kind:?}"))?;
            let message: Option<String> = get(row, 19, "last_error_message")?;
            Some(Failure::new(kind, message.unwrap_or_default()))
        }
    };
    let worker = get::<Option<&str>>(row, 20, "worker")?
        .map(|w| WorkerId::new(w).map_err(|e| format!("column worker: {e}")))
        .transpose()?;
    Ok(TaskRecord {
        id: id.clone(),
        name: TaskName::from(get::<&str>(row, 1, "name")?),
        payload: Payload::copy_from_slice(payload),
        status,
        priority: priority(row, 5)?,
        attempts: attempts(row, 6)?,
        retry: read_policy(row, 7)?,
        created_at: time(row, 14, "created_at")?,
        run_at: time(row, 15, "run_at")?,
        started_at: optional_time(row, 16, "started_at")?,
        finished_at: optional_time(row, 17, "finished_at")?,
        last_error,
        worker,
        result: get::<Option<&[u8]>>(row, 21, "result")?.map(Payload::copy_from_slice),
    })
}

/// Checks a payload against the checksum stored with it.
pub(crate) fn check_payload(payload: &[u8], stored: i64) -> Result<(), String> {
    let actual = payload_checksum(payload);
    if stored == actual {
        return Ok(());
    }
    Err(format!(
        "the payload does not match its checksum (stored {stored:#x}, computed {actual:#x}): \
         it was damaged after it was stored; resubmit the task with its original input"
    ))
}

/// Reads the policy stored in [`policy_columns!`] starting at column `first`.
pub(crate) fn read_policy(row: &Row, first: usize) -> Result<RetryPolicy, String> {
    let demote_by: i32 = get(row, first + 6, "demote_by")?;
    PolicyColumns {
        max_attempts: get(row, first, "max_attempts")?,
        backoff: get(row, first + 1, "backoff")?,
        initial_us: get(row, first + 2, "backoff_initial_us")?,
        factor: get(row, first + 3, "backoff_factor")?,
        max_us: get(row, first + 4, "backoff_max_us")?,
        jitter: get(row, first + 5, "jitter")?,
        demote_by: i64::from(demote_by),
    }
    .into_policy()
}

/// Reads a priority column; the `CHECK` constraint keeps it in range unless it was dropped.
pub(crate) fn priority(row: &Row, idx: usize) -> Result<Priority, String> {
    u16::try_from(get::<i32>(row, idx, "priority")?)
        .map(Priority::new)
        .map_err(|_| "column priority: out of range 0..=65535".to_owned())
}

/// Reads an attempts column.
pub(crate) fn attempts(row: &Row, idx: usize) -> Result<u32, String> {
    u32::try_from(get::<i64>(row, idx, "attempts")?)
        .map_err(|_| "column attempts: out of range".to_owned())
}

/// Reads column `idx` as `T`, naming the column if it cannot.
pub(crate) fn get<'r, T: FromSql<'r>>(row: &'r Row, idx: usize, name: &str) -> Result<T, String> {
    row.try_get(idx).map_err(|e| format!("column {name}: {e}"))
}

fn time(row: &Row, idx: usize, name: &str) -> Result<Timestamp, String> {
    super::store::timestamp(get(row, idx, name)?)
        .ok_or_else(|| format!("column {name}: negative time"))
}

fn optional_time(row: &Row, idx: usize, name: &str) -> Result<Option<Timestamp>, String> {
    match get::<Option<i64>>(row, idx, name)? {
        None => Ok(None),
        Some(micros) => super::store::timestamp(micros)
            .map(Some)
            .ok_or_else(|| format!("column {name}: negative time")),
    }
}
