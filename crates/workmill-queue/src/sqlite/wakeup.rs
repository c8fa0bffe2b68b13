//! Wake-ups for `await_work` and `wait` on SQLite, which has no notifications: a `Doorbell`
//! rung by this queue value's own writes, and, for writes by other processes (or other queue
//! values on the same file), a watch connection whose `PRAGMA data_version` changes whenever
//! another connection commits.
//!
//! A sleeper reads the bell's counter before it looks at the store (its `reserve` or `status`),
//! then sleeps on the bell in slices of [`WATCH_EVERY`], asking the watch connection between
//! slices. A write by this value rings the bell, so its sleepers wake at once; a commit by any
//! other connection changes `data_version`, so they wake within one slice. Neither can be lost:
//! the counter was read before the look, and `data_version` compares against the last value
//! seen by any sleeper, so a commit between two asks is seen by the second. A sleeper that
//! wakes for news that does not concern it looks again and goes back to sleep: wake-ups may be
//! spurious, never missing.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use workmill_core::QueueError;

use super::SqliteConfig;
use super::connection::open_connection;
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

    /// A task reached a final status (and possibly made a reduce due: work too).
    pub(crate) fn done(&self) {
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
            if self.changed_elsewhere() {
                return true;
            }
        }
    }

    /// True if another connection committed since any sleeper last asked. Another sleeper
    /// asking at the same moment is answer enough: it rings every sleeper on a change.
    fn changed_elsewhere(&self) -> bool {
        if matches!(self.location, SqliteLocation::Memory) {
            return false;
        }
        let Ok(mut watch) = self.watch.try_lock() else {
            return false;
        };
        let version = match watch.as_mut() {
            Some(watch) => data_version(&watch.conn).map(|now| {
                let changed = now != watch.version;
                watch.version = now;
                changed
            }),
            None => self.open_watch().map(|opened| {
                *watch = Some(opened);
                // No baseline yet: report a change, so a look at the store follows.
                true
            }),
        };
        match version {
            Ok(true) => {
                drop(watch);
                self.bell.ring_all();
                true
            }
            Ok(false) => false,
            Err(error) => {
                // The watch is an optimisation: sleepers still wake at their deadline.
                tracing::debug!(%error, "the SQLite watch connection failed; reopening it next time");
                *watch = None;
                false
            }
        }
    }

    fn open_watch(&self) -> Result<Watch, QueueError> {
        let conn = open_connection(&self.location, &self.config)?;
        let version = data_version(&conn)?;
        Ok(Watch { conn, version })
    }
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
        assert!(wakeup.changed_elsewhere());
        assert!(!wakeup.changed_elsewhere(), "nothing committed since");
        let seen = wakeup.seen(Bell::Work);
        let sleeper = {
            let wakeup = Arc::clone(&wakeup);
            thread::spawn(move || wakeup.sleep(Bell::Work, seen, Instant::now() + FAR))
        };
        writer.enqueue(NewTask::new("elsewhere", vec![])).unwrap();
        assert!(sleeper.join().unwrap(), "the commit was seen");
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
