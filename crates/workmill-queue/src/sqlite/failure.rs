//! The one rule for a failed attempt of a running task, shared by `fail` and the rescue of lapsed
//! leases: the task's `RetryPolicy::decide` sends it to `Retrying` after its backoff, or to `Dead`.

use rusqlite::{Connection, params};
use workmill_core::{
    FailOutcome, Failure, Priority, QueueError, RetryDecision, RetryPolicy, TaskId, TaskStatus,
    Timestamp,
};

use super::counters::{Deltas, next_seqs};
use super::job_bookkeeping;
use super::row::job_link;
use super::store::{micros, store_error, transition};

/// Applies `policy` to a failed attempt of a running task: `Retrying` after its backoff, or `Dead`.
///
/// Shared by `fail` and the rescue of lapsed leases, so that a lapsed lease is
/// retried exactly like any other failure.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_failure(
    conn: &Connection,
    rowid: i64,
    id: &TaskId,
    attempts_made: u32,
    current: Priority,
    policy: &RetryPolicy,
    failure: Failure,
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<FailOutcome, QueueError> {
    const OP: &str = "record a failed attempt";
    match policy.decide_now(attempts_made, failure.kind.is_permanent(), current) {
        RetryDecision::Retry { delay, priority } => {
            transition(id, TaskStatus::Running, TaskStatus::Retrying)?;
            deltas.moved(TaskStatus::Running, TaskStatus::Retrying);
            deltas.retried += 1;
            let run_at = now.saturating_add(delay);
            // A retry re-enters the queue behind the tasks already waiting at its priority.
            let seq = next_seqs(conn, 1).map_err(store_error(OP))?;
            conn.prepare_cached(
                "UPDATE tasks SET status = 'retrying', priority = ?1, seq = ?2, run_at = ?3,
                     lease_token = NULL, lease_expires_at = NULL,
                     last_error_kind = ?4, last_error_message = ?5
                 WHERE rowid = ?6",
            )
            .and_then(|mut update| {
                update.execute(params![
                    i64::from(priority.level()),
                    seq,
                    micros(run_at),
                    failure.kind.as_str(),
                    failure.message,
                    rowid
                ])
            })
            .map_err(store_error(OP))?;
            Ok(FailOutcome::Retrying { run_at, priority })
        }
        RetryDecision::GiveUp => {
            transition(id, TaskStatus::Running, TaskStatus::Dead)?;
            deltas.moved(TaskStatus::Running, TaskStatus::Dead);
            finish_dead(conn, rowid, id, now, &failure, deltas)?;
            Ok(FailOutcome::Dead)
        }
    }
}

/// Writes a running task's move to `Dead` (already counted in `deltas`), and fails its job
/// if it belongs to one, in the same transaction.
pub(crate) fn finish_dead(
    conn: &Connection,
    rowid: i64,
    id: &TaskId,
    now: Timestamp,
    failure: &Failure,
    deltas: &mut Deltas,
) -> Result<(), QueueError> {
    const OP: &str = "dead-letter a task";
    let job: Option<String> = conn
        .prepare_cached(
            "UPDATE tasks SET status = 'dead', finished_at = ?1, lease_token = NULL,
                 lease_expires_at = NULL, last_error_kind = ?2, last_error_message = ?3
             WHERE rowid = ?4 RETURNING CAST(job_id AS TEXT)",
        )
        .and_then(|mut update| {
            update.query_row(
                params![micros(now), failure.kind.as_str(), failure.message, rowid],
                |row| Ok(job_link(row, 0, id)),
            )
        })
        .map_err(store_error(OP))?;
    if let Some(job) = job {
        job_bookkeeping::task_dead(conn, &job, id, failure, now, deltas)
            .map_err(store_error(OP))?;
    }
    Ok(())
}
