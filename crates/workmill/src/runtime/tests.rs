//! Unit tests of the runtime's waits, with hooks into them that integration tests cannot reach.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use workmill_core::TaskError;
use workmill_queue::MemoryConfig;

use super::Runtime;

/// Points of a wait for a result where a test steps in, on the waiting thread.
pub(super) mod hooks {
    use std::cell::Cell;

    thread_local! {
        static WAITING: Cell<Option<fn()>> = const { Cell::new(None) };
        static BETWEEN_WAITS: Cell<Option<fn()>> = const { Cell::new(None) };
    }

    /// Called as a wait through the runtime looks at its unfinished task on the memory queue:
    /// under the queue's lock, which it holds until it is registered on the task and asleep.
    pub(crate) fn waiting() {
        if let Some(hook) = WAITING.get() {
            hook();
        }
    }

    /// Called between two waits on the backend of a wait in slices, where nobody is
    /// registered on the task.
    pub(crate) fn between_waits() {
        if let Some(hook) = BETWEEN_WAITS.get() {
            hook();
        }
    }

    /// Sets the hooks of the calling thread.
    pub(super) fn set(waiting: Option<fn()>, between_waits: Option<fn()>) {
        WAITING.set(waiting);
        BETWEEN_WAITS.set(between_waits);
    }
}

/// With a retention bound of 0, a task's record is evicted as it finishes unless someone waits
/// on it then. Waits for results through the runtime, racing completions that come at random
/// moments over several of the memory queue's 50 ms stop checks, all get their results:
/// a wait on the memory queue is one wait, registered on its task throughout. (Waiting in
/// slices, a task finishing between two slices was evicted before the next looked, and the
/// wait failed with `NotFound`; the hook between waits widens that gap, should it come back.)
#[test]
fn result_waits_get_every_result_however_small_the_retention() {
    const TASKS: usize = 40;
    static REGISTERED: AtomicUsize = AtomicUsize::new(0);
    fn registered() {
        thread_local! {
            static ONCE: Cell<bool> = const { Cell::new(false) };
        }
        if !ONCE.replace(true) {
            REGISTERED.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn widen_the_gap() {
        std::thread::sleep(Duration::from_millis(20));
    }

    let runtime = Runtime::builder()
        .memory(MemoryConfig::default().retention(Some(0)))
        .threads(2)
        .max_batch(1)
        .build()
        .unwrap();
    // Task `i` finishes once the gate's count passes `i`.
    let gate = Arc::new((Mutex::new(0u64), Condvar::new()));
    let open = |count: u64| {
        let (opened, changed) = &*gate;
        *opened.lock().unwrap() = count;
        changed.notify_all();
    };
    let gated = {
        let gate = Arc::clone(&gate);
        runtime
            .register_fn("gated", move |i: u64| {
                let (opened, changed) = &*gate;
                let mut opened = opened.lock().unwrap();
                while *opened <= i {
                    opened = changed.wait(opened).unwrap();
                }
                Ok::<_, TaskError>(i)
            })
            .unwrap()
    };
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|i| runtime.submit(gated.call(i)).send().unwrap())
        .collect();
    let results: Vec<_> = std::thread::scope(|s| {
        let waiters: Vec<_> = tasks
            .iter()
            .map(|task| {
                let runtime = &runtime;
                s.spawn(move || {
                    hooks::set(Some(registered), Some(widen_the_gap));
                    runtime.wait_for(task, Duration::from_secs(120))
                })
            })
            .collect();
        // Every waiter waits before any task finishes: a record evicted before anyone waited
        // on it is gone by design.
        let deadline = Instant::now() + Duration::from_secs(60);
        while REGISTERED.load(Ordering::SeqCst) < TASKS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let all_waiting = REGISTERED.load(Ordering::SeqCst) >= TASKS;
        // The tasks finish one by one over a few hundred milliseconds.
        for count in 1..=TASKS as u64 {
            std::thread::sleep(Duration::from_millis(fastrand::u64(0..=15)));
            open(count);
        }
        assert!(all_waiting, "the waiters did not all wait");
        waiters
            .into_iter()
            .map(|waiter| waiter.join().unwrap())
            .collect()
    });
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), i as u64, "task {i}");
    }
}

/// Stopping the loops interrupts the waits for results on the memory queue; a wait for a
/// task still running keeps waiting (its loop finishes it) and gets the result, even with a
/// retention bound of 0, while the shutdown waits for that loop.
#[test]
fn a_wait_for_a_running_task_outlives_the_stop_and_gets_the_result() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    fn waiting() {
        WAITING.fetch_add(1, Ordering::SeqCst);
    }

    let runtime = Runtime::builder()
        .memory(MemoryConfig::default().retention(Some(0)))
        .threads(1)
        .build()
        .unwrap();
    let (started_tx, started) = std::sync::mpsc::channel();
    let started_tx = Mutex::new(started_tx);
    let (finish_tx, finish) = std::sync::mpsc::channel::<()>();
    let finish = Mutex::new(finish);
    let slow = runtime
        .register_fn("slow", move |x: u32| {
            started_tx.lock().unwrap().send(()).unwrap();
            finish.lock().unwrap().recv().unwrap();
            Ok::<_, TaskError>(x + 1)
        })
        .unwrap();
    let task = runtime.submit(slow.call(41)).send().unwrap();
    started.recv().unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            hooks::set(Some(waiting), None);
            runtime.wait_for(&task, Duration::from_secs(120))
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while WAITING.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let looks = WAITING.load(Ordering::SeqCst);
        // The abandon stops the loops, interrupts the wait, then waits for the running task.
        let stopping = s.spawn(|| runtime.shutdown(super::Shutdown::Abandon));
        while WAITING.load(Ordering::SeqCst) == looks
            && !stopping.is_finished()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let interrupted = WAITING.load(Ordering::SeqCst) > looks;
        finish_tx.send(()).unwrap();
        assert!(looks > 0, "the waiter did not wait");
        assert!(interrupted, "the stop did not interrupt the wait");
        assert_eq!(waiter.join().unwrap().unwrap(), 42);
        let report = stopping.join().unwrap().unwrap();
        assert_eq!(report.stats.completed, 1);
    });
}
