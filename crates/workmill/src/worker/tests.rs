//! Worker loop tests: a loop runs what it reserves, records each outcome, pauses and stops when told,
//! and hands back the unstarted rest of a batch.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use workmill_core::{
    Backoff, Codec, NewTask, Postcard, Queue, RetryPolicy, TaskError, TaskStatus, WorkerId,
};
use workmill_queue::MemoryQueue;

use super::held::HeldLeases;
use super::run_loop::WorkerLoop;
use super::*;
use crate::registry::{Registry, SharedRegistry};

const LONG: Duration = Duration::from_secs(120);

fn options() -> WorkerOptions {
    WorkerOptions::new(WorkerId::new("loop-test").unwrap())
}

fn call(name: &str, input: u64) -> NewTask {
    NewTask::new(name, Postcard.encode(&input).unwrap())
        .retry(RetryPolicy::new(2).backoff(Backoff::Immediate))
}

/// A registry with `square`, `fail-once` (fails on attempt 1 of any input) and `panic`.
fn registry() -> SharedRegistry {
    let mut registry = Registry::new();
    registry
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    registry
        .register_fn("panic", |x: u64| -> Result<u64, TaskError> {
            panic!("panic on {x}")
        })
        .unwrap();
    SharedRegistry::new(registry)
}

#[test]
fn a_loop_runs_everything_then_stops_with_a_report() {
    let queue = Arc::new(MemoryQueue::new());
    let registry = Arc::new(registry());
    let control = Arc::new(Control::new(Mode::Run));
    let worker = {
        let (queue, registry, control) = (queue.clone(), registry.clone(), control.clone());
        thread::spawn(move || run_loop(&*queue, &registry, &control, &options()))
    };
    let mut tasks: Vec<NewTask> = (0..500).map(|i| call("square", i)).collect();
    tasks.push(call("panic", 1));
    tasks.push(call("missing", 1));
    let ids = queue.enqueue_batch(tasks).unwrap();
    let stats = queue.wait_idle(LONG).unwrap();
    control.set(Mode::Stop);
    queue.wake_workers();
    let report = worker.join().unwrap();

    assert_eq!((stats.completed, stats.dead), (500, 2));
    assert_eq!(
        report,
        LoopReport {
            attempts: 504,
            completed: 500,
            failed: 4,
            released: 0,
            lost_leases: 0,
            unrecorded: 0,
            backend_errors: 0,
        },
        "the panicking task and the unknown one ran twice each (both retryable)"
    );
    for (i, id) in ids.iter().take(500).enumerate() {
        let record = queue.status(id).unwrap();
        let result: u64 = Postcard.decode(record.result.as_deref().unwrap()).unwrap();
        assert_eq!(result, (i as u64) * (i as u64));
        assert_eq!(record.worker.unwrap().as_str(), "loop-test");
    }
    let panicked = queue.status(&ids[500]).unwrap();
    assert_eq!(panicked.attempts, 2);
    assert!(panicked.last_error.unwrap().message.contains("panic on 1"));
    let unknown = queue.status(&ids[501]).unwrap();
    assert_eq!((unknown.status, unknown.attempts), (TaskStatus::Dead, 2));
    assert_eq!(
        unknown.last_error.unwrap().kind,
        workmill_core::FailureKind::UnknownTask
    );
}

#[test]
fn a_paused_loop_starts_nothing_until_resumed() {
    let queue = Arc::new(MemoryQueue::new());
    let registry = Arc::new(registry());
    let control = Arc::new(Control::new(Mode::Pause));
    let worker = {
        let (queue, registry, control) = (queue.clone(), registry.clone(), control.clone());
        thread::spawn(move || run_loop(&*queue, &registry, &control, &options()))
    };
    let id = queue.enqueue(call("square", 3)).unwrap();
    // Paused: the task cannot start, so a short wait must time out with it pending.
    assert!(queue.wait(&id, Duration::from_millis(20)).is_err());
    assert_eq!(queue.status(&id).unwrap().status, TaskStatus::Pending);
    control.set(Mode::Run);
    assert_eq!(queue.wait(&id, LONG).unwrap().status, TaskStatus::Completed);
    control.set(Mode::Stop);
    queue.wake_workers();
    assert_eq!(worker.join().unwrap().completed, 1);
}

#[test]
fn stopping_mid_batch_hands_back_the_unstarted_tasks() {
    let queue = MemoryQueue::new();
    let control = Arc::new(Control::new(Mode::Run));
    let ran = Arc::new(Mutex::new(0));
    let mut registry = Registry::new();
    {
        let (control, ran) = (control.clone(), ran.clone());
        registry
            .register_fn("stop-after-me", move |x: u64| {
                *ran.lock().unwrap() += 1;
                control.set(Mode::Stop);
                Ok::<_, TaskError>(x)
            })
            .unwrap();
    }
    queue
        .enqueue_batch((0..5).map(|i| call("stop-after-me", i)).collect())
        .unwrap();
    let batch = queue.reserve(&options().worker, 5, LONG).unwrap();
    let options = options();
    let mut worker = WorkerLoop::new(&queue, &control, &options, None);
    worker.run_batch(&registry, batch);
    let report = worker.report;

    assert_eq!(*ran.lock().unwrap(), 1);
    assert_eq!(
        (report.attempts, report.completed, report.released),
        (1, 1, 4)
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.pending, stats.running), (1, 4, 0));
    // The handed-back tasks were never started: no attempt counted.
    let pending = queue
        .list(&workmill_core::ListFilter {
            status: Some(TaskStatus::Pending),
            limit: 10,
        })
        .unwrap();
    assert!(pending.iter().all(|record| record.attempts == 0));
}

#[test]
fn a_stopped_control_stays_stopped() {
    let control = Control::new(Mode::Pause);
    control.set(Mode::Stop);
    control.set(Mode::Run);
    assert_eq!(control.mode(), Mode::Stop);
    assert_eq!(control.wait_while_paused(), Mode::Stop);
}

#[test]
fn a_loop_does_not_start_a_task_whose_stale_lease_was_taken_by_another_worker() {
    let queue = MemoryQueue::new();
    let control = Control::new(Mode::Run);
    let mut options = options();
    options.lease = Duration::from_secs(10);
    queue.enqueue(call("square", 2)).unwrap();
    let mut batch = queue
        .reserve(&options.worker, 1, Duration::from_millis(20))
        .unwrap();
    queue.enqueue(call("square", 3)).unwrap();
    batch.extend(queue.reserve(&options.worker, 1, LONG).unwrap());
    // The heartbeat never ran: both leases were last extended long ago. The first lapsed
    // and another worker took it; the second is still held.
    let held = HeldLeases::new();
    held.hold(
        batch.iter().map(|r| &r.lease),
        std::time::Instant::now() - Duration::from_secs(100),
    );
    thread::sleep(Duration::from_millis(40));
    assert_eq!(queue.rescue_expired().unwrap(), 1);
    let other = WorkerId::new("other").unwrap();
    let taken = queue.reserve(&other, 1, LONG).unwrap();
    assert_eq!(taken[0].id(), batch[0].id());

    let registry = registry();
    let mut worker = WorkerLoop::new(&queue, &control, &options, Some(&held));
    worker.run_batch(&registry.snapshot(), batch);
    let report = worker.report;
    assert_eq!(
        (report.attempts, report.lost_leases, report.completed),
        (1, 1, 1),
        "the taken task is not started; the other is confirmed and run"
    );
    assert_eq!(held.len(), 0, "both leases are settled");
}

/// A stale lease that the store cannot confirm (a transient failure) still starts its task,
/// and the failed call counts among the loop's backend errors, as every other failed call does.
#[test]
fn an_unconfirmed_stale_lease_starts_its_task_and_counts_the_failed_call() {
    let memory = MemoryQueue::new();
    memory.enqueue(call("square", 3)).unwrap();
    let mut options = options();
    options.lease = Duration::from_secs(10);
    options.retry_writes = false;
    let batch = memory.reserve(&options.worker, 1, LONG).unwrap();
    let task = batch[0].id().clone();
    // The heartbeat never ran: the lease was last extended long ago.
    let held = HeldLeases::new();
    held.hold(
        batch.iter().map(|r| &r.lease),
        std::time::Instant::now() - Duration::from_secs(100),
    );

    let down = Down::default();
    let control = Control::new(Mode::Run);
    let registry = registry();
    let mut worker = WorkerLoop::new(&down, &control, &options, Some(&held));
    worker.run_batch(&registry.snapshot(), batch);
    let report = worker.report;
    assert_eq!(
        (report.attempts, report.unrecorded, report.backend_errors),
        (1, 1, 2),
        "the task ran; the extension and the completion both failed: {report:?}"
    );
    assert_eq!(
        down.asked.lock().unwrap()[..],
        [task.clone(), task],
        "the stale lease was extended first, then its completion written"
    );
}

/// A hand-back that the store failed for the heartbeat thread is the loop's to finish when it
/// comes to the task: it hands it back itself, so the task is due again at once instead of
/// when its lease lapses, with an attempt counted against it.
#[test]
fn a_loop_finishes_a_hand_back_the_heartbeat_could_not_make() {
    let memory = MemoryQueue::new();
    memory
        .enqueue_batch((0..2).map(|i| call("square", i)).collect())
        .unwrap();
    let options = options();
    let batch = memory.reserve(&options.worker, 2, LONG).unwrap();
    let held = HeldLeases::new();
    let now = std::time::Instant::now();
    held.hold(batch.iter().map(|r| &r.lease), now);
    held.begin(&batch[0].lease, now, LONG);
    // The heartbeat took the second task, and the store failed its hand-back.
    let mut beats = super::heartbeat::HeartbeatReport::default();
    assert!(!super::heartbeat::hand_back_once(
        &Down::default(),
        &held,
        Duration::ZERO,
        &mut beats
    ));
    held.finished(&batch[0].lease);

    let control = Control::new(Mode::Run);
    let registry = registry();
    let mut worker = WorkerLoop::new(&memory, &control, &options, Some(&held));
    worker.run_batch(&registry.snapshot(), vec![batch[1].clone()]);
    let report = worker.report;
    assert_eq!((report.attempts, report.released), (0, 1), "{report:?}");
    let record = memory.status(batch[1].id()).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Pending, 0));
    assert_eq!(held.len(), 1, "only the first task's lease is still held");
}

/// `tasks` plain tasks reserved by worker `w` on a memory queue for a minute, held as one batch
/// last extended ten seconds ago (so every lease is due for a heartbeat): the queue, the worker,
/// the reservations and the held leases.
pub(super) fn held_batch(
    tasks: usize,
) -> (
    MemoryQueue,
    WorkerId,
    Vec<workmill_core::Reservation>,
    HeldLeases,
) {
    let queue = MemoryQueue::new();
    for i in 0..tasks {
        queue
            .enqueue(NewTask::new(format!("t{i}"), vec![]))
            .unwrap();
    }
    let worker = WorkerId::new("w").unwrap();
    let reserved = queue
        .reserve(&worker, tasks, Duration::from_secs(60))
        .unwrap();
    assert_eq!(reserved.len(), tasks);
    let held = HeldLeases::new();
    let long_ago = std::time::Instant::now() - Duration::from_secs(10);
    held.hold(reserved.iter().map(|r| &r.lease), long_ago);
    (queue, worker, reserved, held)
}

/// A store that fails every call as a store that is down does, and records the task of
/// every lease it was asked to write.
#[derive(Default)]
pub(super) struct Down {
    asked: Mutex<Vec<workmill_core::TaskId>>,
    /// Panics in `release` instead of failing, as a buggy store would.
    panics: bool,
}

impl Down {
    pub(super) fn panicking() -> Down {
        Down {
            panics: true,
            ..Down::default()
        }
    }

    fn fail(&self, lease: Option<&workmill_core::Lease>) -> workmill_core::QueueError {
        if let Some(lease) = lease {
            self.asked.lock().unwrap().push(lease.task.clone());
        }
        workmill_core::QueueError::backend("down", "write", "connection refused")
    }
}

impl Queue for Down {
    fn backend_name(&self) -> &'static str {
        "down"
    }
    fn enqueue(&self, _: NewTask) -> Result<workmill_core::TaskId, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn reserve(
        &self,
        _: &WorkerId,
        _: usize,
        _: Duration,
    ) -> Result<Vec<workmill_core::Reservation>, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn heartbeat(
        &self,
        lease: &workmill_core::Lease,
        _: Duration,
    ) -> Result<workmill_core::Lease, workmill_core::QueueError> {
        Err(self.fail(Some(lease)))
    }
    fn complete(
        &self,
        lease: &workmill_core::Lease,
        _: Vec<u8>,
    ) -> Result<(), workmill_core::QueueError> {
        Err(self.fail(Some(lease)))
    }
    fn complete_batch(
        &self,
        done: Vec<(workmill_core::Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), workmill_core::QueueError>>, workmill_core::QueueError> {
        for (lease, _) in &done {
            self.fail(Some(lease));
        }
        Err(self.fail(None))
    }
    fn fail(
        &self,
        lease: &workmill_core::Lease,
        _: workmill_core::Failure,
    ) -> Result<workmill_core::FailOutcome, workmill_core::QueueError> {
        Err(self.fail(Some(lease)))
    }
    fn release(&self, lease: &workmill_core::Lease) -> Result<(), workmill_core::QueueError> {
        assert!(!self.panics, "the store panicked releasing {}", lease.task);
        Err(self.fail(Some(lease)))
    }
    fn cancel(&self, _: &workmill_core::TaskId) -> Result<(), workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn requeue(&self, _: &workmill_core::TaskId) -> Result<(), workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn status(
        &self,
        _: &workmill_core::TaskId,
    ) -> Result<workmill_core::TaskRecord, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn list(
        &self,
        _: &workmill_core::ListFilter,
    ) -> Result<Vec<workmill_core::TaskRecord>, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn stats(&self) -> Result<workmill_core::QueueStats, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn purge(&self, _: &[TaskStatus]) -> Result<u64, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn submit_job(
        &self,
        _: workmill_core::NewJob,
    ) -> Result<workmill_core::TaskId, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn job(
        &self,
        _: &workmill_core::TaskId,
    ) -> Result<workmill_core::JobRecord, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn job_results(
        &self,
        _: &workmill_core::TaskId,
    ) -> Result<Vec<Vec<u8>>, workmill_core::QueueError> {
        Err(self.fail(None))
    }
    fn rescue_expired(&self) -> Result<u64, workmill_core::QueueError> {
        Err(self.fail(None))
    }
}

/// Past its give-up time, a stopping loop settles what is left without asking the store
/// again: each such call would reopen a store that is down, one connect timeout per task.
#[test]
fn a_stopping_loop_past_its_give_up_time_asks_the_store_nothing_more() {
    let memory = MemoryQueue::new();
    memory
        .enqueue_batch((0..4).map(|i| call("square", i)).collect())
        .unwrap();
    let mut options = options();
    options.lease = Duration::from_millis(50);
    let mut batch = memory.reserve(&options.worker, 4, LONG).unwrap();
    let finished = batch.remove(0);
    let first_handed_back = batch[0].id().clone();

    let down = Down::default();
    let control = Control::new(Mode::Stop);
    let registry = registry();
    let mut worker = WorkerLoop::new(&down, &control, &options, None);
    // Stopped: the three unstarted tasks are handed back, then a finished one recorded.
    worker.run_batch(&registry.snapshot(), batch);
    worker.record_completions(vec![(finished.lease, vec![1u8].into())]);
    let report = worker.report;

    assert_eq!(
        (report.released, report.completed, report.unrecorded),
        (0, 0, 4),
        "every outcome given up is counted"
    );
    let asked = down.asked.lock().unwrap();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|task| *task == first_handed_back),
        "only the first hand-back was tried, until the give-up time; then: {asked:?}"
    );
}

/// A heartbeat round whose store call fails counts a failed extension for every lease that
/// call carried, as it counts the store's per-lease failures (it counted one per call).
#[test]
fn a_failed_heartbeat_call_counts_each_lease_it_carried() {
    let (_memory, _worker, _reserved, held) = held_batch(3);
    let mut report = super::heartbeat::HeartbeatReport::default();
    let all_asked = super::heartbeat::beat_once(
        &Down::default(),
        &held,
        Duration::from_secs(60),
        Duration::from_secs(1),
        &mut report,
    );
    assert!(!all_asked);
    assert_eq!((report.beats, report.errors, report.refused), (0, 3, 0));
}
