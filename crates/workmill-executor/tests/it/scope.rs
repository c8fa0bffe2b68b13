//! `scope`: borrowing spawns, nested spawns, completion counting, panic order.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use workmill_executor::scope;

use crate::{pool, wait_for};

#[test]
fn spawns_write_into_disjoint_borrowed_slices() {
    let pool = pool(2);
    // A hundred jobs either way; Miri writes fewer numbers in each.
    let chunk_len = if cfg!(miri) { 10 } else { 100 };
    let mut data = vec![0u64; 100 * chunk_len];
    pool.scope(|s| {
        for (chunk_index, chunk) in data.chunks_mut(chunk_len).enumerate() {
            s.spawn(move |_| {
                for (i, slot) in chunk.iter_mut().enumerate() {
                    *slot = (chunk_index * chunk_len + i) as u64 * 3;
                }
            });
        }
    });
    assert!(data.iter().enumerate().all(|(i, &v)| v == i as u64 * 3));
}

#[test]
fn spawns_read_borrowed_data_and_the_scope_returns_the_bodys_value() {
    let pool = pool(2);
    let words = vec!["alpha".to_owned(), "beta".to_owned(), "gamma".to_owned()];
    let total = AtomicUsize::new(0);
    let returned = pool.scope(|s| {
        for word in &words {
            let total = &total;
            s.spawn(move |_| {
                total.fetch_add(word.len(), Ordering::Relaxed);
            });
        }
        "body done"
    });
    assert_eq!(returned, "body done");
    assert_eq!(total.load(Ordering::Relaxed), 14);
    assert_eq!(words.len(), 3, "the borrowed data is still ours");
}

#[test]
fn nested_spawns_are_all_counted_before_the_scope_returns() {
    fn tree<'s>(s: &workmill_executor::Scope<'s>, depth: u32, count: &'s AtomicUsize) {
        count.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            s.spawn(move |s| tree(s, depth - 1, count));
            s.spawn(move |s| tree(s, depth - 1, count));
        }
    }
    let pool = pool(2);
    let (rounds, depth) = if cfg!(miri) { (2, 8) } else { (10, 10) };
    for _ in 0..rounds {
        let count = AtomicUsize::new(0);
        pool.scope(|s| tree(s, depth, &count));
        assert_eq!(count.load(Ordering::Relaxed), (1 << (depth + 1)) - 1);
    }
}

#[test]
fn a_scope_inside_the_pool_and_from_outside_both_wait_for_every_job() {
    let pool = pool(2);
    let jobs = if cfg!(miri) { 200 } else { 1000 };
    let count = AtomicUsize::new(0);
    pool.install(|| {
        scope(|s| {
            for _ in 0..jobs {
                s.spawn(|_| {
                    count.fetch_add(1, Ordering::Relaxed);
                });
            }
        })
    });
    assert_eq!(count.load(Ordering::Relaxed), jobs);
    // From a thread outside every pool: the global pool.
    scope(|s| {
        for _ in 0..jobs {
            s.spawn(|_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(count.load(Ordering::Relaxed), 2 * jobs);
}

#[test]
fn a_job_panic_propagates_only_after_every_other_job_finished() {
    let pool = pool(2);
    let slow_started = AtomicBool::new(false);
    let slow_finished = AtomicBool::new(false);
    let others = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|_| {
                slow_started.store(true, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                slow_finished.store(true, Ordering::SeqCst);
            });
            s.spawn(|_| {
                wait_for(&slow_started, "the slow job started");
                panic!("job failed");
            });
            for _ in 0..100 {
                s.spawn(|_| {
                    others.fetch_add(1, Ordering::Relaxed);
                });
            }
        })
    }));
    let payload = result.expect_err("the job's panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"job failed"));
    assert!(
        slow_finished.load(Ordering::SeqCst),
        "re-raised before a borrowing job finished"
    );
    assert_eq!(
        others.load(Ordering::Relaxed),
        100,
        "every job ran despite the panic"
    );
}

#[test]
fn a_body_panic_still_waits_for_the_spawned_jobs() {
    let pool = pool(2);
    let finished = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..50 {
                s.spawn(|_| {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            panic!("body failed");
        })
    }));
    assert!(result.is_err());
    assert_eq!(finished.load(Ordering::SeqCst), 50);
}

#[test]
fn the_first_of_several_panics_is_the_one_propagated() {
    let pool = pool(1);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|_| panic!("first"));
            s.spawn(|_| panic!("second"));
        })
    }));
    let payload = result.unwrap_err();
    let message = payload.downcast_ref::<&str>().copied();
    assert!(matches!(message, Some("first" | "second")));
    // One thread, LIFO deque: the later spawn runs first and its panic is recorded first.
    assert_eq!(message, Some("second"));
}

#[test]
fn a_scope_job_can_be_spawned_from_a_plain_thread_inside_the_scope() {
    let pool = pool(2);
    let seen = Mutex::new(Vec::new());
    pool.scope(|s| {
        std::thread::scope(|ts| {
            ts.spawn(|| {
                s.spawn(|_| {
                    seen.lock()
                        .unwrap()
                        .push(workmill_executor::current_thread_index())
                });
            });
        });
    });
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].is_some(), "the job ran on a worker");
}
