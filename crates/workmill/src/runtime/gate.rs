//! `Gate`: holds worker loops started on a pool until every one of them has a thread, so that no
//! loop job is left in the pool's queue for a waiting `join` to pick up and run nested.

use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, lock};

/// Counts the loops that hold a thread; opens once all do (or the starter gives up).
#[derive(Debug)]
pub(crate) struct Gate {
    /// How many loops the starter means to start.
    pub(crate) expected: usize,
    /// Loops arrived, and whether the gate is open.
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    pub(crate) fn new(expected: usize) -> Gate {
        Gate {
            expected,
            state: Mutex::new((0, false)),
            changed: Condvar::new(),
        }
    }

    /// A loop's first step: counts itself in and waits for the gate to open.
    pub(crate) fn arrive_and_wait(&self) {
        let mut state = lock(&self.state);
        state.0 += 1;
        self.changed.notify_all();
        while !state.1 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Waits up to `patience` for every expected loop to arrive; true if they have.
    pub(crate) fn wait_all_arrived(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let mut state = lock(&self.state);
        while state.0 < self.expected {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// Lets every loop, arrived or still to come, through.
    pub(crate) fn open(&self) {
        lock(&self.state).1 = true;
        self.changed.notify_all();
    }
}

#[cfg(all(test, workmill_loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::*;

    /// Two loops and their starter: whatever the interleaving, the starter sees both arrive,
    /// and neither loop passes before the gate opens or stays behind it after.
    #[test]
    fn loom_loops_pass_only_after_all_arrived_and_the_gate_opened() {
        loom::model(|| {
            let gate = Arc::new(Gate::new(2));
            let opened = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let loops: Vec<_> = (0..2)
                .map(|_| {
                    let (gate, opened) = (Arc::clone(&gate), Arc::clone(&opened));
                    loom::thread::spawn(move || {
                        gate.arrive_and_wait();
                        assert!(opened.load(loom::sync::atomic::Ordering::SeqCst));
                    })
                })
                .collect();
            while !gate.wait_all_arrived(Duration::from_secs(60)) {}
            opened.store(true, loom::sync::atomic::Ordering::SeqCst);
            gate.open();
            for handle in loops {
                handle.join().unwrap();
            }
        });
    }

    /// A starter that gives up (a loop failed to start) opens the gate for the one that came.
    #[test]
    fn loom_an_opened_gate_lets_a_late_loop_through() {
        loom::model(|| {
            let gate = Arc::new(Gate::new(2));
            let late = {
                let gate = Arc::clone(&gate);
                loom::thread::spawn(move || gate.arrive_and_wait())
            };
            gate.open();
            late.join().unwrap();
        });
    }
}
