//! The checks that damaged stored bytes fail one task, clearly, and nothing else (but its job).

use workmill_core::{FailureKind, JobStatus, ListFilter, Queue, QueueError, TaskStatus};

use crate::testkit::support::{LONG, id, job, task, worker};
use crate::testkit::{Harness, QueueSettings};

/// A task whose stored payload was damaged is never handed out: it is dead-lettered as a
/// `Corrupt` failure, `status` names it in a `Corrupt` error, and every other task, `list`
/// and `stats` carry on.
pub fn corrupted_payload_fails_only_that_task(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    for name in ["healthy-1", "damaged", "healthy-2"] {
        queue.enqueue(task(name)).expect("enqueue");
    }
    match harness.corrupt_payload(&queue, &id("damaged")) {
        None => {
            println!(
                "skipped: the {} backend keeps no stored bytes to damage",
                queue.backend_name()
            );
            return;
        }
        Some(result) => result.expect("damage the stored payload"),
    }
    let corrupt = |result: Result<workmill_core::TaskRecord, QueueError>| match result {
        Err(QueueError::Corrupt { id: named, detail }) => {
            assert_eq!(named, id("damaged"));
            let message = QueueError::Corrupt { id: named, detail }.to_string();
            assert!(
                message.contains("damaged"),
                "the message names the task: {message}"
            );
        }
        other => panic!("status of a damaged task: expected Corrupt, got {other:?}"),
    };
    corrupt(queue.status(&id("damaged")));

    let worker = worker("corruption-worker");
    let got = queue
        .reserve(&worker, 10, LONG)
        .expect("one damaged task does not fail a reserve");
    let handed: Vec<_> = got.iter().map(|r| r.id().clone()).collect();
    assert_eq!(
        handed,
        [id("healthy-1"), id("healthy-2")],
        "the damaged task is never handed out"
    );
    for reservation in &got {
        assert_eq!(reservation.payload, reservation.id().as_str().as_bytes());
        queue
            .complete(&reservation.lease, Vec::new())
            .expect("complete");
    }
    corrupt(queue.status(&id("damaged")));
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (
            stats.completed,
            stats.dead,
            stats.failed_attempts,
            stats.pending,
            stats.running
        ),
        (2, 1, 1, 0, 0)
    );
    assert!(stats.is_consistent(), "{stats:?}");

    let listed = queue
        .list(&ListFilter::default())
        .expect("list works around a damaged record");
    let listed: Vec<_> = listed.into_iter().map(|r| r.id).collect();
    assert!(listed.contains(&id("healthy-1")) && listed.contains(&id("healthy-2")));
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty()
    );
    queue
        .enqueue(task("after"))
        .expect("the queue takes new work");
    assert_eq!(queue.reserve(&worker, 10, LONG).expect("reserve").len(), 1);
}

/// A map whose stored payload was damaged is dead-lettered at reserve, as any damaged task,
/// and that fails its job (with kind `Corrupt`) and cancels its waiting maps: no job waits
/// for a map that can never run.
pub fn a_corrupted_map_fails_its_job(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .submit_job(job("harmed", &["h-0", "h-damaged", "h-2"], "h-reduce"))
        .expect("submit");
    match harness.corrupt_payload(&queue, &id("h-damaged")) {
        None => {
            println!(
                "skipped: the {} backend keeps no stored bytes to damage",
                queue.backend_name()
            );
            return;
        }
        Some(result) => result.expect("damage the stored payload"),
    }
    let worker = worker("corrupt-job-worker");
    // The batch covers every map. Finding the damage fails the job and cancels its waiting
    // maps; `h-2`, in the same batch, may be handed out before the damage is found (it then
    // runs, and its result is not wanted) or be cancelled and left alone, never both.
    let got = queue.reserve(&worker, 3, LONG).expect("reserve");
    let handed: Vec<_> = got.iter().map(|r| r.id().clone()).collect();
    assert!(
        handed == [id("h-0")] || handed == [id("h-0"), id("h-2")],
        "the damaged map is never handed out: {handed:?}"
    );
    let record = queue.job(&id("harmed")).expect("job");
    assert_eq!(record.status, JobStatus::Failed);
    let (by, why) = record.failure.expect("the job says why it failed");
    assert_eq!((by, why.kind), (id("h-damaged"), FailureKind::Corrupt));
    let map_2 = queue.status(&id("h-2")).expect("status").status;
    let map_2_handed = handed.contains(&id("h-2"));
    let expected = if map_2_handed {
        TaskStatus::Running
    } else {
        TaskStatus::Cancelled
    };
    assert_eq!(map_2, expected, "a cancelled map is never handed out");
    assert!(queue.stats().expect("stats").is_consistent());
    for reservation in &got {
        queue
            .complete(&reservation.lease, Vec::new())
            .expect("complete");
    }
    assert!(matches!(
        queue.status(&id("h-reduce")),
        Err(QueueError::NotFound { .. })
    ));
    let stats = queue.stats().expect("stats");
    let cancelled = u64::from(!map_2_handed);
    assert_eq!(
        (stats.completed, stats.dead, stats.cancelled),
        (got.len() as u64, 1, cancelled)
    );
    assert!(stats.is_consistent(), "{stats:?}");
}
