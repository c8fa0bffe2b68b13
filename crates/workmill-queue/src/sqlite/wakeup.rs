//! Wake-ups for `await_work` and `wait` on SQLite, which has no notifications: a `Doorbell`
//! rung by this queue value's own writes, and, for writes by other processes (or other queue
//! values on the same file), a watch connection whose `PRAGMA data_version` changes whenever
//! another connection commits.
//!
//! A sleeper reads the bell's counter, then looks at the store (a read for due work in
//! `await_work`, `status` in `wait`), then sleeps on the bell in slices of [`WATCH_EVERY`],
//! asking the watch connection between slices. A write by this value rings the bell, so its
//! sleepers wake at once; a commit by any other connection changes `data_version`, so they
//! wake within one slice. A changed file wakes sleepers waiting for work only if a read on the
//! watch connection finds a task due or a lease lapsed, and `await_work` returns only once its
//! own read finds work: idle workers do not answer every completion elsewhere with a write
//! transaction, which on a busy file would starve the writers that matter (heartbeats among
//! them).
//!
//! No news is lost: the counter is read before the look, so news after the look either rings
//! past it or changes `data_version` after the watch's last value, which the next ask (this
//! sleeper's or another's, which then rings) sees. Wake-ups may be spurious, never missing.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use workmill_core::{QueueError, Timestamp};

use super::SqliteConfig;
use super::connection::open_connection;
use super::store::micros;
use super::url::SqliteLocation;
use crate::doorbell::{Bell, Doorbell};
use crate::sync::Mutex;

/// How often a sleeper asks whether another connection committed.
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(5);

/// The wake-up side of one `SqliteQueue` value.
pub(crate) struct Wakeup {
    bell: Doorbell,
    /// The watch connection and the `data_version` last seen on it; `None` until first used,
    /// and always for an in-memory database, which no other connection can change.
    watch: Mutex<Option<Watch>>,
    location: SqliteLocation,
    config: SqliteConfig,
}

struct Watch {
    conn: Connection,
    version: i64,
}

impl Wakeup {
    pub(crate) fn new(location: SqliteLocation, config: SqliteConfig) -> Wakeup {
        Wakeup {
            bell: Doorbell::new(),
            watch: Mutex::new(None),
            location,
            config,
        }
    }

    /// Work may be available: tasks were enqueued, retried, released, requeued or rescued.
    pub(crate) fn work(&self) {
        self.bell.ring(Bell::Work);
    }

    /// A task reached a final status.
    pub(crate) fn done(&self) {
        self.bell.ring(Bell::Done);
    }

    /// A task reached a final status or is due again: both kinds of sleeper look.
    pub(crate) fn done_or_work(&self) {
        self.bell.ring_all();
    }

    /// The count of `bell` to read before looking at the store.
    pub(crate) fn seen(&self, bell: Bell) -> u64 {
        self.bell.rings(bell)
    }

    /// Sleeps until `bell` rings past `seen`, another connection commits, or `deadline`.
    /// Returns true if there may be news.
    pub(crate) fn sleep(&self, bell: Bell, seen: u64, deadline: Instant) -> bool {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if self
                .bell
                .wait_past(bell, seen, Some(deadline.min(now + WATCH_EVERY)))
            {
                return true;
            }
            if let Some(work_due) = self.changed_elsewhere()
                && (bell == Bell::Done || work_due)
            {
                return true;
            }
        }
    }

    /// `Some(work_due)` if another connection committed since any sleeper last asked, and
    /// then rings the bells for it; `None` if not (or another sleeper is asking right now,
    /// which is answer enough: it rings every sleeper on a change).
    pub(crate) fn changed_elsewhere(&self) -> Option<bool> {
        if matches!(self.location, SqliteLocation::Memory) {
            return None;
        }
        let Ok(mut guard) = self.watch.try_lock() else {
            return None;
        };
        let news = match guard.as_mut() {
            Some(watch) => data_version(&watch.conn).and_then(|now| {
                if now == watch.version {
                    return Ok(None);
                }
                watch.version = now;
                work_due(&watch.conn).map(Some)
            }),
            None => self.open_watch().map(|opened| {
                *guard = Some(opened);
                // No baseline yet: report work, so a look at the store follows.
                Some(true)
            }),
        };
        match news {
            Ok(Some(work_due)) => {
                drop(guard);
                if work_due {
                    self.bell.ring_all();
                } else {
                    self.bell.ring(Bell::Done);
                }
                Some(work_due)
            }
            Ok(None) => None,
            Err(error) => {
                // The watch is an optimisation: sleepers still wake at their deadline.
                tracing::debug!(%error, "the SQLite watch connection failed; reopening it next time");
                *guard = None;
                None
            }
        }
    }

    fn open_watch(&self) -> Result<Watch, QueueError> {
        let conn = open_connection(&self.location, &self.config)?;
        let version = data_version(&conn)?;
        Ok(Watch { conn, version })
    }
}

/// True if a task is due or a lease has lapsed: what a `reserve` would act on. A read, so it
/// waits for no writer.
pub(crate) fn work_due(conn: &Connection) -> Result<bool, QueueError> {
    let now = micros(Timestamp::now());
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM tasks
                        WHERE status IN ('pending', 'retrying') AND run_at <= ?1)
             OR EXISTS (SELECT 1 FROM tasks
                        WHERE status = 'running' AND lease_expires_at < ?1)",
    )
    .and_then(|mut select| select.query_row([now], |row| row.get(0)))
    .map_err(super::store::store_error("look for due work"))
}

fn data_version(conn: &Connection) -> Result<i64, QueueError> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
        .map_err(super::store::store_error("watch the database for changes"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use workmill_core::{NewTask, Queue};

    use super::*;
    use crate::sqlite::SqliteQueue;

    /// Far enough that a sleeper that returns before it was woken for a reason, not by its deadline.
    const FAR: Duration = Duration::from_secs(120);

    #[test]
    fn a_ring_by_this_value_wakes_a_sleeper() {
        let wakeup = Arc::new(Wakeup::new(SqliteLocation::Memory, SqliteConfig::new()));
        let seen = wakeup.seen(Bell::Work);
        let sleeper = {
            let wakeup = Arc::clone(&wakeup);
            thread::spawn(move || wakeup.sleep(Bell::Work, seen, Instant::now() + FAR))
        };
        wakeup.work();
        assert!(sleeper.join().unwrap());
    }

    #[test]
    fn a_commit_by_another_connection_wakes_a_sleeper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        let writer = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
        let location = SqliteLocation::File(path.clone());
        let wakeup = Arc::new(Wakeup::new(location, SqliteConfig::new()));
        // The first ask opens the watch and reports a change, so that a look follows.
        assert_eq!(wakeup.changed_elsewhere(), Some(true));
        assert_eq!(wakeup.changed_elsewhere(), None, "nothing committed since");
        let seen = wakeup.seen(Bell::Work);
        let sleeper = {
            let wakeup = Arc::clone(&wakeup);
            thread::spawn(move || wakeup.sleep(Bell::Work, seen, Instant::now() + FAR))
        };
        writer.enqueue(NewTask::new("elsewhere", vec![])).unwrap();
        assert!(sleeper.join().unwrap(), "the commit was seen");
    }

    /// Idle workers on one file must not wake each other forever: a reserve that finds nothing,
    /// or a read, commits no change, so it is no news to the other connections.
    #[test]
    fn an_empty_reserve_by_another_connection_is_not_news() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        let other = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
        let wakeup = Wakeup::new(SqliteLocation::File(path), SqliteConfig::new());
        assert_eq!(
            wakeup.changed_elsewhere(),
            Some(true),
            "the first ask opens the watch"
        );
        let worker = workmill_core::WorkerId::new("idle").unwrap();
        for _ in 0..3 {
            assert!(other.reserve(&worker, 16, FAR).unwrap().is_empty());
            other.stats().unwrap();
            other.rescue_expired().unwrap();
        }
        assert_eq!(wakeup.changed_elsewhere(), None, "nothing changed");

        // A change that leaves nothing due wakes waiters for results, not idle workers.
        other
            .enqueue(NewTask::new("later", vec![]).delay(Duration::from_secs(3_600)))
            .unwrap();
        assert_eq!(wakeup.changed_elsewhere(), Some(false));
        let seen = wakeup.seen(Bell::Work);
        other
            .enqueue(NewTask::new("later-still", vec![]).delay(Duration::from_secs(3_600)))
            .unwrap();
        assert!(
            !wakeup.sleep(Bell::Work, seen, Instant::now() + Duration::from_millis(30)),
            "a delayed task is no work yet"
        );
        other.enqueue(NewTask::new("now", vec![])).unwrap();
        assert_eq!(wakeup.changed_elsewhere(), Some(true));
    }

    #[test]
    fn with_no_news_a_sleeper_returns_at_its_deadline() {
        let wakeup = Wakeup::new(SqliteLocation::Memory, SqliteConfig::new());
        let seen = wakeup.seen(Bell::Done);
        wakeup.work();
        assert!(
            !wakeup.sleep(Bell::Done, seen, Instant::now() + Duration::from_millis(20)),
            "work is not news to a sleeper waiting for a result"
        );
    }
}
