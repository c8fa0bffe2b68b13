//! Small conversions shared by the SQLite operations: times and numbers to SQL integers,
//! store errors to `QueueError`, and status moves checked against the one transition table.

use workmill_core::{QueueError, Timestamp};

pub(crate) use crate::stored::{parse_status, transition};

/// The backend name used in error messages.
pub(crate) const BACKEND: &str = "sqlite";

/// A timestamp as the SQL integer stored (microseconds since the epoch), saturating.
pub(crate) fn micros(at: Timestamp) -> i64 {
    i64::try_from(at.as_micros()).unwrap_or(i64::MAX)
}

/// A count as an SQL integer, saturating.
pub(crate) fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A lease token as stored: tokens come from a counter that starts at 1, so they fit.
pub(crate) fn sql_token(token: u64) -> i64 {
    i64::try_from(token).unwrap_or(-1)
}

/// Wraps a SQLite error as a transient backend failure of `operation`.
pub(crate) fn store_error(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> QueueError {
    move |err| QueueError::backend(BACKEND, operation, err)
}

/// True when the error is a uniqueness violation (a duplicate task id).
pub(crate) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}
