//! Every legal status move through the `Queue` API, state by state, and every illegal one refused.

use workmill_core::{
    FailOutcome, Failure, FailureKind, Queue, QueueError, TaskStatus, TaskStatus::*,
};
use workmill_queue::MemoryConfig;

use crate::support::{LEASE, consistent, id, manual_queue, reserve_one, task, worker};

fn status(queue: &dyn Queue, name: &str) -> TaskStatus {
    queue.status(&id(name)).expect("known task").status
}

#[test]
fn pending_running_completed() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("a", 5, 3)).unwrap();
    let record = queue.status(&id("a")).unwrap();
    assert_eq!(
        (record.status, record.attempts, record.started_at),
        (Pending, 0, None)
    );

    let reservation = reserve_one(&queue);
    assert_eq!(reservation.attempt, 1);
    let record = queue.status(&id("a")).unwrap();
    assert_eq!((record.status, record.attempts), (Running, 1));
    assert!(record.started_at.is_some() && record.worker == Some(worker()));
    assert_eq!(consistent(&queue).running, 1);

    queue.complete(&reservation.lease, b"ok".to_vec()).unwrap();
    let record = queue.status(&id("a")).unwrap();
    assert_eq!(record.status, Completed);
    assert_eq!(record.result.as_deref(), Some(&b"ok"[..]));
    assert!(record.finished_at.is_some());
    let stats = consistent(&queue);
    assert_eq!((stats.submitted, stats.completed, stats.running), (1, 1, 0));
}

#[test]
fn running_retrying_running_then_dead_then_requeued() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("flaky", 5, 2)).unwrap();

    let first = reserve_one(&queue);
    let outcome = queue
        .fail(&first.lease, Failure::new(FailureKind::Error, "timeout"))
        .unwrap();
    assert!(matches!(outcome, FailOutcome::Retrying { .. }));
    let record = queue.status(&id("flaky")).unwrap();
    assert_eq!(record.status, Retrying);
    assert_eq!(record.last_error.unwrap().message, "timeout");
    assert_eq!(consistent(&queue).retrying, 1);

    // Due at once (immediate backoff): reserved straight from Retrying.
    let second = reserve_one(&queue);
    assert_eq!(second.attempt, 2);
    assert_eq!(status(&queue, "flaky"), Running);

    let outcome = queue
        .fail(
            &second.lease,
            Failure::new(FailureKind::Error, "timeout again"),
        )
        .unwrap();
    assert_eq!(outcome, FailOutcome::Dead);
    let record = queue.status(&id("flaky")).unwrap();
    assert_eq!((record.status, record.attempts), (Dead, 2));
    assert!(record.finished_at.is_some());
    let stats = consistent(&queue);
    assert_eq!(
        (stats.dead, stats.failed_attempts, stats.retried),
        (1, 2, 1)
    );

    queue.requeue(&id("flaky")).unwrap();
    let record = queue.status(&id("flaky")).unwrap();
    assert_eq!((record.status, record.attempts), (Pending, 0));
    assert_eq!(record.finished_at, None);
    assert_eq!(
        record.last_error.unwrap().message,
        "timeout again",
        "history is kept"
    );
    let third = reserve_one(&queue);
    assert_eq!(
        third.attempt, 1,
        "a requeued task has a fresh set of attempts"
    );
    queue.complete(&third.lease, vec![]).unwrap();
    let stats = consistent(&queue);
    assert_eq!((stats.dead, stats.completed), (0, 1));
}

#[test]
fn running_pending_by_release_undoes_the_attempt() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("r", 5, 3)).unwrap();
    let reservation = reserve_one(&queue);
    queue.release(&reservation.lease).unwrap();
    let record = queue.status(&id("r")).unwrap();
    assert_eq!(
        (
            record.status,
            record.attempts,
            record.started_at,
            record.worker
        ),
        (Pending, 0, None, None)
    );
    assert_eq!(consistent(&queue).pending, 1);
    assert_eq!(reserve_one(&queue).attempt, 1);
}

#[test]
fn pending_and_retrying_tasks_can_be_cancelled() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("p", 5, 3)).unwrap();
    queue.cancel(&id("p")).unwrap();
    assert_eq!(status(&queue, "p"), Cancelled);

    queue
        .enqueue(task("q", 5, 3).retry(workmill_core::RetryPolicy::new(3)))
        .unwrap();
    let reservation = reserve_one(&queue);
    queue
        .fail(&reservation.lease, Failure::new(FailureKind::Error, "x"))
        .unwrap();
    assert_eq!(status(&queue, "q"), Retrying);
    queue.cancel(&id("q")).unwrap();
    let record = queue.status(&id("q")).unwrap();
    assert_eq!(record.status, Cancelled);
    assert!(record.finished_at.is_some());
    let stats = consistent(&queue);
    assert_eq!((stats.cancelled, stats.retrying, stats.pending), (2, 0, 0));
    assert!(
        queue.reserve(&worker(), 10, LEASE).unwrap().is_empty(),
        "cancelled tasks never run"
    );
}

#[test]
fn a_due_retrying_task_stays_retrying_until_reserved() {
    // The memory backend does not use the `Wake` move (Retrying -> Pending):
    // as the contract says, `reserve` takes due Retrying tasks directly.
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("w", 5, 3)).unwrap();
    let reservation = reserve_one(&queue);
    queue
        .fail(&reservation.lease, Failure::new(FailureKind::Error, "x"))
        .unwrap();
    queue.await_work(std::time::Duration::ZERO).unwrap();
    assert_eq!(status(&queue, "w"), Retrying);
    assert_eq!(consistent(&queue).retrying, 1);
}

#[test]
fn illegal_moves_are_refused_and_change_nothing() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    for name in ["pending", "running", "completed", "dead", "cancelled"] {
        queue.enqueue(task(name, 5, 1)).unwrap();
    }
    // Reserve in FIFO order: pending is first, so cancel it after taking the others.
    let reservations: Vec<_> = queue.reserve(&worker(), 4, LEASE).unwrap();
    let [pending_r, running, completed, dead] = <[_; 4]>::try_from(reservations).unwrap();
    queue.release(&pending_r.lease).unwrap();
    queue.complete(&completed.lease, vec![]).unwrap();
    queue
        .fail(&dead.lease, Failure::new(FailureKind::Error, "x"))
        .unwrap();
    queue.cancel(&id("cancelled")).unwrap();
    let before = consistent(&queue);

    // Cancel applies to waiting tasks only.
    for (name, from) in [
        ("running", Running),
        ("completed", Completed),
        ("dead", Dead),
        ("cancelled", Cancelled),
    ] {
        match queue.cancel(&id(name)) {
            Err(QueueError::IllegalTransition { id: task, source }) => {
                assert_eq!(task.as_str(), name);
                assert_eq!((source.from, source.to), (from, Cancelled));
            }
            other => panic!("cancel of a {name} task: {other:?}"),
        }
    }
    // Requeue applies to dead tasks only.
    for (name, from) in [
        ("pending", Pending),
        ("running", Running),
        ("completed", Completed),
        ("cancelled", Cancelled),
    ] {
        match queue.requeue(&id(name)) {
            Err(QueueError::IllegalTransition { source, .. }) => assert_eq!(source.from, from),
            other => panic!("requeue of a {name} task: {other:?}"),
        }
    }
    // A lease is good for one outcome: finished tasks refuse a second one.
    for lease in [&completed.lease, &dead.lease, &pending_r.lease] {
        assert!(matches!(
            queue.complete(lease, vec![]),
            Err(QueueError::LeaseLost { .. })
        ));
        assert!(matches!(
            queue.fail(lease, Failure::new(FailureKind::Error, "x")),
            Err(QueueError::LeaseLost { .. })
        ));
        assert!(matches!(
            queue.release(lease),
            Err(QueueError::LeaseLost { .. })
        ));
        assert!(matches!(
            queue.heartbeat(lease, LEASE),
            Err(QueueError::LeaseLost { .. })
        ));
    }
    // Unknown ids are NotFound, by name.
    let unknown = id("never-submitted");
    for result in [
        queue.cancel(&unknown),
        queue.requeue(&unknown),
        queue.status(&unknown).map(|_| ()),
    ] {
        match result {
            Err(QueueError::NotFound { id }) => assert_eq!(id, unknown),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(consistent(&queue), before, "refused moves change nothing");
    assert_eq!(status(&queue, "running"), Running);
    queue.complete(&running.lease, vec![]).unwrap();
}

#[test]
fn a_stale_lease_of_a_rereserved_task_is_lost() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("t", 5, 3)).unwrap();
    let first = reserve_one(&queue);
    queue.release(&first.lease).unwrap();
    let second = reserve_one(&queue);
    assert_ne!(first.lease.token, second.lease.token);
    assert!(matches!(
        queue.complete(&first.lease, vec![]),
        Err(QueueError::LeaseLost { .. })
    ));
    queue.complete(&second.lease, vec![]).unwrap();
}

#[test]
fn permanent_failures_skip_the_remaining_attempts() {
    let (queue, _) = manual_queue(MemoryConfig::default());
    for (name, kind) in [
        ("permanent", FailureKind::Permanent),
        ("decode", FailureKind::Decode),
        ("corrupt", FailureKind::Corrupt),
    ] {
        queue.enqueue(task(name, 5, 10)).unwrap();
        let reservation = reserve_one(&queue);
        let outcome = queue
            .fail(&reservation.lease, Failure::new(kind, "no"))
            .unwrap();
        assert_eq!(outcome, FailOutcome::Dead, "{kind:?}");
        let record = queue.status(&id(name)).unwrap();
        assert_eq!((record.status, record.attempts), (Dead, 1));
        assert_eq!(record.last_error.unwrap().kind, kind);
    }
    let stats = consistent(&queue);
    assert_eq!((stats.dead, stats.retried), (3, 0));
}
