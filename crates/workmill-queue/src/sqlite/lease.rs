//! The operations a lease holder performs: heartbeat (one or a batch), complete (one or a batch), fail and release.
//!
//! Each one first proves that the task is still `Running` under the caller's
//! token, in the same transaction that changes it, so a worker whose lease was
//! rescued and handed to someone else gets `LeaseLost` and changes nothing.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use workmill_core::{FailOutcome, Failure, Lease, QueueError, TaskStatus, Timestamp};

use super::counters::Deltas;
use super::failure::apply_failure;
use super::job_bookkeeping;
use super::row::{POLICY_COLUMNS, attempts, job_link, priority, read_policy};
use super::store::{micros, sql_token, store_error, transition};

/// Why a lease check found no held lease: the task is gone, or held under another token.
fn not_held(conn: &Connection, lease: &Lease, op: &'static str) -> QueueError {
    let exists = conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")
        .and_then(|mut select| {
            select
                .query_row([lease.task.as_str()], |_| Ok(()))
                .optional()
        });
    match exists {
        Ok(Some(())) => QueueError::LeaseLost {
            id: lease.task.clone(),
            token: lease.token,
        },
        Ok(None) => QueueError::NotFound {
            id: lease.task.clone(),
        },
        Err(err) => store_error(op)(err),
    }
}

/// Extends the lease to `extend` from now: from when the write lock is taken, so that time
/// spent waiting for another writer does not come off the extension.
pub(crate) fn heartbeat(
    conn: &mut Connection,
    lease: &Lease,
    extend: Duration,
) -> Result<Lease, QueueError> {
    const OP: &str = "extend a lease";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let extended = extend_in(&tx, lease, Timestamp::now().saturating_add(extend))?;
    tx.commit().map_err(store_error(OP))?;
    Ok(extended)
}

/// Extends every lease to `extend` from now in one write transaction; each entry reports
/// its own lease. A store failure rolls the whole batch back.
pub(crate) fn heartbeat_all(
    conn: &mut Connection,
    leases: &[Lease],
    extend: Duration,
) -> Result<Vec<Result<Lease, QueueError>>, QueueError> {
    const OP: &str = "extend leases";
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    // Counted from after the write lock is taken, so time spent waiting for it is not lost.
    let expires_at = Timestamp::now().saturating_add(extend);
    let mut outcomes = Vec::with_capacity(leases.len());
    for lease in leases {
        match extend_in(&tx, lease, expires_at) {
            Err(err @ QueueError::Backend { .. }) => return Err(err),
            outcome => outcomes.push(outcome),
        }
    }
    tx.commit().map_err(store_error(OP))?;
    Ok(outcomes)
}

/// Sets a held lease's expiry to `expires_at`.
fn extend_in(conn: &Connection, lease: &Lease, expires_at: Timestamp) -> Result<Lease, QueueError> {
    const OP: &str = "extend a lease";
    let changed = conn
        .prepare_cached(
            "UPDATE tasks SET lease_expires_at = ?1
             WHERE id = ?2 AND status = 'running' AND lease_token = ?3",
        )
        .and_then(|mut update| {
            update.execute(params![
                micros(expires_at),
                lease.task.as_str(),
                sql_token(lease.token)
            ])
        })
        .map_err(store_error(OP))?;
    if changed == 0 {
        return Err(not_held(conn, lease, OP));
    }
    Ok(Lease {
        expires_at,
        ..lease.clone()
    })
}

/// Marks one held task completed inside an open transaction.
fn complete_in(
    conn: &Connection,
    lease: &Lease,
    result: &[u8],
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<(), QueueError> {
    const OP: &str = "complete a task";
    transition(&lease.task, TaskStatus::Running, TaskStatus::Completed)?;
    // `RETURNING job_id` tells a job's task from a plain one without another query.
    let changed = conn
        .prepare_cached(
            "UPDATE tasks SET status = 'completed', finished_at = ?1, result = ?2,
                 lease_token = NULL, lease_expires_at = NULL
             WHERE id = ?3 AND status = 'running' AND lease_token = ?4
             RETURNING CAST(job_id AS TEXT)",
        )
        .and_then(|mut update| {
            update
                .query_row(
                    params![
                        micros(now),
                        result,
                        lease.task.as_str(),
                        sql_token(lease.token)
                    ],
                    |row| Ok(job_link(row, 0, &lease.task)),
                )
                .optional()
        })
        .map_err(store_error(OP))?;
    let Some(job) = changed else {
        return Err(not_held(conn, lease, OP));
    };
    deltas.moved(TaskStatus::Running, TaskStatus::Completed);
    if let Some(job) = job {
        job_bookkeeping::task_completed(conn, &job, &lease.task, result, now, deltas)
            .map_err(store_error(OP))?;
    }
    Ok(())
}

/// Records several successful attempts in one transaction; each entry reports its own task.
pub(crate) fn complete_all(
    conn: &mut Connection,
    done: Vec<(Lease, Vec<u8>)>,
    retention: Option<u64>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    const OP: &str = "complete tasks";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let now = Timestamp::now();
    let mut deltas = Deltas::default();
    let mut outcomes = Vec::with_capacity(done.len());
    for (lease, result) in &done {
        match complete_in(&tx, lease, result, now, &mut deltas) {
            // A store failure aborts the whole batch: nothing was recorded.
            Err(err @ QueueError::Backend { .. }) => return Err(err),
            outcome => outcomes.push(outcome),
        }
    }
    deltas.apply(&tx).map_err(store_error(OP))?;
    super::admin::evict_over_retention(&tx, retention, &deltas)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(outcomes)
}

/// Records a failed attempt; the task's policy decides between a retry and the dead-letter set.
pub(crate) fn fail(
    conn: &mut Connection,
    lease: &Lease,
    failure: Failure,
    retention: Option<u64>,
) -> Result<FailOutcome, QueueError> {
    const OP: &str = "record a failed attempt";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let held = tx
        .prepare_cached(&format!(
            "SELECT rowid, attempts, priority, {POLICY_COLUMNS} FROM tasks
             WHERE id = ?1 AND status = 'running' AND lease_token = ?2"
        ))
        .and_then(|mut select| {
            select
                .query_row(
                    params![lease.task.as_str(), sql_token(lease.token)],
                    |row| {
                        let rowid: i64 = row.get(0)?;
                        Ok((
                            rowid,
                            attempts(row, 1)
                                .and_then(|a| Ok((a, priority(row, 2)?, read_policy(row, 3)?))),
                        ))
                    },
                )
                .optional()
        })
        .map_err(store_error(OP))?;
    let Some((rowid, state)) = held else {
        return Err(not_held(&tx, lease, OP));
    };
    let (attempts_made, current, policy) = state.map_err(|detail| QueueError::Corrupt {
        id: lease.task.clone(),
        detail,
    })?;
    let mut deltas = Deltas::default();
    deltas.failed_attempts += 1;
    let outcome = apply_failure(
        &tx,
        rowid,
        &lease.task,
        attempts_made,
        current,
        &policy,
        failure,
        Timestamp::now(),
        &mut deltas,
    )?;
    deltas.apply(&tx).map_err(store_error(OP))?;
    super::admin::evict_over_retention(&tx, retention, &deltas)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(outcome)
}

/// Hands an unstarted task back to `Pending`, uncounting the attempt; it keeps its place in line.
pub(crate) fn release(conn: &mut Connection, lease: &Lease) -> Result<(), QueueError> {
    const OP: &str = "release a task";
    transition(&lease.task, TaskStatus::Running, TaskStatus::Pending)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let changed = tx
        .prepare_cached(
            "UPDATE tasks SET status = 'pending', attempts = max(attempts - 1, 0),
                 lease_token = NULL, lease_expires_at = NULL,
                 started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,
                 worker = CASE WHEN attempts <= 1 THEN NULL ELSE worker END
             WHERE id = ?1 AND status = 'running' AND lease_token = ?2",
        )
        .and_then(|mut update| update.execute(params![lease.task.as_str(), sql_token(lease.token)]))
        .map_err(store_error(OP))?;
    if changed == 0 {
        return Err(not_held(&tx, lease, OP));
    }
    let mut deltas = Deltas::default();
    deltas.moved(TaskStatus::Running, TaskStatus::Pending);
    deltas.apply(&tx).map_err(store_error(OP))?;
    tx.commit().map_err(store_error(OP))?;
    Ok(())
}
