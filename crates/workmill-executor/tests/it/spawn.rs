//! `spawn` and `JoinHandle`: results, panics, cancel, joining from inside the pool, priority lanes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use workmill_core::Priority;
use workmill_executor::{Lane, ThreadPool};

use crate::{eventually, pool};

/// Occupies every worker of `pool` until the returned sender is dropped or sent to.
fn block_workers(pool: &ThreadPool) -> Vec<mpsc::Sender<()>> {
    let threads = pool.current_num_threads();
    let started = Arc::new(AtomicUsize::new(0));
    let releases = (0..threads)
        .map(|_| {
            let (release, wait) = mpsc::channel::<()>();
            let started = Arc::clone(&started);
            drop(pool.spawn_with(Lane::High, move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = wait.recv();
            }));
            release
        })
        .collect();
    eventually("every worker is blocked", || {
        started.load(Ordering::SeqCst) == threads
    });
    releases
}

#[test]
fn a_spawned_task_returns_its_value_through_the_handle() {
    let pool = pool(2);
    let tasks = if cfg!(miri) { 20 } else { 100u64 };
    let handles: Vec<_> = (0..tasks).map(|i| pool.spawn(move || i * i)).collect();
    let results: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, (0..tasks).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn is_finished_turns_true_once_the_task_ran() {
    let pool = pool(2);
    let (release, wait) = mpsc::channel::<()>();
    let handle = pool.spawn(move || wait.recv().map(|()| 7));
    assert!(!handle.is_finished(), "it waits for the release");
    release.send(()).unwrap();
    eventually("the task finished", || handle.is_finished());
    assert_eq!(handle.join().unwrap().unwrap(), 7);
}

#[test]
fn a_panicking_task_reaches_its_handle_and_the_handler_and_the_worker_survives() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler_seen = Arc::clone(&seen);
    let pool = ThreadPool::builder()
        .num_threads(1)
        .panic_handler(move |payload| {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            handler_seen.lock().unwrap().push(message);
        })
        .build()
        .unwrap();
    let id = std::hint::black_box(7);
    let handle = pool.spawn(move || -> u32 { panic!("task {id} failed") });
    let err = handle.join().unwrap_err();
    assert_eq!(err.message(), "task 7 failed");
    assert!(err.to_string().contains("task 7 failed"));
    assert_eq!(*seen.lock().unwrap(), vec!["task 7 failed".to_owned()]);
    let payload = err.into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("task 7 failed")
    );
    // The only worker is still alive and running tasks.
    assert_eq!(pool.spawn(|| 5).join().unwrap(), 5);
    assert_eq!(pool.current_num_threads(), 1);
}

/// The result of `handle.join()`, or a failure naming `what` if it takes longer than 30 s.
fn join_within<T: Send + 'static>(
    handle: workmill_executor::JoinHandle<T>,
    what: &str,
) -> Result<T, workmill_executor::TaskPanicked> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(handle.join()));
    rx.recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("never returned: {what}"))
}

#[test]
fn joining_a_task_lower_on_the_same_worker_panics_instead_of_hanging() {
    // Not dropped if the test fails: dropping it would wait for the hung task forever.
    let pool = std::mem::ManuallyDrop::new(pool(2));
    let (x_started, x_started_rx) = mpsc::channel();
    let (release_x, x_waits) = mpsc::channel::<()>();
    let x = pool.spawn(move || {
        x_started.send(()).unwrap();
        x_waits.recv().unwrap();
    });
    x_started_rx.recv().unwrap();
    // Y, on the other worker, waits for X and takes up queued work meanwhile: Z.
    let (y_waiting, y_waiting_rx) = mpsc::channel();
    let y = pool.spawn(move || {
        y_waiting.send(()).unwrap();
        x.join().unwrap();
        "y done"
    });
    y_waiting_rx.recv().unwrap();
    let z = pool.spawn(move || y.join().unwrap());
    let err = join_within(z, "Z's join of the task below it").unwrap_err();
    assert!(
        err.message().contains("lower on this worker's own stack"),
        "{}",
        err.message()
    );
    // Y itself goes on once X ends.
    release_x.send(()).unwrap();
    eventually("the pool is idle again", || {
        pool.metrics().total().tasks_run >= 3
    });
    drop(std::mem::ManuallyDrop::into_inner(pool));
}

#[test]
fn a_worker_joining_a_task_runs_its_copy_of_a_broadcast() {
    // Not dropped if the test fails: dropping it would wait for the hung task forever.
    let pool = std::mem::ManuallyDrop::new(pool(2));
    let (y_started, y_started_rx) = mpsc::channel();
    let (go, y_waits) = mpsc::channel::<()>();
    let y = pool.spawn(move || {
        y_started.send(()).unwrap();
        y_waits.recv().unwrap();
        // Needs a copy run by every worker, the one waiting in `join` included.
        workmill_executor::broadcast(|ctx| ctx.index()).len()
    });
    y_started_rx.recv().unwrap();
    let (z_started, z_started_rx) = mpsc::channel();
    let z = pool.spawn(move || {
        z_started.send(()).unwrap();
        y.join().unwrap()
    });
    z_started_rx.recv().unwrap();
    go.send(()).unwrap();
    assert_eq!(join_within(z, "a join across a broadcast").unwrap(), 2);
    drop(std::mem::ManuallyDrop::into_inner(pool));
}

#[test]
fn low_tasks_taken_by_a_worker_do_not_run_before_normal_tasks_that_arrive_later() {
    let pool = pool(1);
    let release = block_workers(&pool);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (first_low_started, first_low_started_rx) = mpsc::channel();
    let (go, first_low_waits) = mpsc::channel::<()>();
    // Only the first low task waits, for the normal task to be queued.
    let mut gate = Some((first_low_started, first_low_waits));
    let lows: Vec<_> = (0..10)
        .map(|i| {
            let log = Arc::clone(&log);
            let gate = gate.take();
            pool.spawn_with(Lane::Low, move || {
                if let Some((started, waits)) = gate {
                    started.send(()).unwrap();
                    waits.recv().unwrap();
                }
                log.lock().unwrap().push(format!("low {i}"));
            })
        })
        .collect();
    drop(release);
    first_low_started_rx.recv().unwrap();
    let normal = {
        let log = Arc::clone(&log);
        pool.spawn(move || log.lock().unwrap().push("normal".to_owned()))
    };
    go.send(()).unwrap();
    normal.join().unwrap();
    for low in lows {
        low.join().unwrap();
    }
    let log = log.lock().unwrap();
    assert_eq!(
        &log[..2],
        ["low 0", "normal"],
        "the normal task runs as soon as the running low one ends: {log:?}"
    );
}

/// Panics when dropped: a result whose `Drop` fails.
struct DropBomb;

impl Drop for DropBomb {
    fn drop(&mut self) {
        panic!("the result's drop failed");
    }
}

#[test]
fn a_panic_dropping_an_unwanted_result_goes_to_the_handler_and_the_worker_lives_on() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&seen);
    let pool = ThreadPool::builder()
        .num_threads(1)
        .panic_handler(move |payload| {
            if payload.downcast_ref::<&str>() == Some(&"the result's drop failed") {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let release = block_workers(&pool);
    // Its handle is dropped while it waits, so the worker drops its result.
    drop(pool.spawn(|| DropBomb));
    drop(release);
    eventually("the handler saw the drop's panic", || {
        seen.load(Ordering::SeqCst) == 1
    });
    // The worker survived, and the pool still counts its work right: it runs tasks and its
    // drop (which waits for outstanding work) returns.
    assert_eq!(pool.spawn(|| 5).join().unwrap(), 5);
    drop(pool);
}

/// A panic handler that panics with a payload whose `Drop` panics too: the pool drops that
/// payload inside a catch, so the task still finishes, its joiner gets its panic, and the
/// worker lives on.
#[test]
fn a_panic_handler_whose_payload_panics_on_drop_does_not_strand_the_task() {
    let (tx, rx) = mpsc::channel();
    // The pool lives on this thread, which hangs if the task is stranded.
    std::thread::spawn(move || {
        let pool = ThreadPool::builder()
            .num_threads(1)
            .panic_handler(|_| std::panic::panic_any(DropBomb))
            .build()
            .unwrap();
        let failed = pool.spawn(|| -> u32 { panic!("the task failed") }).join();
        let _ = tx.send(failed.map_err(|err| err.message().to_owned()));
        let _ = tx.send(pool.spawn(|| Ok(5)).join().unwrap());
        drop(pool);
        let _ = tx.send(Ok(0));
    });
    let within = || rx.recv_timeout(std::time::Duration::from_secs(30));
    let failed = within().expect("the task's joiner never returned");
    assert_eq!(failed, Err("the task failed".to_owned()));
    assert_eq!(within().expect("the worker died"), Ok(5));
    assert_eq!(within().expect("the pool's drop never returned"), Ok(0));
}

/// The only worker of pool Q joins a task of pool P that needs Q (an `install`, a
/// `broadcast`): the worker runs Q's work while it waits, where blocking its thread would leave
/// Q with nobody to run it.
#[test]
fn a_worker_joining_another_pools_task_that_needs_its_pool_does_not_deadlock() {
    let (tx, rx) = mpsc::channel();
    // The pools live on this thread, which hangs if the join deadlocks.
    std::thread::spawn(move || {
        let p = pool(1);
        let q = Arc::new(pool(1));
        let needs_q = Arc::clone(&q);
        let result = q.install(|| {
            let handle = p.spawn(move || {
                needs_q.install(|| 20) + needs_q.broadcast(|ctx| ctx.index() + 1)[0]
            });
            handle.join().unwrap()
        });
        let _ = tx.send(result);
    });
    let result = rx.recv_timeout(std::time::Duration::from_secs(30));
    assert_eq!(result, Ok(21), "the join deadlocked");
}

#[test]
fn cancel_prevents_a_queued_task_and_reports_it() {
    let pool = pool(1);
    let releases = block_workers(&pool);
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let queued = pool.spawn(move || flag.store(true, Ordering::SeqCst));
    let dropped_on_cancel = Arc::new(());
    let witness = Arc::clone(&dropped_on_cancel);
    let other = pool.spawn(move || drop(witness));
    assert!(queued.cancel().is_ok(), "the task had not started");
    assert!(other.cancel().is_ok());
    assert_eq!(
        Arc::strong_count(&dropped_on_cancel),
        1,
        "cancel dropped the closure at once"
    );
    drop(releases);
    // Later work runs; the cancelled task never does.
    assert_eq!(pool.spawn(|| 1).join().unwrap(), 1);
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst), "a cancelled task never runs");
}

#[test]
fn cancel_of_a_started_task_hands_the_handle_back() {
    let pool = pool(1);
    let (started_tx, started_rx) = mpsc::channel();
    let (release, wait) = mpsc::channel::<()>();
    let handle = pool.spawn(move || {
        started_tx.send(()).unwrap();
        wait.recv().unwrap();
        "finished anyway"
    });
    started_rx.recv().unwrap();
    let handle = handle
        .cancel()
        .expect_err("a running task cannot be cancelled");
    release.send(()).unwrap();
    assert_eq!(handle.join().unwrap(), "finished anyway");
    let done = pool.spawn(|| 3);
    eventually("the task finished", || done.is_finished());
    let done = done
        .cancel()
        .expect_err("a finished task cannot be cancelled");
    assert_eq!(done.join().unwrap(), 3);
}

#[test]
fn joining_a_queued_task_from_inside_the_pool_runs_it_inline() {
    // One worker: waiting by blocking would deadlock, running inline cannot.
    let pool = pool(1);
    let result = pool.install(|| {
        let handles: Vec<_> = (0..10)
            .map(|i| workmill_executor::spawn(move || i + 1))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    });
    assert_eq!(result, 55);
}

#[test]
fn tasks_spawned_from_tasks_wait_for_each_other_without_deadlock() {
    let pool = pool(2);
    let total = pool
        .spawn(|| {
            let inner: Vec<_> = (0..50u64)
                .map(|i| workmill_executor::spawn(move || i))
                .collect();
            inner.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
        .join()
        .unwrap();
    assert_eq!(total, 49 * 50 / 2);
}

#[test]
fn a_high_priority_task_behind_ten_thousand_normal_ones_starts_first() {
    let pool = pool(1);
    let normal = if cfg!(miri) { 500 } else { 10_000u32 };
    let releases = block_workers(&pool);
    let order = Arc::new(Mutex::new(Vec::with_capacity(normal as usize + 2)));
    let mut handles = Vec::new();
    for i in 0..normal {
        let order = Arc::clone(&order);
        handles.push(pool.spawn(move || order.lock().unwrap().push(("normal", i))));
    }
    let high_order = Arc::clone(&order);
    handles.push(pool.spawn_with(Lane::High, move || {
        high_order.lock().unwrap().push(("high", 0))
    }));
    drop(releases);
    for handle in handles {
        handle.join().unwrap();
    }
    let order = order.lock().unwrap();
    assert_eq!(order.len(), normal as usize + 1);
    assert_eq!(
        order[0],
        ("high", 0),
        "the high-priority task started before every normal one"
    );
}

#[test]
fn low_priority_tasks_wait_until_normal_ones_are_done() {
    let pool = pool(1);
    let releases = block_workers(&pool);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..100u32 {
        let order = Arc::clone(&order);
        handles.push(pool.spawn_with(Lane::Low, move || order.lock().unwrap().push(("low", i))));
    }
    for i in 0..100u32 {
        let order = Arc::clone(&order);
        handles.push(pool.spawn_with(Lane::from(Priority::NORMAL), move || {
            order.lock().unwrap().push(("normal", i));
        }));
    }
    drop(releases);
    for handle in handles {
        handle.join().unwrap();
    }
    let order = order.lock().unwrap();
    assert!(order[..100].iter().all(|(lane, _)| *lane == "normal"));
    assert!(order[100..].iter().all(|(lane, _)| *lane == "low"));
}

#[test]
fn a_spawn_from_inside_in_the_high_lane_overtakes_the_workers_own_queue() {
    let pool = pool(1);
    let order = pool.install(|| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        let queued = if cfg!(miri) { 100 } else { 1_000u32 };
        for i in 0..queued {
            let order = Arc::clone(&order);
            handles.push(workmill_executor::spawn(move || {
                order.lock().unwrap().push(i)
            }));
        }
        let high = Arc::clone(&order);
        handles.push(workmill_executor::spawn_with(Lane::High, move || {
            high.lock().unwrap().push(u32::MAX);
        }));
        // Let the worker run one job: it must pick the high-lane task.
        assert_eq!(
            workmill_executor::yield_now(),
            Some(workmill_executor::Yield::Executed)
        );
        let first = order.lock().unwrap()[0];
        for handle in handles {
            handle.join().unwrap();
        }
        first
    });
    assert_eq!(order, u32::MAX);
}

#[test]
fn spawn_outside_every_pool_uses_the_global_pool() {
    let handle = workmill_executor::spawn(workmill_executor::current_thread_index);
    assert!(handle.join().unwrap().is_some());
}
