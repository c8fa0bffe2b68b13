//! Tests of the latches: the four-state core latch, counting, blocking; loom checks of scope completion counting.

use super::*;
use crate::registry::Registry;
use crate::sync::{Arc, thread};

#[cfg(not(workmill_loom))]
mod std_tests {
    use super::*;

    #[test]
    fn the_core_latch_walks_its_states() {
        let latch = CoreLatch::new();
        assert!(!latch.probe());
        assert!(latch.get_sleepy());
        assert!(latch.fall_asleep());
        latch.wake_up();
        assert!(!latch.probe());
        assert!(latch.get_sleepy());
        assert!(latch.fall_asleep());
        // SAFETY: `latch` is live.
        assert!(unsafe { CoreLatch::set(&latch) }, "the waiter was asleep");
        assert!(latch.probe());
        assert!(!latch.get_sleepy(), "a set latch never sleeps again");
        // SAFETY: `latch` is live.
        assert!(!unsafe { CoreLatch::set(&latch) });
    }

    #[test]
    fn a_count_latch_opens_on_the_last_decrement_only() {
        let registry = Registry::for_test(1);
        let latch = CountLatch::new(1, &registry, 0);
        latch.increment();
        latch.increment();
        for _ in 0..2 {
            // SAFETY: `latch` is live and `registry` is held.
            unsafe { CountLatch::decrement(&latch) };
            assert!(!latch.core.probe());
        }
        // SAFETY: as above.
        unsafe { CountLatch::decrement(&latch) };
        assert!(latch.core.probe());
    }

    #[test]
    fn a_lock_latch_releases_a_blocked_thread() {
        let latch = Arc::new(LockLatch::new());
        let setter = {
            let latch = Arc::clone(&latch);
            thread::spawn(move || {
                // SAFETY: the Arc keeps the latch alive.
                unsafe { LockLatch::set(&*latch) }
            })
        };
        latch.wait();
        setter.join().unwrap();
        latch.wait();
    }
}

#[cfg(workmill_loom)]
mod loom_tests {
    use super::*;
    use crate::sleep::Sleep;
    use crate::sync::UnsafeCell;

    struct Shared {
        registry: Arc<Registry>,
        latch: CountLatch,
        written: [UnsafeCell<u32>; 2],
    }

    // SAFETY: each `written` cell is written by one job and read by the owner
    // only after the latch is set; loom checks exactly that.
    unsafe impl Sync for Shared {}
    // SAFETY: as above.
    unsafe impl Send for Shared {}

    /// A scope's counting: two jobs and the body decrement; the owner, maybe
    /// asleep, wakes exactly when all are done and sees what the jobs wrote.
    #[test]
    fn loom_scope_completion_counting() {
        loom::model(|| {
            let registry = Registry::for_test(1);
            let shared = Arc::new(Shared {
                latch: CountLatch::new(1, &registry, 0),
                registry,
                written: [UnsafeCell::new(0), UnsafeCell::new(0)],
            });
            let jobs: Vec<_> = (0..2)
                .map(|i| {
                    shared.latch.increment();
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || {
                        // SAFETY: only this job writes cell `i` before the latch opens.
                        shared.written[i].with_mut(|cell| unsafe { *cell = i as u32 + 1 });
                        // SAFETY: live; `shared` holds the registry.
                        unsafe { CountLatch::decrement(&shared.latch) };
                    })
                })
                .collect();
            // The body is done: the owner's own count.
            // SAFETY: live; `shared` holds the registry.
            unsafe { CountLatch::decrement(&shared.latch) };
            let sleep: &Sleep = &shared.registry.sleep;
            let mut idle = sleep.start_looking(0);
            while !shared.latch.core.probe() {
                sleep.no_work_found(&mut idle, &shared.latch.core);
            }
            let sum: u32 = shared
                .written
                .iter()
                // SAFETY: the latch is set, so both jobs' writes happened before.
                .map(|cell| cell.with_mut(|value| unsafe { *value }))
                .sum();
            assert_eq!(sum, 3);
            for job in jobs {
                job.join().unwrap();
            }
        });
    }
}
