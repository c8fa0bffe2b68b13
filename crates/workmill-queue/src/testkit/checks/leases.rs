//! Checks of leases: lapsing, heartbeats, stale tokens and release.

use std::time::Duration;

use workmill_core::{Failure, FailureKind, Queue, QueueError, TaskStatus};

use crate::testkit::support::{LONG, id, immediate, reserve_one, task, wait_past, worker};
use crate::testkit::{Harness, QueueSettings};

const SHORT: Duration = Duration::from_millis(20);

/// A lease that lapses is rescued as a failed attempt of kind `LeaseExpired`, retried by the
/// task's policy, and dead-lettered when it was the last attempt.
pub fn lapsed_lease_returns_the_task_and_counts_the_attempt(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .enqueue(task("lapses").retry(immediate(2)))
        .expect("enqueue");
    let (dying, rescuer) = (worker("dying-worker"), worker("rescuing-worker"));

    let first = reserve_one(&queue, &dying, SHORT);
    assert_eq!(first.attempt, 1);
    wait_past(first.lease.expires_at);
    assert_eq!(queue.rescue_expired().expect("rescue"), 1);
    let record = queue.status(&id("lapses")).expect("status");
    assert_eq!(
        record.status,
        TaskStatus::Retrying,
        "a lapsed lease is a failed attempt"
    );
    assert_eq!(record.attempts, 1, "the lapsed attempt counts");
    assert_eq!(
        record.last_error.as_ref().map(|f| f.kind),
        Some(FailureKind::LeaseExpired)
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (
            stats.expired_leases,
            stats.failed_attempts,
            stats.retried,
            stats.running,
            stats.retrying
        ),
        (1, 1, 1, 0, 1)
    );

    let second = reserve_one(&queue, &rescuer, SHORT);
    assert_eq!((second.id(), second.attempt), (&id("lapses"), 2));
    assert_ne!(
        second.lease.token, first.lease.token,
        "a new reservation has a new token"
    );
    assert_eq!(
        queue.status(&id("lapses")).expect("status").worker,
        Some(rescuer.clone())
    );

    wait_past(second.lease.expires_at);
    assert_eq!(queue.rescue_expired().expect("rescue"), 1);
    let record = queue.status(&id("lapses")).expect("status");
    assert_eq!(record.status, TaskStatus::Dead, "the last attempt lapsed");
    assert_eq!(record.attempts, 2);
    assert!(record.finished_at.is_some());
    assert_eq!(
        record.last_error.map(|f| f.kind),
        Some(FailureKind::LeaseExpired)
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.expired_leases, stats.failed_attempts, stats.dead),
        (2, 2, 1)
    );
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(
        queue.rescue_expired().expect("rescue"),
        0,
        "nothing is rescued twice"
    );
}

/// A heartbeat moves the expiry forward, so the lease survives its first expiry, and the
/// holder completes the task; expiry without a rescue does not invalidate a lease either.
pub fn heartbeat_keeps_a_lease_alive_past_its_first_expiry(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue.enqueue(task("beating")).expect("enqueue");
    let (holder, other) = (worker("holder"), worker("other"));
    let reservation = reserve_one(&queue, &holder, Duration::from_millis(50));
    let extended = queue
        .heartbeat(&reservation.lease, Duration::from_secs(600))
        .expect("heartbeat of a held lease");
    assert_eq!(
        extended.token, reservation.lease.token,
        "a heartbeat keeps the token"
    );
    assert_eq!(extended.task, reservation.lease.task);
    assert!(extended.expires_at > reservation.lease.expires_at);

    wait_past(reservation.lease.expires_at);
    assert_eq!(
        queue.rescue_expired().expect("rescue"),
        0,
        "the extended lease has not lapsed"
    );
    assert!(queue.reserve(&other, 10, LONG).expect("reserve").is_empty());
    let again = queue
        .heartbeat(&extended, Duration::from_secs(600))
        .expect("second heartbeat");
    queue
        .complete(&again, b"done".to_vec())
        .expect("the holder completes");
    let record = queue.status(&id("beating")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 1));
    assert_eq!(queue.stats().expect("stats").expired_leases, 0);

    // A lease past its expiry that no one has rescued is still held.
    queue.enqueue(task("late")).expect("enqueue");
    let late = reserve_one(&queue, &holder, Duration::from_millis(1));
    wait_past(late.lease.expires_at);
    let revived = queue
        .heartbeat(&late.lease, LONG)
        .expect("a lapsed but unrescued lease is held");
    assert_eq!(queue.rescue_expired().expect("rescue"), 0);
    queue.complete(&revived, Vec::new()).expect("complete");
}

/// A batch heartbeat extends each held lease and reports, in order, each lease it could not:
/// a stale token as `LeaseLost`, a task that is gone as `NotFound`. An empty batch is a no-op.
pub fn heartbeat_batch_extends_held_leases_and_reports_the_rest(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    assert!(
        queue
            .heartbeat_batch(&[], LONG)
            .expect("an empty batch")
            .is_empty()
    );
    for name in ["batch-a", "batch-b", "batch-c", "batch-gone"] {
        queue
            .enqueue(task(name).retry(immediate(3)))
            .expect("enqueue");
    }
    let (holder, other) = (worker("batch-holder"), worker("batch-other"));
    let held = queue.reserve(&holder, 4, SHORT).expect("reserve");
    assert_eq!(held.len(), 4);
    let lease_of = |name: &str| {
        held.iter()
            .find(|r| r.id() == &id(name))
            .map(|r| r.lease.clone())
            .expect("reserved")
    };
    // `batch-c` lapses and is rescued; `batch-gone` completes and is purged.
    let gone = lease_of("batch-gone");
    queue.complete(&gone, Vec::new()).expect("complete");
    queue.purge(&[TaskStatus::Completed]).expect("purge");
    let (a, b, c) = (
        lease_of("batch-a"),
        lease_of("batch-b"),
        lease_of("batch-c"),
    );
    queue.heartbeat(&a, LONG).expect("extend a");
    queue.heartbeat(&b, LONG).expect("extend b");
    wait_past(c.expires_at);
    assert_eq!(queue.rescue_expired().expect("rescue"), 1);

    let asked = [a.clone(), c.clone(), b.clone(), gone.clone()];
    let outcomes = queue
        .heartbeat_batch(&asked, LONG)
        .expect("batch heartbeat");
    assert_eq!(outcomes.len(), 4, "one outcome per lease: {outcomes:?}");
    for (lease, outcome) in [&a, &b].into_iter().zip([&outcomes[0], &outcomes[2]]) {
        let extended = outcome.as_ref().expect("a held lease is extended");
        assert_eq!((&extended.task, extended.token), (&lease.task, lease.token));
        assert!(extended.expires_at >= lease.expires_at);
    }
    assert!(
        matches!(&outcomes[1], Err(QueueError::LeaseLost { id: lost, .. }) if lost == &c.task),
        "a rescued lease is lost: {:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[3], Err(QueueError::NotFound { id: missing }) if missing == &gone.task),
        "a purged task is not found: {:?}",
        outcomes[3]
    );

    // The extended leases are still held and outlive their first expiry.
    wait_past(a.expires_at.max(b.expires_at));
    assert_eq!(queue.rescue_expired().expect("rescue"), 0);
    let taken = queue.reserve(&other, 10, LONG).expect("reserve");
    assert_eq!(
        taken.iter().map(|r| r.id().clone()).collect::<Vec<_>>(),
        vec![id("batch-c")],
        "only the rescued task is free"
    );
    queue
        .complete(&a, Vec::new())
        .expect("the holder completes a");
    queue
        .complete(&b, Vec::new())
        .expect("the holder completes b");
}

/// Every lease operation refuses a token that is not the task's current one, and changes nothing.
pub fn stale_lease_tokens_are_refused(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .enqueue(task("contested").retry(immediate(5)))
        .expect("enqueue");
    let (slow, fast) = (worker("slow-worker"), worker("fast-worker"));
    let stale = reserve_one(&queue, &slow, SHORT).lease;
    wait_past(stale.expires_at);
    assert_eq!(queue.rescue_expired().expect("rescue"), 1);
    let current = reserve_one(&queue, &fast, LONG).lease;

    let lost = |result: Result<(), QueueError>, op: &str| match result {
        Err(QueueError::LeaseLost { id: lost_id, token }) => {
            assert_eq!((lost_id, token), (id("contested"), stale.token), "{op}");
        }
        other => panic!("{op} with a stale lease: expected LeaseLost, got {other:?}"),
    };
    lost(queue.complete(&stale, b"late".to_vec()), "complete");
    lost(
        queue
            .fail(&stale, Failure::new(FailureKind::Error, "late"))
            .map(drop),
        "fail",
    );
    lost(queue.release(&stale), "release");
    lost(queue.heartbeat(&stale, LONG).map(drop), "heartbeat");
    let forged = workmill_core::Lease {
        token: current.token.wrapping_add(1_000_003),
        ..current.clone()
    };
    assert!(matches!(
        queue.complete(&forged, Vec::new()),
        Err(QueueError::LeaseLost { .. })
    ));

    let record = queue.status(&id("contested")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Running, 2));
    assert_eq!(record.worker, Some(fast));
    queue
        .complete(&current, b"on time".to_vec())
        .expect("the current holder completes");
    lost(
        queue.complete(&stale, Vec::new()),
        "complete after completion",
    );
    assert!(
        matches!(
            queue.complete(&current, Vec::new()),
            Err(QueueError::LeaseLost { .. })
        ),
        "a lease ends with the task's completion"
    );
    assert_eq!(
        queue
            .status(&id("contested"))
            .expect("status")
            .result
            .as_deref(),
        Some(&b"on time"[..])
    );
}

/// A batch completion reports each entry by its lease, not by its task: a stale lease of a task
/// (lapsed, rescued, the task reserved again) beside the task's current lease gets `LeaseLost`,
/// in either order, and only the current lease's result is stored.
pub fn complete_batch_refuses_a_stale_lease_beside_the_current_one(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    for name in ["twice-leased", "twice-leased-too"] {
        queue
            .enqueue(task(name).retry(immediate(5)))
            .expect("enqueue");
    }
    let (slow, fast) = (worker("slow-batcher"), worker("fast-batcher"));
    let stale = queue.reserve(&slow, 2, SHORT).expect("reserve");
    assert_eq!(stale.len(), 2);
    wait_past(stale[0].lease.expires_at.max(stale[1].lease.expires_at));
    assert_eq!(queue.rescue_expired().expect("rescue"), 2);
    let current = queue.reserve(&fast, 2, LONG).expect("reserve again");
    assert_eq!(current.len(), 2);
    let lease_of = |batch: &[workmill_core::Reservation], name: &str| {
        batch
            .iter()
            .find(|r| r.id() == &id(name))
            .map(|r| r.lease.clone())
            .expect("reserved")
    };
    let (old_a, new_a) = (
        lease_of(&stale, "twice-leased"),
        lease_of(&current, "twice-leased"),
    );
    let (old_b, new_b) = (
        lease_of(&stale, "twice-leased-too"),
        lease_of(&current, "twice-leased-too"),
    );
    assert_ne!(old_a.token, new_a.token);

    // The stale lease first for one task, last for the other.
    let outcomes = queue
        .complete_batch(vec![
            (old_a.clone(), b"old".to_vec()),
            (new_a, b"new".to_vec()),
            (new_b, b"new".to_vec()),
            (old_b.clone(), b"old".to_vec()),
        ])
        .expect("complete a batch");
    assert_eq!(outcomes.len(), 4, "one outcome per entry: {outcomes:?}");
    for (at, stale) in [(0, &old_a), (3, &old_b)] {
        match &outcomes[at] {
            Err(QueueError::LeaseLost { id: lost, token }) => {
                assert_eq!((lost, *token), (&stale.task, stale.token), "entry {at}");
            }
            other => panic!("entry {at}, a stale lease: expected LeaseLost, got {other:?}"),
        }
    }
    for at in [1, 2] {
        assert!(
            outcomes[at].is_ok(),
            "entry {at}, the current lease: {:?}",
            outcomes[at]
        );
    }
    for name in ["twice-leased", "twice-leased-too"] {
        let record = queue.status(&id(name)).expect("status");
        assert_eq!(record.status, TaskStatus::Completed, "{name}");
        assert_eq!(
            record.result.as_deref(),
            Some(&b"new"[..]),
            "{name}: the current lease's result"
        );
    }
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.completed, stats.running), (2, 0));
    assert!(stats.is_consistent(), "{stats:?}");
}

/// Release returns a task to `Pending` without counting the attempt, and voids the lease.
pub fn release_hands_the_task_back_uncounted(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue.enqueue(task("handed-back")).expect("enqueue");
    let worker = worker("releasing-worker");
    let first = reserve_one(&queue, &worker, LONG);
    queue.release(&first.lease).expect("release");
    let record = queue.status(&id("handed-back")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Pending, 0));
    assert_eq!(
        (record.started_at, record.worker),
        (None, None),
        "a task released from its first reservation was never started"
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.pending, stats.running, stats.failed_attempts),
        (1, 0, 0)
    );
    assert!(matches!(
        queue.complete(&first.lease, Vec::new()),
        Err(QueueError::LeaseLost { .. })
    ));
    assert!(matches!(
        queue.release(&first.lease),
        Err(QueueError::LeaseLost { .. })
    ));

    let second = reserve_one(&queue, &worker, LONG);
    assert_eq!(
        (second.id(), second.attempt),
        (&id("handed-back"), 1),
        "a released attempt is not counted"
    );
    assert_ne!(second.lease.token, first.lease.token);
    queue.complete(&second.lease, Vec::new()).expect("complete");
    assert_eq!(
        queue.status(&id("handed-back")).expect("status").attempts,
        1
    );

    // A requeue starts the count again: the first reservation after it, released, leaves
    // no trace of the runs before the requeue either.
    queue
        .enqueue(task("run-dead-requeued").retry(immediate(1)))
        .expect("enqueue");
    let run = reserve_one(&queue, &worker, LONG);
    assert_eq!(run.id(), &id("run-dead-requeued"));
    queue
        .fail(&run.lease, Failure::new(FailureKind::Error, "down"))
        .expect("fail");
    queue.requeue(&id("run-dead-requeued")).expect("requeue");
    let other = crate::testkit::support::worker("worker-after-requeue");
    let after = reserve_one(&queue, &other, LONG);
    assert_eq!((after.id(), after.attempt), (&id("run-dead-requeued"), 1));
    queue.release(&after.lease).expect("release");
    let record = queue.status(&id("run-dead-requeued")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Pending, 0));
    assert_eq!(
        (record.started_at, record.worker),
        (None, None),
        "a task released from its first reservation since a requeue was never started"
    );
}
