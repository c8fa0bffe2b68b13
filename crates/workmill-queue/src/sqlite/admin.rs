//! The operator's side: status and list, cancel and requeue, purge, stats, and the retention bound.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use workmill_core::{
    ListFilter, QueueError, QueueStats, TaskId, TaskRecord, TaskStatus, Timestamp,
};

use super::counters::{Deltas, next_seqs, read_stats, retained_finished};
use super::job_bookkeeping;
use super::reserve::rescue_lapsed;
use super::row::{job_link, read_record, record_columns};
use super::store::{micros, parse_status, sql_count, store_error, transition};
use crate::stored::add_to_page;

const STATUS: &str = concat!("SELECT ", record_columns!(), " FROM tasks WHERE id = ?1");

/// The record of `id`, or `NotFound`, or `Corrupt` if it cannot be read.
pub(crate) fn status(conn: &Connection, id: &TaskId) -> Result<TaskRecord, QueueError> {
    const OP: &str = "read a task";
    let found = conn
        .prepare_cached(STATUS)
        .and_then(|mut select| select.query_row([id.as_str()], read_record).optional())
        .map_err(store_error(OP))?;
    match found {
        None => Err(QueueError::NotFound { id: id.clone() }),
        Some(stored) => stored,
    }
}

/// Every record matching `?1` (a status, or NULL for all), in submission order. No `LIMIT`:
/// `list` stops stepping once its page is full, after skipping the rows it cannot read.
const LIST: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM tasks WHERE ?1 IS NULL OR status = ?1 ORDER BY rowid"
);

/// Up to `filter.limit` readable records matching `filter`, in submission order.
///
/// A record that cannot be read is left out with a warning naming it, so that one damaged
/// row does not hide every other task from an operator; `status` on its id reports what is
/// wrong. It does not take a place in the page: the rows are read one by one (SQLite steps
/// through the rowid order lazily) until `limit` readable records are found or none are left.
pub(crate) fn list(conn: &Connection, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
    const OP: &str = "list tasks";
    if filter.limit == 0 {
        return Ok(Vec::new());
    }
    let status = filter.status.map(TaskStatus::as_str);
    let mut select = conn.prepare_cached(LIST).map_err(store_error(OP))?;
    let rows = select
        .query_map(params![status], read_record)
        .map_err(store_error(OP))?;
    let mut records = Vec::new();
    for row in rows {
        if add_to_page(&mut records, filter.limit, row.map_err(store_error(OP))?) {
            break;
        }
    }
    Ok(records)
}

/// A task as an operator's command finds it: its row, its status and its job, if any.
struct Current {
    rowid: i64,
    status: TaskStatus,
    job: Option<String>,
}

/// Reads a task's status for an operator's command, inside its transaction.
fn current_status(conn: &Connection, id: &TaskId, op: &'static str) -> Result<Current, QueueError> {
    let found = conn
        .prepare_cached("SELECT rowid, status, CAST(job_id AS TEXT) FROM tasks WHERE id = ?1")
        .and_then(|mut select| {
            select
                .query_row([id.as_str()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        job_link(row, 2, id),
                    ))
                })
                .optional()
        })
        .map_err(store_error(op))?;
    let (rowid, text, job) = found.ok_or_else(|| QueueError::NotFound { id: id.clone() })?;
    Ok(Current {
        rowid,
        status: parse_status(id, &text)?,
        job,
    })
}

/// Cancels a `Pending` or `Retrying` task.
pub(crate) fn cancel(
    conn: &mut Connection,
    id: &TaskId,
    retention: Option<u64>,
) -> Result<(), QueueError> {
    const OP: &str = "cancel a task";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let Current {
        rowid,
        status: from,
        job,
    } = current_status(&tx, id, OP)?;
    transition(id, from, TaskStatus::Cancelled)?;
    let now = Timestamp::now();
    tx.execute(
        "UPDATE tasks SET status = 'cancelled', finished_at = ?1 WHERE rowid = ?2",
        params![micros(now), rowid],
    )
    .map_err(store_error(OP))?;
    let mut deltas = Deltas::default();
    deltas.moved(from, TaskStatus::Cancelled);
    if let Some(job) = job {
        job_bookkeeping::task_cancelled(&tx, &job, id, now, &mut deltas)
            .map_err(store_error(OP))?;
    }
    deltas.apply(&tx).map_err(store_error(OP))?;
    evict_over_retention(&tx, retention, &deltas)?;
    tx.commit().map_err(store_error(OP))
}

/// Puts a `Dead` task back to `Pending` with no attempts used, at the back of its priority.
pub(crate) fn requeue(conn: &mut Connection, id: &TaskId) -> Result<(), QueueError> {
    const OP: &str = "requeue a task";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let Current {
        rowid,
        status: from,
        job,
    } = current_status(&tx, id, OP)?;
    transition(id, from, TaskStatus::Pending)?;
    if from != TaskStatus::Dead {
        // `Running -> Pending` is a legal move, but it is `release`, not an operator's requeue.
        return Err(QueueError::IllegalTransition {
            id: id.clone(),
            source: workmill_core::IllegalTransition {
                from,
                to: TaskStatus::Pending,
            },
        });
    }
    let seq = next_seqs(&tx, 1).map_err(store_error(OP))?;
    tx.execute(
        "UPDATE tasks SET status = 'pending', attempts = 0, run_at = ?1, seq = ?2,
             finished_at = NULL, lease_token = NULL, lease_expires_at = NULL
         WHERE rowid = ?3",
        params![micros(Timestamp::now()), seq, rowid],
    )
    .map_err(store_error(OP))?;
    let mut deltas = Deltas::default();
    deltas.moved(from, TaskStatus::Pending);
    deltas.apply(&tx).map_err(store_error(OP))?;
    if let Some(job) = job {
        job_bookkeeping::task_requeued(&tx, &job, id).map_err(store_error(OP))?;
    }
    tx.commit().map_err(store_error(OP))
}

/// Deletes every task in `statuses` as if never submitted; returns how many, evicted records included.
///
/// Jobs first: a job still running that would lose a waiting or running task is cancelled
/// (and its other waiting tasks with it), and afterwards the jobs that a purged status
/// ended are removed with their results.
pub(crate) fn purge(
    conn: &mut Connection,
    statuses: &[TaskStatus],
    retention: Option<u64>,
) -> Result<u64, QueueError> {
    const OP: &str = "purge tasks";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let mut cancelled = Deltas::default();
    job_bookkeeping::cancel_jobs_losing_tasks(&tx, statuses, Timestamp::now(), &mut cancelled)
        .map_err(store_error(OP))?;
    // The purge below reads the gauges, so the cancels are counted first.
    cancelled.apply(&tx).map_err(store_error(OP))?;
    let stats = read_stats(&tx).map_err(store_error(OP))?;
    let mut deltas = Deltas::default();
    let mut purged = 0u64;
    let mut seen = Vec::new();
    for &status in statuses {
        if seen.contains(&status) {
            continue;
        }
        seen.push(status);
        let deleted = tx
            .execute("DELETE FROM tasks WHERE status = ?1", [status.as_str()])
            .map_err(store_error(OP))?;
        // The gauge also counts records the retention bound already dropped; they go too.
        let gauge = stats.count(status).max(deleted as u64);
        purged += gauge;
        *deltas.gauge(status) -= sql_count(gauge);
        deltas.submitted -= sql_count(gauge);
        if status.is_final() {
            deltas.retained_finished -= sql_count(deleted as u64);
        }
    }
    deltas.apply(&tx).map_err(store_error(OP))?;
    job_bookkeeping::remove_jobs_purged_with(&tx, statuses).map_err(store_error(OP))?;
    // Tasks the cancels finished and the purge kept count against the bound.
    evict_over_retention(&tx, retention, &cancelled)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(purged)
}

/// The exact counts.
pub(crate) fn stats(conn: &Connection) -> Result<QueueStats, QueueError> {
    read_stats(conn).map_err(store_error("read the stats"))
}

/// Rescues every lapsed lease now, in its own transaction.
pub(crate) fn rescue_expired(
    conn: &mut Connection,
    retention: Option<u64>,
) -> Result<u64, QueueError> {
    const OP: &str = "rescue lapsed leases";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let mut deltas = Deltas::default();
    let rescued = rescue_lapsed(&tx, Timestamp::now(), &mut deltas)?;
    deltas.apply(&tx).map_err(store_error(OP))?;
    evict_over_retention(&tx, retention, &deltas)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(rescued)
}

/// The retention bound's delete: the oldest finished records, as many as `?1`.
///
/// The limit is bound as `+?1` for the reason given at `reserve::READY`: one cached statement
/// whatever the excess, never prepared again because of the value bound.
pub(super) const EVICT: &str = "DELETE FROM tasks WHERE rowid IN (
         SELECT rowid FROM tasks WHERE status IN ('completed', 'dead', 'cancelled')
         ORDER BY finished_at, rowid LIMIT +?1)";

/// Drops the oldest finished records beyond the bound, after a transaction that finished some.
///
/// `deltas` must already be applied: the bound is checked against the stored
/// count. The dropped records stay counted in their status gauges.
pub(crate) fn evict_over_retention(
    conn: &Connection,
    retention: Option<u64>,
    deltas: &Deltas,
) -> Result<(), QueueError> {
    const OP: &str = "apply the retention bound";
    let Some(bound) = retention else {
        return Ok(());
    };
    if deltas.retained_finished <= 0 {
        return Ok(());
    }
    let stored = retained_finished(conn).map_err(store_error(OP))?;
    let excess = stored - sql_count(bound);
    if excess <= 0 {
        return Ok(());
    }
    let evicted = conn
        .prepare_cached(EVICT)
        .and_then(|mut delete| delete.execute([excess]))
        .map_err(store_error(OP))?;
    let evicted = sql_count(evicted as u64);
    Deltas {
        evicted,
        retained_finished: -evicted,
        ..Deltas::default()
    }
    .apply(conn)
    .map_err(store_error(OP))
}
