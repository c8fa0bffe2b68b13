//! Enqueue: validating new tasks and inserting a whole batch in one transaction.

use rusqlite::{Connection, TransactionBehavior, params};
use workmill_core::{NewTask, QueueError, TaskId, Timestamp};

use super::counters::{Deltas, next_seqs};
use super::row::{PolicyColumns, payload_checksum};
use super::store::{is_unique_violation, micros, store_error};
use crate::stored::validate;

/// Checks every task with [`validate`].
pub(crate) fn validate_all<'a>(
    tasks: impl IntoIterator<Item = &'a NewTask>,
    payload_limit: usize,
) -> Result<(), QueueError> {
    tasks
        .into_iter()
        .try_for_each(|task| validate(task, payload_limit))
}

/// Inserts `tasks` atomically: all of them, or (on a duplicate id or a store error) none.
pub(crate) fn enqueue_all(
    conn: &mut Connection,
    tasks: Vec<NewTask>,
    payload_limit: usize,
) -> Result<Vec<TaskId>, QueueError> {
    validate_all(&tasks, payload_limit)?;
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error("enqueue tasks"))?;
    let ids = insert_tasks(&tx, tasks, None, Timestamp::now())?;
    tx.commit().map_err(store_error("enqueue tasks"))?;
    Ok(ids)
}

/// Inserts validated `tasks` inside an open transaction, as `Pending` maps of `job` if
/// given, and counts them. Refuses an id that is stored or held back as the reduce of a
/// job still mapping; the caller's transaction, dropped, then undoes the whole batch.
pub(crate) fn insert_tasks(
    tx: &Connection,
    tasks: Vec<NewTask>,
    job: Option<&TaskId>,
    now: Timestamp,
) -> Result<Vec<TaskId>, QueueError> {
    let failed = store_error("enqueue tasks");
    let first_seq = next_seqs(tx, tasks.len()).map_err(store_error("enqueue tasks"))?;
    // One look at the (usually empty) held reduces spares plain batches a lookup per task.
    let any_held: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM held_reduces)")
        .and_then(|mut any| any.query_row([], |row| row.get(0)))
        .map_err(store_error("enqueue tasks"))?;
    let mut held = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM held_reduces WHERE id = ?1)")
        .map_err(store_error("enqueue tasks"))?;
    let mut ids = Vec::with_capacity(tasks.len());
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO tasks (id, name, payload, payload_checksum, status, priority, seq,
                     max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us,
                     jitter, demote_by, created_at, run_at, job_id)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .map_err(store_error("enqueue tasks"))?;
        for (offset, task) in (0i64..).zip(tasks) {
            if any_held {
                let taken: bool = held
                    .query_row([task.id.as_str()], |row| row.get(0))
                    .map_err(store_error("enqueue tasks"))?;
                if taken {
                    return Err(QueueError::DuplicateTask { id: task.id });
                }
            }
            let policy = PolicyColumns::of(&task.retry);
            let run_at = task.run_at.unwrap_or(now).max(now);
            let inserted = insert.execute(params![
                task.id.as_str(),
                task.name.as_str(),
                task.payload.as_slice(),
                payload_checksum(&task.payload),
                i64::from(task.priority.level()),
                first_seq + offset,
                policy.max_attempts,
                policy.backoff,
                policy.initial_us,
                policy.factor,
                policy.max_us,
                policy.jitter,
                policy.demote_by,
                micros(now),
                micros(run_at),
                job.map(TaskId::as_str),
            ]);
            match inserted {
                Ok(_) => ids.push(task.id),
                Err(err) if is_unique_violation(&err) => {
                    return Err(QueueError::DuplicateTask { id: task.id });
                }
                Err(err) => return Err(failed(err)),
            }
        }
    }
    let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    Deltas {
        submitted: count,
        pending: count,
        ..Deltas::default()
    }
    .apply(tx)
    .map_err(store_error("enqueue tasks"))?;
    Ok(ids)
}
