//! Reserve: rescue lapsed leases, then lease the first due tasks in queue order, in one
//! `BEGIN IMMEDIATE` transaction so that no two workers (threads or processes) get the same task.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use workmill_core::{
    Failure, FailureKind, Lease, QueueError, Reservation, TaskId, TaskStatus, Timestamp, WorkerId,
};

use super::counters::{Deltas, next_tokens};
use super::failure::{apply_failure, finish_dead};
use super::job_bookkeeping;
use super::row::{
    POLICY_COLUMNS, attempts, job_link, placeholder_id, priority, read_policy, read_record,
    record_columns,
};
use super::store::{micros, parse_status, store_error, transition};

const OP: &str = "reserve tasks";

/// Up to `?2` due tasks in queue order.
///
/// The limit is bound, so one cached statement serves every batch size (a worker's batch
/// size adapts from round to round), and written `+?2`, not `?2`: SQLite reads a bare bound
/// `LIMIT` while planning and then prepares the statement again each time a value is bound
/// to it, which cost a tenth of a reserve; the unary plus hides the value from the planner.
/// The plan does not need it: the `tasks_ready` index gives the order, and the scan stops
/// after the limit (`tests.rs` checks both the plan and that no run prepares it again).
pub(super) const READY: &str = concat!(
    "SELECT ",
    record_columns!(),
    " FROM tasks WHERE status IN ('pending', 'retrying') AND run_at <= ?1 \
     ORDER BY priority, seq LIMIT +?2"
);

/// Leases up to `max` due tasks to `worker`.
///
/// Taking the write lock first (`BEGIN IMMEDIATE`) matters: a deferred
/// transaction would read the candidates under a shared lock and then fail to
/// upgrade with `SQLITE_BUSY` when another process got there first, which no
/// busy timeout can resolve. With the lock taken up front, the second writer
/// waits, and then reads the rows the first one left.
pub(crate) fn reserve(
    conn: &mut Connection,
    worker: &WorkerId,
    max: usize,
    lease: Duration,
    retention: Option<u64>,
) -> Result<Vec<Reservation>, QueueError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let now = Timestamp::now();
    let mut deltas = Deltas::default();
    rescue_lapsed(&tx, now, &mut deltas)?;

    let candidates = {
        let mut select = tx.prepare_cached(READY).map_err(store_error(OP))?;
        let rows = select
            .query_map(
                params![micros(now), i64::try_from(max).unwrap_or(i64::MAX)],
                |row| {
                    let rowid: i64 = row.get(0)?;
                    let status: String = row.get(5)?;
                    Ok((rowid, status, read_record(row)?))
                },
            )
            .map_err(store_error(OP))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(store_error(OP))?
    };

    let first_token = next_tokens(&tx, candidates.len()).map_err(store_error(OP))?;
    let expires_at = now.saturating_add(lease);
    let mut reserved = Vec::with_capacity(candidates.len());
    for ((rowid, status_text, stored), token) in candidates.into_iter().zip(first_token..) {
        let id = match &stored {
            Ok(record) => record.id.clone(),
            Err(QueueError::Corrupt { id, .. }) => id.clone(),
            Err(_) => placeholder_id(rowid),
        };
        let from = parse_status(&id, &status_text).unwrap_or(TaskStatus::Pending);
        transition(&id, from, TaskStatus::Running)?;
        // Every update below claims the row only if it still waits: dead-lettering an
        // unreadable map earlier in this batch cancels its job's waiting maps, which may be
        // later candidates of the same batch.
        let record = match stored {
            Ok(record) => record,
            Err(err) => {
                // An unreadable task is never handed out: it is dead-lettered here, as a
                // failed attempt, and the other candidates go on.
                tracing::warn!(task = %id, error = %err, "dead-lettering a task whose stored record is corrupt");
                if dead_letter_corrupt(&tx, rowid, &id, worker, now, &err.to_string(), &mut deltas)?
                {
                    deltas.moved(from, TaskStatus::Running);
                }
                continue;
            }
        };
        let claimed = tx
            .prepare_cached(
                "UPDATE tasks SET status = 'running', attempts = attempts + 1, started_at = ?1,
                 worker = ?2, lease_token = ?3, lease_expires_at = ?4
             WHERE rowid = ?5 AND status IN ('pending', 'retrying')",
            )
            .and_then(|mut update| {
                update.execute(params![
                    micros(now),
                    worker.as_str(),
                    token,
                    micros(expires_at),
                    rowid
                ])
            })
            .map_err(store_error(OP))?;
        if claimed == 0 {
            continue;
        }
        deltas.moved(from, TaskStatus::Running);
        reserved.push(Reservation {
            lease: Lease {
                task: record.id,
                token: u64::try_from(token).unwrap_or(0),
                expires_at,
            },
            name: record.name,
            payload: record.payload,
            priority: record.priority,
            attempt: record.attempts.saturating_add(1),
            retry: record.retry,
        });
    }
    deltas.apply(&tx).map_err(store_error(OP))?;
    super::admin::evict_over_retention(&tx, retention, &deltas)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(reserved)
}

/// Moves a waiting task whose record cannot be read to `Dead`, counting an attempt and the
/// move out of `Running` (the caller counts the move into it); false, and nothing done, if
/// it no longer waits (an earlier dead-letter in the same batch cancelled it with its job).
///
/// Its retry policy is not consulted: the failure kind `Corrupt` is permanent,
/// so every policy gives up, and the policy columns may be what is damaged.
fn dead_letter_corrupt(
    conn: &Connection,
    rowid: i64,
    id: &TaskId,
    worker: &WorkerId,
    now: Timestamp,
    detail: &str,
    deltas: &mut Deltas,
) -> Result<bool, QueueError> {
    debug_assert!(FailureKind::Corrupt.is_permanent());
    transition(id, TaskStatus::Running, TaskStatus::Dead)?;
    // The job link is read as text whatever the damage: a job must not wait for a dead map.
    let updated: Option<Option<String>> = conn
        .prepare_cached(
            "UPDATE tasks SET status = 'dead', attempts = attempts + 1, started_at = ?1,
                 finished_at = ?1, worker = ?2, lease_token = NULL, lease_expires_at = NULL,
                 last_error_kind = 'corrupt', last_error_message = ?3
             WHERE rowid = ?4 AND status IN ('pending', 'retrying')
             RETURNING CAST(job_id AS TEXT)",
        )
        .and_then(|mut update| {
            update
                .query_row(
                    params![micros(now), worker.as_str(), detail, rowid],
                    |row| Ok(job_link(row, 0, id)),
                )
                .optional()
        })
        .map_err(store_error(OP))?;
    let Some(job) = updated else {
        return Ok(false);
    };
    deltas.moved(TaskStatus::Running, TaskStatus::Dead);
    deltas.failed_attempts += 1;
    if let Some(job) = job {
        let failure = Failure::new(FailureKind::Corrupt, detail);
        job_bookkeeping::task_dead(conn, &job, id, &failure, now, deltas)
            .map_err(store_error(OP))?;
    }
    Ok(true)
}

/// Treats every lease that lapsed by `now` as a failed attempt of kind `LeaseExpired`.
pub(crate) fn rescue_lapsed(
    conn: &Connection,
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<u64, QueueError> {
    const OP: &str = "rescue lapsed leases";
    let lapsed = {
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT rowid, id, attempts, priority, worker, lease_token, {POLICY_COLUMNS}
                 FROM tasks WHERE status = 'running' AND lease_expires_at <= ?1"
            ))
            .map_err(store_error(OP))?;
        let rows = select
            .query_map([micros(now)], |row| {
                let rowid: i64 = row.get(0)?;
                let id = row
                    .get::<_, String>(1)
                    .ok()
                    .and_then(|id| TaskId::new(id).ok())
                    .unwrap_or_else(|| placeholder_id(rowid));
                let worker: Option<String> = row.get(4).unwrap_or(None);
                let token = row
                    .get::<_, Option<i64>>(5)
                    .map_err(|error| format!("column lease_token: {error}"));
                let state =
                    attempts(row, 2).and_then(|a| Ok((a, priority(row, 3)?, read_policy(row, 6)?)));
                Ok((rowid, id, worker, token, state))
            })
            .map_err(store_error(OP))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(store_error(OP))?
    };
    let rescued = lapsed.len() as u64;
    for (rowid, id, worker, token, state) in lapsed {
        deltas.expired_leases += 1;
        deltas.failed_attempts += 1;
        let holder = worker.as_deref().unwrap_or("an unknown worker");
        // A running row without a lease token (only a hand edit leaves one) is damaged like
        // an unreadable one: no worker can hold its lease, so it is dead-lettered, as the
        // PostgreSQL backend does, rather than retried as if a worker had lost it.
        let (token, state) = match token {
            Ok(Some(token)) => (token, state),
            Ok(None) => (
                0,
                Err(format!(
                    "column lease_token: NULL, though the task is running (leased to {holder}); \
                     no worker can hold its lease; requeue the task to run it again"
                )),
            ),
            Err(detail) => (0, Err(detail)),
        };
        let message = format!(
            "lease {token} held by {holder} lapsed without a heartbeat (the worker died, hung or lost the store)"
        );
        let (attempts_made, current, policy) = match state {
            Ok(state) => state,
            Err(detail) => {
                transition(&id, TaskStatus::Running, TaskStatus::Dead)?;
                deltas.moved(TaskStatus::Running, TaskStatus::Dead);
                finish_dead(
                    conn,
                    rowid,
                    &id,
                    now,
                    &Failure::new(FailureKind::Corrupt, detail),
                    deltas,
                )?;
                continue;
            }
        };
        let failure = Failure::new(FailureKind::LeaseExpired, message);
        apply_failure(
            conn,
            rowid,
            &id,
            attempts_made,
            current,
            &policy,
            failure,
            now,
            deltas,
        )?;
    }
    Ok(rescued)
}
