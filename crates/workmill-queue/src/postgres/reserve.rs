//! Reserve: lease the first due tasks in queue order in one statement (`FOR UPDATE SKIP LOCKED`),
//! dead-letter any whose stored bytes are damaged, and rescue lapsed leases when there are some.

use std::time::Duration;

use postgres::Row;
use workmill_core::{
    Failure, FailureKind, Lease, Payload, Priority, QueueError, Reservation, TaskName, TaskStatus,
    Timestamp, WorkerId,
};

use super::counters::{any_shard, evict_over_retention};
use super::failure::{FailedAttempt, record_failures};
use super::pool::Session;
use super::row::{attempts, check_payload, get, policy_columns, priority, read_policy};
use super::store::{micros, readable_id, store_error};
use super::wakeup::notify;
use crate::stored::{Deltas, parse_status, transition};

const OP: &str = "reserve tasks";

/// Picks up to `$2` due tasks in queue order, skipping rows other reservers hold at this moment,
/// leases them to worker `$3` until `$4`, moves them out of the waiting gauges into `running`,
/// and says whether any lease has lapsed: one statement, so one implicit transaction.
///
/// `picked` locks the rows it returns (`FOR UPDATE SKIP LOCKED` under `LIMIT`: the lock comes
/// before the limit, so locked rows are skipped, not counted). A row another reserver committed
/// meanwhile is re-read and no longer matches `status IN (...)`, so no task is handed out twice.
/// The statuses are the ones `TaskStatus::transition` lets become `running` (a unit test keeps
/// this list and the table in step). The counters update runs only if something was claimed, so
/// an idle poll writes nothing.
const CLAIM: &str = concat!(
    "
WITH picked AS (
    SELECT id, status AS was FROM {s}.tasks
    WHERE status IN ('pending', 'retrying') AND run_at <= $1
    ORDER BY priority, seq
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {s}.tasks AS t
    SET status = 'running', attempts = t.attempts + 1, started_at = $1, worker = $3,
        lease_token = nextval('{s}.lease_tokens'), lease_expires_at = $4
    FROM picked WHERE t.id = picked.id
    RETURNING t.id, picked.was, t.name, t.payload, t.payload_checksum, t.priority, t.seq,
        t.attempts, t.lease_token, ",
    policy_columns!(),
    "
), counted AS (
    UPDATE {s}.queue_counters AS counters
    SET pending = counters.pending - moved.pending,
        retrying = counters.retrying - moved.retrying,
        running = counters.running + moved.pending + moved.retrying
    FROM (SELECT count(*) FILTER (WHERE was = 'pending') AS pending,
                 count(*) FILTER (WHERE was = 'retrying') AS retrying
          FROM claimed) AS moved
    WHERE counters.shard = $5 AND moved.pending + moved.retrying > 0
)
SELECT lapsed.any, claimed.*
FROM (SELECT EXISTS (SELECT 1 FROM {s}.tasks
                     WHERE status = 'running' AND lease_expires_at <= $1) AS any) AS lapsed
LEFT JOIN claimed ON true"
);

/// The statuses `CLAIM` reserves from, as written in it.
#[cfg(test)]
pub(crate) const CLAIMED_FROM: [TaskStatus; 2] = [TaskStatus::Pending, TaskStatus::Retrying];

/// A claimed task that reads back intact, with its place in line.
struct Claimed {
    reservation: Reservation,
    priority: Priority,
    seq: i64,
}

/// Leases up to `max` due tasks to `worker`, in queue order.
pub(crate) fn reserve(
    session: &mut Session,
    worker: &WorkerId,
    max: usize,
    lease: Duration,
) -> Result<Vec<Reservation>, QueueError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let (mut claimed, lapsed) = claim(session, worker, max, lease)?;
    if lapsed {
        // A rescue is housekeeping on behalf of other workers: if it fails, the tasks this
        // worker already holds are still its to run, and the next reserve tries again.
        match super::rescue::rescue_lapsed(session, Timestamp::now()) {
            Ok(_) if claimed.len() < max => {
                match claim(session, worker, max - claimed.len(), lease) {
                    Ok((more, _)) => claimed.extend(more),
                    Err(err) => {
                        tracing::warn!(error = %err, "a second reserve after a rescue failed")
                    }
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "rescuing lapsed leases failed"),
        }
    }
    claimed.sort_by_key(|c| (c.priority, c.seq));
    Ok(claimed.into_iter().map(|c| c.reservation).collect())
}

/// Runs `CLAIM` once; returns the intact tasks and whether a lease has lapsed.
fn claim(
    session: &mut Session,
    worker: &WorkerId,
    max: usize,
    lease: Duration,
) -> Result<(Vec<Claimed>, bool), QueueError> {
    let now = Timestamp::now();
    let expires_at = now.saturating_add(lease);
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let Session {
        client,
        statements,
        settings,
    } = session;
    let select = statements
        .get(client, settings, CLAIM)
        .map_err(store_error(OP))?;
    let rows = client
        .query(
            &select,
            &[
                &micros(now),
                &limit,
                &worker.as_str(),
                &micros(expires_at),
                &any_shard(),
            ],
        )
        .map_err(store_error(OP))?;
    let lapsed = rows
        .first()
        .and_then(|row| row.try_get::<_, bool>(0).ok())
        .unwrap_or(false);
    let mut claimed = Vec::with_capacity(rows.len());
    let mut corrupt = Vec::new();
    for row in &rows {
        let Some(stored_id) = row
            .try_get::<_, Option<String>>(1)
            .map_err(store_error(OP))?
        else {
            continue; // The one row of an empty claim: nothing was due.
        };
        let from = parse_status(
            &readable_id(&stored_id),
            get(row, 2, "was").unwrap_or("pending"),
        )?;
        transition(&readable_id(&stored_id), from, TaskStatus::Running)?;
        match read_claimed(row, &stored_id, expires_at) {
            Ok(task) => claimed.push(task),
            Err(detail) => {
                tracing::warn!(task = %readable_id(&stored_id), %detail, "dead-lettering a task whose stored record is corrupt");
                corrupt.push(FailedAttempt {
                    id: readable_id(&stored_id),
                    // The claim has just written the token; an unreadable one matches no row.
                    token: Some(row.try_get(9).unwrap_or(-1)),
                    attempts_made: attempts(row, 8).unwrap_or(1),
                    priority: priority(row, 6).unwrap_or_default(),
                    policy: Err(detail.clone()),
                    failure: Failure::new(FailureKind::Corrupt, detail),
                    stored_id,
                });
            }
        }
    }
    if !corrupt.is_empty()
        && let Err(err) = dead_letter(session, corrupt)
    {
        // They stay leased to this worker and come back when the lease lapses.
        tracing::warn!(error = %err, "dead-lettering corrupt tasks failed");
    }
    Ok((claimed, lapsed))
}

/// Reads one claimed row, or says which column is damaged.
fn read_claimed(row: &Row, stored_id: &str, expires_at: Timestamp) -> Result<Claimed, String> {
    let id = workmill_core::TaskId::new(stored_id).map_err(|e| format!("column id: {e}"))?;
    // Checked where it lies in the row, and copied once, into the reservation's payload.
    let payload: &[u8] = get(row, 4, "payload")?;
    check_payload(payload, get(row, 5, "payload_checksum")?)?;
    let token: i64 = get(row, 9, "lease_token")?;
    let priority = priority(row, 6)?;
    Ok(Claimed {
        reservation: Reservation {
            lease: Lease {
                task: id,
                token: u64::try_from(token).map_err(|_| "column lease_token: negative")?,
                expires_at,
            },
            name: TaskName::from(get::<&str>(row, 3, "name")?),
            payload: Payload::copy_from_slice(payload),
            priority,
            attempt: attempts(row, 8)?,
            retry: read_policy(row, 10)?,
        },
        priority,
        seq: get(row, 7, "seq")?,
    })
}

/// Moves tasks this worker just claimed but cannot run to `dead`, as failed attempts of kind
/// `Corrupt`, in their own transaction.
fn dead_letter(session: &mut Session, corrupt: Vec<FailedAttempt>) -> Result<(), QueueError> {
    const OP: &str = "dead-letter corrupt tasks";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let mut tx = client.transaction().map_err(store_error(OP))?;
    let mut deltas = Deltas::default();
    record_failures(
        &mut tx,
        statements,
        settings,
        corrupt,
        Timestamp::now(),
        &mut deltas,
    )?;
    evict_over_retention(&mut tx, statements, settings, &mut deltas)?;
    deltas.add_to_shard(&mut tx, statements, settings)?;
    notify(&mut tx, statements, settings, &settings.done_channel)?;
    tx.commit().map_err(store_error(OP))
}
