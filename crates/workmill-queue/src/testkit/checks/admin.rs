//! Checks of a task's end as its submitter sees it: cancel, results, and waiting for them.

use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, ListFilter, Payload, Queue, QueueError, RetryPolicy, TaskStatus,
};

use crate::testkit::support::{LONG, id, reserve_one, task, worker};
use crate::testkit::{Harness, QueueSettings};

fn is_illegal(result: &Result<(), QueueError>, task: &str, from: TaskStatus) -> bool {
    matches!(result, Err(QueueError::IllegalTransition { id: i, source })
        if *i == id(task) && source.from == from && source.to == TaskStatus::Cancelled)
}

/// Cancel stops a pending or retrying task for good, and refuses running and finished ones.
pub fn cancel_applies_to_waiting_tasks_only(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let slow_retry = RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_secs(3_600)));
    for name in ["running", "retrying", "pending", "completed"] {
        queue
            .enqueue(task(name).retry(slow_retry.clone()))
            .expect("enqueue");
    }
    let worker = worker("cancel-worker");
    let running = reserve_one(&queue, &worker, LONG);
    let retrying = reserve_one(&queue, &worker, LONG);
    queue
        .fail(&retrying.lease, Failure::new(FailureKind::Error, "later"))
        .expect("fail");
    let mut rest = queue.reserve(&worker, 2, LONG).expect("reserve");
    // Put "pending" back and finish "completed", so each task is in the status it is named for.
    let completed = rest.pop().expect("the fourth task");
    queue
        .release(&rest.pop().expect("the third task").lease)
        .expect("release");
    queue
        .complete(&completed.lease, Vec::new())
        .expect("complete");

    queue.cancel(&id("pending")).expect("cancel a pending task");
    queue
        .cancel(&id("retrying"))
        .expect("cancel a retrying task");
    for name in ["pending", "retrying"] {
        let record = queue.status(&id(name)).expect("status");
        assert_eq!(record.status, TaskStatus::Cancelled, "{name}");
        assert!(record.finished_at.is_some(), "{name}");
    }
    let refused = queue.cancel(&id("running"));
    assert!(
        is_illegal(&refused, "running", TaskStatus::Running),
        "{refused:?}"
    );
    let refused = queue.cancel(&id("completed"));
    assert!(
        is_illegal(&refused, "completed", TaskStatus::Completed),
        "{refused:?}"
    );
    let refused = queue.cancel(&id("pending"));
    assert!(
        is_illegal(&refused, "pending", TaskStatus::Cancelled),
        "{refused:?}"
    );
    assert!(matches!(
        queue.cancel(&id("ghost")),
        Err(QueueError::NotFound { .. })
    ));

    queue
        .complete(&running.lease, Vec::new())
        .expect("a refused cancel leaves the lease alone");
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty(),
        "cancelled tasks never run"
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (
            stats.cancelled,
            stats.completed,
            stats.retrying,
            stats.pending
        ),
        (2, 2, 0, 0)
    );
    assert!(stats.is_consistent(), "{stats:?}");
}

/// The bytes given to `complete`, `complete_batch` or `complete_payloads` come back from
/// `status`, `wait` and `list` unchanged; a stale lease in a batch is refused on its own.
pub fn result_round_trips(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let results: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("binary", vec![0, 255, 0, 1, 128, 0]),
        ("large", (0..70_000u32).map(|i| (i % 251) as u8).collect()),
    ];
    let worker = worker("result-worker");
    let mut expected = Vec::new();
    for way in ["single", "batch", "payloads"] {
        for (what, bytes) in &results {
            let name = format!("{what}-{way}");
            queue.enqueue(task(&name)).expect("enqueue");
            let reservation = reserve_one(&queue, &worker, LONG);
            assert_eq!(
                reservation.payload,
                name.as_bytes(),
                "the payload arrives unchanged"
            );
            let lease = reservation.lease;
            match way {
                "single" => queue.complete(&lease, bytes.clone()).expect("complete"),
                "batch" => {
                    let outcomes = queue
                        .complete_batch(vec![(lease, bytes.clone())])
                        .expect("complete_batch");
                    assert!(matches!(outcomes[..], [Ok(())]), "{outcomes:?}");
                }
                _ => {
                    // The same task's lease again, now stale, in the same batch.
                    let outcomes = queue
                        .complete_payloads(vec![
                            (lease.clone(), Payload::from(bytes.clone())),
                            (lease.clone(), Payload::from(&b"again"[..])),
                        ])
                        .expect("complete_payloads");
                    assert!(
                        matches!(
                            &outcomes[..],
                            [Ok(()), Err(QueueError::LeaseLost { id: lost, .. })] if *lost == lease.task
                        ),
                        "{outcomes:?}"
                    );
                }
            }
            expected.push((name, bytes));
        }
    }
    for (name, bytes) in &expected {
        let record = queue.status(&id(name)).expect("status");
        assert_eq!(record.status, TaskStatus::Completed);
        assert_eq!(record.result.as_deref(), Some(&bytes[..]), "{name}");
        assert_eq!(record.payload, name.as_bytes());
        assert_eq!(
            queue
                .wait(&id(name), Duration::ZERO)
                .expect("wait")
                .result
                .as_deref(),
            Some(&bytes[..])
        );
    }
    let listed = queue.list(&ListFilter::default()).expect("list");
    assert_eq!(listed.len(), expected.len());
    for (record, (name, bytes)) in listed.iter().zip(&expected) {
        assert_eq!(
            (&record.id, record.result.as_deref()),
            (&id(name), Some(&bytes[..]))
        );
    }
}

/// `wait` reports a timeout with the task's status, and returns the record once it is final.
pub fn wait_times_out_then_sees_the_final_record(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue.enqueue(task("awaited")).expect("enqueue");
    match queue.wait(&id("awaited"), Duration::from_millis(20)) {
        Err(QueueError::Timeout {
            id: waited, status, ..
        }) => {
            assert_eq!((waited, status), (id("awaited"), TaskStatus::Pending));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(matches!(
        queue.wait(&id("unknown"), Duration::from_millis(5)),
        Err(QueueError::NotFound { .. })
    ));
    let worker = worker("wait-worker");
    let record = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.wait(&id("awaited"), super::super::PATIENCE));
        let reservation = reserve_one(&queue, &worker, LONG);
        std::thread::sleep(Duration::from_millis(10));
        queue
            .complete(&reservation.lease, b"42".to_vec())
            .expect("complete");
        waiter.join().expect("the waiting thread")
    })
    .expect("wait returns once the task is complete");
    assert_eq!(record.status, TaskStatus::Completed);
    assert_eq!(record.result.as_deref(), Some(&b"42"[..]));
}
