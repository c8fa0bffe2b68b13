//! Helpers shared by the conformance checks: polling with a deadline, and common task shapes.

use std::time::{Duration, Instant};

use workmill_core::{
    Backoff, NewJob, NewTask, Priority, Queue, Reservation, RetryPolicy, TaskId, Timestamp,
    WorkerId,
};

use super::PATIENCE;

/// A worker id for checks; panics only on an invalid literal in the suite itself.
pub fn worker(name: &str) -> WorkerId {
    WorkerId::new(name).expect("the suite's worker names are valid ids")
}

/// Polls `condition` until it returns `Some`, failing the check after [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "gave up after {PATIENCE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the clock has passed `at`, so that anything due at `at` is due.
pub(crate) fn wait_past(at: Timestamp) {
    wait_for("the clock to pass a deadline", || {
        (Timestamp::now() > at).then_some(())
    });
}

/// Reserves exactly one task, failing the check if there is none or more than one.
pub fn reserve_one(queue: &impl Queue, worker: &WorkerId, lease: Duration) -> Reservation {
    let mut got = queue.reserve(worker, 1, lease).expect("reserve");
    assert_eq!(got.len(), 1, "expected exactly one due task");
    got.remove(0)
}

/// A task with a custom id (for readable failures) and a small payload.
pub(crate) fn task(id: &str) -> NewTask {
    NewTask::new("conformance.echo", id.as_bytes().to_vec())
        .with_id(TaskId::new(id).expect("the suite's task ids are valid"))
}

/// A task at `priority`.
pub(crate) fn task_at(id: &str, priority: u16) -> NewTask {
    task(id).priority(Priority::new(priority))
}

/// `max` attempts, retried at once, no jitter: failures move without waiting.
pub(crate) fn immediate(max: u32) -> RetryPolicy {
    RetryPolicy::new(max)
        .backoff(Backoff::Immediate)
        .jitter(0.0)
}

/// A job `name` whose maps and reduce are [`task`]s with the given ids.
pub(crate) fn job(name: &str, maps: &[&str], reduce: &str) -> NewJob {
    NewJob::new(maps.iter().map(|map| task(map)).collect(), task(reduce)).with_id(id(name))
}

/// The id as a `TaskId`.
pub(crate) fn id(text: &str) -> TaskId {
    TaskId::new(text).expect("the suite's task ids are valid")
}

/// A lease long enough never to lapse during a check.
pub(crate) const LONG: Duration = Duration::from_secs(600);
