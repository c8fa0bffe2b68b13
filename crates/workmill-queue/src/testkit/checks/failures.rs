//! Checks of failed attempts: retries with backoff and demotion, the dead-letter set, and requeue.

use std::time::Duration;

use workmill_core::{
    Backoff, FailOutcome, Failure, FailureKind, Priority, Queue, QueueError, RetryPolicy,
    TaskStatus, Timestamp,
};

use crate::testkit::support::{LONG, id, immediate, reserve_one, task, task_at, wait_for, worker};
use crate::testkit::{Harness, QueueSettings};

/// A failure with attempts left waits out the policy's backoff (never handed out early),
/// loses `demote_by` priority levels, and comes back as the next attempt.
pub fn retry_waits_out_the_backoff_and_demotes(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let policy = RetryPolicy::new(3)
        .backoff(Backoff::exponential(
            Duration::from_millis(30),
            Duration::from_secs(10),
        ))
        .jitter(0.0)
        .demote_by(7);
    queue
        .enqueue(task_at("flaky", 2).retry(policy))
        .expect("enqueue");
    let worker = worker("retry-worker");

    let mut priority = Priority::new(2);
    for (attempt, backoff) in [(1u32, 30u64), (2, 60)] {
        let reservation = reserve_one(&queue, &worker, LONG);
        assert_eq!(
            (reservation.attempt, reservation.priority),
            (attempt, priority)
        );
        let failure = Failure::new(FailureKind::Error, format!("timeout on attempt {attempt}"));
        let before = Timestamp::now();
        let outcome = queue
            .fail(&reservation.lease, failure.clone())
            .expect("fail");
        let after = Timestamp::now();
        priority = priority.demoted(7);
        let FailOutcome::Retrying {
            run_at,
            priority: next,
        } = outcome
        else {
            panic!("attempt {attempt} of 3 failed: expected a retry, got {outcome:?}");
        };
        let delay = Duration::from_millis(backoff);
        assert_eq!(next, priority, "each retry demotes by the policy's step");
        assert!(
            run_at >= before.saturating_add(delay),
            "retry {attempt} scheduled before its backoff"
        );
        assert!(
            run_at <= after.saturating_add(delay),
            "retry {attempt} scheduled after its backoff"
        );

        let record = queue.status(&id("flaky")).expect("status");
        assert_eq!(
            (record.status, record.attempts, record.priority),
            (TaskStatus::Retrying, attempt, next)
        );
        assert_eq!(record.run_at, run_at);
        assert_eq!(record.last_error, Some(failure));
        assert!(record.finished_at.is_none());

        let next_attempt = wait_for("the retry to come due", || {
            let got = queue.reserve(&worker, 1, LONG).expect("reserve");
            let when = Timestamp::now();
            let reservation = got.into_iter().next()?;
            assert!(
                when >= run_at,
                "a retry was handed out before its backoff elapsed"
            );
            Some(reservation)
        });
        assert_eq!(next_attempt.attempt, attempt + 1);
        queue
            .release(&next_attempt.lease)
            .expect("release, to reserve it again above");
    }
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.failed_attempts, stats.retried, stats.pending),
        (2, 2, 1)
    );
}

/// The failure of the last allowed attempt puts the task in the dead-letter set.
pub fn last_attempt_dead_letters(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .enqueue(task("doomed").retry(immediate(2)))
        .expect("enqueue");
    let worker = worker("dl-worker");
    let first = reserve_one(&queue, &worker, LONG);
    let outcome = queue
        .fail(&first.lease, Failure::new(FailureKind::Panic, "boom 1"))
        .expect("fail");
    assert!(
        matches!(outcome, FailOutcome::Retrying { .. }),
        "{outcome:?}"
    );
    let second = reserve_one(&queue, &worker, LONG);
    assert_eq!(second.attempt, 2);
    let last = Failure::new(FailureKind::Error, "boom 2");
    assert_eq!(
        queue.fail(&second.lease, last.clone()).expect("fail"),
        FailOutcome::Dead
    );

    let record = queue.status(&id("doomed")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Dead, 2));
    assert_eq!(record.last_error, Some(last));
    assert!(record.finished_at.is_some());
    assert!(record.result.is_none());
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty(),
        "dead tasks do not run"
    );
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (
            stats.dead,
            stats.failed_attempts,
            stats.retried,
            stats.running
        ),
        (1, 2, 1, 0)
    );
    assert!(matches!(
        queue.fail(&second.lease, Failure::new(FailureKind::Error, "again")),
        Err(QueueError::LeaseLost { .. })
    ));
}

/// A task whose name no handler knows is retried under its policy, not dead-lettered at
/// once: another worker may know the name, or this one a moment later.
pub fn an_unknown_task_name_is_retried(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let worker = worker("unknown-worker");
    queue
        .enqueue(task("nameless").retry(immediate(2)))
        .expect("enqueue");
    let no_handler = Failure::new(FailureKind::UnknownTask, "no handler here");
    let first = reserve_one(&queue, &worker, LONG);
    assert!(matches!(
        queue.fail(&first.lease, no_handler.clone()).expect("fail"),
        FailOutcome::Retrying { .. }
    ));
    let second = reserve_one(&queue, &worker, LONG);
    assert_eq!(
        queue.fail(&second.lease, no_handler).expect("fail"),
        FailOutcome::Dead
    );
    let record = queue.status(&id("nameless")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Dead, 2));
}

/// A permanent failure skips the remaining attempts, whatever the policy allows.
pub fn permanent_error_dead_letters_at_once(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let worker = worker("perm-worker");
    for (name, kind) in [
        ("bad-input", FailureKind::Permanent),
        ("garbled", FailureKind::Decode),
    ] {
        queue
            .enqueue(task(name).retry(immediate(10)))
            .expect("enqueue");
        let reservation = reserve_one(&queue, &worker, LONG);
        let failure = Failure::new(kind, "retrying cannot help");
        assert_eq!(
            queue
                .fail(&reservation.lease, failure.clone())
                .expect("fail"),
            FailOutcome::Dead
        );
        let record = queue.status(&id(name)).expect("status");
        assert_eq!(
            (record.status, record.attempts),
            (TaskStatus::Dead, 1),
            "{name}"
        );
        assert_eq!(record.last_error, Some(failure));
    }
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.dead, stats.failed_attempts, stats.retried),
        (2, 2, 0)
    );
}

/// Requeue gives a dead task a fresh set of attempts; it refuses tasks that are not dead.
pub fn requeue_revives_a_dead_task(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .enqueue(task("lazarus").retry(immediate(1)))
        .expect("enqueue");
    queue.enqueue(task("waiting")).expect("enqueue");
    let worker = worker("requeue-worker");
    let reservation = reserve_one(&queue, &worker, LONG);
    assert_eq!(reservation.id(), &id("lazarus"));
    let refused = queue.requeue(&id("lazarus"));
    assert!(
        matches!(&refused, Err(QueueError::IllegalTransition { id: i, .. }) if *i == id("lazarus")),
        "requeue of a running task: {refused:?}"
    );
    queue
        .fail(&reservation.lease, Failure::new(FailureKind::Error, "down"))
        .expect("fail");
    assert_eq!(
        queue.status(&id("lazarus")).expect("status").status,
        TaskStatus::Dead
    );

    let before = Timestamp::now();
    queue.requeue(&id("lazarus")).expect("requeue a dead task");
    let record = queue.status(&id("lazarus")).expect("status");
    assert_eq!((record.status, record.attempts), (TaskStatus::Pending, 0));
    assert!(
        record.run_at >= before && record.run_at <= Timestamp::now(),
        "due now"
    );
    assert!(record.finished_at.is_none());
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.dead, stats.pending, stats.submitted), (0, 2, 2));

    // The contract does not say where a requeued task stands in line, only that it runs again.
    let mut again: Vec<_> = queue
        .reserve(&worker, 10, LONG)
        .expect("reserve")
        .into_iter()
        .map(|r| (r.id().clone(), r.attempt))
        .collect();
    again.sort();
    assert_eq!(
        again,
        [(id("lazarus"), 1), (id("waiting"), 1)],
        "a requeued task runs again, as attempt 1"
    );
    assert!(matches!(
        queue.requeue(&id("waiting")),
        Err(QueueError::IllegalTransition { .. })
    ));
    assert!(matches!(
        queue.requeue(&id("nobody")),
        Err(QueueError::NotFound { .. })
    ));
}
