//! The operations a lease holder performs: heartbeat, complete (a batch in one statement), fail and
//! release. Each changes a row only while it is `running` under the caller's token, in the same
//! statement or transaction that checks it, so a worker whose lease was rescued changes nothing.

use std::collections::HashSet;
use std::time::Duration;

use postgres::GenericClient;
use workmill_core::{FailOutcome, Failure, Lease, QueueError, TaskStatus, Timestamp};

use super::counters::{any_shard, evict_over_retention};
use super::failure::{FailedAttempt, record_failures};
use super::pool::{Session, Settings, Statements};
use super::row::{attempts, policy_columns, priority, read_policy};
use super::store::{micros, sql_token, store_error};
use super::wakeup::notify;
use crate::stored::{Deltas, transition};

const EXISTS: &str = "SELECT id FROM {s}.tasks WHERE id = ANY($1)";

/// Why these leases are not held: each task is gone (`NotFound`) or held under another token.
fn not_held(
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

/// Completes every held lease of the batch, applies the retention bound, counts, and wakes
/// waiters, in one statement and so one round trip and one commit.
///
/// `evicted` sees the table as it was before this statement, so the records completed here are
/// not among its candidates; once over the bound it drops the excess and a slack of 1/64 of the
/// bound more (`$8`); `counted` adds both moves to one shard. See `evict_over_retention` in
/// `counters.rs` for the slack and for how concurrent evictions stay out of each other's way.
const COMPLETE: &str = "
WITH done AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS done(id, token, result)
), completed AS (
    UPDATE {s}.tasks AS t
    SET status = 'completed', finished_at = $4, result = done.result,
        lease_token = NULL, lease_expires_at = NULL
    FROM done
    WHERE t.id = done.id AND t.status = 'running' AND t.lease_token = done.token
    RETURNING t.id
), evicted AS (
    DELETE FROM {s}.tasks WHERE id IN (
        SELECT id FROM {s}.tasks
        WHERE status IN ('completed', 'dead', 'cancelled')
        ORDER BY finished_at, submission
        LIMIT (SELECT CASE WHEN $5::bigint IS NOT NULL AND excess > 0 THEN excess + $8::bigint
                           ELSE 0 END
               FROM (SELECT (SELECT coalesce(sum(retained_finished), 0) FROM {s}.queue_counters)
                            + (SELECT count(*) FROM completed) - $5::bigint AS excess) AS over)::bigint
        FOR UPDATE SKIP LOCKED)
    RETURNING 1
), counted AS (
    UPDATE {s}.queue_counters
    SET running = running - finished.n, completed = completed + finished.n,
        retained_finished = retained_finished + finished.n - dropped.n,
        evicted = evicted + dropped.n
    FROM (SELECT count(*) AS n FROM completed) AS finished,
         (SELECT count(*) AS n FROM evicted) AS dropped
    WHERE shard = $6 AND finished.n + dropped.n > 0
)
SELECT array(SELECT id FROM completed),
       CASE WHEN EXISTS (SELECT 1 FROM completed) THEN pg_notify($7, '') END";

/// Records several successful attempts in one statement; each entry reports its own task.
pub(crate) fn complete_all(
    session: &mut Session,
    done: Vec<(Lease, Vec<u8>)>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    const OP: &str = "complete tasks";
    if done.is_empty() {
        return Ok(Vec::new());
    }
    // The same lease twice in one batch completes once; the second entry finds it gone.
    let mut first = HashSet::with_capacity(done.len());
    let repeated: Vec<bool> = done
        .iter()
        .map(|(lease, _)| !first.insert((lease.task.as_str(), lease.token)))
        .collect();
    let (mut ids, mut tokens, mut results) = (Vec::new(), Vec::new(), Vec::new());
    for ((lease, result), &again) in done.iter().zip(&repeated) {
        transition(&lease.task, TaskStatus::Running, TaskStatus::Completed)?;
        if !again {
            ids.push(lease.task.as_str());
            tokens.push(sql_token(lease.token));
            results.push(result.as_slice());
        }
    }
    let Session {
        client,
        statements,
        settings,
    } = session;
    let update = statements
        .get(client, settings, COMPLETE)
        .map_err(store_error(OP))?;
    let row = client
        .query_one(
            &update,
            &[
                &ids,
                &tokens,
                &results,
                &micros(Timestamp::now()),
                &settings.retention(),
                &any_shard(),
                &settings.done_channel,
                &settings.retention_slack(),
            ],
        )
        .map_err(store_error(OP))?;
    let completed: HashSet<String> = row
        .try_get::<_, Vec<String>>(0)
        .map_err(store_error(OP))?
        .into_iter()
        .collect();
    let missed: Vec<&Lease> = done
        .iter()
        .zip(&repeated)
        .filter(|((lease, _), again)| **again || !completed.contains(lease.task.as_str()))
        .map(|((lease, _), _)| lease)
        .collect();
    let mut reasons = if missed.is_empty() {
        Vec::new()
    } else {
        not_held(client, statements, settings, &missed, OP)?
    }
    .into_iter();
    Ok(done
        .iter()
        .zip(&repeated)
        .map(|((lease, _), again)| {
            if !again && completed.contains(lease.task.as_str()) {
                Ok(())
            } else {
                Err(reasons.next().unwrap_or(QueueError::LeaseLost {
                    id: lease.task.clone(),
                    token: lease.token,
                }))
            }
        })
        .collect())
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
        token: sql_token(lease.token),
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
    lease_token = NULL, lease_expires_at = NULL
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
