//! `Gate`: a counter of held jobs that admits one more only below a capacity, the bound of a `ThreadWorker`.

use crate::sync::{AtomicUsize, Ordering};

/// Counts the jobs a worker holds and refuses one beyond its capacity.
///
/// `try_acquire` and `release` are lock-free; the count never exceeds the
/// capacity, whatever the interleaving (checked with loom).
#[derive(Debug)]
pub(crate) struct Gate {
    held: AtomicUsize,
    capacity: usize,
}

impl Gate {
    pub(crate) fn new(capacity: usize) -> Gate {
        Gate {
            held: AtomicUsize::new(0),
            capacity,
        }
    }

    /// Takes one place if one is free.
    pub(crate) fn try_acquire(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.capacity).then_some(held + 1)
            })
            .is_ok()
    }

    /// Gives a place back; every successful `try_acquire` is paired with one.
    pub(crate) fn release(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }

    /// Places taken now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_capacity_and_again_after_release() {
        let gate = Gate::new(2);
        assert!(gate.try_acquire() && gate.try_acquire());
        assert!(!gate.try_acquire());
        gate.release();
        assert_eq!(gate.held(), 1);
        assert!(gate.try_acquire());
    }
}

#[cfg(all(test, workmill_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    #[test]
    fn loom_gate_never_admits_beyond_capacity() {
        loom::model(|| {
            let gate = Arc::new(Gate::new(1));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let gate = Arc::clone(&gate);
                    loom::thread::spawn(move || {
                        if gate.try_acquire() {
                            assert_eq!(gate.held(), 1);
                            gate.release();
                            true
                        } else {
                            false
                        }
                    })
                })
                .collect();
            let admitted = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|&a| a)
                .count();
            // At least one gets in; both may, one after the other's release.
            assert!(admitted >= 1);
            assert_eq!(gate.held(), 0);
        });
    }
}
