//! `Doorbell`: how a store's news wakes threads sleeping in `await_work` and `wait`, without a
//! wake-up ever being lost between a thread's last look at the store and its sleep. PostgreSQL's
//! notification listener rings it; SQLite rings it on this process's own writes and when a
//! change to the file by another process is seen.
//!
//! Each bell is a counter that only grows. A sleeper reads the counter *before* it looks at the
//! store, then sleeps until the counter moves past what it read. A notification that arrives
//! after the look moves the counter after the read, so the sleeper wakes; one that arrived
//! before the look described a change the look already saw. See `postgres/README.md`.

use std::sync::PoisonError;
use std::time::Instant;

use crate::sync::{Condvar, Mutex};

/// Which kind of news a sleeper waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bell {
    /// Work may be available: tasks were enqueued, retried, released or requeued.
    Work,
    /// A task reached a final status.
    Done,
}

#[derive(Debug, Default)]
struct Rings {
    work: u64,
    done: u64,
    closed: bool,
}

impl Rings {
    fn count(&self, bell: Bell) -> u64 {
        match bell {
            Bell::Work => self.work,
            Bell::Done => self.done,
        }
    }
}

/// Counters of notifications received, and a condition variable to sleep on them.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    rings: Mutex<Rings>,
    rung: Condvar,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell::default()
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Rings> {
        // The critical sections only add to counters, so a panic cannot leave them torn.
        self.rings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one notification of `bell` and wakes every sleeper.
    pub(crate) fn ring(&self, bell: Bell) {
        let mut rings = self.lock();
        match bell {
            Bell::Work => rings.work += 1,
            Bell::Done => rings.done += 1,
        }
        drop(rings);
        self.rung.notify_all();
    }

    /// Rings both bells: notifications may have been missed (the listener was reconnecting),
    /// so every sleeper should look at the store again.
    pub(crate) fn ring_all(&self) {
        let mut rings = self.lock();
        rings.work += 1;
        rings.done += 1;
        drop(rings);
        self.rung.notify_all();
    }

    /// How often `bell` has rung so far; read it before looking at the store.
    pub(crate) fn rings(&self, bell: Bell) -> u64 {
        self.lock().count(bell)
    }

    /// Ends all waiting: sleepers return, and the listener stops.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.rung.notify_all();
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Sleeps until `bell` rings past `seen`, the doorbell closes, or `deadline` passes (never,
    /// when `None`). Returns true if the bell rang.
    pub(crate) fn wait_past(&self, bell: Bell, seen: u64, deadline: Option<Instant>) -> bool {
        let mut rings = self.lock();
        loop {
            if rings.count(bell) != seen {
                return true;
            }
            if rings.closed {
                return false;
            }
            rings = match deadline {
                None => self
                    .rung
                    .wait(rings)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.rung
                        .wait_timeout(rings, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Sleeps until `deadline` or until the doorbell closes; true if it closed.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn sleep_unless_closed(&self, deadline: Instant) -> bool {
        let mut rings = self.lock();
        loop {
            if rings.closed {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            rings = self
                .rung
                .wait_timeout(rings, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_deadline_ends_a_wait_without_a_ring() {
        let bell = Doorbell::new();
        let seen = bell.rings(Bell::Work);
        let rang = bell.wait_past(
            Bell::Work,
            seen,
            Some(Instant::now() + Duration::from_millis(5)),
        );
        assert!(!rang);
        assert_eq!(bell.rings(Bell::Work), seen);
    }

    #[test]
    fn a_ring_before_the_wait_returns_at_once() {
        let bell = Doorbell::new();
        let seen = bell.rings(Bell::Done);
        bell.ring(Bell::Done);
        assert!(bell.wait_past(Bell::Done, seen, None));
        assert_eq!(bell.rings(Bell::Work), 0, "the other bell did not move");
    }

    #[test]
    fn close_ends_waits_and_sleeps() {
        let bell = Arc::new(Doorbell::new());
        let waiter = {
            let bell = Arc::clone(&bell);
            std::thread::spawn(move || bell.wait_past(Bell::Work, 0, None))
        };
        bell.close();
        assert!(!waiter.join().unwrap());
        assert!(bell.is_closed());
        assert!(bell.sleep_unless_closed(Instant::now() + Duration::from_secs(600)));
    }
}

#[cfg(all(test, workmill_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, Ordering};

    /// The sleeper's protocol against a producer that publishes work and then rings: whatever
    /// the interleaving, the sleeper either sees the work in its look or is woken by the ring.
    /// A lost wake-up would leave it asleep forever, which loom reports as a deadlock.
    #[test]
    fn loom_no_wake_up_is_lost_between_the_look_and_the_sleep() {
        loom::model(|| {
            let bell = Arc::new(Doorbell::new());
            let work = Arc::new(AtomicBool::new(false));
            let producer = {
                let (bell, work) = (Arc::clone(&bell), Arc::clone(&work));
                loom::thread::spawn(move || {
                    work.store(true, Ordering::Release);
                    bell.ring(Bell::Work);
                })
            };
            let seen = bell.rings(Bell::Work);
            if !work.load(Ordering::Acquire) {
                assert!(bell.wait_past(Bell::Work, seen, None));
            }
            producer.join().unwrap();
        });
    }

    /// Two sleepers on different bells: a ring of one bell never ends the other's wait, and a
    /// reconnect's (or a seen change's) `ring_all` wakes both.
    #[test]
    fn loom_ring_all_wakes_sleepers_on_both_bells() {
        loom::model(|| {
            let bell = Arc::new(Doorbell::new());
            let sleepers: Vec<_> = [Bell::Work, Bell::Done]
                .into_iter()
                .map(|which| {
                    let bell = Arc::clone(&bell);
                    let seen = bell.rings(which);
                    loom::thread::spawn(move || {
                        assert!(bell.wait_past(which, seen, None));
                        assert!(bell.rings(which) > seen);
                    })
                })
                .collect();
            bell.ring_all();
            for sleeper in sleepers {
                sleeper.join().unwrap();
            }
        });
    }

    /// Closing wakes a sleeper whose bell never rings.
    #[test]
    fn loom_close_wakes_a_sleeper() {
        loom::model(|| {
            let bell = Arc::new(Doorbell::new());
            let sleeper = {
                let bell = Arc::clone(&bell);
                loom::thread::spawn(move || bell.wait_past(Bell::Done, 0, None))
            };
            bell.ring(Bell::Work);
            bell.close();
            assert!(!sleeper.join().unwrap(), "closing is not a ring");
        });
    }
}
