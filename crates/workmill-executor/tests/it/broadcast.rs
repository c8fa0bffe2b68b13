//! `broadcast`: once per worker, results in worker order, panics after all copies ran.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{PanicOnDrop, pool};

#[test]
fn every_worker_runs_the_closure_exactly_once() {
    let pool = pool(3);
    let rounds = if cfg!(miri) { 5 } else { 20 };
    for _ in 0..rounds {
        let results = pool.broadcast(|ctx| {
            assert_eq!(ctx.num_threads(), 3);
            (
                ctx.index(),
                workmill_executor::current_thread_index(),
                std::thread::current().id(),
            )
        });
        assert_eq!(results.len(), 3);
        for (i, (index, current, _)) in results.iter().enumerate() {
            assert_eq!(*index, i);
            assert_eq!(*current, Some(i), "copy {i} ran on worker {i}");
        }
        let threads: HashSet<_> = results.iter().map(|r| r.2).collect();
        assert_eq!(threads.len(), 3, "three distinct threads");
    }
}

#[test]
fn broadcast_from_inside_the_pool_does_not_deadlock() {
    let pool = pool(2);
    let counts = pool.install(|| workmill_executor::broadcast(|ctx| ctx.index() * 10));
    assert_eq!(counts, vec![0, 10]);
    // Even from a job on a busy pool, nested in a join.
    let nested =
        pool.install(|| workmill_executor::join(|| pool.broadcast(|ctx| ctx.index()), || 1));
    assert_eq!(nested, (vec![0, 1], 1));
}

#[test]
fn a_panicking_copy_propagates_after_all_copies_ran() {
    let pool = pool(3);
    let ran = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.broadcast(|ctx| {
            ran.fetch_add(1, Ordering::SeqCst);
            if ctx.index() == 1 {
                panic!("copy 1 failed");
            }
        })
    }));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"copy 1 failed"));
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    assert_eq!(
        pool.broadcast(|ctx| ctx.index()),
        vec![0, 1, 2],
        "every worker survived"
    );
}

/// Copy 0 panics first; copy 1's payload panics when dropped, and copies 2 and 3 return values
/// whose `Drop` panics. All are dropped quietly and copy 0's panic propagates, where a plain
/// drop during the unwinding would abort the process (as would dropping the two values as one
/// `Vec`: the second would panic while the first one's panic unwinds).
#[test]
fn later_payloads_and_results_that_panic_on_drop_are_dropped_quietly() {
    let pool = pool(4);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.broadcast(|ctx| match ctx.index() {
            0 => panic!("copy 0 failed"),
            1 => panic::panic_any(PanicOnDrop),
            _ => PanicOnDrop,
        })
    }));
    let payload = result.map(std::mem::forget).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"copy 0 failed"));
    assert_eq!(pool.broadcast(|ctx| ctx.index()), vec![0, 1, 2, 3]);
}

#[test]
fn broadcast_wakes_parked_workers() {
    let pool = pool(2);
    crate::eventually("both workers parked", || {
        pool.metrics().parked_threads() == 2
    });
    assert_eq!(pool.broadcast(|ctx| ctx.index()), vec![0, 1]);
}
