//! Shutdown: a drain finishes everything, delayed and retrying work included; abandon stops taking
//! work and reports what it left; both refuse new submissions; dropping a runtime stops it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workmill::{Call, Priority, QueueError, Runtime, RuntimeError, Shutdown, TaskError};

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

/// A slot through which a runtime's own tasks reach it once it is built.
type Slot = Arc<std::sync::OnceLock<std::sync::Weak<Runtime>>>;

fn reachable(runtime: &Arc<Runtime>) -> Slot {
    let slot: Slot = Arc::default();
    slot.set(Arc::downgrade(runtime)).unwrap();
    slot
}

fn reach(slot: &Slot) -> Arc<Runtime> {
    slot.get()
        .and_then(std::sync::Weak::upgrade)
        .expect("the runtime is alive while its tasks run")
}

/// Runs `f` on a thread of its own and returns what it returned; fails the test after
/// [`WAIT`] instead of hanging when `f` deadlocks (the stuck thread is left behind).
fn in_time<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what} did not return within {WAIT:?}"))
}

/// Starts `runtime.shutdown(mode)` on a thread of its own; the answer arrives on the channel.
fn shut_down_in_background(
    runtime: &Arc<Runtime>,
    mode: Shutdown,
) -> mpsc::Receiver<Result<workmill::ShutdownReport, RuntimeError>> {
    let (tx, rx) = mpsc::channel();
    let runtime = Arc::clone(runtime);
    std::thread::spawn(move || {
        let _ = tx.send(runtime.shutdown(mode));
    });
    rx
}

/// Waits until a shutdown has begun (submissions are refused), then a little longer, so that
/// the shutdown is past its first steps (a drain then waits for the queue to empty). Only
/// orders the test's steps; nothing is asserted on time. The probe submits under the id of
/// a task already there, so that it adds none.
fn wait_for_shutdown_to_begin(
    runtime: &Runtime,
    probe: &workmill::FnHandle<u32, u32>,
    taken: &workmill::TaskId,
) {
    crate::support::wait_until(
        || match runtime.submit(probe.call(0)).id(taken.clone()).send() {
            Err(RuntimeError::ShutDown) => true,
            Err(error) if error.is_duplicate() => false,
            other => panic!("{other:?}"),
        },
    );
    std::thread::sleep(Duration::from_millis(200));
}

/// A task that, once told to go, runs `then` with its runtime; it says when it started.
struct Gated {
    started: mpsc::Receiver<()>,
    go: mpsc::Sender<()>,
}

fn gated<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    runtime: &Arc<Runtime>,
    name: &str,
    then: impl Fn(&Runtime) -> T + Send + Sync + 'static,
) -> (workmill::FnHandle<u32, T>, Gated) {
    let slot = reachable(runtime);
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let (started_tx, go_rx) = (Mutex::new(started_tx), Mutex::new(go_rx));
    let handle = runtime
        .register_fn(name, move |_: u32| {
            let _ = started_tx.lock().unwrap().send(());
            let _ = go_rx.lock().unwrap().recv();
            Ok::<_, TaskError>(then(&reach(&slot)))
        })
        .unwrap();
    (handle, Gated { started, go })
}

#[test]
fn an_abandon_from_inside_a_task_ends_a_drain_in_progress() {
    let runtime = Arc::new(Runtime::builder().threads(1).build().unwrap());
    let (stopper, gate) = gated(&runtime, "stopper", |runtime| {
        let report = runtime.shutdown(Shutdown::Abandon).unwrap();
        (report.mode == Shutdown::Abandon, report.workers)
    });
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    let task = runtime.submit(stopper.call(0)).send().unwrap();
    gate.started.recv().unwrap();
    for x in 0..5 {
        runtime
            .submit(echo.call(x))
            .priority(Priority::LOW)
            .send()
            .unwrap();
    }
    let drain = shut_down_in_background(&runtime, Shutdown::Drain);
    wait_for_shutdown_to_begin(&runtime, &echo, task.id());
    // The drain waits for the stopper, which now asks to abandon: it must neither wait for
    // the drain (which holds the runtime's loops) nor be ignored by it.
    gate.go.send(()).unwrap();
    let report = drain
        .recv_timeout(WAIT)
        .expect("the drain returned")
        .unwrap();
    assert_eq!(report.mode, Shutdown::Abandon, "{report:?}");
    assert_eq!(report.left_waiting, 5, "{report:?}");
    let (abandoned, joined_by_the_task) = in_time("get_result", move || {
        runtime.get_result::<(bool, usize)>(task.id(), WAIT)
    })
    .unwrap();
    assert!(abandoned);
    // The drain had the loops by then (the case this test is after, and all but certain
    // 200 ms after shutdown began): the abandon from inside stopped them and left joining
    // them to the drain. On a machine too loaded for the drain to get that far, the abandon
    // took them first, and the drain found none; either way one call reports the loop.
    assert_eq!(
        report.workers + joined_by_the_task,
        1,
        "{report:?}, the task's call reported {joined_by_the_task}"
    );
}

#[test]
fn two_tasks_abandoning_at_once_both_return() {
    let runtime = Arc::new(Runtime::builder().threads(2).build().unwrap());
    let slot = reachable(&runtime);
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let stopper = runtime
        .register_fn("stopper", move |_: u32| {
            barrier.wait();
            let report = reach(&slot).shutdown(Shutdown::Abandon).unwrap();
            Ok::<_, TaskError>((report.workers, report.unreported_workers))
        })
        .unwrap();
    let tasks: Vec<_> = (0..2)
        .map(|x| runtime.submit(stopper.call(x)).send().unwrap())
        .collect();
    let results = {
        let runtime = Arc::clone(&runtime);
        in_time("both tasks", move || {
            tasks
                .iter()
                .map(|task| {
                    runtime
                        .get_result::<(usize, usize)>(task.id(), WAIT)
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
    };
    let mut results = results;
    results.sort();
    // One call stopped and joined the loops (all but its own, which reports nothing); the
    // other found it doing so and stopped nothing more.
    assert_eq!(results, [(0, 0), (2, 1)]);
    let again = in_time("a shutdown from outside", move || {
        runtime.shutdown(Shutdown::Abandon)
    });
    assert_eq!(again.unwrap().workers, 0);
}

#[test]
fn a_task_formatting_its_runtime_during_a_drain_does_not_block_it() {
    let runtime = Arc::new(Runtime::builder().threads(1).build().unwrap());
    let (show, gate) = gated(&runtime, "show", |runtime| format!("{runtime:?}"));
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    let task = runtime.submit(show.call(0)).send().unwrap();
    gate.started.recv().unwrap();
    let drain = shut_down_in_background(&runtime, Shutdown::Drain);
    wait_for_shutdown_to_begin(&runtime, &echo, task.id());
    gate.go.send(()).unwrap();
    let report = drain
        .recv_timeout(WAIT)
        .expect("the drain returned")
        .unwrap();
    assert_eq!((report.mode, report.stats.completed), (Shutdown::Drain, 1));
    let shown = runtime.get_result::<String>(task.id(), WAIT).unwrap();
    assert!(shown.starts_with("Runtime"), "{shown}");
}

#[test]
fn abandon_ends_a_task_that_waits_for_a_queued_task() {
    abandon_ends_a_task_waiting_for_a_queued_task_on(Runtime::builder());
}

/// The same on a durable backend, where the wait is the store's own, a slice at a time.
#[cfg(feature = "sqlite")]
#[test]
fn abandon_ends_a_task_that_waits_for_a_queued_task_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
    abandon_ends_a_task_waiting_for_a_queued_task_on(Runtime::builder().url(url));
}

fn abandon_ends_a_task_waiting_for_a_queued_task_on(builder: workmill::RuntimeBuilder) {
    let runtime = Arc::new(builder.threads(1).build().unwrap());
    let slot = reachable(&runtime);
    runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    let (waiting_tx, waiting) = mpsc::channel();
    let waiting_tx = Mutex::new(waiting_tx);
    let parent = runtime
        .register_fn("parent", move |x: u32| {
            let runtime = reach(&slot);
            // The only loop runs this task: the child stays queued behind it.
            let child = runtime
                .submit(Call::<u32, u32>::new("echo", x))
                .send()
                .unwrap();
            waiting_tx.lock().unwrap().send(()).unwrap();
            let answer = runtime.get_result::<u32>(child.id(), Duration::MAX);
            Ok::<_, TaskError>(format!("{answer:?}"))
        })
        .unwrap();
    let task = runtime.submit(parent.call(7)).send().unwrap();
    abandon_while_a_task_waits(&runtime, task.id(), &waiting, 1);
}

/// Once the task `parent` says it waits, abandons the runtime, which must return in time
/// with `left_waiting` tasks left; the parent's wait ended with `ShutDown`.
fn abandon_while_a_task_waits(
    runtime: &Arc<Runtime>,
    parent: &workmill::TaskId,
    waiting: &mpsc::Receiver<()>,
    left_waiting: u64,
) {
    waiting.recv().unwrap();
    let stopping = Arc::clone(runtime);
    let report = in_time("the abandon", move || stopping.shutdown(Shutdown::Abandon)).unwrap();
    assert_eq!(
        (report.mode, report.left_waiting),
        (Shutdown::Abandon, left_waiting)
    );
    assert_eq!(
        runtime.get_result::<String>(parent, WAIT).unwrap(),
        "Err(ShutDown)"
    );
}

#[test]
fn abandon_ends_a_task_that_waits_for_a_job() {
    let runtime = Arc::new(Runtime::builder().threads(1).build().unwrap());
    let slot = reachable(&runtime);
    let double = runtime
        .register_fn("double", |x: u32| Ok::<_, TaskError>(x * 2))
        .unwrap();
    let sum = runtime
        .register_reduce_fn("sum", |xs: Vec<u32>| {
            Ok::<_, TaskError>(xs.into_iter().sum::<u32>())
        })
        .unwrap();
    let (waiting_tx, waiting) = mpsc::channel();
    let waiting_tx = Mutex::new(waiting_tx);
    let parent = runtime
        .register_fn("parent", move |x: u32| {
            let runtime = reach(&slot);
            let job = runtime.map_reduce([x, x + 1], &double, &sum).unwrap();
            waiting_tx.lock().unwrap().send(()).unwrap();
            let answer = runtime.wait_job(&job, Duration::MAX);
            Ok::<_, TaskError>(format!("{answer:?}"))
        })
        .unwrap();
    let task = runtime.submit(parent.call(1)).send().unwrap();
    abandon_while_a_task_waits(&runtime, task.id(), &waiting, 2);
}

#[test]
fn a_pause_during_a_drain_does_not_stall_it() {
    let runtime = Arc::new(Runtime::builder().threads(1).build().unwrap());
    let (slow, gate) = gated(&runtime, "slow", |_| 1u32);
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    let task = runtime.submit(slow.call(0)).send().unwrap();
    gate.started.recv().unwrap();
    runtime.submit_all((0..10).map(|x| echo.call(x))).unwrap();
    let drain = shut_down_in_background(&runtime, Shutdown::Drain);
    wait_for_shutdown_to_begin(&runtime, &echo, task.id());
    // Once a shutdown began, a pause is ignored: the drain finishes the queued tasks.
    runtime.pause();
    gate.go.send(()).unwrap();
    let report = drain
        .recv_timeout(WAIT)
        .expect("the drain returned")
        .unwrap();
    assert_eq!((report.stats.completed, report.left_waiting), (11, 0));
}

#[test]
fn a_drain_rides_out_a_transient_store_error() {
    let (store, runtime, echo) = paused_on_flaky_store(2);
    runtime.submit_all((0..100).map(|x| echo.call(x))).unwrap();
    store.fail_next("stats", 2);
    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!((report.stats.completed, report.left_waiting), (100, 0));
    assert_eq!(store.served("stats"), 2);
}

#[test]
fn a_drain_that_fails_stops_the_runtime_as_an_abandon() {
    let (store, runtime, echo) = paused_on_flaky_store(1);
    runtime.submit_all((0..3).map(|x| echo.call(x))).unwrap();
    store.refuse_next("stats");
    let err = runtime.shutdown(Shutdown::Drain).unwrap_err();
    assert!(
        matches!(err, RuntimeError::Queue(QueueError::Incompatible { .. })),
        "{err:?}"
    );
    // The loops were stopped with work left: later reports say the runtime was abandoned.
    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!(report.mode, Shutdown::Abandon);
}

#[test]
fn a_drain_resumes_a_paused_runtime_whose_submitter_waits_for_room() {
    let runtime = Arc::new(
        Runtime::builder()
            .memory(
                workmill::MemoryConfig::default()
                    .capacity(2)
                    .on_full(workmill::OnFull::Wait(Duration::from_secs(3_600))),
            )
            .threads(1)
            .paused()
            .build()
            .unwrap(),
    );
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    runtime.submit_all((0..2).map(|x| echo.call(x))).unwrap();
    // The queue is full and paused: this submission waits for room.
    let submitter = {
        let (runtime, echo) = (Arc::clone(&runtime), echo.clone());
        std::thread::spawn(move || runtime.submit(echo.call(2)).send().map(drop))
    };
    std::thread::sleep(Duration::from_millis(200));
    let stopping = Arc::clone(&runtime);
    let report = in_time("the drain", move || stopping.shutdown(Shutdown::Drain)).unwrap();
    let submitted = submitter.join().unwrap();
    let expected = if submitted.is_ok() { 3 } else { 2 };
    assert!(
        submitted.is_ok() || matches!(submitted, Err(RuntimeError::ShutDown)),
        "{submitted:?}"
    );
    assert_eq!((report.stats.completed, report.left_waiting), (expected, 0));
}

#[test]
fn a_later_shutdown_reports_how_the_runtime_stopped() {
    let runtime = Runtime::builder().threads(1).paused().build().unwrap();
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    runtime.submit_all((0..3).map(|x| echo.call(x))).unwrap();
    let first = runtime.shutdown(Shutdown::Abandon).unwrap();
    assert_eq!((first.mode, first.left_waiting), (Shutdown::Abandon, 3));
    // The drain asked for now cannot run anything: it reports the abandon that happened.
    let second = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!(
        (second.mode, second.workers, second.left_waiting),
        (Shutdown::Abandon, 0, 3)
    );
}

#[test]
fn requeue_after_shutdown_is_refused() {
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let fail = runtime
        .register_fn("fail", |_: u32| Err::<u32, _>(TaskError::permanent("no")))
        .unwrap();
    let task = runtime.submit(fail.call(0)).send().unwrap();
    assert!(runtime.wait_for(&task, WAIT).is_err());
    runtime.shutdown(Shutdown::Drain).unwrap();
    assert!(matches!(
        runtime.requeue(task.id()),
        Err(RuntimeError::ShutDown)
    ));
    assert_eq!(
        runtime.status(task.id()).unwrap().status,
        workmill::TaskStatus::Dead,
        "the task stays dead: no loop would run it"
    );
}

/// A store that refuses a loop's reserve for a reason no wait mends stops the runtime as an
/// abandon, as a worker process stops: submissions are refused from then on, and a later
/// shutdown reports the abandon. (The refused loop used to end alone and unreported, the
/// others running on, so the runtime accepted work it might never run.)
#[test]
fn a_store_refusing_a_loop_stops_the_runtime_as_an_abandon() {
    let (store, runtime, echo) = paused_on_flaky_store(2);
    store.refuse_next("reserve");
    runtime.resume();
    let deadline = std::time::Instant::now() + WAIT;
    let refused = loop {
        match runtime.submit(echo.call(1)).send() {
            Err(RuntimeError::ShutDown) => break true,
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => {
                other.unwrap();
                break false;
            }
        }
    };
    assert!(
        refused,
        "the runtime still took submissions after its store refused a loop"
    );
    assert_eq!(store.served("reserve"), 1);
    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!(report.mode, Shutdown::Abandon);
}

/// A paused runtime of `threads` loops on a store that fails when told to, with a task `echo`
/// that returns its input.
fn paused_on_flaky_store(
    threads: usize,
) -> (crate::flaky::Store, Runtime, workmill::FnHandle<u32, u32>) {
    let store = crate::flaky::Store::new();
    let runtime = Runtime::builder()
        .backend(store.connect().unwrap())
        .threads(threads)
        .paused()
        .build()
        .unwrap();
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    (store, runtime, echo)
}
