//! The operator's side: status and list, cancel and requeue, purge, stats, and rescue on demand.

use postgres::{GenericClient, IsolationLevel};
use workmill_core::{
    IllegalTransition, ListFilter, QueueError, QueueStats, TaskId, TaskRecord, TaskStatus,
    Timestamp,
};

use super::counters::{evict_over_retention, read_stats};
use super::job_bookkeeping;
use super::pool::{Session, Settings, Statements};
use super::rescue::{RESCUE_BATCH, rescue_lapsed};
use super::row::{read_record, record_columns};
use super::store::{BACKEND, micros, sql_count, store_error};
use super::wakeup::notify;
use crate::stored::{Deltas, add_to_page, parse_status, transition};

const STATUS: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM {s}.tasks WHERE id = $1"
);

/// The record of `id`, or `NotFound`, or `Corrupt` if it cannot be read.
pub(crate) fn status(session: &mut Session, id: &TaskId) -> Result<TaskRecord, QueueError> {
    const OP: &str = "read a task";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let select = statements
        .get(client, settings, STATUS)
        .map_err(store_error(OP))?;
    match client
        .query_opt(&select, &[&id.as_str()])
        .map_err(store_error(OP))?
    {
        None => Err(QueueError::NotFound { id: id.clone() }),
        Some(row) => read_record(&row),
    }
}

/// Up to `$2` records matching `$1` (a status, or NULL for all) in submission order, after the
/// row whose submission and id are `$3` and `$4` (from the first row when `$3` is NULL), each
/// with its submission last. The id breaks ties in `submission` (only a hand edit makes two
/// equal), so that the order is total and each read continues where the last one ended.
const LIST: &str = concat!(
    "SELECT ",
    record_columns!(),
    ", submission FROM {s}.tasks
     WHERE ($1::text IS NULL OR status = $1::text)
       AND ($3::bigint IS NULL OR (submission, id) > ($3::bigint, $4::text))
     ORDER BY submission, id LIMIT $2"
);

/// The column after [`record_columns!`] in [`LIST`].
const LIST_SUBMISSION: usize = 22;

/// Up to `filter.limit` readable records matching `filter`, in submission order.
///
/// A record that cannot be read is left out with a warning naming it, so that one damaged
/// row does not hide every other task from an operator; `status` on its id says what is wrong.
/// It does not take a place in the page: while rows were left out, the next `limit` rows after
/// the last one read are read, until the page is full or none are left. So a page costs one
/// read, plus one per `limit` unreadable rows; the reads share one read-only snapshot.
pub(crate) fn list(
    session: &mut Session,
    filter: &ListFilter,
) -> Result<Vec<TaskRecord>, QueueError> {
    const OP: &str = "list tasks";
    if filter.limit == 0 {
        return Ok(Vec::new());
    }
    let status = filter.status.map(TaskStatus::as_str);
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(store_error(OP))?;
    let select = statements
        .get(&mut tx, settings, LIST)
        .map_err(store_error(OP))?;
    let page = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let mut records = Vec::new();
    // The submission and id of the last row read, whether or not it could be read.
    let mut after: (Option<i64>, Option<String>) = (None, None);
    loop {
        let rows = tx
            .query(&select, &[&status, &page, &after.0, &after.1])
            .map_err(store_error(OP))?;
        for row in &rows {
            if add_to_page(&mut records, filter.limit, read_record(row)) {
                break;
            }
        }
        if records.len() == filter.limit || rows.len() < filter.limit {
            break;
        }
        // Both columns are NOT NULL and the id is text: only a broken server fails these.
        let last = rows
            .last()
            .ok_or_else(|| QueueError::backend(BACKEND, OP, "a full read returned no last row"))?;
        after = (
            Some(last.try_get(LIST_SUBMISSION).map_err(store_error(OP))?),
            Some(last.try_get(0).map_err(store_error(OP))?),
        );
    }
    tx.commit().map_err(store_error(OP))?;
    Ok(records)
}

const LOCK_STATUS: &str = "SELECT status, job_id FROM {s}.tasks WHERE id = $1 FOR UPDATE";

/// Locks a task's row for an operator's command; its status and its job, if any.
///
/// The command first takes the lock its `UPDATE` will need on the table (`ROW EXCLUSIVE`), so
/// that it never holds a row while waiting for a purge that waits for that row. A task of a
/// job is locked before its job, as in every other move (see `job_bookkeeping.rs`).
fn locked_status(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    id: &TaskId,
    op: &'static str,
) -> Result<(TaskStatus, Option<String>), QueueError> {
    client
        .batch_execute(&settings.render("LOCK TABLE {s}.tasks IN ROW EXCLUSIVE MODE"))
        .map_err(store_error(op))?;
    let select = statements
        .get(client, settings, LOCK_STATUS)
        .map_err(store_error(op))?;
    let row = client
        .query_opt(&select, &[&id.as_str()])
        .map_err(store_error(op))?
        .ok_or_else(|| QueueError::NotFound { id: id.clone() })?;
    let text: String = row.try_get(0).map_err(store_error(op))?;
    let job: Option<String> = row.try_get(1).map_err(store_error(op))?;
    Ok((parse_status(id, &text)?, job))
}

const CANCEL: &str = "UPDATE {s}.tasks SET status = 'cancelled', finished_at = $2 WHERE id = $1";

/// Cancels a `pending` or `retrying` task, and its job with it.
///
/// The row lock waits for a reserve that holds the row at this moment; it then reads the
/// task as `running`, and the cancel is refused, as for any running task.
pub(crate) fn cancel(session: &mut Session, id: &TaskId) -> Result<(), QueueError> {
    const OP: &str = "cancel a task";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    let (from, job) = locked_status(&mut tx, statements, settings, id, OP)?;
    transition(id, from, TaskStatus::Cancelled)?;
    let update = statements
        .get(&mut tx, settings, CANCEL)
        .map_err(store_error(OP))?;
    let now = Timestamp::now();
    tx.execute(&update, &[&id.as_str(), &micros(now)])
        .map_err(store_error(OP))?;
    let mut deltas = Deltas::default();
    deltas.moved(from, TaskStatus::Cancelled);
    if let Some(job) = &job {
        job_bookkeeping::task_cancelled(
            &mut tx,
            statements,
            settings,
            job,
            id.as_str(),
            now,
            &mut deltas,
        )
        .map_err(store_error(OP))?;
    }
    evict_over_retention(&mut tx, statements, settings, &mut deltas)?;
    deltas.add_to_shard(&mut tx, statements, settings)?;
    notify(&mut tx, statements, settings, &settings.done_channel)?;
    tx.commit().map_err(store_error(OP))
}

const REQUEUE: &str = "
UPDATE {s}.tasks
SET status = 'pending', attempts = 0, run_at = $2, seq = nextval('{s}.task_arrivals'),
    finished_at = NULL, lease_token = NULL, lease_expires_at = NULL
WHERE id = $1";

/// Puts a `dead` task back to `pending` with no attempts used, at the back of its priority; a
/// dead reduce that failed its job makes the job reducing again.
pub(crate) fn requeue(session: &mut Session, id: &TaskId) -> Result<(), QueueError> {
    const OP: &str = "requeue a task";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    let (from, job) = locked_status(&mut tx, statements, settings, id, OP)?;
    transition(id, from, TaskStatus::Pending)?;
    if from != TaskStatus::Dead {
        // `running -> pending` is a legal move, but it is `release`, not an operator's requeue.
        return Err(QueueError::IllegalTransition {
            id: id.clone(),
            source: IllegalTransition {
                from,
                to: TaskStatus::Pending,
            },
        });
    }
    let update = statements
        .get(&mut tx, settings, REQUEUE)
        .map_err(store_error(OP))?;
    tx.execute(&update, &[&id.as_str(), &micros(Timestamp::now())])
        .map_err(store_error(OP))?;
    if let Some(job) = &job {
        job_bookkeeping::task_requeued(&mut tx, statements, settings, job, id.as_str())
            .map_err(store_error(OP))?;
    }
    let mut deltas = Deltas::default();
    deltas.moved(from, TaskStatus::Pending);
    deltas.add_to_shard(&mut tx, statements, settings)?;
    notify(&mut tx, statements, settings, &settings.work_channel)?;
    tx.commit().map_err(store_error(OP))
}

const PURGE: &str = "
WITH gone AS (DELETE FROM {s}.tasks WHERE status = ANY($1) RETURNING status)
SELECT status, count(*) FROM gone GROUP BY status";

/// Deletes every task in `statuses` as if never submitted; returns how many, evicted records included.
///
/// The gauges also count finished records the retention bound already dropped, so purge
/// subtracts the gauge, not just the rows it deleted. To read gauges that no other
/// transaction is about to change, it first locks the table against writers (readers go
/// on): a writer's counters are written in the same transaction as its task rows, so once
/// no writer is inside a transaction on `tasks`, the counters are exact.
///
/// Jobs first: a job still running that would lose a waiting or running task is cancelled
/// (its other waiting tasks with it); afterwards the jobs that a purged status ended are
/// removed with their results.
pub(crate) fn purge(session: &mut Session, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
    const OP: &str = "purge tasks";
    let mut unique: Vec<TaskStatus> = Vec::new();
    for &status in statuses {
        if !unique.contains(&status) {
            unique.push(status);
        }
    }
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    tx.batch_execute(&settings.render("LOCK TABLE {s}.tasks IN SHARE ROW EXCLUSIVE MODE"))
        .map_err(store_error(OP))?;
    let stats = read_stats(&mut tx, statements, settings)?;
    let mut deltas = Deltas::default();
    job_bookkeeping::cancel_jobs_losing_tasks(
        &mut tx,
        statements,
        settings,
        &unique,
        Timestamp::now(),
        &mut deltas,
    )
    .map_err(store_error(OP))?;
    // The gauges as they stand after those cancels, which this transaction has not written yet.
    let mut cancels = deltas;
    let mut gauges = Vec::with_capacity(unique.len());
    for &status in &unique {
        let gauge = sql_count(stats.count(status)) + *cancels.gauge(status);
        gauges.push(u64::try_from(gauge).unwrap_or(0));
    }
    let delete = statements
        .get(&mut tx, settings, PURGE)
        .map_err(store_error(OP))?;
    let names: Vec<&str> = unique.iter().map(|s| s.as_str()).collect();
    let rows = tx.query(&delete, &[&names]).map_err(store_error(OP))?;
    let mut purged = 0u64;
    for (&status, gauge) in unique.iter().zip(gauges) {
        let deleted = rows
            .iter()
            .find(|row| row.try_get::<_, &str>(0).ok() == Some(status.as_str()))
            .and_then(|row| row.try_get::<_, i64>(1).ok())
            .unwrap_or(0);
        let deleted = u64::try_from(deleted).unwrap_or(0);
        let gauge = gauge.max(deleted);
        purged += gauge;
        *deltas.gauge(status) -= sql_count(gauge);
        deltas.submitted -= sql_count(gauge);
        if status.is_final() {
            deltas.retained_finished -= sql_count(deleted);
        }
    }
    job_bookkeeping::remove_jobs_purged_with(&mut tx, statements, settings, &unique)
        .map_err(store_error(OP))?;
    // Tasks the cancels finished and the purge kept count against the bound.
    evict_over_retention(&mut tx, statements, settings, &mut deltas)?;
    deltas.add_to_shard(&mut tx, statements, settings)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(purged)
}

/// The exact counts.
pub(crate) fn stats(session: &mut Session) -> Result<QueueStats, QueueError> {
    let Session {
        client,
        statements,
        settings,
    } = session;
    read_stats(client, statements, settings)
}

/// Rescues every lease lapsed by now, a batch per transaction.
pub(crate) fn rescue_expired(session: &mut Session) -> Result<u64, QueueError> {
    let now = Timestamp::now();
    let mut total = 0;
    loop {
        let rescued = rescue_lapsed(session, now)?;
        total += rescued;
        if rescued < RESCUE_BATCH as u64 {
            return Ok(total);
        }
    }
}
