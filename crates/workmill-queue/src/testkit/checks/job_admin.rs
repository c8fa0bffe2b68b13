//! Checks of jobs as stored: refused submissions leave nothing behind, a held-back reduce id
//! is taken, and purge removes a job with the task that ended it or cancels one it would strand.

use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, JobStatus, ListFilter, NewJob, Queue, QueueError, RetryPolicy,
    TaskId, TaskStatus,
};

use super::jobs::{absent, expect_job, names};
use crate::testkit::support::{LONG, id, job, reserve_one, task, worker};
use crate::testkit::{Harness, QueueSettings};

/// What a refused submission must leave as it was.
fn snapshot(queue: &impl Queue) -> (workmill_core::QueueStats, usize) {
    let stats = queue.stats().expect("stats");
    let stored = queue
        .list(&ListFilter {
            status: None,
            limit: 1_000,
        })
        .expect("list");
    (stats, stored.len())
}

/// Submits `job` and expects the refusal `check` describes, with nothing stored.
fn refused(queue: &impl Queue, job: NewJob, what: &str, check: impl Fn(&QueueError) -> bool) {
    let before = snapshot(queue);
    let job_id = job.id.clone();
    let first_map = job.maps.first().map(|map| map.id.clone());
    match queue.submit_job(job) {
        Err(err) if check(&err) => {
            assert!(!err.to_string().is_empty());
        }
        other => panic!("{what}: unexpected outcome {other:?}"),
    }
    assert_eq!(
        snapshot(queue),
        before,
        "{what}: a refused job stores nothing"
    );
    if job_id != id("live") {
        assert!(
            matches!(queue.job(&job_id), Err(QueueError::JobNotFound { .. })),
            "{what}: the job was not recorded"
        );
    }
    if let Some(map) = first_map {
        assert!(
            matches!(queue.status(&map), Err(QueueError::NotFound { .. })),
            "{what}: its first map was not enqueued"
        );
    }
}

fn duplicate(name: &'static str) -> impl Fn(&QueueError) -> bool {
    move |err| matches!(err, QueueError::DuplicateTask { id: taken } if *taken == id(name))
}

/// Every way a job can be refused refuses all of it: a taken job id, a map or reduce id
/// that is stored, held back by another job, or repeated within the job, no maps, a bad
/// policy. A plain task cannot take a held-back reduce id either.
pub fn job_submissions_are_refused_whole(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue.enqueue(task("taken")).expect("enqueue");
    queue
        .submit_job(job("live", &["live-0"], "live-reduce"))
        .expect("submit");

    refused(
        &queue,
        job("live", &["n-0"], "n-r"),
        "a taken job id",
        |err| matches!(err, QueueError::DuplicateJob { id: taken } if *taken == id("live")),
    );
    refused(
        &queue,
        job("j1", &["j1-0", "taken"], "j1-r"),
        "a stored map id",
        duplicate("taken"),
    );
    refused(
        &queue,
        job("j2", &["j2-0"], "taken"),
        "a stored reduce id",
        duplicate("taken"),
    );
    refused(
        &queue,
        job("j3", &["j3-0"], "live-reduce"),
        "a held reduce id",
        duplicate("live-reduce"),
    );
    refused(
        &queue,
        job("j4", &["j4-0", "live-reduce"], "j4-r"),
        "a held id as a map",
        duplicate("live-reduce"),
    );
    refused(
        &queue,
        job("j5", &["j5-0", "j5-0"], "j5-r"),
        "a map id twice",
        duplicate("j5-0"),
    );
    refused(
        &queue,
        job("j6", &["j6-0"], "j6-0"),
        "the reduce id as a map's",
        duplicate("j6-0"),
    );
    refused(
        &queue,
        job("j7", &[], "j7-r"),
        "no maps",
        |err| matches!(err, QueueError::InvalidJob { id: refused, reason } if *refused == id("j7") && reason.contains("no map")),
    );
    let mut bad_policy = job("j8", &["j8-0"], "j8-r");
    bad_policy.reduce.retry = RetryPolicy::new(0);
    refused(
        &queue,
        bad_policy,
        "a bad reduce policy",
        |err| matches!(err, QueueError::InvalidPolicy { id: refused, .. } if *refused == id("j8-r")),
    );

    assert!(
        matches!(queue.enqueue(task("live-reduce")), Err(QueueError::DuplicateTask { id: taken }) if taken == id("live-reduce")),
        "a plain task cannot take a reduce id held back"
    );
    let ghost = TaskId::new("ghost").expect("id");
    assert!(
        matches!(queue.job(&ghost), Err(QueueError::JobNotFound { id: missing }) if missing == ghost)
    );
    assert!(matches!(
        queue.job_results(&ghost),
        Err(QueueError::JobNotFound { .. })
    ));

    let reserved = queue
        .reserve(&worker("refusal-worker"), 10, LONG)
        .expect("reserve");
    assert_eq!(
        names(&reserved),
        ["taken", "live-0"],
        "no refused map was enqueued"
    );
    queue
        .complete(&reserved[1].lease, Vec::new())
        .expect("complete");
    expect_job(&queue, "live", JobStatus::Reducing, 1);
    assert!(matches!(
        queue.enqueue(task("live-reduce")),
        Err(QueueError::DuplicateTask { .. })
    ));
    assert!(queue.stats().expect("stats").is_consistent());
}

/// A purge removes a job, with its results, together with the task that ended it:
/// `Completed` removes completed jobs, `Dead` failed ones, `Cancelled` cancelled ones.
/// Purging finished maps of a job still mapping leaves it running, its results intact.
pub fn purge_removes_a_job_with_the_task_that_ended_it(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let worker = worker("purge-worker");
    queue
        .submit_job(job("done", &["d-0"], "d-reduce"))
        .expect("submit");
    let map = reserve_one(&queue, &worker, LONG);
    queue.complete(&map.lease, Vec::new()).expect("complete");
    let reduce = reserve_one(&queue, &worker, LONG);
    queue.complete(&reduce.lease, Vec::new()).expect("complete");
    expect_job(&queue, "done", JobStatus::Completed, 1);

    let mut failing = job("failed", &["x-0", "x-1"], "x-reduce");
    failing.maps[0].retry = RetryPolicy::never();
    queue.submit_job(failing).expect("submit");
    let map = reserve_one(&queue, &worker, LONG);
    queue
        .fail(&map.lease, Failure::new(FailureKind::Permanent, "no"))
        .expect("fail");
    expect_job(&queue, "failed", JobStatus::Failed, 0);

    queue
        .submit_job(job("live", &["v-0", "v-1", "v-2"], "v-reduce"))
        .expect("submit");
    let maps = queue.reserve(&worker, 2, LONG).expect("reserve");
    assert_eq!(names(&maps), ["v-0", "v-1"]);
    for map in &maps {
        queue
            .complete(&map.lease, map.id().as_str().into())
            .expect("complete");
    }

    // d-0, d-reduce, v-0 and v-1.
    assert_eq!(queue.purge(&[TaskStatus::Completed]).expect("purge"), 4);
    assert!(matches!(
        queue.job(&id("done")),
        Err(QueueError::JobNotFound { .. })
    ));
    expect_job(&queue, "failed", JobStatus::Failed, 0);
    expect_job(&queue, "live", JobStatus::Mapping, 2);
    let last = reserve_one(&queue, &worker, LONG);
    queue
        .complete(&last.lease, b"v-2".to_vec())
        .expect("complete");
    expect_job(&queue, "live", JobStatus::Reducing, 3);
    assert_eq!(
        queue
            .job_results(&id("live"))
            .expect("results outlive the purged maps"),
        [b"v-0", b"v-1", b"v-2"].map(|r| r.to_vec())
    );

    assert_eq!(queue.purge(&[TaskStatus::Dead]).expect("purge"), 1);
    assert!(matches!(
        queue.job(&id("failed")),
        Err(QueueError::JobNotFound { .. })
    ));
    assert_eq!(
        queue
            .status(&id("x-1"))
            .expect("a cancelled map stays")
            .status,
        TaskStatus::Cancelled
    );
    // x-1 belonged to a removed job and is a plain task now; its purge finds no job.
    assert_eq!(queue.purge(&[TaskStatus::Cancelled]).expect("purge"), 1);
    expect_job(&queue, "live", JobStatus::Reducing, 3);
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.submitted, stats.pending, stats.completed), (2, 1, 1));
    assert!(stats.is_consistent(), "{stats:?}");
}

/// Purging a waiting or running task of a job still running cancels the job first, and
/// cancels its other waiting tasks (a task in a purged status is deleted instead); a job
/// so cancelled goes with a purge of `Cancelled`.
pub fn purge_of_a_waiting_job_task_cancels_the_job(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let mut new = job("stranded", &["g-0", "g-1", "g-2", "g-3"], "g-reduce");
    new.maps[1].retry = RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_secs(3_600)));
    queue.submit_job(new).expect("submit");
    let worker = worker("strand-worker");
    let first = queue.reserve(&worker, 3, LONG).expect("reserve");
    assert_eq!(names(&first), ["g-0", "g-1", "g-2"]);
    queue
        .complete(&first[0].lease, Vec::new())
        .expect("complete");
    queue
        .fail(&first[1].lease, Failure::new(FailureKind::Error, "later"))
        .expect("fail");
    // g-0 completed, g-1 retrying, g-2 running, g-3 pending.
    assert_eq!(queue.purge(&[TaskStatus::Pending]).expect("purge"), 1);
    let record = queue.job(&id("stranded")).expect("job");
    assert_eq!((record.status, record.maps_done), (JobStatus::Cancelled, 1));
    assert!(record.finished_at.is_some());
    assert!(absent(&queue, "g-3"));
    let status = |name: &str| queue.status(&id(name)).expect("status").status;
    assert_eq!(
        [status("g-0"), status("g-1"), status("g-2")],
        [
            TaskStatus::Completed,
            TaskStatus::Cancelled,
            TaskStatus::Running
        ]
    );
    queue
        .complete(&first[2].lease, Vec::new())
        .expect("complete");
    expect_job(&queue, "stranded", JobStatus::Cancelled, 1);
    assert!(absent(&queue, "g-reduce"));

    queue
        .submit_job(job("waiting", &["w-0"], "w-reduce"))
        .expect("submit");
    let map = reserve_one(&queue, &worker, LONG);
    queue.complete(&map.lease, Vec::new()).expect("complete");
    expect_job(&queue, "waiting", JobStatus::Reducing, 1);
    // Purging the waiting reduce together with cancelled tasks removes the job it cancels.
    let purged = queue
        .purge(&[TaskStatus::Pending, TaskStatus::Cancelled])
        .expect("purge");
    assert_eq!(purged, 2, "w-reduce and g-1");
    for name in ["stranded", "waiting"] {
        assert!(
            matches!(queue.job(&id(name)), Err(QueueError::JobNotFound { .. })),
            "{name}"
        );
    }
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.submitted, stats.completed),
        (3, 3),
        "g-0, g-2 and w-0: {stats:?}"
    );
    assert!(stats.is_consistent(), "{stats:?}");
}
