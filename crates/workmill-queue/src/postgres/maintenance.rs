//! Keeping the queue's tables lean: a `VACUUM (ANALYZE)` of `tasks` and `queue_counters`, run in the
//! background after a queue value has written a configured number of row versions.
//!
//! Every status change writes a new row version and leaves the old one dead, together with its
//! entries in the partial indexes. `reserve`, the rescue and the retention bound read their
//! indexes from the head, which is where the dead entries gather, so until a vacuum removes them
//! each of those statements steps over all of them and gets slower. Autovacuum does this when it
//! is on and tuned for a busy table; this step makes the queue independent of how the server is
//! configured (it is a no-op cost when autovacuum just ran). `SKIP_LOCKED` makes a vacuum that
//! finds another one running (from another process, or autovacuum) skip instead of waiting.

use std::sync::Arc;

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::pool::{Connector, Settings};

/// Counts the row versions a queue value writes, and says when a vacuum is due.
#[derive(Debug)]
pub(crate) struct VacuumSchedule {
    every: u64,
    written: AtomicU64,
    running: AtomicBool,
}

impl VacuumSchedule {
    /// A schedule that asks for a vacuum after every `every` row versions (at least 1).
    pub(crate) fn new(every: u64) -> VacuumSchedule {
        VacuumSchedule {
            every: every.max(1),
            written: AtomicU64::new(0),
            running: AtomicBool::new(false),
        }
    }

    /// Records `rows` more row versions; true when this call crossed a multiple of the interval
    /// and no vacuum is running, in which case the caller starts one and calls [`finished`].
    ///
    /// [`finished`]: VacuumSchedule::finished
    pub(crate) fn wrote(&self, rows: u64) -> bool {
        if rows == 0 {
            return false;
        }
        let before = self.written.fetch_add(rows, Ordering::Relaxed);
        let crossed = before / self.every != before.saturating_add(rows) / self.every;
        // Only one vacuum at a time per queue value; a crossing while one runs is dropped,
        // since that vacuum will also clean what was written since it started.
        crossed && !self.running.swap(true, Ordering::AcqRel)
    }

    /// Marks the running vacuum as done, so the next crossing can start another.
    pub(crate) fn finished(&self) {
        self.running.store(false, Ordering::Release);
    }
}

/// The background vacuum of one queue value: its schedule and how to reach the tables.
pub(crate) struct Maintenance {
    schedule: Option<Arc<VacuumSchedule>>,
    connector: Connector,
    settings: Arc<Settings>,
}

impl Maintenance {
    /// `every`: row versions between vacuums, or `None` to leave vacuuming to the server.
    pub(crate) fn new(
        every: Option<u64>,
        connector: Connector,
        settings: Arc<Settings>,
    ) -> Maintenance {
        Maintenance {
            schedule: every.map(|every| Arc::new(VacuumSchedule::new(every))),
            connector,
            settings,
        }
    }

    /// Records `rows` written row versions, starting a background vacuum when one is due.
    pub(crate) fn wrote(&self, rows: u64) {
        let Some(schedule) = &self.schedule else {
            return;
        };
        if !schedule.wrote(rows) {
            return;
        }
        let schedule = Arc::clone(schedule);
        let connector = self.connector.clone();
        let sql = self
            .settings
            .render("VACUUM (ANALYZE, SKIP_LOCKED) {s}.tasks, {s}.queue_counters");
        let started = std::thread::Builder::new()
            .name("workmill-pg-vacuum".to_owned())
            .spawn(move || {
                let outcome = connector
                    .connect()
                    .and_then(|mut client| {
                        client
                            .batch_execute(&sql)
                            .map_err(super::store::store_error("vacuum the queue's tables"))
                    });
                if let Err(err) = outcome {
                    tracing::warn!(error = %err, "vacuuming the queue's tables failed; the next interval tries again");
                }
                schedule.finished();
            });
        if let Err(err) = started {
            tracing::warn!(error = %err, "could not start a thread to vacuum the queue's tables");
            if let Some(schedule) = &self.schedule {
                schedule.finished();
            }
        }
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_vacuum_is_due_once_per_interval_and_never_twice_at_once() {
        let schedule = VacuumSchedule::new(100);
        assert!(!schedule.wrote(60));
        assert!(!schedule.wrote(0));
        assert!(schedule.wrote(60), "120 rows crossed 100");
        assert!(
            !schedule.wrote(100),
            "200 crossed again, but a vacuum is running"
        );
        schedule.finished();
        assert!(!schedule.wrote(50), "250 crosses nothing");
        assert!(schedule.wrote(60), "310 crossed 300");
        schedule.finished();
        assert!(schedule.wrote(1_000), "a large batch crosses at once");
    }
}

#[cfg(all(test, workmill_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two threads crossing the interval at the same time start one vacuum, not two, and the
    /// vacuum's end lets a later crossing start the next.
    #[test]
    fn loom_concurrent_crossings_start_one_vacuum() {
        loom::model(|| {
            let schedule = Arc::new(VacuumSchedule::new(2));
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    let schedule = Arc::clone(&schedule);
                    loom::thread::spawn(move || schedule.wrote(2))
                })
                .collect();
            let started = writers
                .into_iter()
                .map(|w| w.join().unwrap())
                .filter(|&s| s)
                .count();
            assert_eq!(
                started, 1,
                "both calls crossed; exactly one starts the vacuum"
            );
            schedule.finished();
            assert!(
                schedule.wrote(2),
                "after the vacuum, the next crossing starts another"
            );
        });
    }
}
