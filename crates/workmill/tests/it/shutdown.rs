//! Shutdown: a drain finishes everything, delayed and retrying work included; abandon stops taking
//! work and reports what it left; both refuse new submissions; dropping a runtime stops it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workmill::{Call, Priority, Runtime, RuntimeError, Shutdown, TaskError};

use crate::support::{WAIT, quick_retry};

#[test]
fn drain_finishes_queued_delayed_and_retrying_work_then_refuses_more() {
    let runtime = Runtime::builder().threads(2).paused().build().unwrap();
    let failures = Arc::new(Mutex::new(0));
    let fail_once = {
        let failures = failures.clone();
        runtime
            .register_fn("fail-once", move |x: u32| {
                let mut failures = failures.lock().unwrap();
                if *failures == 0 {
                    *failures += 1;
                    return Err(TaskError::retryable("first try fails"));
                }
                Ok(x)
            })
            .unwrap()
    };
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    runtime.submit_all((0..100).map(|x| echo.call(x))).unwrap();
    runtime
        .submit(echo.call(100))
        .delay(Duration::from_millis(20))
        .send()
        .unwrap();
    runtime
        .submit(fail_once.call(101))
        .retry(quick_retry(2).backoff(workmill::Backoff::Fixed(Duration::from_millis(20))))
        .send()
        .unwrap();

    // Still paused: the drain resumes it and waits for everything.
    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!(report.mode, Shutdown::Drain);
    assert_eq!(report.left_waiting, 0);
    assert_eq!((report.stats.completed, report.stats.submitted), (102, 102));
    assert_eq!((report.stats.retried, report.stats.running), (1, 0));
    assert_eq!(report.loops.completed, 102);
    assert_eq!(report.loops.failed, 1);
    assert_eq!((report.workers, report.unreported_workers), (2, 0));

    assert!(matches!(
        runtime.submit(echo.call(1)).send(),
        Err(RuntimeError::ShutDown)
    ));
    assert!(matches!(
        runtime.submit_all([echo.call(1)]),
        Err(RuntimeError::ShutDown)
    ));
    let again = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!((again.workers, again.stats.completed), (0, 102));
}

#[test]
fn abandon_lets_the_running_task_finish_and_reports_the_queued_ones() {
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let slow = runtime
        .register_fn("slow", move |_: ()| {
            started_tx.lock().unwrap().send(()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            Ok::<_, TaskError>("finished".to_owned())
        })
        .unwrap();
    let quick = runtime
        .register_fn("quick", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    let slow_task = runtime.submit(slow.call(())).send().unwrap();
    started_rx.recv().unwrap();
    for x in 0..5 {
        runtime
            .submit(quick.call(x))
            .priority(Priority::LOW)
            .send()
            .unwrap();
    }
    // Pausing makes the worker stop after the task in hand, whatever the timing.
    runtime.pause();
    release_tx.send(()).unwrap();
    let report = runtime.shutdown(Shutdown::Abandon).unwrap();
    assert_eq!(report.mode, Shutdown::Abandon);
    assert_eq!(
        runtime.get_result::<String>(slow_task.id(), WAIT).unwrap(),
        "finished"
    );
    assert_eq!(report.stats.completed, 1);
    assert_eq!(
        report.left_waiting, 5,
        "the queued tasks are left and counted"
    );
    assert_eq!((report.stats.pending, report.stats.running), (5, 0));
    assert!(report.stats.is_consistent());
    assert!(matches!(
        runtime.submit(quick.call(9)).send(),
        Err(RuntimeError::ShutDown)
    ));
}

#[test]
fn abandon_under_load_accounts_for_every_task() {
    let runtime = Runtime::builder().threads(2).build().unwrap();
    runtime
        .register_fn("spin", |x: u64| {
            Ok::<_, TaskError>((0..x % 1_000).sum::<u64>())
        })
        .unwrap();
    runtime
        .submit_all((0..20_000u64).map(|x| Call::<u64, u64>::new("spin", x)))
        .unwrap();
    let report = runtime.shutdown(Shutdown::Abandon).unwrap();
    let stats = report.stats;
    assert!(stats.is_consistent());
    assert_eq!(stats.running, 0, "stopped workers hold nothing");
    assert_eq!(stats.completed + report.left_waiting, 20_000);
    assert_eq!(report.loops.completed, stats.completed);
    assert_eq!(
        report.loops.attempts,
        report.loops.completed + report.loops.failed,
        "every started attempt is recorded"
    );
    assert_eq!(report.loops.backend_errors, 0);
}

#[test]
fn concurrent_shutdowns_let_the_drain_finish() {
    let runtime = Runtime::builder().threads(2).paused().build().unwrap();
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    runtime
        .submit_all((0..2_000).map(|x| echo.call(x)))
        .unwrap();
    let reports: Vec<_> = std::thread::scope(|scope| {
        let drain = scope.spawn(|| runtime.shutdown(Shutdown::Drain).unwrap());
        let abandon = scope.spawn(|| runtime.shutdown(Shutdown::Abandon).unwrap());
        vec![drain.join().unwrap(), abandon.join().unwrap()]
    });
    // Whichever call came first stopped the workers: after a drain everything
    // finished; after an abandon the rest is left pending and reported.
    let stopping: Vec<_> = reports.iter().filter(|r| r.workers == 2).collect();
    assert_eq!(stopping.len(), 1);
    let stats = runtime.stats().unwrap();
    assert!(stats.is_consistent() && stats.running == 0);
    assert_eq!(stats.completed + stats.pending, 2_000);
    if stopping[0].mode == Shutdown::Drain {
        assert_eq!(stats.completed, 2_000);
    } else {
        assert_eq!(stopping[0].left_waiting, stats.pending);
    }
}

#[test]
fn dropping_a_runtime_stops_its_workers() {
    for _ in 0..3 {
        let runtime = Runtime::builder().threads(2).build().unwrap();
        let echo = runtime
            .register_fn("echo", |x: u8| Ok::<_, TaskError>(x))
            .unwrap();
        let task = runtime.submit(echo.call(1)).send().unwrap();
        assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), 1);
        runtime
            .submit_all((0..1_000).map(|_| echo.call(2)))
            .unwrap();
        drop(runtime);
    }
}

#[test]
fn a_drain_asked_for_from_inside_a_task_is_refused_and_stops_nothing() {
    let runtime = Arc::new(Runtime::builder().threads(2).build().unwrap());
    let this: Arc<std::sync::OnceLock<std::sync::Weak<Runtime>>> = Arc::default();
    this.set(Arc::downgrade(&runtime)).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let stopper = {
        let this = Arc::clone(&this);
        runtime
            .register_fn("stopper", move |_: u32| {
                let runtime = this.get().and_then(std::sync::Weak::upgrade);
                let answer = runtime.map(|runtime| runtime.shutdown(Shutdown::Drain));
                tx.lock()
                    .unwrap()
                    .send(answer.map(|a| a.map(drop)))
                    .unwrap();
                Ok::<_, TaskError>(1)
            })
            .unwrap()
    };
    let handle = runtime.submit(stopper.call(0)).send().unwrap();
    // Without the check, the drain waits for the very task that asked for it, forever.
    let answer = rx
        .recv_timeout(WAIT)
        .expect("the drain from inside returned");
    assert!(
        matches!(answer, Some(Err(RuntimeError::DrainFromOwnTask))),
        "{answer:?}"
    );
    assert_eq!(runtime.wait_for(&handle, WAIT).unwrap(), 1);
    // Nothing was stopped: the runtime still takes and runs tasks, and drains from outside.
    let again = runtime.submit(stopper.call(1)).send().unwrap();
    assert!(matches!(
        rx.recv_timeout(WAIT).unwrap(),
        Some(Err(RuntimeError::DrainFromOwnTask))
    ));
    assert_eq!(runtime.wait_for(&again, WAIT).unwrap(), 1);
    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!((report.stats.completed, report.left_waiting), (2, 0));
}
