//! Checks of the numbers: exact stats at every step of a lifecycle, and the retention bound.

use std::time::Duration;

use workmill_core::{Failure, FailureKind, ListFilter, Queue, QueueError, QueueStats, TaskStatus};

use crate::testkit::support::{LONG, id, immediate, reserve_one, task, worker};
use crate::testkit::{Harness, QueueSettings};

/// Asserts the whole stats value, so that no counter moves unnoticed.
fn expect(queue: &impl Queue, step: &str, expected: QueueStats) {
    let stats = queue.stats().expect("stats");
    assert_eq!(stats, expected, "after {step}");
    assert!(stats.is_consistent(), "after {step}: {stats:?}");
}

/// Every gauge and counter is exact after each step of a scripted lifecycle.
pub fn stats_are_exact_through_a_lifecycle(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    expect(&queue, "nothing", QueueStats::default());
    for name in ["s-a", "s-b", "s-c", "s-d", "s-e"] {
        queue
            .enqueue(task(name).retry(immediate(3)))
            .expect("enqueue");
    }
    let mut s = QueueStats {
        submitted: 5,
        pending: 5,
        ..QueueStats::default()
    };
    expect(&queue, "five enqueues", s);

    let worker = worker("stats-worker");
    let got = queue.reserve(&worker, 3, LONG).expect("reserve");
    let [a, b, c] = <[_; 3]>::try_from(got).expect("three due tasks");
    (s.pending, s.running) = (2, 3);
    expect(&queue, "reserving three", s);

    queue.complete(&a.lease, b"a".to_vec()).expect("complete");
    (s.running, s.completed) = (2, 1);
    expect(&queue, "a completion", s);

    queue
        .fail(&b.lease, Failure::new(FailureKind::Error, "retry me"))
        .expect("fail");
    (s.running, s.retrying, s.failed_attempts, s.retried) = (1, 1, 1, 1);
    expect(&queue, "a retryable failure", s);

    queue
        .fail(&c.lease, Failure::new(FailureKind::Permanent, "never"))
        .expect("fail");
    (s.running, s.dead, s.failed_attempts) = (0, 1, 2);
    expect(&queue, "a permanent failure", s);

    queue.cancel(&id("s-d")).expect("cancel");
    (s.pending, s.cancelled) = (1, 1);
    expect(&queue, "a cancel", s);

    // The retried task re-entered behind s-e, which was already waiting at its priority.
    let got = queue.reserve(&worker, 10, LONG).expect("reserve");
    let order: Vec<_> = got.iter().map(|r| (r.id().clone(), r.attempt)).collect();
    assert_eq!(order, [(id("s-e"), 1), (id("s-b"), 2)]);
    (s.pending, s.retrying, s.running) = (0, 0, 2);
    expect(&queue, "reserving the rest", s);

    queue.release(&got[0].lease).expect("release");
    (s.pending, s.running) = (1, 1);
    expect(&queue, "a release", s);

    queue.complete(&got[1].lease, Vec::new()).expect("complete");
    (s.running, s.completed) = (0, 2);
    expect(&queue, "the retry's completion", s);

    queue.requeue(&id("s-c")).expect("requeue");
    (s.dead, s.pending) = (0, 2);
    expect(&queue, "a requeue", s);

    let lapsing = reserve_one(&queue, &worker, Duration::from_millis(1));
    super::super::support::wait_past(lapsing.lease.expires_at);
    assert_eq!(queue.rescue_expired().expect("rescue"), 1);
    (
        s.pending,
        s.retrying,
        s.failed_attempts,
        s.retried,
        s.expired_leases,
    ) = (1, 1, 3, 2, 1);
    expect(&queue, "a lapsed lease", s);
}

/// With a bound of three finished records, the oldest finished are dropped first, counted
/// in `evicted`, still counted in their status, and gone from `status` and `list`.
pub fn retention_drops_the_oldest_finished_records(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings {
        retain_finished: Some(3),
    });
    let names = ["r0", "r1", "r2", "r3", "r4", "r5"];
    for name in names {
        queue
            .enqueue(task(name).retry(immediate(1)))
            .expect("enqueue");
    }
    let worker = worker("retention-worker");
    for (i, name) in names.iter().enumerate() {
        let reservation = reserve_one(&queue, &worker, LONG);
        assert_eq!(reservation.id(), &id(name));
        if i == 1 {
            queue
                .fail(
                    &reservation.lease,
                    Failure::new(FailureKind::Error, "dead records count too"),
                )
                .expect("fail");
        } else {
            queue
                .complete(&reservation.lease, name.as_bytes().to_vec())
                .expect("complete");
        }
        let stats = queue.stats().expect("stats");
        let finished = i as u64 + 1;
        assert_eq!(
            stats.evicted,
            finished.saturating_sub(3),
            "after finishing {name}"
        );
        assert_eq!(
            stats.finished(),
            finished,
            "evicted records stay counted in their status"
        );
        assert!(stats.is_consistent(), "{stats:?}");
    }
    for name in ["r0", "r1", "r2"] {
        assert!(
            matches!(queue.status(&id(name)), Err(QueueError::NotFound { .. })),
            "{name} should be evicted"
        );
    }
    for name in ["r3", "r4", "r5"] {
        let record = queue.status(&id(name)).expect("a recent record is kept");
        assert_eq!(record.result.as_deref(), Some(name.as_bytes()));
    }
    let kept: Vec<_> = queue
        .list(&ListFilter::default())
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, [id("r3"), id("r4"), id("r5")]);
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.completed, stats.dead, stats.evicted), (5, 1, 3));

    queue
        .purge(&[TaskStatus::Completed, TaskStatus::Dead])
        .expect("purge");
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.submitted, stats.completed, stats.dead),
        (0, 0, 0),
        "purge takes evicted records out of the counts too"
    );
    assert!(stats.is_consistent(), "{stats:?}");
}
