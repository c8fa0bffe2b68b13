//! `Drain`: a count of tasks the pool still owes a result, that shutdown waits to reach zero.

use std::time::Duration;

use crate::sync::{Condvar, Mutex, lock};

/// Counts outstanding tasks; `wait_idle` blocks until the count is zero.
///
/// The count and the wake-up go through one mutex, so a waiter cannot miss the
/// last `exit` (checked with loom).
#[derive(Debug, Default)]
pub(crate) struct Drain {
    outstanding: Mutex<usize>,
    idle: Condvar,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain::default()
    }

    /// A task was accepted.
    pub(crate) fn enter(&self) {
        *lock(&self.outstanding) += 1;
    }

    /// A task's result was delivered (or it was handed back).
    pub(crate) fn exit(&self) {
        let mut outstanding = lock(&self.outstanding);
        *outstanding = outstanding.saturating_sub(1);
        if *outstanding == 0 {
            self.idle.notify_all();
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        *lock(&self.outstanding)
    }

    /// Waits until nothing is outstanding or `timeout` passes; true if idle.
    #[cfg(not(workmill_loom))]
    pub(crate) fn wait_idle_for(&self, timeout: Duration) -> bool {
        let guard = lock(&self.outstanding);
        let (guard, _) = self
            .idle
            .wait_timeout_while(guard, timeout, |n| *n > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard == 0
    }

    /// Under loom, which has no timed waits: waits until idle.
    #[cfg(workmill_loom)]
    pub(crate) fn wait_idle_for(&self, _timeout: Duration) -> bool {
        let mut guard = lock(&self.outstanding);
        while *guard > 0 {
            guard = self
                .idle
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        true
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn idle_only_when_every_entry_has_exited() {
        let drain = Drain::new();
        drain.enter();
        drain.enter();
        drain.exit();
        assert!(!drain.wait_idle_for(Duration::ZERO));
        drain.exit();
        assert!(drain.wait_idle_for(Duration::ZERO));
        assert_eq!(drain.outstanding(), 0);
    }
}

#[cfg(all(test, workmill_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    #[test]
    fn loom_drain_wakes_the_waiter_after_the_last_exit() {
        loom::model(|| {
            let drain = Arc::new(Drain::new());
            drain.enter();
            drain.enter();
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let drain = Arc::clone(&drain);
                    loom::thread::spawn(move || drain.exit())
                })
                .collect();
            // Must return: a lost wake-up would deadlock, which loom reports.
            assert!(drain.wait_idle_for(Duration::from_secs(1)));
            assert_eq!(drain.outstanding(), 0);
            for w in workers {
                w.join().unwrap();
            }
        });
    }
}
