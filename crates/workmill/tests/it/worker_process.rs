//! `worker::run` in this process: every task runs once, a stop hands back what was not started,
//! leases outlive slow tasks, and store failures lose no result.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use workmill::worker::{self, Reconnect, RunOptions, StopCause, WorkerReport};
use workmill::{
    Backoff, Codec, FailureKind, ListFilter, MemoryQueue, NamedTask, NewTask, Postcard, Queue,
    QueueError, Registry, RetryPolicy, RuntimeError, TaskError, TaskStatus, WorkerId,
};

use crate::flaky::{Store, result_of};
use crate::support::WAIT;

fn call(name: &str, input: u64) -> NewTask {
    NewTask::new(name, Postcard.encode(&input).unwrap())
        .retry(RetryPolicy::new(3).backoff(Backoff::Immediate))
}

/// `square`; `fail-once` (fails its first attempt); `block` (runs until the worker is stopped).
fn registry(stop: &workmill::worker::StopHandle) -> Registry {
    let mut registry = Registry::new();
    registry
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    registry.register::<FailOnce>().unwrap();
    let stop = stop.clone();
    registry
        .register_fn("block", move |x: u64| {
            stop.wait(WAIT);
            Ok::<_, TaskError>(x)
        })
        .unwrap();
    registry
}

fn quiet(options: RunOptions) -> RunOptions {
    options
        .handle_signals(false)
        .reconnect(Reconnect {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(20),
            jitter: 0.5,
        })
        .worker_id(WorkerId::new("in-process").unwrap())
}

/// Options for `loops` loops that each reserve exactly `batch` tasks, on leases of `lease`
/// extended every fifth of it.
fn leased(loops: usize, batch: usize, lease: Duration) -> RunOptions {
    quiet(
        RunOptions::new()
            .concurrency(loops)
            .min_batch(batch)
            .max_batch(batch)
            .lease(lease)
            .heartbeat_every(lease / 5),
    )
}

/// Registers `slow`, which sleeps for `time` and returns its input.
fn register_slow(registry: &mut Registry, time: Duration) {
    registry
        .register_fn("slow", move |x: u64| {
            thread::sleep(time);
            Ok::<_, TaskError>(x)
        })
        .unwrap();
}

/// Waits until `completed` tasks have completed, rescuing and reserving all along: anyone
/// doing so would take over a lease that lapsed, and the test fails if one did.
fn no_lease_lapses_until_completed(queue: &MemoryQueue, lease: Duration, completed: u64) {
    let rescuer = WorkerId::new("rescuer").unwrap();
    crate::support::wait_until(|| {
        queue.rescue_expired().unwrap();
        let reserve = usize::try_from(completed).unwrap();
        assert!(queue.reserve(&rescuer, reserve, lease).unwrap().is_empty());
        queue.stats().unwrap().completed == completed
    });
}

/// Stops the worker, wakes its idle loops, and returns its report.
fn stop_and_join(
    stop: &workmill::worker::StopHandle,
    queue: &MemoryQueue,
    worker: thread::JoinHandle<Result<WorkerReport, RuntimeError>>,
) -> WorkerReport {
    stop.stop();
    queue.wake_workers();
    worker.join().unwrap().unwrap()
}

fn start(
    registry: Registry,
    queue: Arc<dyn Queue>,
    options: RunOptions,
) -> thread::JoinHandle<Result<WorkerReport, RuntimeError>> {
    thread::spawn(move || worker::run_with(registry, move || Ok(Arc::clone(&queue)), options))
}

#[test]
fn a_worker_runs_every_task_once_and_stops_on_its_handle() {
    let queue = Arc::new(MemoryQueue::new());
    let options = quiet(RunOptions::new().concurrency(3).max_batch(16));
    let stop = options.stop_handle();
    let worker = start(registry(&stop), queue.clone(), options);
    let ids = queue
        .enqueue_batch((0..2_000).map(|i| call("square", i)).collect())
        .unwrap();
    let stats = queue.wait_idle(WAIT).unwrap();
    let report = stop_and_join(&stop, &queue, worker);

    assert_eq!((stats.completed, stats.failed_attempts), (2_000, 0));
    assert_eq!(report.loops, 3);
    assert_eq!(report.unreported_loops, 0);
    assert_eq!(
        (
            report.tasks.attempts,
            report.tasks.completed,
            report.tasks.released
        ),
        (2_000, 2_000, 0)
    );
    assert_eq!(report.stopped_by, Some(StopCause::Handle));
    let mut workers = std::collections::BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let record = queue.status(id).unwrap();
        assert_eq!(record.attempts, 1);
        assert_eq!(result_of::<u64>(&record), (i * i) as u64);
        workers.insert(record.worker.unwrap().to_string());
    }
    assert!(
        workers.iter().all(|w| w.starts_with("in-process-")),
        "{workers:?}"
    );
}

#[test]
fn a_stop_hands_back_unstarted_reservations_at_once() {
    let queue = Arc::new(MemoryQueue::new());
    // Two loops, each reserving exactly four tasks: each runs one `block` and holds three.
    let options = quiet(
        RunOptions::new()
            .concurrency(2)
            .min_batch(4)
            .max_batch(4)
            .lease(Duration::from_secs(600)),
    );
    let stop = options.stop_handle();
    let ids = queue
        .enqueue_batch((0..20).map(|i| call("block", i)).collect())
        .unwrap();
    let worker = start(registry(&stop), queue.clone(), options);
    crate::support::wait_until(|| queue.stats().unwrap().running == 8);
    stop.stop();
    let report = worker.join().unwrap().unwrap();

    assert_eq!(
        (
            report.tasks.attempts,
            report.tasks.completed,
            report.tasks.released
        ),
        (2, 2, 6)
    );
    let stats = queue.stats().unwrap();
    assert_eq!(
        (
            stats.completed,
            stats.running,
            stats.pending,
            stats.expired_leases
        ),
        (2, 0, 18, 0),
        "the six unstarted tasks are pending again long before their 10-minute leases lapse"
    );
    let pending = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Pending),
            limit: 100,
        })
        .unwrap();
    assert!(pending.iter().all(|record| record.attempts == 0));
    assert_eq!(pending.len() + 2, ids.len());
}

#[test]
fn a_stop_during_a_reserve_starts_none_of_the_batch() {
    let store = Store::new();
    let options = quiet(RunOptions::new().concurrency(1).min_batch(4).max_batch(4));
    let stop = options.stop_handle();
    {
        let stop = stop.clone();
        store.after_reserve(move || stop.stop());
    }
    store
        .memory
        .enqueue_batch((0..4).map(|i| call("square", i)).collect())
        .unwrap();
    let worker = {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || worker::run_with(registry, move || store.connect(), options))
    };
    let report = worker.join().unwrap().unwrap();
    assert_eq!(
        (report.tasks.attempts, report.tasks.released),
        (0, 4),
        "the stop came before any task of the batch started"
    );
    let stats = store.memory.stats().unwrap();
    assert_eq!((stats.pending, stats.running, stats.completed), (4, 0, 0));
}

#[test]
fn held_leases_outlive_tasks_longer_than_the_lease() {
    let queue = Arc::new(MemoryQueue::new());
    let lease = Duration::from_secs(1);
    // Three loops, each running one task longer than the lease.
    let options = leased(3, 1, lease);
    let stop = options.stop_handle();
    let mut registry = Registry::new();
    register_slow(&mut registry, Duration::from_millis(1_200));
    let ids = queue
        .enqueue_batch((0..3).map(|i| call("slow", i)).collect())
        .unwrap();
    let worker = start(registry, queue.clone(), options);
    crate::support::wait_until(|| queue.stats().unwrap().running == 3);
    no_lease_lapses_until_completed(&queue, lease, 3);
    let report = stop_and_join(&stop, &queue, worker);

    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.completed, stats.expired_leases, stats.failed_attempts),
        (3, 0, 0)
    );
    for id in &ids {
        assert_eq!(queue.status(id).unwrap().attempts, 1);
    }
    assert!(report.heartbeats >= 3, "{report}");
    assert_eq!(report.heartbeat_refused, 0);
}

/// A finished task whose completion waits for the end of its batch keeps its lease while a
/// batch-mate runs longer than the lease: nothing waits unstarted, so nothing is handed back.
#[test]
fn a_finished_task_keeps_its_lease_while_its_batch_mate_runs_past_the_lease() {
    let queue = Arc::new(MemoryQueue::new());
    let lease = Duration::from_secs(1);
    let options = leased(1, 2, lease);
    let stop = options.stop_handle();
    let mut registry = registry(&stop);
    register_slow(&mut registry, Duration::from_millis(1_500));
    let short = queue.enqueue(call("square", 4)).unwrap();
    let slow = queue.enqueue(call("slow", 1)).unwrap();
    let worker = start(registry, queue.clone(), options);
    // Both reserved in one batch; the short one stays running until the batch's end.
    crate::support::wait_until(|| queue.stats().unwrap().running == 2);
    no_lease_lapses_until_completed(&queue, lease, 2);
    let report = stop_and_join(&stop, &queue, worker);

    for id in [&short, &slow] {
        assert_eq!(queue.status(id).unwrap().attempts, 1);
    }
    assert_eq!(result_of::<u64>(&queue.status(&short).unwrap()), 16);
    let stats = queue.stats().unwrap();
    assert_eq!((stats.expired_leases, stats.failed_attempts), (0, 0));
    assert_eq!(
        (report.tasks.attempts, report.tasks.released),
        (2, 0),
        "{report}"
    );
    assert!(report.heartbeats >= 1, "{report}");
}

/// A loop runs its batch in order: a task reserved behind a long one would wait it out while
/// another loop sits idle. The heartbeat thread hands it back, the idle loop runs it, and the
/// long task sees it completed while it still runs.
#[test]
fn a_task_waiting_behind_a_long_one_is_handed_back_to_an_idle_loop() {
    let queue = Arc::new(MemoryQueue::new());
    let lease = Duration::from_secs(1);
    let options = leased(2, 2, lease).idle_wait(Duration::from_millis(50));
    let stop = options.stop_handle();
    let long = queue.enqueue(call("long", 0)).unwrap();
    let short = queue.enqueue(call("square", 3)).unwrap();
    let mut registry = registry(&stop);
    {
        let (queue, short) = (Arc::clone(&queue), short.clone());
        registry
            .register_fn("long", move |_: u64| {
                // Runs until the task reserved behind it has completed elsewhere.
                let deadline = std::time::Instant::now() + WAIT;
                while std::time::Instant::now() < deadline {
                    if queue.status(&short).unwrap().status == TaskStatus::Completed {
                        return Ok::<_, TaskError>(true);
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                Ok(false)
            })
            .unwrap();
    }
    let worker = start(registry, queue.clone(), options);
    crate::support::wait_until(|| queue.stats().unwrap().completed == 2);
    let report = stop_and_join(&stop, &queue, worker);

    assert!(
        result_of::<bool>(&queue.status(&long).unwrap()),
        "the short task completed while the long one ran"
    );
    let short = queue.status(&short).unwrap();
    assert_eq!(result_of::<u64>(&short), 9);
    assert_eq!(short.attempts, 1, "the hand-back did not count an attempt");
    assert_eq!(
        (report.tasks.attempts, report.tasks.released),
        (2, 1),
        "{report}"
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.expired_leases, stats.failed_attempts), (0, 0));
}

#[test]
fn store_failures_are_ridden_out_without_losing_a_result() {
    let store = Store::new();
    // Every kind of write fails a few times, and the first reservations too.
    for (operation, times) in [("reserve", 3), ("complete_batch", 4), ("fail", 2)] {
        store.fail_next(operation, times);
    }
    let options = quiet(RunOptions::new().concurrency(2).max_batch(8));
    let stop = options.stop_handle();
    let worker = {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || worker::run_with(registry, move || store.connect(), options))
    };
    let mut tasks: Vec<NewTask> = (0..300).map(|i| call("square", i)).collect();
    tasks.extend((0..20).map(|i| call(FailOnce::NAME, i)));
    let ids = store.memory.enqueue_batch(tasks).unwrap();
    let stats = store.memory.wait_idle(WAIT).unwrap();
    stop.stop();
    store.memory.wake_workers();
    let report = worker.join().unwrap().unwrap();

    assert_eq!(
        (stats.completed, stats.dead, stats.failed_attempts),
        (320, 0, 20)
    );
    for (i, id) in ids.iter().enumerate() {
        let record = store.memory.status(id).unwrap();
        // A result written late is written once: no task ran more often than its failures ask.
        let expected_attempts = if i < 300 { 1 } else { 2 };
        assert_eq!(record.attempts, expected_attempts, "task {i}");
        if i < 300 {
            assert_eq!(result_of::<u64>(&record), (i * i) as u64);
        }
    }
    let served = store.served("reserve") + store.served("complete_batch") + store.served("fail");
    assert_eq!(served, 9);
    assert_eq!(report.tasks.backend_errors, u64::from(served), "{report}");
    assert_eq!(report.tasks.completed, 320);
    assert_eq!(report.tasks.failed, 20);
    assert!(report.reconnects >= 1, "{report}");
    assert_eq!(u64::from(store.connects()), report.reconnects + 1);
}

#[test]
fn a_store_down_at_start_is_waited_for() {
    let store = Store::new();
    store.fail_next("connect", 3);
    let options = quiet(RunOptions::new().concurrency(1));
    let stop = options.stop_handle();
    let worker = {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || worker::run_with(registry, move || store.connect(), options))
    };
    let id = store.memory.enqueue(call("square", 9)).unwrap();
    let record = store.memory.wait(&id, WAIT).unwrap();
    assert_eq!(result_of::<u64>(&record), 81);
    stop.stop();
    store.memory.wake_workers();
    let report = worker.join().unwrap().unwrap();
    assert_eq!(store.served("connect"), 3);
    assert_eq!(report.tasks.backend_errors, 3);
    assert_eq!(
        report.reconnects, 0,
        "the first connection that worked is not a reconnect"
    );
}

#[test]
fn a_stopping_worker_gives_up_on_a_dead_store_after_a_lease_and_loses_nothing() {
    let store = Store::new();
    let lease = Duration::from_millis(400);
    let options = quiet(RunOptions::new().concurrency(1).lease(lease));
    let stop = options.stop_handle();
    let worker = {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || worker::run_with(registry, move || store.connect(), options))
    };
    let id = store.memory.enqueue(call("block", 5)).unwrap();
    crate::support::wait_until(|| store.memory.stats().unwrap().running == 1);
    // The store goes down while the task runs; then the worker is told to stop.
    store.set_down(true);
    stop.stop();
    let report = worker.join().unwrap().unwrap();
    assert_eq!(
        (report.tasks.completed, report.tasks.unrecorded),
        (0, 1),
        "{report}"
    );

    // Back up: the lapsed lease is rescued and the task runs again. Nothing was lost.
    store.set_down(false);
    crate::support::wait_until(|| store.memory.rescue_expired().unwrap() == 1);
    let record = store.memory.status(&id).unwrap();
    assert_eq!(record.attempts, 1);
    assert_eq!(record.last_error.unwrap().kind, FailureKind::LeaseExpired);
    assert!(matches!(
        record.status,
        TaskStatus::Retrying | TaskStatus::Pending
    ));
}

/// A stopping loop retries a write until its give-up time, and never waits past it: with
/// reconnect waits of 10 s and a lease of 400 ms, the stop takes well under the first wait.
#[test]
fn a_stopping_worker_waits_no_longer_than_its_give_up_time() {
    let store = Store::new();
    let options = RunOptions::new()
        .concurrency(1)
        .lease(Duration::from_millis(400))
        .handle_signals(false)
        .reconnect(Reconnect {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(10),
            jitter: 0.0,
        });
    let stop = options.stop_handle();
    let worker = {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || worker::run_with(registry, move || store.connect(), options))
    };
    store.memory.enqueue(call("block", 5)).unwrap();
    crate::support::wait_until(|| store.memory.stats().unwrap().running == 1);
    store.set_down(true);
    let stopped = std::time::Instant::now();
    stop.stop();
    let report = worker.join().unwrap().unwrap();
    let took = stopped.elapsed();
    assert_eq!(report.tasks.unrecorded, 1, "{report}");
    assert!(
        took < Duration::from_secs(5),
        "a 10 s reconnect wait overran the 400 ms give-up: the stop took {took:?}"
    );
}

/// A few failed heartbeat rounds in a row do not cost a running task its lease: after a
/// failure the heartbeat tries again within half an interval, not a whole interval later.
/// (With a whole interval between tries, the third failed round leaves the lease to lapse.)
#[test]
fn failed_heartbeat_rounds_are_tried_again_before_the_lease_lapses() {
    let store = Store::new();
    let lease = Duration::from_millis(2_000);
    let options = quiet(
        RunOptions::new()
            .concurrency(1)
            .lease(lease)
            .heartbeat_every(lease / 3),
    );
    let stop = options.stop_handle();
    let worker = {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || worker::run_with(registry, move || store.connect(), options))
    };
    let id = store.memory.enqueue(call("block", 5)).unwrap();
    crate::support::wait_until(|| store.memory.stats().unwrap().running == 1);
    store.fail_next("heartbeat", 3);
    // Rescue all along, as another worker would, until the lease would have lapsed twice
    // over had the heartbeat waited a whole interval after each failure.
    let watched = std::time::Instant::now();
    while watched.elapsed() < lease + lease / 2 {
        assert_eq!(
            store.memory.rescue_expired().unwrap(),
            0,
            "the lease of a running task lapsed after {} failed heartbeats",
            store.served("heartbeat")
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.served("heartbeat"), 3, "every failure was served");
    stop.stop();
    store.memory.wake_workers();
    let report = worker.join().unwrap().unwrap();
    let record = store.memory.status(&id).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 1));
    assert_eq!(report.heartbeat_errors, 3, "{report}");
}

/// A store that refuses to hand out work for a reason no wait mends (a schema migrated by
/// a newer build) stops the worker: `run` settles what it holds and returns the refusal.
#[test]
fn a_refused_reservation_stops_the_worker_with_the_refusal() {
    let store = Store::new();
    let options = quiet(RunOptions::new().concurrency(2));
    let stop = options.stop_handle();
    let (sender, returned) = std::sync::mpsc::channel();
    {
        let (store, registry) = (store.clone(), registry(&stop));
        thread::spawn(move || {
            let result = worker::run_with(registry, move || store.connect(), options);
            sender.send(result).unwrap();
        });
    }
    // One loop runs a task until the worker stops; the other is looking for work.
    let id = store.memory.enqueue(call("block", 5)).unwrap();
    crate::support::wait_until(|| store.memory.stats().unwrap().running == 1);
    store.refuse_next("reserve");
    let result = returned
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            stop.stop();
            panic!("the worker kept running after the store refused a reservation")
        });
    let error = result.unwrap_err();
    assert!(
        matches!(&error, RuntimeError::Queue(QueueError::Incompatible { .. })),
        "{error}"
    );
    assert_eq!(store.served("reserve"), 1);
    let record = store.memory.status(&id).unwrap();
    assert_eq!(
        (record.status, record.attempts),
        (TaskStatus::Completed, 1),
        "the running task was finished and recorded before `run` returned"
    );
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let cases = [
        (RunOptions::new().concurrency(0), "concurrency"),
        (RunOptions::new().min_batch(8).max_batch(4), "min_batch"),
        (
            RunOptions::new()
                .lease(Duration::from_secs(1))
                .heartbeat_every(Duration::from_secs(1)),
            "at most a third of the lease",
        ),
        // A lease can wait one and a half intervals for its first extension, and needs the
        // rest of its length to try again if the store fails then.
        (
            RunOptions::new()
                .lease(Duration::from_secs(30))
                .heartbeat_every(Duration::from_secs(25)),
            "at most a third of the lease",
        ),
        (
            RunOptions::new()
                .lease(Duration::from_secs(30))
                .heartbeat_every(Duration::from_secs(12)),
            "at most a third of the lease",
        ),
    ];
    for (options, expected) in cases {
        let error =
            worker::run(Registry::new(), "memory://", options.handle_signals(false)).unwrap_err();
        assert!(
            matches!(&error, RuntimeError::Config(reason) if reason.contains(expected)),
            "{error}"
        );
    }
    let error = worker::run(Registry::new(), "postgress://db", RunOptions::new()).unwrap_err();
    assert!(
        matches!(&error, RuntimeError::Queue(QueueError::InvalidUrl { .. })),
        "{error}"
    );
}

/// Fails the first attempt of every task, then succeeds.
#[derive(serde::Serialize, serde::Deserialize)]
struct FailOnce(u64);

impl NamedTask for FailOnce {
    const NAME: &'static str = "fail-once";
    type Output = u64;
    fn run(self, ctx: &workmill::TaskContext<'_>) -> Result<u64, TaskError> {
        if ctx.attempt() == 1 {
            return Err(TaskError::retryable("first attempts fail"));
        }
        Ok(self.0)
    }
}

#[test]
fn a_loop_that_keeps_no_copies_counts_a_failed_write_and_leaves_the_task_to_its_lease() {
    use workmill::worker::{Control, Mode, WorkerOptions, run_loop};
    let store = Store::new();
    store.fail_next("complete_batch", 1);
    let queue = store.connect().unwrap();
    let id = queue.enqueue(call("square", 4)).unwrap();
    let stop = workmill::worker::StopHandle::new();
    let registry = Arc::new(workmill::SharedRegistry::new(registry(&stop)));
    let control = Arc::new(Control::new(Mode::Run));
    let worker = {
        let (queue, registry, control) = (queue.clone(), registry.clone(), control.clone());
        thread::spawn(move || {
            let options = WorkerOptions {
                retry_writes: false,
                lease: Duration::from_secs(600),
                ..WorkerOptions::new(WorkerId::new("no-copies").unwrap())
            };
            run_loop(&*queue, &registry, &control, &options)
        })
    };
    crate::support::wait_until(|| store.served("complete_batch") == 1);
    control.set(Mode::Stop);
    store.memory.wake_workers();
    let report = worker.join().unwrap();
    assert_eq!(
        (
            report.attempts,
            report.completed,
            report.unrecorded,
            report.backend_errors
        ),
        (1, 0, 1, 1)
    );
    // Not recorded, not lost: the task is still leased, and comes back when the lease lapses.
    let record = store.memory.status(&id).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Running, 1));
}
