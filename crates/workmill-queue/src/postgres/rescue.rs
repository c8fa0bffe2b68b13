//! The rescuer: every lease that lapsed without a heartbeat becomes a failed attempt of kind
//! `LeaseExpired`, retried or dead-lettered by the task's own policy like any other failure.

use postgres::Row;
use workmill_core::{Failure, FailureKind, QueueError, Timestamp};

use super::counters::evict_over_retention;
use super::failure::{FailedAttempt, record_failures};
use super::pool::Session;
use super::row::{attempts, get, policy_columns, priority, read_policy};
use super::store::{micros, readable_id, store_error};
use super::wakeup::notify;
use crate::stored::Deltas;

/// How many lapsed leases one pass rescues; a pass is one transaction.
pub(crate) const RESCUE_BATCH: i64 = 500;

/// Locks the lapsed leases, oldest first. `SKIP LOCKED` leaves alone a row whose holder is
/// completing or extending it right now (and a row another rescuer has): the rescue never
/// waits, and a heartbeat that commits first wins, since the lock re-reads the row and a
/// renewed lease no longer matches.
const LAPSED: &str = concat!(
    "SELECT id, attempts, priority, worker, lease_token, ",
    policy_columns!(),
    "
FROM {s}.tasks
WHERE status = 'running' AND lease_expires_at <= $1
ORDER BY lease_expires_at
LIMIT $2
FOR UPDATE SKIP LOCKED"
);

/// Rescues up to [`RESCUE_BATCH`] leases that lapsed by `now`, in one transaction; returns how many.
pub(crate) fn rescue_lapsed(session: &mut Session, now: Timestamp) -> Result<u64, QueueError> {
    const OP: &str = "rescue lapsed leases";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    // As in `fail`: the table lock the updates need, before the row locks (see README.md,
    // "Lock order"); a rescue runs only when a lease has lapsed.
    tx.batch_execute(&settings.render("LOCK TABLE {s}.tasks IN ROW EXCLUSIVE MODE"))
        .map_err(store_error(OP))?;
    let select = statements
        .get(&mut tx, settings, LAPSED)
        .map_err(store_error(OP))?;
    let rows = tx
        .query(&select, &[&micros(now), &RESCUE_BATCH])
        .map_err(store_error(OP))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut lapsed = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored_id: String = row.try_get(0).map_err(store_error(OP))?;
        lapsed.push(lapsed_attempt(row, stored_id));
    }
    let mut deltas = Deltas::default();
    let outcomes = record_failures(&mut tx, statements, settings, lapsed, now, &mut deltas)?;
    let rescued = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
    deltas.expired_leases += i64::try_from(rescued).unwrap_or(i64::MAX);
    let any_retried = deltas.retried > 0;
    let any_dead = deltas.dead > 0;
    evict_over_retention(&mut tx, statements, settings, &mut deltas)?;
    deltas.add_to_shard(&mut tx, statements, settings)?;
    if any_retried {
        notify(&mut tx, statements, settings, &settings.work_channel)?;
    }
    if any_dead {
        notify(&mut tx, statements, settings, &settings.done_channel)?;
    }
    tx.commit().map_err(store_error(OP))?;
    Ok(rescued)
}

/// The failed attempt of one row of [`LAPSED`], whose id is `stored_id`.
///
/// A row that cannot be read fails only its own task: its attempt carries the damage as its
/// policy, so [`record_failures`] dead-letters it as `Corrupt` while the rest of the batch is
/// rescued. A running row without a lease token (only a hand edit leaves one) is such a row;
/// the rescue holds its lock, so it is addressed as running with no token.
fn lapsed_attempt(row: &Row, stored_id: String) -> FailedAttempt {
    let token = get::<Option<i64>>(row, 4, "lease_token");
    let holder: Option<String> = get(row, 3, "worker").unwrap_or(None);
    let holder = holder.as_deref().unwrap_or("an unknown worker");
    let state = match &token {
        Ok(Some(token)) => attempts(row, 1).and_then(|a| {
            let message = format!(
                "lease {token} held by {holder} lapsed without a heartbeat (the worker died, hung or lost the store)"
            );
            Ok((a, priority(row, 2)?, read_policy(row, 5)?, message))
        }),
        Ok(None) => Err(format!(
            "column lease_token: NULL, though the task is running (leased to {holder}); \
             no worker can hold its lease; requeue the task to run it again"
        )),
        Err(detail) => Err(detail.clone()),
    };
    let (attempts_made, current, policy, message) = match state {
        Ok((a, p, policy, message)) => (a, p, Ok(policy), message),
        Err(detail) => (1, Default::default(), Err(detail.clone()), detail),
    };
    FailedAttempt {
        id: readable_id(&stored_id),
        stored_id,
        token: token.ok().flatten(),
        attempts_made,
        priority: current,
        policy,
        failure: Failure::new(FailureKind::LeaseExpired, message),
    }
}
