//! `ThreadPool` and its builder: configuration, install, nesting, metrics, idleness, shutdown, the global pool, `Worker`.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use workmill_core::Worker;
use workmill_executor::{
    BuildError, Lane, ThreadPool, ThreadPoolBuilder, Yield, current_num_threads,
    current_thread_index, yield_now,
};

use crate::{PanicOnDrop, eventually, pool};

#[test]
fn the_builder_sets_thread_count_names_and_stack_size() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .thread_name(|i| format!("mill-{i}"))
        .stack_size(8 << 20)
        .build()
        .unwrap();
    assert_eq!(pool.current_num_threads(), 3);
    let mut names = pool.broadcast(|_| std::thread::current().name().map(str::to_owned));
    names.sort();
    assert_eq!(
        names,
        vec![
            Some("mill-0".to_owned()),
            Some("mill-1".to_owned()),
            Some("mill-2".to_owned())
        ]
    );
    // A recursion that needs several megabytes of stack runs on the 8 MiB workers.
    fn deep(n: u32) -> u64 {
        let pad = std::hint::black_box([n as u8; 4096]);
        if n == 0 {
            u64::from(pad[0])
        } else {
            deep(n - 1) + u64::from(pad[1])
        }
    }
    assert_eq!(pool.install(|| deep(1000)), deep_expected());
}

fn deep_expected() -> u64 {
    (1..=1000u32).map(|n| u64::from(n as u8)).sum()
}

#[test]
fn the_default_thread_count_is_the_number_of_cpus() {
    let pool = ThreadPool::new().unwrap();
    let expected = std::env::var("WORKMILL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(num_cpus::get);
    assert_eq!(pool.current_num_threads(), expected);
}

#[test]
fn start_and_exit_hooks_run_once_per_worker() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let exited = Arc::new(Mutex::new(Vec::new()));
    let (s, e) = (Arc::clone(&started), Arc::clone(&exited));
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .start_handler(move |i| s.lock().unwrap().push((i, current_thread_index())))
        .exit_handler(move |i| e.lock().unwrap().push(i))
        .build()
        .unwrap();
    assert_eq!(pool.install(|| 1), 1);
    pool.shutdown();
    let mut started = started.lock().unwrap().clone();
    started.sort();
    assert_eq!(started, vec![(0, Some(0)), (1, Some(1)), (2, Some(2))]);
    let mut exited = exited.lock().unwrap().clone();
    exited.sort();
    assert_eq!(exited, vec![0, 1, 2]);
}

#[test]
fn tasks_spawned_by_the_exit_hook_still_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .exit_handler(move |_| {
            for lane in [Lane::High, Lane::Normal, Lane::Low] {
                let counter = Arc::clone(&counter);
                drop(workmill_executor::spawn_with(lane, move || {
                    counter.fetch_add(1, Ordering::SeqCst)
                }));
            }
        })
        .build()
        .unwrap();
    pool.shutdown();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        6,
        "three tasks per exiting worker"
    );
}

/// A start hook that panics with a payload whose `Drop` panics too does not take its worker down.
#[test]
fn a_start_hook_whose_panic_payload_panics_on_drop_leaves_the_worker_alive() {
    let (tx, rx) = mpsc::channel();
    // The pool lives on this thread, which hangs if its only worker died.
    std::thread::spawn(move || {
        let pool = ThreadPoolBuilder::new()
            .num_threads(1)
            .start_handler(|_| panic::panic_any(PanicOnDrop))
            .build()
            .unwrap();
        let _ = tx.send(pool.install(|| 7));
    });
    let ran = rx.recv_timeout(std::time::Duration::from_secs(30));
    assert_eq!(ran, Ok(7), "the only worker died in its start hook");
}

/// An exit hook that spawns a task, then panics with a payload whose `Drop` panics too: the
/// worker still runs the task before it exits.
#[test]
fn an_exit_hook_whose_panic_payload_panics_on_drop_still_has_its_tasks_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .exit_handler(move |_| {
            let counter = Arc::clone(&counter);
            drop(workmill_executor::spawn(move || {
                counter.fetch_add(1, Ordering::SeqCst)
            }));
            panic::panic_any(PanicOnDrop);
        })
        .build()
        .unwrap();
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the hook's task never ran");
}

#[test]
fn install_runs_on_a_worker_and_propagates_panics() {
    let pool = pool(2);
    assert_eq!(current_thread_index(), None);
    let index = pool.install(current_thread_index).expect("on a worker");
    assert!(index < 2);
    assert_eq!(
        pool.current_thread_index(),
        None,
        "the test thread is no worker"
    );
    let result = panic::catch_unwind(AssertUnwindSafe(|| pool.install(|| panic!("inside"))));
    assert_eq!(result.unwrap_err().downcast_ref::<&str>(), Some(&"inside"));
    assert_eq!(pool.install(|| 2 + 2), 4, "the worker survived");
}

#[test]
fn install_from_inside_the_same_pool_runs_inline() {
    let pool = pool(1);
    let nested = pool.install(|| {
        let outer = current_thread_index();
        let inner = pool.install(current_thread_index);
        (outer, inner, pool.install(|| pool.install(|| 9)))
    });
    assert_eq!(nested, (Some(0), Some(0), 9));
}

#[test]
fn nested_install_across_two_pools_works_both_ways() {
    let a = pool(2);
    let b = pool(3);
    let result = a.install(|| {
        let in_a = current_num_threads();
        let (in_b, back_in_a) =
            b.install(|| (current_num_threads(), a.install(current_num_threads)));
        (in_a, in_b, back_in_a)
    });
    assert_eq!(result, (2, 3, 2));
    // Many concurrent crossings from both sides.
    let rounds = if cfg!(miri) { 5 } else { 50 };
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..4 {
            let (a, b, total) = (&a, &b, &total);
            s.spawn(move || {
                let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
                for _ in 0..rounds {
                    let n = first.install(|| second.install(|| first.install(|| 1)));
                    total.fetch_add(n, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(total.load(Ordering::Relaxed), 4 * rounds);
}

#[test]
fn metrics_count_tasks_and_steals_per_worker() {
    let pool = pool(2);
    let jobs: u64 = if cfg!(miri) { 200 } else { 1000 };
    let before = pool.metrics().total();
    pool.scope(|s| {
        for _ in 0..jobs {
            s.spawn(|_| {
                std::hint::black_box(0);
            });
        }
    });
    let after = pool.metrics();
    assert_eq!(after.workers.len(), 2);
    let total = after.total();
    // The scope body was injected (one task) and spawned the jobs.
    assert_eq!(total.tasks_run - before.tasks_run, jobs + 1);
    assert_eq!(total.injected - before.injected, 1);
    assert!(total.steals <= jobs);
    let sum: u64 = after.workers.iter().map(|w| w.tasks_run).sum();
    assert_eq!(sum, total.tasks_run);
}

#[test]
fn an_idle_pool_parks_every_thread_after_work_ends() {
    let pool = pool(2);
    let (n, expected) = if cfg!(miri) { (14, 377) } else { (24, 46368) };
    let sum = pool.install(|| {
        fn fib(n: u64) -> u64 {
            if n < 2 {
                n
            } else {
                let (a, b) = workmill_executor::join(|| fib(n - 1), || fib(n - 2));
                a + b
            }
        }
        fib(n)
    });
    assert_eq!(sum, expected);
    eventually("every worker parked", || {
        pool.metrics().parked_threads() == 2
    });
    let metrics = pool.metrics();
    assert!(metrics.total().parked);
    for worker in &metrics.workers {
        // Parked right now: exactly one park not yet matched by a wake-up.
        assert_eq!(worker.parks, worker.wake_ups + 1, "{worker:?}");
    }
    // And it wakes up again for new work.
    assert_eq!(pool.install(|| 5), 5);
    eventually("every worker parked again", || {
        pool.metrics().parked_threads() == 2
    });
    let later = pool.metrics().total();
    assert!(
        later.wake_ups > metrics.total().wake_ups,
        "a worker was woken for the install"
    );
}

/// A worker that takes work from outside the pool wakes a sleeping peer, so that a join soon
/// after finds it awake. There is no heartbeat here to wake it instead.
#[test]
fn a_worker_taking_outside_work_wakes_a_sleeping_peer() {
    use std::time::{Duration, Instant};
    let pool = workmill_executor::ThreadPool::builder()
        .num_threads(2)
        .heartbeat_interval(None)
        .build()
        .expect("the pool starts");
    eventually("every worker parked", || {
        pool.metrics().parked_threads() == 2
    });
    let before = pool.metrics();
    let (me, peer_woke) = pool.install(|| {
        let me = workmill_executor::current_thread_index().expect("on a worker");
        let peer = 1 - me;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if pool.metrics().workers[peer].wake_ups > before.workers[peer].wake_ups {
                return (me, true);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (me, false)
    });
    assert!(
        peer_woke,
        "worker {me} took the install but its sleeping peer was not woken"
    );
}

#[test]
fn shutdown_finishes_queued_work_and_joins_the_threads() {
    let pool = pool(2);
    let tasks = if cfg!(miri) { 20 } else { 200 };
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..tasks {
        let done = Arc::clone(&done);
        drop(pool.spawn(move || {
            std::thread::sleep(std::time::Duration::from_micros(100));
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    pool.shutdown();
    assert_eq!(
        done.load(Ordering::SeqCst),
        tasks,
        "every queued task ran before shutdown returned"
    );
}

#[test]
fn drop_waits_for_tasks_spawned_by_tasks() {
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = pool(2);
        let outer_done = Arc::clone(&done);
        drop(pool.spawn(move || {
            for _ in 0..10 {
                let done = Arc::clone(&outer_done);
                drop(workmill_executor::spawn(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                }));
            }
        }));
    }
    assert_eq!(done.load(Ordering::SeqCst), 10);
}

#[test]
fn a_pool_dropped_by_its_own_task_shuts_down_without_deadlock() {
    let pool = pool(2);
    let exited = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let slot = Arc::new(Mutex::new(None::<ThreadPool>));
    let task_slot = Arc::clone(&slot);
    drop(pool.spawn(move || {
        go_rx.recv().unwrap();
        let pool = task_slot.lock().unwrap().take();
        assert!(pool.is_some(), "the pool was handed to its own task");
        drop(pool);
        done_tx.send(()).unwrap();
    }));
    *slot.lock().unwrap() = Some(pool);
    go_tx.send(()).unwrap();
    done_rx.recv().unwrap();
    drop(exited);
}

#[test]
fn yield_now_runs_one_queued_job() {
    assert_eq!(yield_now(), None, "outside every pool");
    let pool = pool(1);
    let outcome = pool.install(|| {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let handle = workmill_executor::spawn(move || flag.store(true, Ordering::SeqCst));
        let first = yield_now();
        let second = yield_now();
        assert!(ran.load(Ordering::SeqCst));
        handle.join().unwrap();
        (first, second, pool.yield_now())
    });
    assert_eq!(
        outcome,
        (Some(Yield::Executed), Some(Yield::Idle), Some(Yield::Idle))
    );
    assert_eq!(
        pool.yield_now(),
        None,
        "the test thread is no worker of this pool"
    );
}

#[test]
fn the_global_pool_is_built_lazily_and_only_once() {
    assert!(current_num_threads() >= 1, "first use builds it");
    let err = ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap_err();
    assert!(matches!(err, BuildError::GlobalAlreadyInitialized));
    assert!(err.to_string().contains("already initialized"));
}

#[test]
fn a_pool_is_a_workmill_core_worker_with_a_load() {
    let pool = pool(1);
    let (started_tx, started_rx) = mpsc::channel();
    let (release, wait) = mpsc::channel::<()>();
    pool.submit(Box::new(move || {
        started_tx.send(()).unwrap();
        wait.recv().unwrap();
    }))
    .unwrap();
    started_rx.recv().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    for i in 0..5 {
        let done_tx = done_tx.clone();
        pool.submit(Box::new(move || done_tx.send(i).unwrap()))
            .unwrap();
    }
    let load = pool.load();
    assert_eq!(load.capacity, 1);
    assert_eq!(load.running, 1, "the blocked job runs");
    assert_eq!(load.queued, 5);
    assert!(load.is_saturated());
    release.send(()).unwrap();
    let mut received: Vec<i32> = (0..5).map(|_| done_rx.recv().unwrap()).collect();
    received.sort();
    assert_eq!(received, vec![0, 1, 2, 3, 4]);
    eventually("the pool is idle", || pool.load().running == 0);
    assert_eq!(pool.load().queued, 0);
}

#[test]
fn a_panicking_submitted_job_reaches_the_panic_handler() {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .panic_handler(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    for _ in 0..3 {
        pool.submit(Box::new(|| panic!("submitted job failed")))
            .unwrap();
    }
    pool.shutdown();
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn more_threads_than_a_pool_can_count_are_refused() {
    let max = workmill_executor::ThreadPoolBuilder::MAX_THREADS;
    let err = workmill_executor::ThreadPool::builder()
        .num_threads(max + 1)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, workmill_executor::BuildError::TooManyThreads { requested, .. } if requested == max + 1),
        "{err}"
    );
    assert!(err.to_string().contains(&max.to_string()), "{err}");
}

#[test]
fn a_heartbeat_interval_under_the_minimum_is_refused() {
    use std::time::Duration;
    let min = ThreadPoolBuilder::MIN_HEARTBEAT_INTERVAL;
    for requested in [
        Duration::ZERO,
        Duration::from_nanos(1),
        min - Duration::from_nanos(1),
    ] {
        let err = ThreadPool::builder()
            .num_threads(2)
            .heartbeat_interval(Some(requested))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::HeartbeatTooShort { requested: r, min: m } if r == requested && m == min),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{min:?}")), "{err}");
    }
    let pool = ThreadPool::builder()
        .num_threads(2)
        .heartbeat_interval(Some(min))
        .build()
        .expect("the minimum itself is accepted");
    assert_eq!(pool.join(|| 1, || 2), (1, 2));
}

/// A `thread_name` closure that fails for worker 1 (by panicking, or with a name holding a NUL
/// byte) fails the build with an error, and worker 0, already started, is shut down again.
#[test]
fn a_failing_thread_name_fails_the_build_and_shuts_down_the_started_threads() {
    type Namer = fn(usize) -> String;
    let panicking: Namer = |index| {
        assert!(index < 1, "no name for worker {index}");
        format!("ok-{index}")
    };
    let with_nul: Namer = |index| format!("bad\0name-{index}");
    for (namer, index, reason) in [
        (panicking, 1, "panicked: no name for worker 1"),
        (with_nul, 0, "NUL byte"),
    ] {
        let exited = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&exited);
        let built = panic::catch_unwind(AssertUnwindSafe(|| {
            ThreadPoolBuilder::new()
                .num_threads(2)
                .thread_name(namer)
                .exit_handler(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                })
                .build()
        }));
        let err = built
            .expect("build returns an error instead of panicking")
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::ThreadName { index: i, reason: r } if *i == index && r.contains(reason)),
            "{err}"
        );
        // The threads started before the failure were joined, each after its exit hook.
        assert_eq!(exited.load(Ordering::SeqCst), index, "{err}");
    }
}

/// `injected` counts takes from the lanes, not jobs: one take of the normal lane moves a
/// batch, and a high-lane task spawned inside the pool goes through a lane too.
#[test]
fn injected_counts_takes_from_the_lanes_including_high_spawns_from_inside() {
    let pool = pool(1);
    let tasks = 10;
    let before = pool.metrics().total();
    // Hold the only worker (one take of the high lane) while the normal tasks queue up.
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let blocker = pool.spawn_with(Lane::High, move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();
    let handles: Vec<_> = (0..tasks).map(|i| pool.spawn(move || i)).collect();
    release_tx.send(()).unwrap();
    blocker.join().unwrap();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..tasks).sum::<u64>());
    let queued = pool.metrics().total();
    assert_eq!(queued.tasks_run - before.tasks_run, tasks + 1);
    let takes = queued.injected - before.injected;
    // Under Miri the deques are a stand-in that moves one job per take.
    let most = if cfg!(miri) { tasks + 1 } else { tasks };
    assert!(
        (2..=most).contains(&takes),
        "{takes} takes: the blocker's, and fewer than one per normal task (batches)"
    );
    // From a worker: an `install` from outside (one take), and a high-lane task it spawns (one
    // more), which goes through the high lane and not the worker's own deque.
    let (ran_tx, ran_rx) = mpsc::channel();
    pool.install(|| {
        drop(workmill_executor::spawn_with(Lane::High, move || {
            ran_tx.send(())
        }))
    });
    ran_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the high task never ran");
    let after = pool.metrics().total();
    assert_eq!(after.injected - queued.injected, 2);
    assert_eq!(after.tasks_run - queued.tasks_run, 2);
    assert_eq!(after.steals, 0, "one worker has nobody to steal from");
}
