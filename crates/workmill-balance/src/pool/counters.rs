//! `Counters`: how many of the pool's jobs each worker holds, queued and running, without a lock.

use crate::sync::{AtomicUsize, Ordering};

/// Jobs dispatched to, started on and finished by one worker.
///
/// Each job moves dispatched -> started -> finished, and `snapshot` reads the
/// counters in the opposite order, so that it always sees
/// `finished <= started <= dispatched` and reports no negative count
/// (checked with loom).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    dispatched: AtomicUsize,
    started: AtomicUsize,
    finished: AtomicUsize,
}

/// Jobs held by a worker at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) queued: usize,
    pub(crate) running: usize,
}

impl Counters {
    pub(crate) fn dispatch(&self) {
        self.dispatched.fetch_add(1, Ordering::AcqRel);
    }

    /// A dispatch the worker refused: it never starts.
    pub(crate) fn undispatch(&self) {
        self.dispatched.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn start(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn finish(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn snapshot(&self) -> Held {
        let finished = self.finished.load(Ordering::Acquire);
        let started = self.started.load(Ordering::Acquire);
        let dispatched = self.dispatched.load(Ordering::Acquire);
        Held {
            queued: dispatched.saturating_sub(started),
            running: started.saturating_sub(finished),
        }
    }
}

#[cfg(all(test, workmill_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    #[test]
    fn loom_snapshots_never_count_a_job_twice_or_below_zero() {
        loom::model(|| {
            let counters = Arc::new(Counters::default());
            let worker = {
                let counters = Arc::clone(&counters);
                loom::thread::spawn(move || {
                    counters.dispatch();
                    counters.start();
                    counters.finish();
                })
            };
            counters.dispatch();
            let held = counters.snapshot();
            // One job of ours plus at most one of the worker's.
            assert!(held.queued + held.running <= 2, "{held:?}");
            assert!(held.queued + held.running >= 1, "{held:?}");
            worker.join().unwrap();
            assert_eq!(
                counters.snapshot(),
                Held {
                    queued: 1,
                    running: 0
                }
            );
        });
    }
}
