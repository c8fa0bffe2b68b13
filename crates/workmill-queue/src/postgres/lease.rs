//! The operations a lease holder performs: heartbeat, fail and release (complete is in
//! `complete.rs`). Each changes a row only while it is `running` under the caller's token, in the same
//! statement or transaction that checks it, so a worker whose lease was rescued changes nothing.

use std::collections::HashSet;
use std::time::Duration;

use postgres::GenericClient;
use workmill_core::{FailOutcome, Failure, Lease, QueueError, TaskStatus, Timestamp};

use super::counters::evict_over_retention;
use super::failure::{FailedAttempt, record_failures};
use super::pool::{Session, Settings, Statements};
use super::row::{attempts, policy_columns, priority, read_policy};
use super::store::{micros, sql_token, store_error};
use super::wakeup::notify;
use crate::stored::{Deltas, transition};

const EXISTS: &str = "SELECT id FROM {s}.tasks WHERE id = ANY($1)";

/// Why these leases are not held: each task is gone (`NotFound`) or held under another token.
pub(crate) fn not_held(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    leases: &[&Lease],
    op: &'static str,
) -> Result<Vec<QueueError>, QueueError> {
    let ids: Vec<&str> = leases.iter().map(|l| l.task.as_str()).collect();
    let select = statements
        .get(client, settings, EXISTS)
        .map_err(store_error(op))?;
    let rows = client.query(&select, &[&ids]).map_err(store_error(op))?;
    let existing: HashSet<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    Ok(leases
        .iter()
        .map(|lease| {
            if existing.contains(lease.task.as_str()) {
                QueueError::LeaseLost {
                    id: lease.task.clone(),
                    token: lease.token,
                }
            } else {
                QueueError::NotFound {
                    id: lease.task.clone(),
                }
            }
        })
        .collect())
}

fn not_held_one(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    lease: &Lease,
    op: &'static str,
) -> QueueError {
    match not_held(client, statements, settings, &[lease], op) {
        Ok(mut reasons) => reasons.pop().unwrap_or(QueueError::LeaseLost {
            id: lease.task.clone(),
            token: lease.token,
        }),
        Err(err) => err,
    }
}

const HEARTBEAT: &str = "
UPDATE {s}.tasks SET lease_expires_at = $1
WHERE id = $2 AND status = 'running' AND lease_token = $3";

/// Extends the lease to `extend` from now.
pub(crate) fn heartbeat(
    session: &mut Session,
    lease: &Lease,
    extend: Duration,
) -> Result<Lease, QueueError> {
    const OP: &str = "extend a lease";
    let expires_at = Timestamp::now().saturating_add(extend);
    let Session {
        client,
        statements,
        settings,
    } = session;
    let update = statements
        .get(client, settings, HEARTBEAT)
        .map_err(store_error(OP))?;
    let changed = client
        .execute(
            &update,
            &[
                &micros(expires_at),
                &lease.task.as_str(),
                &sql_token(lease.token),
            ],
        )
        .map_err(store_error(OP))?;
    if changed == 0 {
        return Err(not_held_one(client, statements, settings, lease, OP));
    }
    Ok(Lease {
        expires_at,
        ..lease.clone()
    })
}

const HELD: &str = concat!(
    "SELECT attempts, priority, ",
    policy_columns!(),
    " FROM {s}.tasks WHERE id = $1 AND status = 'running' AND lease_token = $2 FOR UPDATE"
);

/// Records a failed attempt; the task's policy decides between a retry and the dead-letter set.
pub(crate) fn fail(
    session: &mut Session,
    lease: &Lease,
    failure: Failure,
) -> Result<FailOutcome, QueueError> {
    const OP: &str = "record a failed attempt";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    // The table lock that the update below needs, taken before the row lock: a purge takes
    // SHARE ROW EXCLUSIVE and then waits for this task's row, so asking for ROW EXCLUSIVE
    // after the row lock would close a cycle (see README.md, "Lock order").
    tx.batch_execute(&settings.render("LOCK TABLE {s}.tasks IN ROW EXCLUSIVE MODE"))
        .map_err(store_error(OP))?;
    let select = statements
        .get(&mut tx, settings, HELD)
        .map_err(store_error(OP))?;
    let held = tx
        .query_opt(&select, &[&lease.task.as_str(), &sql_token(lease.token)])
        .map_err(store_error(OP))?;
    let Some(row) = held else {
        return Err(not_held_one(&mut tx, statements, settings, lease, OP));
    };
    let state = attempts(&row, 0)
        .and_then(|a| Ok((a, priority(&row, 1)?)))
        .map_err(|detail| QueueError::Corrupt {
            id: lease.task.clone(),
            detail,
        })?;
    let attempt = FailedAttempt {
        stored_id: lease.task.as_str().to_owned(),
        id: lease.task.clone(),
        token: Some(sql_token(lease.token)),
        attempts_made: state.0,
        priority: state.1,
        policy: read_policy(&row, 2),
        failure,
    };
    let mut deltas = Deltas::default();
    let now = Timestamp::now();
    let outcome = record_failures(
        &mut tx,
        statements,
        settings,
        vec![attempt],
        now,
        &mut deltas,
    )?
    .pop()
    .unwrap_or_else(|| {
        Err(QueueError::backend(
            super::store::BACKEND,
            OP,
            "no outcome reported",
        ))
    })?;
    evict_over_retention(&mut tx, statements, settings, &mut deltas)?;
    deltas.add_to_shard(&mut tx, statements, settings)?;
    let channel = match outcome {
        FailOutcome::Retrying { .. } => &settings.work_channel,
        FailOutcome::Dead => &settings.done_channel,
    };
    notify(&mut tx, statements, settings, channel)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(outcome)
}

const RELEASE: &str = "
UPDATE {s}.tasks
SET status = 'pending', attempts = greatest(attempts - 1, 0),
    lease_token = NULL, lease_expires_at = NULL,
    started_at = CASE WHEN attempts <= 1 THEN NULL ELSE started_at END,
    worker = CASE WHEN attempts <= 1 THEN NULL ELSE worker END
WHERE id = $1 AND status = 'running' AND lease_token = $2";

/// Hands an unstarted task back to `pending`, uncounting the attempt; it keeps its place in line.
pub(crate) fn release(session: &mut Session, lease: &Lease) -> Result<(), QueueError> {
    const OP: &str = "release a task";
    transition(&lease.task, TaskStatus::Running, TaskStatus::Pending)?;
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    let update = statements
        .get(&mut tx, settings, RELEASE)
        .map_err(store_error(OP))?;
    let changed = tx
        .execute(&update, &[&lease.task.as_str(), &sql_token(lease.token)])
        .map_err(store_error(OP))?;
    if changed == 0 {
        return Err(not_held_one(&mut tx, statements, settings, lease, OP));
    }
    let mut deltas = Deltas::default();
    deltas.moved(TaskStatus::Running, TaskStatus::Pending);
    deltas.add_to_shard(&mut tx, statements, settings)?;
    notify(&mut tx, statements, settings, &settings.work_channel)?;
    tx.commit().map_err(store_error(OP))
}
