//! Checks of a job that goes well: the reduce appears exactly once, when the last map completes,
//! progress counts maps done out of total, and the maps' results outlive their task records.

use workmill_core::{
    Failure, FailureKind, JobRecord, JobStatus, Queue, QueueError, QueueStats, Reservation,
    TaskStatus,
};

use crate::testkit::support::{LONG, id, immediate, job, task, worker};
use crate::testkit::{Harness, QueueSettings};

/// The job's record, failing the check if it cannot be read.
pub(crate) fn job_record(queue: &impl Queue, name: &str) -> JobRecord {
    queue.job(&id(name)).expect("job")
}

/// Asserts the job's status and maps done.
pub(crate) fn expect_job(queue: &impl Queue, name: &str, status: JobStatus, maps_done: u32) {
    let record = job_record(queue, name);
    assert_eq!(
        (record.status, record.maps_done),
        (status, maps_done),
        "job {name}: {record:?}"
    );
}

/// True if no task with this id is stored.
pub(crate) fn absent(queue: &impl Queue, name: &str) -> bool {
    matches!(queue.status(&id(name)), Err(QueueError::NotFound { .. }))
}

/// The ids of `reservations`, as text, in order.
pub(crate) fn names(reservations: &[Reservation]) -> Vec<String> {
    reservations.iter().map(|r| r.id().to_string()).collect()
}

/// The reserved task called `name`.
fn held<'a>(reservations: &'a [Reservation], name: &str) -> &'a Reservation {
    reservations
        .iter()
        .find(|r| r.id().as_str() == name)
        .unwrap_or_else(|| panic!("{name} was not reserved"))
}

/// A reduce submitted with a delay that has passed by the time its last map completes is
/// enqueued with `run_at` no earlier than then, as the trait says: its record never claims a
/// due time from before it existed.
pub fn a_released_reduce_is_due_no_earlier_than_its_release(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let mut new = job("late", &["late-0"], "late-reduce");
    new.reduce = new.reduce.delay(std::time::Duration::from_millis(1));
    queue.submit_job(new).expect("submit a job");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let worker = worker("late-worker");
    let maps = queue.reserve(&worker, 10, LONG).expect("reserve");
    let before = workmill_core::Timestamp::now();
    queue
        .complete(&maps[0].lease, Vec::new())
        .expect("complete the map");
    let reduce = queue.status(&id("late-reduce")).expect("the reduce exists");
    assert!(
        reduce.run_at >= before && reduce.run_at >= reduce.created_at,
        "run_at {:?} before the release at {before:?}",
        reduce.run_at
    );
}

/// The reduce does not exist until the last map completes; then it is enqueued once,
/// the job is `Reducing`, and its results come back in map order, not completion order.
pub fn job_reduce_is_enqueued_once_when_the_last_map_completes(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let submitted = queue
        .submit_job(job("wc", &["wc-0", "wc-1", "wc-2"], "wc-reduce"))
        .expect("submit a job");
    assert_eq!(submitted, id("wc"));
    let record = job_record(&queue, "wc");
    assert_eq!(record.maps, [id("wc-0"), id("wc-1"), id("wc-2")]);
    assert_eq!((record.maps_done, record.maps_total()), (0, 3));
    assert_eq!(
        (
            record.status,
            &record.reduce,
            &record.failure,
            record.finished_at
        ),
        (JobStatus::Mapping, &id("wc-reduce"), &None, None)
    );
    assert!(absent(&queue, "wc-reduce"), "the reduce is held back");
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.submitted, stats.pending), (3, 3), "{stats:?}");
    assert!(matches!(
        queue.job_results(&id("wc")),
        Err(QueueError::JobIncomplete {
            maps_done: 0,
            maps_total: 3,
            status: JobStatus::Mapping,
            ..
        })
    ));

    let worker = worker("job-worker");
    let maps = queue.reserve(&worker, 10, LONG).expect("reserve");
    assert_eq!(
        names(&maps),
        ["wc-0", "wc-1", "wc-2"],
        "only the maps are due"
    );
    // Completed out of map order: the results still come back in map order.
    for (name, result) in [("wc-1", "one"), ("wc-0", "zero")] {
        queue
            .complete(&held(&maps, name).lease, result.into())
            .expect("complete a map");
    }
    expect_job(&queue, "wc", JobStatus::Mapping, 2);
    assert!(absent(&queue, "wc-reduce"), "not before the last map");
    assert_eq!(queue.stats().expect("stats").submitted, 3);

    queue
        .complete(&held(&maps, "wc-2").lease, "two".into())
        .expect("complete the last map");
    expect_job(&queue, "wc", JobStatus::Reducing, 3);
    let reduce = queue
        .status(&id("wc-reduce"))
        .expect("the reduce exists now");
    assert_eq!(
        (
            reduce.status,
            reduce.name.as_str(),
            reduce.payload.as_slice()
        ),
        (TaskStatus::Pending, "conformance.echo", &b"wc-reduce"[..])
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.submitted, stats.pending, stats.completed),
        (4, 1, 3),
        "the reduce counts from now on"
    );
    assert!(stats.is_consistent(), "{stats:?}");
    let results = queue.job_results(&id("wc")).expect("every map is done");
    assert_eq!(
        results,
        [b"zero".to_vec(), b"one".to_vec(), b"two".to_vec()]
    );

    let reduce = queue.reserve(&worker, 10, LONG).expect("reserve");
    assert_eq!(names(&reduce), ["wc-reduce"]);
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty(),
        "the reduce is enqueued once"
    );
    queue
        .complete(&reduce[0].lease, b"total".to_vec())
        .expect("complete the reduce");
    let record = job_record(&queue, "wc");
    assert_eq!((record.status, record.maps_done), (JobStatus::Completed, 3));
    assert!(record.finished_at.is_some() && record.failure.is_none());
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.submitted, stats.completed), (4, 4));
}

/// Maps completed in one `complete_batch` (beside a plain task, and with one lease given
/// twice) count once each and enqueue their job's reduce once; another job's map in the
/// same batch only counts.
pub fn job_maps_completed_in_a_batch_enqueue_the_reduce_once(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let maps_a = ["a-0", "a-1", "a-2", "a-3"];
    queue
        .submit_job(job("a", &maps_a, "a-reduce"))
        .expect("submit a");
    queue
        .submit_job(job("b", &["b-0", "b-1"], "b-reduce"))
        .expect("submit b");
    queue.enqueue(task("plain")).expect("enqueue");
    let worker = worker("batch-worker");
    let all = queue.reserve(&worker, 10, LONG).expect("reserve");
    assert_eq!(all.len(), 7);

    let mut batch: Vec<_> = ["a-0", "a-1", "a-2", "a-3", "b-0", "plain"]
        .into_iter()
        .map(|name| (held(&all, name).lease.clone(), name.as_bytes().to_vec()))
        .collect();
    batch.insert(2, (held(&all, "a-0").lease.clone(), b"again".to_vec()));
    let outcomes = queue.complete_batch(batch).expect("complete a batch");
    assert_eq!(outcomes.len(), 7);
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 2 {
            assert!(
                matches!(outcome, Err(QueueError::LeaseLost { id: lost, .. }) if *lost == id("a-0")),
                "a completed lease cannot complete again: {outcome:?}"
            );
        } else {
            assert!(outcome.is_ok(), "entry {i}: {outcome:?}");
        }
    }
    expect_job(&queue, "a", JobStatus::Reducing, 4);
    expect_job(&queue, "b", JobStatus::Mapping, 1);
    assert!(absent(&queue, "b-reduce"));
    let results: Vec<Vec<u8>> = maps_a.iter().map(|m| m.as_bytes().to_vec()).collect();
    assert_eq!(queue.job_results(&id("a")).expect("results"), results);

    let reduce_a = queue.reserve(&worker, 10, LONG).expect("reserve");
    assert_eq!(names(&reduce_a), ["a-reduce"]);
    let batch = vec![
        (held(&all, "b-1").lease.clone(), b"b-1".to_vec()),
        (reduce_a[0].lease.clone(), b"sum-a".to_vec()),
    ];
    for outcome in queue.complete_batch(batch).expect("complete a batch") {
        outcome.expect("both leases are held");
    }
    expect_job(&queue, "a", JobStatus::Completed, 4);
    expect_job(&queue, "b", JobStatus::Reducing, 2);
    let reduce_b = queue.reserve(&worker, 10, LONG).expect("reserve");
    assert_eq!(names(&reduce_b), ["b-reduce"]);
    queue
        .complete(&reduce_b[0].lease, Vec::new())
        .expect("complete");
    expect_job(&queue, "b", JobStatus::Completed, 2);
    let stats = queue.stats().expect("stats");
    assert_eq!(
        stats,
        QueueStats {
            submitted: 9,
            completed: 9,
            ..QueueStats::default()
        }
    );
}

/// `maps_done` counts completed maps only: a failed attempt that will be retried, a
/// release and a running map do not count; the total is the number of maps.
pub fn job_status_counts_maps_done_out_of_total(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let maps = ["p-0", "p-1", "p-2", "p-3"];
    let mut new = job("progress", &maps, "p-reduce");
    for map in &mut new.maps {
        map.retry = immediate(3);
    }
    queue.submit_job(new).expect("submit");
    let worker = worker("progress-worker");
    let first = queue.reserve(&worker, 4, LONG).expect("reserve");
    assert_eq!(names(&first), maps);
    expect_job(&queue, "progress", JobStatus::Mapping, 0);

    queue
        .fail(&first[0].lease, Failure::new(FailureKind::Error, "flaky"))
        .expect("fail");
    expect_job(&queue, "progress", JobStatus::Mapping, 0);
    queue
        .complete(&first[1].lease, b"1".to_vec())
        .expect("complete");
    expect_job(&queue, "progress", JobStatus::Mapping, 1);
    queue
        .complete(&first[2].lease, b"2".to_vec())
        .expect("complete");
    expect_job(&queue, "progress", JobStatus::Mapping, 2);
    queue.release(&first[3].lease).expect("release");
    let record = job_record(&queue, "progress");
    assert_eq!((record.maps_done, record.maps_total()), (2, 4));

    let rest = queue.reserve(&worker, 4, LONG).expect("reserve");
    assert_eq!(
        names(&rest),
        ["p-3", "p-0"],
        "released first, then the retry"
    );
    assert_eq!(rest[1].attempt, 2);
    queue
        .complete(&rest[0].lease, b"3".to_vec())
        .expect("complete");
    expect_job(&queue, "progress", JobStatus::Mapping, 3);
    queue
        .complete(&rest[1].lease, b"0".to_vec())
        .expect("complete");
    expect_job(&queue, "progress", JobStatus::Reducing, 4);
    assert_eq!(
        queue.job_results(&id("progress")).expect("results"),
        [b"0", b"1", b"2", b"3"].map(|r| r.to_vec())
    );
}

/// With a bound of one finished record, the maps' records are evicted, but their results
/// stay with the job, in map order, for the reduce and after it.
pub fn job_results_survive_a_tiny_retention_bound(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings {
        retain_finished: Some(1),
    });
    let maps = ["t-0", "t-1", "t-2", "t-3", "t-4"];
    queue
        .submit_job(job("tiny", &maps, "t-reduce"))
        .expect("submit");
    let worker = worker("retention-worker");
    let reserved = queue.reserve(&worker, 10, LONG).expect("reserve");
    for reservation in reserved.iter().rev() {
        let result = format!("result of {}", reservation.id()).into_bytes();
        queue
            .complete(&reservation.lease, result)
            .expect("complete");
    }
    // The maps completed last to first, so only the first map's record is kept.
    let kept: Vec<&str> = maps
        .into_iter()
        .filter(|map| !absent(&queue, map))
        .collect();
    assert_eq!(kept, ["t-0"]);
    expect_job(&queue, "tiny", JobStatus::Reducing, 5);
    let expected: Vec<Vec<u8>> = maps
        .iter()
        .map(|map| format!("result of {map}").into_bytes())
        .collect();
    assert_eq!(queue.job_results(&id("tiny")).expect("results"), expected);

    let reduce = queue.reserve(&worker, 10, LONG).expect("reserve");
    assert_eq!(names(&reduce), ["t-reduce"]);
    queue
        .complete(&reduce[0].lease, Vec::new())
        .expect("complete");
    let record = job_record(&queue, "tiny");
    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(record.maps, maps.map(id));
    assert_eq!(queue.job_results(&id("tiny")).expect("results"), expected);
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.completed, stats.evicted), (6, 5));
    assert!(stats.is_consistent(), "{stats:?}");
}

/// `wait_job` returns the job as last seen when the time runs out (still mapping: no reduce
/// yet), `JobNotFound` for an unknown job, and, once the reduce completes, the completed job
/// with its reduce's record and result, to a thread that was waiting all along.
pub fn wait_job_returns_the_job_with_its_reduce_once_it_ends(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .submit_job(job("waited", &["waited-0", "waited-1"], "waited-reduce"))
        .expect("submit");
    let (record, reduce) = queue
        .wait_job(&id("waited"), std::time::Duration::from_millis(20))
        .expect("a wait that runs out of time");
    assert_eq!(
        (record.status, record.maps_done, reduce),
        (JobStatus::Mapping, 0, None)
    );
    assert!(matches!(
        queue.wait_job(&id("no-such-job"), std::time::Duration::from_millis(5)),
        Err(QueueError::JobNotFound { .. })
    ));
    let worker = worker("wait-job-worker");
    let (record, reduce) = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.wait_job(&id("waited"), crate::testkit::PATIENCE));
        let maps = queue.reserve(&worker, 10, LONG).expect("reserve the maps");
        assert_eq!(names(&maps), ["waited-0", "waited-1"]);
        for map in &maps {
            queue
                .complete(&map.lease, Vec::new())
                .expect("complete a map");
        }
        let reduces = queue
            .reserve(&worker, 10, LONG)
            .expect("reserve the reduce");
        assert_eq!(names(&reduces), ["waited-reduce"]);
        std::thread::sleep(std::time::Duration::from_millis(10));
        queue
            .complete(&reduces[0].lease, b"sum".to_vec())
            .expect("complete the reduce");
        waiter.join().expect("the waiting thread")
    })
    .expect("wait_job returns once the job ends");
    assert_eq!((record.status, record.maps_done), (JobStatus::Completed, 2));
    let reduce = reduce.expect("the reduce's record is stored");
    assert_eq!(
        (reduce.id, reduce.status, reduce.result.as_deref()),
        (
            id("waited-reduce"),
            TaskStatus::Completed,
            Some(&b"sum"[..])
        )
    );
}
