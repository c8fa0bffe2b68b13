//! Checks of what is stored and how it is found: duplicate and invalid submissions, list and purge.

use workmill_core::{
    Failure, FailureKind, INLINE_PAYLOAD, ListFilter, NewTask, Queue, QueueError, RetryPolicy,
    TaskId, TaskStatus,
};

use crate::testkit::support::{LONG, id, task, worker};
use crate::testkit::{Harness, QueueSettings};

/// Inputs and names of every size come back unchanged from `reserve`, `status` and `list`:
/// an empty input, one at `Payload`'s inline limit, one a byte past it and a large one, under
/// short and long names (read back from a store, both are rebuilt from its bytes).
pub fn inputs_and_names_of_every_size_round_trip(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let bytes = |len: usize| (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    let long_name = format!("conformance.{}", "a-long-handler-name.".repeat(12));
    let tasks = [
        ("empty-input", "e", bytes(0)),
        ("inline-input", "conformance.inline", bytes(INLINE_PAYLOAD)),
        (
            "shared-input",
            long_name.as_str(),
            bytes(INLINE_PAYLOAD + 1),
        ),
        ("large-input", long_name.as_str(), bytes(70_000)),
    ];
    for (task, name, input) in &tasks {
        queue
            .enqueue(NewTask::new(*name, input.clone()).with_id(id(task)))
            .expect("enqueue");
    }
    let expected = |task: &str| {
        let (_, name, input) = tasks.iter().find(|(t, ..)| *t == task).expect("a task");
        (*name, &input[..])
    };
    for task in tasks.iter().map(|(task, ..)| task) {
        let record = queue.status(&id(task)).expect("status");
        let stored = (record.name.as_str(), record.payload.as_slice());
        assert!(stored == expected(task), "status of {task}");
    }
    let listed = queue.list(&ListFilter::default()).expect("list");
    assert_eq!(listed.len(), tasks.len());
    for record in &listed {
        let stored = (record.name.as_str(), record.payload.as_slice());
        assert!(
            stored == expected(record.id.as_str()),
            "list: {}",
            record.id
        );
    }
    let worker = worker("size-worker");
    let reserved = queue.reserve(&worker, tasks.len(), LONG).expect("reserve");
    assert_eq!(reserved.len(), tasks.len());
    for reservation in &reserved {
        let handed = (reservation.name.as_str(), reservation.payload.as_slice());
        assert!(
            handed == expected(reservation.id().as_str()),
            "reserve: {}",
            reservation.id()
        );
    }
}

/// A second task with a taken id is refused, naming the id, and the first is untouched.
pub fn duplicate_ids_are_refused(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue.enqueue(task("once")).expect("enqueue");
    let again = NewTask::new("other.handler", b"different".to_vec()).with_id(id("once"));
    match queue.enqueue(again) {
        Err(QueueError::DuplicateTask { id: taken }) => assert_eq!(taken, id("once")),
        other => panic!("expected DuplicateTask, got {other:?}"),
    }
    let record = queue.status(&id("once")).expect("status");
    assert_eq!(
        (record.name.as_str(), record.payload.as_slice()),
        ("conformance.echo", &b"once"[..])
    );

    let batch = vec![task("fresh-1"), task("once"), task("fresh-2")];
    assert!(
        matches!(queue.enqueue_batch(batch), Err(QueueError::DuplicateTask { id: taken }) if taken == id("once"))
    );
    let within = vec![task("twin"), task("twin")];
    assert!(
        matches!(queue.enqueue_batch(within), Err(QueueError::DuplicateTask { id: taken }) if taken == id("twin"))
    );
    let stats = queue.stats().expect("stats");
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(stats.submitted, stats.pending);
    let stored = queue.list(&ListFilter::default()).expect("list");
    assert_eq!(stored.len() as u64, stats.submitted);
    assert_eq!(stored.iter().filter(|r| r.id == id("once")).count(), 1);
    assert!(
        stored.iter().filter(|r| r.id == id("twin")).count() <= 1,
        "an id is stored once at most"
    );
}

/// Requests that cannot succeed are refused with an error naming the task.
pub fn invalid_requests_are_refused_by_name(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    match queue.enqueue(task("no-attempts").retry(RetryPolicy::new(0))) {
        Err(QueueError::InvalidPolicy { id: refused, .. }) => {
            assert_eq!(refused, id("no-attempts"))
        }
        other => panic!("expected InvalidPolicy, got {other:?}"),
    }
    assert!(
        matches!(
            queue.status(&id("no-attempts")),
            Err(QueueError::NotFound { .. })
        ),
        "nothing was stored"
    );
    let ghost = id("ghost");
    let not_found = |result: Result<(), QueueError>, op: &str| match result {
        Err(QueueError::NotFound { id: missing }) => {
            assert_eq!(missing, ghost, "{op}");
            assert!(
                QueueError::NotFound { id: missing }
                    .to_string()
                    .contains("ghost")
            );
        }
        other => panic!("{op} of an unknown task: expected NotFound, got {other:?}"),
    };
    not_found(queue.status(&ghost).map(drop), "status");
    not_found(queue.cancel(&ghost), "cancel");
    not_found(queue.requeue(&ghost), "requeue");
    let lease = workmill_core::Lease {
        task: ghost.clone(),
        token: 1,
        expires_at: workmill_core::Timestamp::now(),
    };
    not_found(queue.complete(&lease, Vec::new()), "complete");
    assert_eq!(
        queue.stats().expect("stats"),
        workmill_core::QueueStats::default()
    );
}

/// `list` returns records oldest first, filtered by status and cut at the limit.
pub fn list_filters_by_status_in_submission_order(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let names = ["l1", "l2", "l3", "l4", "l5"];
    for (i, name) in names.iter().enumerate() {
        // Priorities against the submission order, so that queue order is not list order.
        queue
            .enqueue(task(name).priority(workmill_core::Priority::new(10 - i as u16)))
            .expect("enqueue");
    }
    let worker = worker("list-worker");
    for reservation in queue.reserve(&worker, 2, LONG).expect("reserve") {
        queue
            .complete(&reservation.lease, Vec::new())
            .expect("complete");
    }
    let ids = |records: Vec<workmill_core::TaskRecord>| {
        records.into_iter().map(|r| r.id).collect::<Vec<TaskId>>()
    };
    let all = ids(queue.list(&ListFilter::default()).expect("list"));
    assert_eq!(all, names.map(id));
    let completed = ids(queue
        .list(&ListFilter {
            status: Some(TaskStatus::Completed),
            limit: 10,
        })
        .expect("list"));
    assert_eq!(
        completed,
        [id("l4"), id("l5")],
        "the two most urgent completed, listed oldest first"
    );
    let pending = ids(queue
        .list(&ListFilter {
            status: Some(TaskStatus::Pending),
            limit: 2,
        })
        .expect("list"));
    assert_eq!(pending, [id("l1"), id("l2")]);
    assert!(
        queue
            .list(&ListFilter {
                status: Some(TaskStatus::Dead),
                limit: 10
            })
            .expect("list")
            .is_empty()
    );
    assert!(
        queue
            .list(&ListFilter {
                status: None,
                limit: 0
            })
            .expect("list")
            .is_empty()
    );
}

/// Purge deletes the tasks in the given statuses and takes them out of every count.
pub fn purge_removes_tasks_as_if_never_submitted(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    for name in ["p-done-1", "p-done-2", "p-dead", "p-cancelled", "p-waiting"] {
        queue
            .enqueue(task(name).retry(RetryPolicy::never()))
            .expect("enqueue");
    }
    let worker = worker("purge-worker");
    let mut got = queue
        .reserve(&worker, 3, LONG)
        .expect("reserve")
        .into_iter();
    for reservation in got.by_ref().take(2) {
        queue
            .complete(&reservation.lease, Vec::new())
            .expect("complete");
    }
    let dead = got.next().expect("third task");
    queue
        .fail(&dead.lease, Failure::new(FailureKind::Error, "no retries"))
        .expect("fail");
    queue.cancel(&id("p-cancelled")).expect("cancel");
    let before = queue.stats().expect("stats");

    let purged = queue
        .purge(&[TaskStatus::Completed, TaskStatus::Cancelled])
        .expect("purge");
    assert_eq!(purged, 3);
    for name in ["p-done-1", "p-done-2", "p-cancelled"] {
        assert!(
            matches!(queue.status(&id(name)), Err(QueueError::NotFound { .. })),
            "{name}"
        );
    }
    assert_eq!(
        queue.status(&id("p-dead")).expect("status").status,
        TaskStatus::Dead
    );
    assert_eq!(
        queue.status(&id("p-waiting")).expect("status").status,
        TaskStatus::Pending
    );
    let after = queue.stats().expect("stats");
    assert_eq!(after.submitted, before.submitted - 3);
    assert_eq!(
        (after.completed, after.cancelled, after.dead, after.pending),
        (0, 0, 1, 1)
    );
    assert_eq!(
        after.failed_attempts, before.failed_attempts,
        "counters of past events stay"
    );
    assert!(after.is_consistent(), "{after:?}");
    assert_eq!(queue.purge(&[TaskStatus::Completed]).expect("purge"), 0);
    assert_eq!(queue.list(&ListFilter::default()).expect("list").len(), 2);
    queue
        .enqueue(task("p-done-1"))
        .expect("a purged id may be used again");
}
