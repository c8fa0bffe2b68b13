//! Helpers shared by the memory backend's integration tests.

use std::sync::Arc;
use std::time::Duration;

use workmill_core::{
    Backoff, NewTask, Priority, Queue, Reservation, RetryPolicy, TaskId, Timestamp, WorkerId,
};
use workmill_queue::{ManualClock, MemoryConfig, MemoryQueue};

/// A long lease, for tests that are not about leases.
pub(crate) const LEASE: Duration = Duration::from_secs(60);

/// A queue on a hand-moved clock, and the clock.
pub(crate) fn manual_queue(config: MemoryConfig) -> (MemoryQueue, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_795_910_400_000_000,
    )));
    let queue = MemoryQueue::with_config(config.clock(clock.clone()));
    (queue, clock)
}

pub(crate) fn worker() -> WorkerId {
    WorkerId::new("test-worker").expect("a valid worker id")
}

pub(crate) fn id(text: &str) -> TaskId {
    TaskId::new(text).expect("a valid task id")
}

/// A task with a custom id, priority, and a retry policy without delays or jitter.
pub(crate) fn task(name: &str, priority: u16, attempts: u32) -> NewTask {
    NewTask::new("test.task", name.as_bytes().to_vec())
        .with_id(id(name))
        .priority(Priority::new(priority))
        .retry(
            RetryPolicy::new(attempts)
                .backoff(Backoff::Immediate)
                .jitter(0.0),
        )
}

/// Reserves exactly one task and returns it.
pub(crate) fn reserve_one(queue: &dyn Queue) -> Reservation {
    let mut batch = queue
        .reserve(&worker(), 1, LEASE)
        .expect("reserve succeeds");
    assert_eq!(batch.len(), 1, "expected one due task");
    batch.remove(0)
}

/// The ids a reserve of up to `max` hands out, in order.
pub(crate) fn reserve_ids(queue: &dyn Queue, max: usize) -> Vec<String> {
    queue
        .reserve(&worker(), max, LEASE)
        .expect("reserve succeeds")
        .iter()
        .map(|r| r.id().to_string())
        .collect()
}

/// Asserts the stats add up and returns them.
pub(crate) fn consistent(queue: &dyn Queue) -> workmill_core::QueueStats {
    let stats = queue.stats().expect("stats");
    assert!(stats.is_consistent(), "{stats:?}");
    stats
}
