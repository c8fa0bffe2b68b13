//! Tests of the sleep protocol: counter packing, parking and waking, the heartbeat's naps, and loom checks of a push racing a worker falling asleep.

use super::*;
use crate::deque::{Injector, Steal};
use crate::latch::CoreLatch;
use crate::sync::{Arc, thread};
use std::time::{Duration, Instant};

/// A worker's idle loop in miniature: take from `queue`, or go towards sleep.
fn idle_until_item(sleep: &Sleep, queue: &Injector<u32>, latch: &CoreLatch) -> Option<u32> {
    let mut idle = sleep.start_looking(0);
    loop {
        if let Steal::Success(item) = queue.steal() {
            return Some(item);
        }
        if latch.probe() {
            return None;
        }
        sleep.no_work_found(&mut idle, latch);
    }
}

/// A thread that takes one heartbeat nap of `length`, and returns how long it took.
fn napping(sleep: &Arc<Sleep>, length: Duration, stretched: bool) -> thread::JoinHandle<Duration> {
    let sleep = Arc::clone(sleep);
    thread::spawn(move || {
        let start = Instant::now();
        sleep.heartbeat_nap(length, stretched);
        start.elapsed()
    })
}

#[cfg(not(workmill_loom))]
mod std_tests {
    use super::*;

    #[test]
    fn counters_pack_sleepers_below_the_job_event_counter() {
        let packed = 5 * ONE_JOB_EVENT + 3 * ONE_SLEEPING;
        assert_eq!(jec(packed), 5);
        assert_eq!(sleeping(packed), 3);
    }

    #[test]
    fn a_parked_worker_is_woken_by_new_jobs_and_counted() {
        let sleep = Arc::new(Sleep::new(1, false));
        let queue = Arc::new(Injector::new());
        let worker = {
            let (sleep, queue) = (Arc::clone(&sleep), Arc::clone(&queue));
            thread::spawn(move || idle_until_item(&sleep, &queue, &CoreLatch::new()))
        };
        while sleep.sleeping_threads() == 0 {
            thread::yield_now();
        }
        assert!(sleep.is_parked(0));
        queue.push(11);
        sleep.new_jobs();
        assert_eq!(worker.join().unwrap(), Some(11));
        assert_eq!(sleep.sleeping_threads(), 0);
        assert_eq!(sleep.park_counts(0), (1, 1));
    }

    #[test]
    fn a_parked_worker_is_woken_by_its_latch() {
        let sleep = Arc::new(Sleep::new(1, false));
        let queue: Arc<Injector<u32>> = Arc::new(Injector::new());
        let latch = Arc::new(CoreLatch::new());
        let worker = {
            let (sleep, queue, latch) =
                (Arc::clone(&sleep), Arc::clone(&queue), Arc::clone(&latch));
            thread::spawn(move || idle_until_item(&sleep, &queue, &latch))
        };
        while sleep.sleeping_threads() == 0 {
            thread::yield_now();
        }
        // SAFETY: the latch is kept alive by the Arc.
        if unsafe { CoreLatch::set(&*latch) } {
            assert!(sleep.wake_specific(0));
        }
        assert_eq!(worker.join().unwrap(), None);
    }

    #[test]
    fn a_rouse_ends_a_long_nap_and_only_a_long_one() {
        let sleep = Arc::new(Sleep::new(2, false));
        let long = napping(&sleep, Duration::from_secs(60), true);
        while !sleep.beat.stretched.load(Ordering::Relaxed) {
            thread::yield_now();
        }
        sleep.rouse_heartbeat();
        let napped = long.join().unwrap();
        assert!(napped < Duration::from_secs(30), "roused after {napped:?}");
        assert!(!sleep.beat.stretched.load(Ordering::Relaxed));

        // A nap at the heartbeat's interval is not for rousing: even a notification in the
        // middle of it leaves it to run its length.
        let short = napping(&sleep, Duration::from_millis(200), false);
        thread::sleep(Duration::from_millis(50));
        sleep.rouse_heartbeat();
        sleep.heartbeat.condvar.notify_all();
        assert!(short.join().unwrap() >= Duration::from_millis(200));
    }

    #[test]
    fn terminating_ends_a_long_nap() {
        let sleep = Arc::new(Sleep::new(2, false));
        let napper = napping(&sleep, Duration::from_secs(60), true);
        sleep.terminate_heartbeat();
        let napped = napper.join().unwrap();
        assert!(
            napped < Duration::from_secs(30),
            "terminated after {napped:?}"
        );
    }

    #[test]
    fn waking_nobody_is_harmless() {
        let sleep = Sleep::new(2, false);
        assert!(!sleep.wake_any());
        assert!(!sleep.wake_specific(1));
        sleep.new_jobs();
        sleep.new_jobs_for_all();
        assert_eq!(sleep.sleeping_threads(), 0);
    }
}

#[cfg(workmill_loom)]
mod loom_tests {
    use super::*;

    /// A job pushed while the only worker is on its way to sleep is always
    /// taken: otherwise the worker blocks forever and loom reports a deadlock.
    #[test]
    fn loom_push_races_a_worker_going_to_sleep() {
        loom::model(|| {
            let sleep = Arc::new(Sleep::new(1, false));
            let queue = Arc::new(Injector::new());
            let worker = {
                let (sleep, queue) = (Arc::clone(&sleep), Arc::clone(&queue));
                thread::spawn(move || idle_until_item(&sleep, &queue, &CoreLatch::new()))
            };
            queue.push(7);
            sleep.new_jobs();
            assert_eq!(worker.join().unwrap(), Some(7));
        });
    }

    /// A worker that sees the heartbeat's long nap announced ends it: under loom a nap ends
    /// only when notified, so a lost rouse shows as a deadlock.
    #[test]
    fn loom_a_rouse_ends_a_stretched_nap() {
        loom::model(|| {
            let sleep = Arc::new(Sleep::new(1, false));
            let napper = napping(&sleep, Duration::from_secs(1), true);
            while !sleep.beat.stretched.load(Ordering::Relaxed) {
                thread::yield_now();
            }
            sleep.rouse_heartbeat();
            napper.join().unwrap();
        });
    }

    /// Terminating the pool ends the heartbeat's long nap, wherever the nap is.
    #[test]
    fn loom_terminate_ends_a_long_nap() {
        loom::model(|| {
            let sleep = Arc::new(Sleep::new(1, false));
            let napper = napping(&sleep, Duration::from_secs(1), true);
            sleep.terminate_heartbeat();
            napper.join().unwrap();
        });
    }

    /// Setting the latch a worker waits on wakes it, wherever it is in the protocol.
    #[test]
    fn loom_latch_set_races_a_worker_going_to_sleep() {
        loom::model(|| {
            let sleep = Arc::new(Sleep::new(1, false));
            let queue: Arc<Injector<u32>> = Arc::new(Injector::new());
            let latch = Arc::new(CoreLatch::new());
            let worker = {
                let (sleep, queue, latch) =
                    (Arc::clone(&sleep), Arc::clone(&queue), Arc::clone(&latch));
                thread::spawn(move || idle_until_item(&sleep, &queue, &latch))
            };
            // SAFETY: the latch is kept alive by the Arc.
            if unsafe { CoreLatch::set(&*latch) } {
                sleep.wake_specific(0);
            }
            assert_eq!(worker.join().unwrap(), None);
        });
    }
}
