//! The `queue_counters` row: exact stats kept in the same transaction as the task rows they count,
//! and the arrival numbers and lease tokens handed out from it.

use rusqlite::{Connection, params};
use workmill_core::{QueueStats, TaskStatus};

/// Changes to the counters made by one transaction, applied in one `UPDATE` before it commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deltas {
    pub(crate) submitted: i64,
    pub(crate) pending: i64,
    pub(crate) retrying: i64,
    pub(crate) running: i64,
    pub(crate) completed: i64,
    pub(crate) dead: i64,
    pub(crate) cancelled: i64,
    pub(crate) failed_attempts: i64,
    pub(crate) retried: i64,
    pub(crate) expired_leases: i64,
    pub(crate) evicted: i64,
    pub(crate) retained_finished: i64,
}

impl Deltas {
    /// The gauge counting tasks in `status`.
    pub(crate) fn gauge(&mut self, status: TaskStatus) -> &mut i64 {
        match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::Retrying => &mut self.retrying,
            TaskStatus::Running => &mut self.running,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Dead => &mut self.dead,
            TaskStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// Counts one task moving from `from` to `to`; finished records are stored until evicted.
    pub(crate) fn moved(&mut self, from: TaskStatus, to: TaskStatus) {
        *self.gauge(from) -= 1;
        *self.gauge(to) += 1;
        if from.is_final() {
            self.retained_finished -= 1;
        }
        if to.is_final() {
            self.retained_finished += 1;
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_keep_the_gauges_balanced() {
        let mut deltas = Deltas::default();
        deltas.moved(TaskStatus::Pending, TaskStatus::Running);
        deltas.moved(TaskStatus::Running, TaskStatus::Completed);
        assert_eq!(deltas.pending, -1);
        assert_eq!(deltas.running, 0);
        assert_eq!(deltas.completed, 1);
        assert_eq!(deltas.retained_finished, 1);
        deltas.moved(TaskStatus::Running, TaskStatus::Dead);
        deltas.moved(TaskStatus::Dead, TaskStatus::Pending);
        assert_eq!(
            deltas.retained_finished, 1,
            "a requeued record is no longer finished"
        );
        let sum = deltas.pending
            + deltas.retrying
            + deltas.running
            + deltas.completed
            + deltas.dead
            + deltas.cancelled;
        assert_eq!(sum, 0, "moves never change the number of tasks");
    }
}
