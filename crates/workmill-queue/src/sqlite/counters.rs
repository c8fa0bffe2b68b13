//! The `queue_counters` row: exact stats kept in the same transaction as the task rows they count,
//! and the arrival numbers and lease tokens handed out from it.

use rusqlite::{Connection, params};
use workmill_core::QueueStats;

pub(crate) use crate::stored::Deltas;

impl Deltas {
    /// Writes the changes; a transaction that changed nothing writes nothing.
    pub(crate) fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        if *self == Deltas::default() {
            return Ok(());
        }
        conn.prepare_cached(
            "UPDATE queue_counters SET
                 submitted = submitted + ?1, pending = pending + ?2, retrying = retrying + ?3,
                 running = running + ?4, completed = completed + ?5, dead = dead + ?6,
                 cancelled = cancelled + ?7, failed_attempts = failed_attempts + ?8,
                 retried = retried + ?9, expired_leases = expired_leases + ?10,
                 evicted = evicted + ?11, retained_finished = retained_finished + ?12
             WHERE id = 1",
        )?
        .execute(params![
            self.submitted,
            self.pending,
            self.retrying,
            self.running,
            self.completed,
            self.dead,
            self.cancelled,
            self.failed_attempts,
            self.retried,
            self.expired_leases,
            self.evicted,
            self.retained_finished,
        ])?;
        Ok(())
    }
}

/// Hands out `count` consecutive arrival numbers and returns the first.
pub(crate) fn next_seqs(conn: &Connection, count: usize) -> rusqlite::Result<i64> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE queue_counters SET last_seq = last_seq + ?1 WHERE id = 1 RETURNING last_seq",
    )?
    .query_row([count], |row| row.get::<_, i64>(0))
    .map(|last| last - count + 1)
}

/// Hands out `count` fresh lease tokens and returns the first.
pub(crate) fn next_tokens(conn: &Connection, count: usize) -> rusqlite::Result<i64> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE queue_counters SET last_lease_token = last_lease_token + ?1 WHERE id = 1
         RETURNING last_lease_token",
    )?
    .query_row([count], |row| row.get::<_, i64>(0))
    .map(|last| last - count + 1)
}

/// How many finished records are stored now.
pub(crate) fn retained_finished(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT retained_finished FROM queue_counters WHERE id = 1")?
        .query_row([], |row| row.get(0))
}

/// Reads the stats row.
pub(crate) fn read_stats(conn: &Connection) -> rusqlite::Result<QueueStats> {
    conn.prepare_cached(
        "SELECT submitted, pending, retrying, running, completed, dead, cancelled,
                failed_attempts, retried, expired_leases, evicted
         FROM queue_counters WHERE id = 1",
    )?
    .query_row([], |row| {
        // Counters never go below zero; a hand-edited negative value reads as zero.
        let get = |i: usize| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
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
    })
}
