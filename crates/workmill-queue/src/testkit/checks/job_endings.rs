//! Checks of how a job ends other than well: a dead map fails it, a cancel cancels it, its
//! reduce decides its end, and a finished job is not moved by its tasks any more.

use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, JobStatus, Queue, QueueError, RetryPolicy, TaskStatus,
};

use super::jobs::{absent, expect_job, job_record, names};
use crate::testkit::support::{LONG, id, job, reserve_one, wait_past, worker};
use crate::testkit::{Harness, QueueSettings};

fn status_of(queue: &impl Queue, name: &str) -> TaskStatus {
    queue.status(&id(name)).expect("status").status
}

/// A map that ends `Dead` fails its job with that map's id and failure, cancels the maps
/// still waiting (pending and retrying), leaves running maps to finish as plain tasks, and
/// the reduce never appears. A last lease that lapses fails the job the same way.
pub fn a_dead_map_fails_the_job_and_cancels_its_waiting_maps(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let mut new = job("doomed", &["f-0", "f-1", "f-2", "f-3", "f-4"], "f-reduce");
    new.maps[0].retry = RetryPolicy::never();
    new.maps[1].retry = RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_secs(3_600)));
    queue.submit_job(new).expect("submit");
    let worker = worker("doom-worker");
    let first = queue.reserve(&worker, 3, LONG).expect("reserve");
    assert_eq!(names(&first), ["f-0", "f-1", "f-2"]);
    queue
        .fail(&first[1].lease, Failure::new(FailureKind::Error, "later"))
        .expect("fail");
    queue
        .complete(&first[2].lease, b"2".to_vec())
        .expect("complete");
    let running = reserve_one(&queue, &worker, LONG);
    assert_eq!(running.id(), &id("f-3"));

    let failure = Failure::new(FailureKind::Permanent, "map input is malformed");
    queue.fail(&first[0].lease, failure.clone()).expect("fail");
    let record = job_record(&queue, "doomed");
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.failure, Some((id("f-0"), failure)));
    assert_eq!(record.maps_done, 1);
    assert!(record.finished_at.is_some());
    let statuses = ["f-0", "f-1", "f-2", "f-3", "f-4"].map(|map| status_of(&queue, map));
    assert_eq!(
        statuses,
        [
            TaskStatus::Dead,
            TaskStatus::Cancelled,
            TaskStatus::Completed,
            TaskStatus::Running,
            TaskStatus::Cancelled
        ]
    );
    // The running map finishes as a plain task; the failed job does not move.
    queue
        .complete(&running.lease, b"3".to_vec())
        .expect("complete");
    expect_job(&queue, "doomed", JobStatus::Failed, 1);
    assert!(absent(&queue, "f-reduce"), "the reduce is never enqueued");
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty()
    );
    assert!(matches!(
        queue.job_results(&id("doomed")),
        Err(QueueError::JobIncomplete {
            status: JobStatus::Failed,
            maps_done: 1,
            maps_total: 5,
            ..
        })
    ));
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.dead,
            stats.cancelled
        ),
        (5, 2, 1, 2)
    );
    assert!(stats.is_consistent(), "{stats:?}");

    let mut lapsing = job("lapsed", &["l-0", "l-1"], "l-reduce");
    lapsing.maps[0].retry = RetryPolicy::never();
    queue.submit_job(lapsing).expect("submit");
    let held = reserve_one(&queue, &worker, Duration::from_millis(1));
    assert_eq!(held.id(), &id("l-0"));
    wait_past(held.lease.expires_at);
    assert_eq!(queue.rescue_expired().expect("rescue"), 1);
    let record = job_record(&queue, "lapsed");
    assert_eq!(record.status, JobStatus::Failed);
    let (by, why) = record.failure.expect("the job says why it failed");
    assert_eq!((by, why.kind), (id("l-0"), FailureKind::LeaseExpired));
    assert_eq!(status_of(&queue, "l-1"), TaskStatus::Cancelled);
    assert!(absent(&queue, "l-reduce"));
    assert!(queue.stats().expect("stats").is_consistent());
}

/// Cancelling a waiting map cancels its job and its other waiting maps; a running map
/// cannot be cancelled and its job carries on; cancelling the waiting reduce cancels the job.
pub fn cancelling_a_job_task_cancels_the_job(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .submit_job(job("stopped", &["c-0", "c-1", "c-2"], "c-reduce"))
        .expect("submit");
    let worker = worker("cancel-worker");
    let running = reserve_one(&queue, &worker, LONG);
    queue.cancel(&id("c-1")).expect("cancel a waiting map");
    let record = job_record(&queue, "stopped");
    assert_eq!(
        (record.status, record.failure, record.maps_done),
        (JobStatus::Cancelled, None, 0)
    );
    assert!(record.finished_at.is_some());
    assert_eq!(status_of(&queue, "c-2"), TaskStatus::Cancelled);
    queue
        .complete(&running.lease, Vec::new())
        .expect("complete");
    expect_job(&queue, "stopped", JobStatus::Cancelled, 0);
    assert!(absent(&queue, "c-reduce"));

    queue
        .submit_job(job("going", &["g-0"], "g-reduce"))
        .expect("submit");
    let map = reserve_one(&queue, &worker, LONG);
    assert!(matches!(
        queue.cancel(&id("g-0")),
        Err(QueueError::IllegalTransition { .. })
    ));
    expect_job(&queue, "going", JobStatus::Mapping, 0);
    queue.complete(&map.lease, Vec::new()).expect("complete");
    expect_job(&queue, "going", JobStatus::Reducing, 1);
    queue
        .cancel(&id("g-reduce"))
        .expect("cancel the waiting reduce");
    expect_job(&queue, "going", JobStatus::Cancelled, 1);
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty()
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.submitted, stats.completed, stats.cancelled),
        (5, 2, 3)
    );
    assert!(stats.is_consistent(), "{stats:?}");
}

/// The reduce's end is the job's: completed makes it `Completed`; dead makes it `Failed`
/// with the reduce's failure (its map results stay readable); requeueing that dead reduce
/// returns the job to `Reducing`, and its completion then completes the job.
pub fn the_reduce_decides_the_end_of_its_job(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let mut new = job("sum", &["s-0"], "s-reduce");
    new.reduce.retry = RetryPolicy::never();
    queue.submit_job(new).expect("submit");
    let worker = worker("reduce-worker");
    let map = reserve_one(&queue, &worker, LONG);
    queue
        .complete(&map.lease, b"21".to_vec())
        .expect("complete");
    let reduce = reserve_one(&queue, &worker, LONG);
    assert_eq!(reduce.id(), &id("s-reduce"));
    let failure = Failure::new(FailureKind::Permanent, "overflow while summing");
    queue.fail(&reduce.lease, failure.clone()).expect("fail");
    let record = job_record(&queue, "sum");
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.failure, Some((id("s-reduce"), failure)));
    assert!(record.finished_at.is_some());
    assert_eq!(
        queue.job_results(&id("sum")).expect("every map completed"),
        [b"21".to_vec()]
    );

    queue
        .requeue(&id("s-reduce"))
        .expect("requeue the dead reduce");
    let record = job_record(&queue, "sum");
    assert_eq!(
        (record.status, record.failure, record.finished_at),
        (JobStatus::Reducing, None, None)
    );
    let again = reserve_one(&queue, &worker, LONG);
    assert_eq!((again.id(), again.attempt), (&id("s-reduce"), 1));
    queue
        .complete(&again.lease, b"42".to_vec())
        .expect("complete");
    let record = job_record(&queue, "sum");
    assert_eq!((record.status, record.maps_done), (JobStatus::Completed, 1));
    assert!(record.finished_at.is_some());
    let reduce = queue.status(&id("s-reduce")).expect("status");
    assert_eq!(reduce.result.as_deref(), Some(&b"42"[..]));
}

/// Requeueing the dead map that failed a job runs that task again as a plain task: the job
/// stays `Failed`, and the map's completion changes neither its count nor its results.
pub fn requeue_of_a_dead_map_leaves_its_job_failed(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let mut new = job("broken", &["x-0", "x-1"], "x-reduce");
    new.maps[0].retry = RetryPolicy::never();
    queue.submit_job(new).expect("submit");
    let worker = worker("requeue-worker");
    let map = reserve_one(&queue, &worker, LONG);
    let failure = Failure::new(FailureKind::Error, "disk full");
    queue.fail(&map.lease, failure.clone()).expect("fail");
    expect_job(&queue, "broken", JobStatus::Failed, 0);

    queue.requeue(&id("x-0")).expect("requeue the dead map");
    assert_eq!(status_of(&queue, "x-0"), TaskStatus::Pending);
    let record = job_record(&queue, "broken");
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.failure, Some((id("x-0"), failure)));
    let again = reserve_one(&queue, &worker, LONG);
    assert_eq!(again.id(), &id("x-0"));
    queue
        .complete(&again.lease, b"late".to_vec())
        .expect("complete");
    expect_job(&queue, "broken", JobStatus::Failed, 0);
    assert_eq!(status_of(&queue, "x-1"), TaskStatus::Cancelled);
    assert!(absent(&queue, "x-reduce"));
    assert!(matches!(
        queue.job_results(&id("broken")),
        Err(QueueError::JobIncomplete { .. })
    ));
    assert!(queue.stats().expect("stats").is_consistent());
}
