//! Bounds and refusals: capacity (refuse or wait), retention of finished records, payload size,
//! invalid policies and duplicate ids, with batches accepted whole or not at all.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use workmill_core::{NewTask, Queue, QueueError, RetryPolicy, TaskStatus};
use workmill_queue::{MemoryConfig, MemoryQueue, OnFull};

use crate::support::{LEASE, consistent, id, manual_queue, reserve_ids, reserve_one, task, worker};

#[test]
fn a_full_queue_refuses_new_tasks_but_not_retries() {
    let (queue, _) = manual_queue(MemoryConfig::default().capacity(2));
    queue.enqueue(task("a", 5, 2)).unwrap();
    queue.enqueue(task("b", 5, 2)).unwrap();
    match queue.enqueue(task("c", 5, 2)) {
        Err(QueueError::QueueFull { capacity }) => assert_eq!(capacity, 2),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        queue.status(&id("c")),
        Err(QueueError::NotFound { .. })
    ));
    // Reserving makes room; a failed attempt comes back even though that fills the queue again.
    let a = reserve_one(&queue);
    queue.enqueue(task("c", 5, 2)).unwrap();
    queue
        .fail(
            &a.lease,
            workmill_core::Failure::new(workmill_core::FailureKind::Error, "x"),
        )
        .unwrap();
    let stats = consistent(&queue);
    assert_eq!((stats.pending, stats.retrying), (2, 1));
    // A batch larger than the whole capacity can never fit.
    let (queue, _) = manual_queue(MemoryConfig::default().capacity(2));
    let batch = vec![task("x", 5, 1), task("y", 5, 1), task("z", 5, 1)];
    assert!(matches!(
        queue.enqueue_batch(batch),
        Err(QueueError::QueueFull { .. })
    ));
    assert_eq!(consistent(&queue).submitted, 0);
}

#[test]
fn a_waiting_producer_gets_in_when_a_worker_makes_room() {
    let queue = Arc::new(MemoryQueue::with_config(
        MemoryConfig::default()
            .capacity(1)
            .on_full(OnFull::Wait(Duration::from_secs(120))),
    ));
    queue.enqueue(task("first", 5, 1)).unwrap();
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.enqueue(task("second", 5, 1)))
    };
    // Reserving makes room; the producer gets in whether it blocked already or not.
    assert_eq!(reserve_ids(&*queue, 1), ["first"]);
    assert_eq!(producer.join().unwrap().unwrap(), id("second"));
    assert_eq!(reserve_ids(&*queue, 1), ["second"]);
}

#[test]
fn a_waiting_producer_gives_up_after_its_patience() {
    let queue = MemoryQueue::with_config(
        MemoryConfig::default()
            .capacity(1)
            .on_full(OnFull::Wait(Duration::from_millis(20))),
    );
    queue.enqueue(task("first", 5, 1)).unwrap();
    assert!(matches!(
        queue.enqueue(task("second", 5, 1)),
        Err(QueueError::QueueFull { capacity: 1 })
    ));
    assert_eq!(consistent(&queue).submitted, 1);
}

#[test]
fn retention_drops_the_oldest_finished_records_first_and_counts_them() {
    let (queue, _) = manual_queue(MemoryConfig::default().retention(Some(3)));
    for i in 0..6 {
        queue.enqueue(task(&format!("t{i}"), 5, 1)).unwrap();
    }
    queue.enqueue(task("still-waiting", 9, 1)).unwrap();
    // Finish in the order t5, t4, ..., t0.
    let mut batch = queue.reserve(&worker(), 6, LEASE).unwrap();
    batch.reverse();
    for reservation in &batch {
        queue.complete(&reservation.lease, vec![]).unwrap();
    }
    for gone in ["t5", "t4", "t3"] {
        assert!(matches!(
            queue.status(&id(gone)),
            Err(QueueError::NotFound { .. })
        ));
    }
    for kept in ["t2", "t1", "t0"] {
        assert_eq!(
            queue.status(&id(kept)).unwrap().status,
            TaskStatus::Completed
        );
    }
    assert_eq!(
        queue.status(&id("still-waiting")).unwrap().status,
        TaskStatus::Pending,
        "unfinished records are never evicted"
    );
    let stats = consistent(&queue);
    assert_eq!(
        (stats.completed, stats.evicted, stats.pending),
        (6, 3, 1),
        "evicted records stay counted in their status"
    );
    // A purge removes every completed task, evicted ones included, as if never submitted.
    assert_eq!(queue.purge(&[TaskStatus::Completed]).unwrap(), 6);
    let stats = consistent(&queue);
    assert_eq!((stats.submitted, stats.completed, stats.pending), (1, 0, 1));
}

#[test]
fn oversized_payloads_invalid_policies_and_taken_ids_are_refused_whole() {
    let (queue, _) = manual_queue(MemoryConfig::default().max_payload(Some(8)));
    match queue.enqueue(NewTask::new("big", vec![0; 9]).with_id(id("big"))) {
        Err(QueueError::PayloadTooLarge { id, size, limit }) => {
            assert_eq!((id.as_str(), size, limit), ("big", 9, 8))
        }
        other => panic!("{other:?}"),
    }
    match queue.enqueue(task("bad-policy", 5, 1).retry(RetryPolicy::new(0))) {
        Err(QueueError::InvalidPolicy { id, .. }) => assert_eq!(id.as_str(), "bad-policy"),
        other => panic!("{other:?}"),
    }
    queue.enqueue(task("taken", 5, 1)).unwrap();
    match queue.enqueue(task("taken", 1, 1)) {
        Err(QueueError::DuplicateTask { id }) => assert_eq!(id.as_str(), "taken"),
        other => panic!("{other:?}"),
    }
    // One bad task refuses the whole batch, wherever it sits.
    let batch = vec![task("ok-1", 5, 1), task("ok-2", 5, 1), task("taken", 5, 1)];
    assert!(matches!(
        queue.enqueue_batch(batch),
        Err(QueueError::DuplicateTask { .. })
    ));
    let batch = vec![task("ok-1", 5, 1), task("ok-1", 5, 1)];
    assert!(matches!(
        queue.enqueue_batch(batch),
        Err(QueueError::DuplicateTask { .. })
    ));
    for name in ["ok-1", "ok-2"] {
        assert!(matches!(
            queue.status(&id(name)),
            Err(QueueError::NotFound { .. })
        ));
    }
    let stats = consistent(&queue);
    assert_eq!(stats.submitted, 1);
    assert_eq!(reserve_ids(&queue, 10), ["taken"]);
    // The refused ids are free again.
    queue
        .enqueue_batch(vec![task("ok-1", 5, 1), task("ok-2", 5, 1)])
        .unwrap();
    assert_eq!(reserve_ids(&queue, 10), ["ok-1", "ok-2"]);
}
