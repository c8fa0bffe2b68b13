//! Queue order: priority first, FIFO within a priority, delays hidden until due, and where retried,
//! released and requeued tasks re-enter.

use std::time::Duration;

use workmill_core::{
    Backoff, FailOutcome, Failure, FailureKind, Queue, RetryPolicy, TaskStatus, Timestamp,
};
use workmill_queue::MemoryConfig;

use crate::support::{LEASE, id, manual_queue, reserve_ids, reserve_one, task, worker};

#[test]
fn lower_priority_number_first_then_fifo() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    let plan = [
        ("low-1", 10),
        ("high-1", 1),
        ("normal-1", 5),
        ("high-2", 1),
        ("low-2", 10),
        ("normal-2", 5),
        ("high-3", 1),
    ];
    for (name, priority) in plan {
        queue.enqueue(task(name, priority, 1)).unwrap();
    }
    assert_eq!(
        reserve_ids(&queue, 3),
        ["high-1", "high-2", "high-3"],
        "one batch takes the most urgent first"
    );
    assert_eq!(
        reserve_ids(&queue, 10),
        ["normal-1", "normal-2", "low-1", "low-2"]
    );
}

#[test]
fn batch_enqueue_keeps_submission_order() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    let names: Vec<String> = (0..50).map(|i| format!("t{i:02}")).collect();
    let ids = queue
        .enqueue_batch(names.iter().map(|n| task(n, 5, 1)).collect())
        .unwrap();
    assert_eq!(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(), names);
    let mut order = Vec::new();
    for _ in 0..5 {
        order.extend(reserve_ids(&queue, 10));
    }
    assert_eq!(order, names);
}

#[test]
fn delayed_tasks_are_hidden_until_due_then_keep_their_arrival_order() {
    let (queue, clock) = manual_queue(MemoryConfig::default());
    let now = clock_now(&queue);
    queue
        .enqueue(task("delayed", 5, 1).run_at(now.saturating_add(Duration::from_secs(10))))
        .unwrap();
    queue.enqueue(task("now-1", 5, 1)).unwrap();
    assert_eq!(reserve_ids(&queue, 10), ["now-1"]);
    let record = queue.status(&id("delayed")).unwrap();
    assert_eq!(record.status, TaskStatus::Pending);
    assert_eq!(
        queue.stats().unwrap().pending,
        1,
        "a delayed task counts as pending"
    );

    queue.enqueue(task("now-2", 5, 1)).unwrap();
    clock.advance(Duration::from_secs(10));
    // Due now, and it arrived before now-2.
    assert_eq!(reserve_ids(&queue, 10), ["delayed", "now-2"]);
}

fn clock_now(queue: &dyn Queue) -> Timestamp {
    // The created_at of a probe task is the queue's current time.
    let probe = queue.enqueue(task("probe", 0, 1)).unwrap();
    let at = queue.status(&probe).unwrap().created_at;
    queue.cancel(&probe).unwrap();
    at
}

#[test]
fn a_retry_waits_its_backoff_then_reenters_demoted_behind_waiting_tasks() {
    let (queue, clock) = manual_queue(MemoryConfig::default());
    let policy = RetryPolicy::new(3)
        .backoff(Backoff::exponential(
            Duration::from_secs(2),
            Duration::from_secs(60),
        ))
        .jitter(0.0)
        .demote_by(10);
    queue
        .enqueue(task("flaky", 1, 3).retry(policy.clone()))
        .unwrap();
    let first = reserve_one(&queue);
    let outcome = queue
        .fail(&first.lease, Failure::new(FailureKind::Error, "x"))
        .unwrap();
    let FailOutcome::Retrying { run_at, priority } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(priority.level(), 11);
    let record = queue.status(&id("flaky")).unwrap();
    assert_eq!(record.run_at, run_at);
    assert_eq!(
        run_at.saturating_duration_since(record.started_at.unwrap()),
        Duration::from_secs(2)
    );

    queue.enqueue(task("waiting-11", 11, 1)).unwrap();
    queue.enqueue(task("waiting-12", 12, 1)).unwrap();
    clock.advance(Duration::from_millis(1_999));
    assert_eq!(
        reserve_ids(&queue, 1),
        ["waiting-11"],
        "not due a microsecond early"
    );
    clock.advance(Duration::from_millis(1));
    queue.enqueue(task("later-11", 11, 1)).unwrap();
    assert_eq!(reserve_ids(&queue, 10), ["flaky", "later-11", "waiting-12"]);
}

#[test]
fn a_released_task_returns_to_the_front_of_its_priority() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    for name in ["a", "b", "c"] {
        queue.enqueue(task(name, 5, 1)).unwrap();
    }
    let mut batch = queue.reserve(&worker(), 2, LEASE).unwrap();
    queue.release(&batch.remove(1).lease).unwrap();
    assert_eq!(reserve_ids(&queue, 10), ["b", "c"]);
}

#[test]
fn a_requeued_task_enters_as_a_new_arrival() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("dies", 5, 1)).unwrap();
    let reservation = reserve_one(&queue);
    queue
        .fail(&reservation.lease, Failure::new(FailureKind::Error, "x"))
        .unwrap();
    queue.enqueue(task("next", 5, 1)).unwrap();
    queue.requeue(&id("dies")).unwrap();
    assert_eq!(reserve_ids(&queue, 10), ["next", "dies"]);
}
