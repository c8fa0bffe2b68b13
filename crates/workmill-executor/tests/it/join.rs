//! `join` and `join_context`: results, borrowing, deep nesting, stealing, and panic order.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use workmill_executor::{ThreadPool, join, join_context};

use crate::{PanicOnDrop, pool, wait_for};

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = join(|| fib(n - 1), || fib(n - 2));
    a + b
}

fn fib_sequential(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_sequential(n - 1) + fib_sequential(n - 2)
    }
}

#[test]
fn fib_matches_the_sequential_result_inside_and_outside_a_pool() {
    // fib(n) makes fib(n + 1) - 1 joins, and Miri runs a few hundred a second.
    let (outside, largest, pair) = if cfg!(miri) {
        (14, 16, (12, 13))
    } else {
        (22, 25, (15, 16))
    };
    assert_eq!(fib(outside), fib_sequential(outside));
    let pool = pool(2);
    for n in [0, 1, 2, 10, largest] {
        assert_eq!(pool.install(|| fib(n)), fib_sequential(n), "fib({n})");
    }
    assert_eq!(
        pool.join(|| fib(pair.0), || fib(pair.1)),
        (fib_sequential(pair.0), fib_sequential(pair.1))
    );
}

#[test]
fn both_closures_borrow_and_mutate_the_callers_stack() {
    let pool = pool(2);
    let scale = if cfg!(miri) { 100 } else { 1000 };
    let mut left: Vec<u32> = (0..scale).rev().collect();
    let mut right: Vec<u32> = (scale..3 * scale).rev().collect();
    let (l, r) = pool.install(|| {
        join(
            || {
                left.sort();
                left.len()
            },
            || {
                right.sort();
                right.len()
            },
        )
    });
    assert_eq!((l, r), (scale as usize, 2 * scale as usize));
    assert!(left.windows(2).all(|w| w[0] < w[1]));
    assert!(right.windows(2).all(|w| w[0] < w[1]));
}

/// Recursion deeper than the join frames can hold still computes the right sum.
#[test]
fn joins_nested_deeper_than_the_frame_stack_run_in_order() {
    fn chain(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let (a, b) = join(|| chain(depth - 1), || u64::from(depth));
        a + b
    }
    let pool = ThreadPool::builder()
        .num_threads(2)
        .stack_size(64 << 20)
        .build()
        .unwrap();
    let depth = 1000;
    assert_eq!(
        pool.install(|| chain(depth)),
        1 + u64::from(depth) * u64::from(depth + 1) / 2
    );
}

/// The second closure runs while the first is still running, even though
/// the first never calls `join` again: the shared frame is stolen.
#[test]
fn a_long_first_closure_lets_another_worker_take_the_second() {
    let pool = pool(2);
    let b_started = AtomicBool::new(false);
    let (migrated_a, migrated_b) = pool.install(|| {
        join_context(
            |ctx| {
                wait_for(&b_started, "the second closure started on another worker");
                ctx.migrated()
            },
            |ctx| {
                b_started.store(true, Ordering::SeqCst);
                ctx.migrated()
            },
        )
    });
    assert!(!migrated_a, "the first closure never migrates");
    assert!(migrated_b, "the second closure was stolen");
    assert!(pool.metrics().total().steals >= 1);
}

#[test]
fn a_panic_in_the_first_closure_waits_for_the_stolen_second() {
    let pool = pool(2);
    let b_started = AtomicBool::new(false);
    let b_finished = AtomicBool::new(false);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            join(
                || {
                    wait_for(&b_started, "the second closure started");
                    panic!("first closure failed");
                },
                || {
                    b_started.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    b_finished.store(true, Ordering::SeqCst);
                },
            )
        })
    }));
    let payload = result.expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"first closure failed")
    );
    assert!(
        b_finished.load(Ordering::SeqCst),
        "join re-raised the panic before the second closure, which borrows the stack, finished"
    );
    // The workers survived.
    assert_eq!(pool.install(|| fib(10)), 55);
}

/// The first closure panics while a thief runs the second, which panics with a payload whose
/// `Drop` panics: `join` drops that payload quietly and propagates the first panic, where a
/// plain drop during the unwinding would abort the process.
#[test]
fn a_panic_in_the_first_closure_quietly_drops_the_stolen_seconds_payload() {
    let pool = pool(2);
    let b_started = AtomicBool::new(false);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            join(
                || {
                    wait_for(&b_started, "the second closure started");
                    panic!("first closure failed");
                },
                || {
                    b_started.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    panic::panic_any(PanicOnDrop);
                },
            )
        })
    }));
    let payload = result.expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"first closure failed")
    );
    assert_eq!(pool.install(|| fib(10)), 55);
}

#[test]
fn a_panic_in_the_first_closure_drops_an_unstarted_second() {
    let pool = pool(1);
    let b_ran = AtomicBool::new(false);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| join(|| panic!("early"), || b_ran.store(true, Ordering::SeqCst)))
    }));
    assert!(result.is_err());
    assert!(
        !b_ran.load(Ordering::SeqCst),
        "nobody could steal it, so it never ran"
    );
    assert_eq!(pool.install(|| fib(12)), 144);
}

#[test]
fn a_panic_in_the_second_closure_propagates_after_the_first_finished() {
    let pool = pool(2);
    let a_finished = AtomicBool::new(false);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            join(
                || {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    a_finished.store(true, Ordering::SeqCst);
                },
                || panic!("second closure failed"),
            )
        })
    }));
    let payload = result.expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"second closure failed")
    );
    assert!(a_finished.load(Ordering::SeqCst));
}

#[test]
fn nested_joins_panicking_deep_inside_keep_every_frame_consistent() {
    fn explode(depth: u32, calls: &AtomicUsize) -> u32 {
        calls.fetch_add(1, Ordering::Relaxed);
        if depth == 0 {
            panic!("leaf");
        }
        let (a, b) = join(|| explode(depth - 1, calls), || depth);
        a + b
    }
    let pool = pool(2);
    let (rounds, check) = if cfg!(miri) { (3, 10) } else { (20, 16) };
    for _ in 0..rounds {
        let calls = AtomicUsize::new(0);
        let result = panic::catch_unwind(AssertUnwindSafe(|| pool.install(|| explode(8, &calls))));
        assert!(result.is_err());
        assert_eq!(
            calls.load(Ordering::Relaxed),
            9,
            "each level ran its first closure once"
        );
        // The frames unwound cleanly: ordinary joins still work afterwards.
        assert_eq!(pool.install(|| fib(check)), fib_sequential(check));
    }
}

#[test]
fn join_outside_every_pool_uses_the_global_pool() {
    let (a, b) = join(workmill_executor::current_thread_index, || 2);
    assert!(
        a.is_some(),
        "the closure ran on a worker of the global pool"
    );
    assert_eq!(b, 2);
}

#[test]
fn many_threads_joining_at_once_all_get_their_results() {
    let pool = pool(2);
    let smallest = if cfg!(miri) { 8 } else { 12 };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                let pool = &pool;
                s.spawn(move || pool.install(|| fib(smallest + i % 4)))
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(
                handle.join().unwrap(),
                fib_sequential(smallest + i as u64 % 4)
            );
        }
    });
}

/// A job that has run for a whole heartbeat interval without a join is long: its first join
/// wakes a sleeping worker at once, rather than when the heartbeat finds the shared frame stale
/// (a tick or two later, 1-2 s here). The other worker must take the second closure within
/// 0.5 s, a margin of thousands of times the wake-up.
#[test]
#[cfg_attr(
    miri,
    ignore = "the worker reads the heartbeat's tick count once, with a relaxed load that Miri's \
              weak-memory emulation may answer with a value seconds old; the wake-up then waits \
              for the heartbeat, past the 0.5 s this test allows"
)]
fn a_long_jobs_first_join_wakes_a_sleeper_without_waiting_for_the_heartbeat() {
    use std::time::{Duration, Instant};
    let pool = two_parked_workers(Some(Duration::from_secs(1)));
    let (a_thread, (b_thread, waited)) = pool.install(|| {
        // Long enough for two ticks (a whole interval between them): the heartbeat ticks
        // while one worker works and the other sleeps.
        let busy = Instant::now();
        while busy.elapsed() < Duration::from_millis(2_500) {
            std::hint::spin_loop();
        }
        join_waiting_for_a_thief(Duration::from_millis(500))
    });
    assert_ne!(
        a_thread, b_thread,
        "the sleeping worker was not woken for the long job's first join \
         (the second closure ran inline after {waited:?})"
    );
}

/// A job that runs a stream of short joins wakes nobody for them: each first join comes
/// within a tick of the one before. With a 100 ms heartbeat, 1 s of joins of about 10 µs
/// each (ten ticks) would, if each tick's first join woke the sleeper, let it take thousands
/// of second closures (12,332 in 200 ms of a 20 ms heartbeat, when that was the rule); none
/// is taken. (The heartbeat would still wake it for a frame left untaken for a whole tick,
/// which needs this worker preempted for 100 ms in the middle of a join.)
#[test]
fn a_stream_of_short_joins_leaves_the_sleeper_asleep() {
    use std::time::{Duration, Instant};
    let pool = two_parked_workers(Some(Duration::from_millis(100)));
    let migrated = pool.install(|| {
        // The install woke the other worker; let it go back to sleep first.
        crate::eventually("the other worker parked again", || {
            pool.metrics().parked_threads() == 1
        });
        let start = Instant::now();
        let mut migrated = 0;
        while start.elapsed() < Duration::from_secs(1) {
            let (_, b) = workmill_executor::join_context(
                |_| {
                    let busy = Instant::now();
                    while busy.elapsed() < Duration::from_micros(10) {
                        std::hint::spin_loop();
                    }
                },
                |ctx| ctx.migrated(),
            );
            migrated += usize::from(b);
        }
        migrated
    });
    assert_eq!(migrated, 0, "second closures taken by the woken worker");
}

/// One worker in a long stretch of plain code, the other asleep: the heartbeat has nothing to
/// wake anybody for, and after 8 quiet ticks it naps 2, 4, 8, 16 and then 32 intervals at a
/// time: about 20 ticks in 300 ms at a 1 ms interval, where ticking every interval made 280
/// or more.
#[test]
#[cfg_attr(
    miri,
    ignore = "counts heartbeats against 300 ms of the wall clock, which Miri's interpreter \
              stretches past any sensible bound"
)]
fn the_heartbeat_naps_longer_while_nothing_is_shared() {
    use std::time::{Duration, Instant};
    let pool = two_parked_workers(Some(Duration::from_millis(1)));
    let beats = pool.install(|| {
        // The install woke the other worker; let it go back to sleep first.
        crate::eventually("the other worker parked again", || {
            pool.metrics().parked_threads() == 1
        });
        let before = pool.metrics().heartbeats;
        let busy = Instant::now();
        while busy.elapsed() < Duration::from_millis(300) {
            std::hint::spin_loop();
        }
        pool.metrics().heartbeats - before
    });
    assert!(
        (1..60).contains(&beats),
        "{beats} heartbeats in 300 ms with nothing shared"
    );
}

/// Shutdown ends the heartbeat's nap: a pool with an hour-long heartbeat interval, whose
/// heartbeat is in its first nap (one worker was busy beside a sleeping one), drops at once.
#[test]
fn dropping_a_pool_ends_a_long_heartbeat_nap() {
    use std::time::{Duration, Instant};
    let pool = two_parked_workers(Some(Duration::from_secs(3_600)));
    pool.install(|| {
        crate::eventually("the other worker parked again", || {
            pool.metrics().parked_threads() == 1
        });
        // The heartbeat is useful now (this worker busy, the other asleep): give it time to
        // start napping.
        std::thread::sleep(Duration::from_millis(50));
    });
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        drop(pool);
        let _ = done.send(start.elapsed());
    });
    let took = dropped
        .recv_timeout(Duration::from_secs(30))
        .expect("dropping the pool waited out the heartbeat's hour-long nap");
    assert!(took < Duration::from_secs(30), "the drop took {took:?}");
}

/// A long nap does not hold up a frame that only the heartbeat would wake a sleeper for: the
/// first frame of a young job rouses it. Three workers with a 10 ms interval: one spins in a
/// spawned task while two sleep, so the heartbeat naps 320 ms at a time after about 400 ms.
/// Then, 20 ms after a tick, an `install` wakes a sleeper for a fresh (young) job whose join
/// waits for a thief. Roused, the heartbeat wakes the last sleeper one or two ticks (10-20 ms)
/// later, where the nap would have left the frame waiting for 300 ms.
#[test]
#[cfg_attr(
    miri,
    ignore = "waits for the heartbeat's wall-clock ticks, which Miri's interpreter stretches"
)]
fn a_young_jobs_first_join_rouses_a_napping_heartbeat() {
    use std::time::Duration;
    let pool = ThreadPool::builder()
        .num_threads(3)
        .heartbeat_interval(Some(Duration::from_millis(10)))
        .build()
        .expect("the pool starts");
    crate::eventually("every worker parked", || {
        pool.metrics().parked_threads() == 3
    });
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = std::sync::Arc::clone(&stop);
        pool.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    crate::eventually("two workers parked beside the spinning one", || {
        pool.metrics().parked_threads() == 2
    });
    std::thread::sleep(Duration::from_millis(800));
    let seen = pool.metrics().heartbeats;
    crate::eventually("a heartbeat", || pool.metrics().heartbeats != seen);
    std::thread::sleep(Duration::from_millis(20));
    let (a_thread, (b_thread, waited)) =
        pool.install(|| join_waiting_for_a_thief(Duration::from_secs(2)));
    stop.store(true, Ordering::Relaxed);
    spinner.join().expect("the spinning task ends");
    assert_ne!(a_thread, b_thread, "nobody took the second closure");
    assert!(
        waited < Duration::from_millis(160),
        "the sleeper took the second closure {waited:?} after the join"
    );
}

/// Without a heartbeat the clock's 100 µs intervals mark a job as long: the first join of a job
/// that has run across one wakes a sleeping worker itself. Otherwise a pool whose workers had gone
/// to sleep would run every join on one thread.
#[test]
fn without_a_heartbeat_the_first_join_wakes_a_sleeper() {
    use std::time::Duration;
    let pool = two_parked_workers(None);
    let (a_thread, (b_thread, waited)) = pool.install(|| {
        // The install woke the other worker; let it go back to sleep first.
        crate::eventually("the other worker parked again", || {
            pool.metrics().parked_threads() == 1
        });
        join_waiting_for_a_thief(Duration::from_secs(5))
    });
    assert_ne!(
        a_thread, b_thread,
        "the sleeping worker was not woken for the first join \
         (the second closure ran inline after {waited:?})"
    );
}

/// A pool of two workers with the given heartbeat, once both are parked.
fn two_parked_workers(heartbeat: Option<std::time::Duration>) -> ThreadPool {
    let pool = ThreadPool::builder()
        .num_threads(2)
        .heartbeat_interval(heartbeat)
        .build()
        .expect("the pool starts");
    crate::eventually("both workers parked", || {
        pool.metrics().parked_threads() == 2
    });
    pool
}

/// A join whose first closure waits up to `patience` for the second to start on another thread:
/// the thread of each closure, and how long after the join the second one started.
fn join_waiting_for_a_thief(
    patience: std::time::Duration,
) -> (Option<usize>, (Option<usize>, std::time::Duration)) {
    let taken = AtomicBool::new(false);
    let start = std::time::Instant::now();
    join(
        || {
            let here = workmill_executor::current_thread_index();
            while !taken.load(Ordering::SeqCst) && start.elapsed() < patience {
                std::thread::yield_now();
            }
            here
        },
        || {
            taken.store(true, Ordering::SeqCst);
            (workmill_executor::current_thread_index(), start.elapsed())
        },
    )
}
