//! Runtimes and worker processes hosted on a `workmill-executor` pool: handlers run on pool
//! threads, so their own `join` calls share the pool; a pool too small for the loops is refused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workmill::worker::{self, RunOptions};
use workmill::{Registry, Runtime, RuntimeError, Shutdown, TaskError};
use workmill_executor::ThreadPool;

use crate::support::WAIT;

fn pool(threads: usize) -> Arc<ThreadPool> {
    Arc::new(
        ThreadPool::builder()
            .num_threads(threads)
            .build()
            .expect("a pool"),
    )
}

#[test]
fn runtime_handlers_run_on_the_pool_and_fork_on_it() {
    let pool = pool(2);
    let runtime = Runtime::builder().pool(Arc::clone(&pool)).build().unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let sum = {
        let seen = Arc::clone(&seen);
        runtime
            .register_fn("sum.range", move |n: u64| {
                // The handler's thread belongs to the runtime's pool...
                seen.lock()
                    .unwrap()
                    .insert(workmill_executor::current_thread_index());
                // ...so a join inside it is the pool's join, not a new set of threads.
                let (low, high) =
                    workmill_executor::join(|| (0..n / 2).sum::<u64>(), || (n / 2..n).sum::<u64>());
                Ok::<_, TaskError>(low + high)
            })
            .unwrap()
    };
    let handles = runtime
        .submit_all((1..=50u64).map(|n| sum.call(n * 1_000)))
        .unwrap();
    for (n, handle) in (1..=50u64).zip(&handles) {
        let n = n * 1_000;
        assert_eq!(runtime.wait_for(handle, WAIT).unwrap(), n * (n - 1) / 2);
    }
    let indices = seen.lock().unwrap().clone();
    assert!(!indices.is_empty());
    assert!(
        indices.iter().all(|i| matches!(i, Some(0 | 1))),
        "every handler ran on one of the pool's two threads: {indices:?}"
    );
    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!(report.stats.completed, 50);
}

/// A loop job left waiting in the pool's queue could be picked up by a handler that waits in
/// `join` and run nested on its stack forever; so `build` returns only once every loop holds a
/// thread, even when a thread is busy with other work for a while.
#[test]
fn build_returns_once_every_loop_holds_a_thread() {
    use workmill_core::Worker;

    let pool = pool(2);
    let (release, busy) = std::sync::mpsc::channel::<()>();
    let blocker = pool.spawn(move || busy.recv().ok());
    // The blocker holds one thread until released, a while after `build` is called.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        release.send(()).ok();
    });
    let runtime = Runtime::builder()
        .pool(Arc::clone(&pool))
        .concurrency(2)
        .build()
        .unwrap();
    let load = pool.load();
    assert_eq!(
        (load.queued, load.running),
        (0, 2),
        "both loops run and none waits in the queue: {load:?}"
    );
    releaser.join().unwrap();
    assert!(blocker.join().unwrap().is_some());
    runtime.shutdown(Shutdown::Drain).unwrap();
}

#[test]
fn a_pool_smaller_than_the_loops_is_refused_with_the_reason() {
    let Err(err) = Runtime::builder().pool(pool(1)).concurrency(3).build() else {
        panic!("three loops cannot share one thread");
    };
    assert!(matches!(err, RuntimeError::Config(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("3 worker loops") && message.contains("1 threads"),
        "{message}"
    );
}

#[test]
fn a_worker_process_runs_its_loops_on_a_given_pool() {
    let pool = pool(2);
    let mut registry = Registry::new();
    let square = registry
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let queue = Arc::new(workmill::MemoryQueue::new());
    let submitter = Runtime::builder()
        .memory_queue(Arc::clone(&queue))
        .concurrency(1)
        .paused()
        .build()
        .unwrap();
    let handles = submitter
        .submit_all((0..200u64).map(|x| square.call(x)))
        .unwrap();

    let options = RunOptions::new()
        .concurrency(2)
        .handle_signals(false)
        .idle_wait(Duration::from_millis(5))
        .pool(Arc::clone(&pool));
    let stop = options.stop_handle();
    let connect = {
        let queue = Arc::clone(&queue);
        move || Ok(Arc::clone(&queue) as Arc<dyn workmill::Queue>)
    };
    let worker = std::thread::spawn(move || worker::run_with(registry, connect, options));
    for (x, handle) in (0..200u64).zip(&handles) {
        assert_eq!(submitter.wait_for(handle, WAIT).unwrap(), x * x);
    }
    stop.stop();
    let report = worker.join().unwrap().unwrap();
    assert_eq!(report.tasks.completed, 200, "{report:?}");
    assert_eq!(report.loops, 2);
    // The pool lent its threads and has them back, parked.
    assert_eq!(pool.current_num_threads(), 2);
}
