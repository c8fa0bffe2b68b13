//! The sharded `queue_counters` table: exact stats written in the same transaction as the task rows
//! they count, the retention bound that reads them, and the stats read in one snapshot.

use postgres::GenericClient;
use workmill_core::{QueueError, QueueStats};

use super::pool::{Settings, Statements};
use super::schema::COUNTER_SHARDS;
use super::store::store_error;
use crate::stored::Deltas;

/// The shard a transaction adds its changes to: any will do, since stats are the sums.
pub(crate) fn any_shard() -> i16 {
    fastrand::i16(0..COUNTER_SHARDS)
}

const ADD_TO_SHARD: &str = "
UPDATE {s}.queue_counters SET
    submitted = submitted + $1, pending = pending + $2, retrying = retrying + $3,
    running = running + $4, completed = completed + $5, dead = dead + $6,
    cancelled = cancelled + $7, failed_attempts = failed_attempts + $8,
    retried = retried + $9, expired_leases = expired_leases + $10,
    evicted = evicted + $11, retained_finished = retained_finished + $12
WHERE shard = $13";

impl Deltas {
    /// Adds the changes to one shard. Callers write the counters last in their transaction,
    /// after every task row: a transaction holding a shard's row lock then waits for nothing,
    /// so shard locks never take part in a deadlock.
    pub(crate) fn add_to_shard(
        &self,
        client: &mut impl GenericClient,
        statements: &mut Statements,
        settings: &Settings,
    ) -> Result<(), QueueError> {
        const OP: &str = "update the counters";
        if *self == Deltas::default() {
            return Ok(());
        }
        let update = statements
            .get(client, settings, ADD_TO_SHARD)
            .map_err(store_error(OP))?;
        client
            .execute(
                &update,
                &[
                    &self.submitted,
                    &self.pending,
                    &self.retrying,
                    &self.running,
                    &self.completed,
                    &self.dead,
                    &self.cancelled,
                    &self.failed_attempts,
                    &self.retried,
                    &self.expired_leases,
                    &self.evicted,
                    &self.retained_finished,
                    &any_shard(),
                ],
            )
            .map_err(store_error(OP))?;
        Ok(())
    }
}

const EVICT: &str = "
WITH evicted AS (
    DELETE FROM {s}.tasks WHERE id IN (
        SELECT id FROM {s}.tasks
        WHERE status IN ('completed', 'dead', 'cancelled')
        ORDER BY finished_at, submission
        LIMIT (SELECT CASE WHEN excess > 0 THEN excess + $3::bigint ELSE 0 END
               FROM (SELECT (SELECT coalesce(sum(retained_finished), 0) FROM {s}.queue_counters)
                            + $1::bigint - $2::bigint AS excess) AS over)::bigint
        FOR UPDATE SKIP LOCKED)
    RETURNING 1)
SELECT count(*) FROM evicted";

/// Drops the oldest finished records beyond the bound, inside a transaction that finished some
/// (`deltas` not yet written); the dropped records stay counted in their status gauges.
///
/// Once over the bound, it drops the excess and a slack of 1/64 of the bound more (see
/// [`Settings::retention_slack`]), so that the walk to the oldest records, which steps over
/// the dead index entries of every record evicted since the last vacuum, happens once per
/// slack's worth of finished tasks rather than in every finishing transaction.
///
/// Rows another transaction is evicting at the same moment are skipped, never waited for, so
/// two finishing transactions never deadlock here. Each computes its excess from the counts it
/// can see, so under concurrency the bound may be exceeded briefly, by at most what the other
/// transactions finished, until the next finishing transaction catches up.
pub(crate) fn evict_over_retention(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    deltas: &mut Deltas,
) -> Result<(), QueueError> {
    const OP: &str = "apply the retention bound";
    let Some(bound) = settings.retention() else {
        return Ok(());
    };
    if deltas.retained_finished <= 0 {
        return Ok(());
    }
    let evict = statements
        .get(client, settings, EVICT)
        .map_err(store_error(OP))?;
    let evicted: i64 = client
        .query_one(
            &evict,
            &[
                &deltas.retained_finished,
                &bound,
                &settings.retention_slack(),
            ],
        )
        .and_then(|row| row.try_get(0))
        .map_err(store_error(OP))?;
    deltas.evicted += evicted;
    deltas.retained_finished -= evicted;
    Ok(())
}

const STATS: &str = "
SELECT coalesce(sum(submitted), 0)::bigint, coalesce(sum(pending), 0)::bigint,
       coalesce(sum(retrying), 0)::bigint, coalesce(sum(running), 0)::bigint,
       coalesce(sum(completed), 0)::bigint, coalesce(sum(dead), 0)::bigint,
       coalesce(sum(cancelled), 0)::bigint, coalesce(sum(failed_attempts), 0)::bigint,
       coalesce(sum(retried), 0)::bigint, coalesce(sum(expired_leases), 0)::bigint,
       coalesce(sum(evicted), 0)::bigint
FROM {s}.queue_counters";

/// The exact counts: the shard sums, read in one statement and so from one snapshot, which sees
/// every transaction's changes entirely or not at all.
pub(crate) fn read_stats(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
) -> Result<QueueStats, QueueError> {
    const OP: &str = "read the stats";
    let select = statements
        .get(client, settings, STATS)
        .map_err(store_error(OP))?;
    let row = client.query_one(&select, &[]).map_err(store_error(OP))?;
    // Sums of shards never go below zero; a hand-edited negative total reads as zero.
    let get = |i: usize| -> Result<u64, QueueError> {
        let value: i64 = row.try_get(i).map_err(store_error(OP))?;
        Ok(u64::try_from(value).unwrap_or(0))
    };
    Ok(QueueStats {
        submitted: get(0)?,
        pending: get(1)?,
        retrying: get(2)?,
        running: get(3)?,
        completed: get(4)?,
        dead: get(5)?,
        cancelled: get(6)?,
        failed_attempts: get(7)?,
        retried: get(8)?,
        expired_leases: get(9)?,
        evicted: get(10)?,
    })
}
