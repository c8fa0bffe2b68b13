//! Small conversions shared by the PostgreSQL operations: times and tokens to SQL integers, store
//! errors to `QueueError`, and telling a broken connection from a refused statement.

use postgres::error::SqlState;
use workmill_core::{QueueError, TaskId, Timestamp};

/// The backend name used in error messages.
pub(crate) const BACKEND: &str = "postgres";

/// A timestamp as the `bigint` stored (microseconds since the epoch), saturating.
pub(crate) fn micros(at: Timestamp) -> i64 {
    i64::try_from(at.as_micros()).unwrap_or(i64::MAX)
}

/// A stored `bigint` time back as a timestamp; negative values were never written by workmill.
pub(crate) fn timestamp(micros: i64) -> Option<Timestamp> {
    u64::try_from(micros).ok().map(Timestamp::from_micros)
}

/// A count as a `bigint`, saturating.
pub(crate) fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A lease token as stored: tokens come from a sequence that starts at 1, so they fit; a
/// forged token beyond `i64::MAX` becomes -1, which no task holds.
pub(crate) fn sql_token(token: u64) -> i64 {
    i64::try_from(token).unwrap_or(-1)
}

/// Wraps a PostgreSQL error as a transient backend failure of `operation`.
pub(crate) fn store_error(operation: &'static str) -> impl FnOnce(postgres::Error) -> QueueError {
    move |err| QueueError::backend(BACKEND, operation, err)
}

/// True when the error is a uniqueness violation (a duplicate task id).
pub(crate) fn is_unique_violation(err: &postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// True when `err` means the connection it came from cannot be used again: it was closed,
/// terminated by the server (`pg_terminate_backend`, a restart), or failed in transit.
pub(crate) fn connection_is_lost(err: &QueueError) -> bool {
    let QueueError::Backend { source, .. } = err else {
        return false;
    };
    let Some(err) = source.downcast_ref::<postgres::Error>() else {
        return false;
    };
    if err.is_closed() {
        return true;
    }
    match err.code() {
        // Class 08 is "connection exception"; 57P01..57P03 are the shutdown and
        // termination codes an administrator or a restart produce.
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        // An error without a SQL state did not come from the server: an I/O failure.
        None => true,
    }
}

/// A task id read back from the store; an id edited by hand into something workmill would never
/// write is replaced, for messages only, by a cleaned-up version that names the row.
pub(crate) fn readable_id(stored: &str) -> TaskId {
    TaskId::new(stored).unwrap_or_else(|_| {
        let cleaned: String = stored
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .take(100)
            .collect();
        TaskId::new(format!("stored-id:{cleaned}")).unwrap_or_else(|_| TaskId::generate())
    })
}
