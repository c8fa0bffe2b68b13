//! Tests of a spawned task's state machine: run, cancel and wait, and a loom check of completion against cancel.

use super::*;
#[cfg(workmill_loom)]
use crate::sync::{AtomicBool, thread};

#[cfg(not(workmill_loom))]
mod std_tests {
    use super::*;

    #[test]
    fn a_task_runs_once_and_its_result_is_taken_by_wait() {
        let registry = Registry::for_test(1);
        let cell = TaskCell::new(|| 5);
        assert!(!cell.is_finished());
        assert!(cell.try_run(&registry, 0));
        assert!(!cell.try_run(&registry, 0), "a second run is refused");
        assert!(cell.is_finished());
        assert!(!cell.cancel(), "a finished task cannot be cancelled");
        assert_eq!(cell.wait().unwrap(), 5);
    }

    #[test]
    fn a_cancelled_task_never_runs() {
        let registry = Registry::for_test(1);
        let cell = TaskCell::new(|| -> u8 { unreachable!("cancelled") });
        assert!(cell.cancel());
        assert!(!cell.cancel());
        assert!(!cell.try_run(&registry, 0));
        assert!(!cell.is_finished());
    }

    #[test]
    fn a_panic_becomes_task_panicked() {
        let registry = Registry::for_test(1);
        let cell = TaskCell::new(|| -> u8 { panic!("boom") });
        assert!(cell.try_run(&registry, 0));
        let err = cell.wait().unwrap_err();
        assert_eq!(err.message(), "boom");
        assert!(format!("{err:?}").contains("boom"));
    }

    #[test]
    fn lanes_follow_core_priorities() {
        assert_eq!(Lane::from(Priority::new(0)), Lane::High);
        assert_eq!(Lane::from(Priority::new(1)), Lane::High);
        assert_eq!(Lane::from(Priority::new(2)), Lane::Normal);
        assert_eq!(Lane::from(Priority::new(9)), Lane::Normal);
        assert_eq!(Lane::from(Priority::new(10)), Lane::Low);
        assert_eq!(Lane::from(Priority::LOWEST), Lane::Low);
    }
}

/// A worker runs the task while its owner cancels it: exactly one wins; a
/// joiner blocked in `wait` is always woken when the worker wins.
#[cfg(workmill_loom)]
#[test]
fn loom_join_handle_completion_against_cancel() {
    loom::model(|| {
        let registry = Registry::for_test(1);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let cell = Arc::new(TaskCell::new(move || {
            flag.store(true, Ordering::Relaxed);
            9
        }));
        let worker = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.try_run(&registry, 0))
        };
        let cancelled = cell.cancel();
        let ran_it = worker.join().unwrap();
        assert!(cancelled != ran_it, "exactly one of cancel and run wins");
        assert_eq!(ran.load(Ordering::Relaxed), ran_it);
        if ran_it {
            assert_eq!(cell.wait().unwrap(), 9);
        }
    });
}

/// A joiner blocks in `wait` while the worker completes the task.
#[cfg(workmill_loom)]
#[test]
fn loom_join_handle_wait_sees_completion() {
    loom::model(|| {
        let registry = Registry::for_test(1);
        let cell = Arc::new(TaskCell::new(|| 3));
        let worker = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.try_run(&registry, 0))
        };
        assert_eq!(cell.wait().unwrap(), 3);
        assert!(worker.join().unwrap());
    });
}

/// A worker joins a task running on another worker: it waits on the task's latch by the
/// pool's sleep protocol, and the runner's completion always wakes it (a lost wake-up would
/// leave it asleep, which loom reports as a deadlock).
#[cfg(workmill_loom)]
#[test]
fn loom_a_worker_joining_a_running_task_is_woken_by_its_completion() {
    loom::model(|| {
        let registry = Registry::for_test(2);
        let cell = Arc::new(TaskCell::new(|| 5));
        let runner = {
            let (cell, registry) = (Arc::clone(&cell), crate::sync::Arc::clone(&registry));
            thread::spawn(move || cell.try_run(&registry, 1))
        };
        let latch = TaskControl::waiter_latch(&*cell, 0, None);
        let mut idle = registry.sleep.start_looking(0);
        while !latch.probe() {
            registry.sleep.no_work_found(&mut idle, latch);
        }
        assert_eq!(cell.wait().unwrap(), 5);
        assert!(runner.join().unwrap());
    });
}

/// A worker of another pool joins a running task: the runner wakes it in that pool.
#[cfg(workmill_loom)]
#[test]
fn loom_a_worker_of_another_pool_joining_a_task_is_woken_by_its_completion() {
    loom::model(|| {
        let tasks = Registry::for_test(1);
        let joiners = Registry::for_test(1);
        let cell = Arc::new(TaskCell::new(|| 5));
        let runner = {
            let cell = Arc::clone(&cell);
            thread::spawn(move || cell.try_run(&tasks, 0))
        };
        let pool = Some(crate::sync::Arc::clone(&joiners));
        let latch = TaskControl::waiter_latch(&*cell, 0, pool);
        let mut idle = joiners.sleep.start_looking(0);
        while !latch.probe() {
            joiners.sleep.no_work_found(&mut idle, latch);
        }
        assert_eq!(cell.wait().unwrap(), 5);
        assert!(runner.join().unwrap());
    });
}
