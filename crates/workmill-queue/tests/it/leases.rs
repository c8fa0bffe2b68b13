//! Leases: expiry alone does not take a task away, a rescue does, and a rescued lease is a failed
//! attempt of kind `LeaseExpired` that the retry policy decides about.

use std::time::Duration;

use workmill_core::{FailureKind, Queue, QueueError, TaskStatus};
use workmill_queue::MemoryConfig;

use crate::support::{consistent, id, manual_queue, reserve_one, task, worker};

const SHORT: Duration = Duration::from_secs(5);

#[test]
fn an_expired_lease_still_completes_until_rescued() {
    let (queue, clock) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("t", 5, 3)).unwrap();
    let reservation = queue.reserve(&worker(), 1, SHORT).unwrap().remove(0);
    clock.advance(SHORT * 2);
    let extended = queue.heartbeat(&reservation.lease, SHORT).unwrap();
    assert_eq!(extended.token, reservation.lease.token);
    assert!(extended.expires_at > reservation.lease.expires_at);
    queue.complete(&extended, vec![1]).unwrap();
    assert_eq!(queue.rescue_expired().unwrap(), 0);
    let stats = consistent(&queue);
    assert_eq!((stats.completed, stats.expired_leases), (1, 0));
}

#[test]
fn a_rescue_fails_the_attempt_and_the_old_holder_loses_the_task() {
    let (queue, clock) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("t", 5, 2)).unwrap();
    let lost = queue.reserve(&worker(), 1, SHORT).unwrap().remove(0);
    clock.advance(SHORT);
    assert_eq!(queue.rescue_expired().unwrap(), 1);
    let record = queue.status(&id("t")).unwrap();
    assert_eq!(record.status, TaskStatus::Retrying);
    let failure = record.last_error.unwrap();
    assert_eq!(failure.kind, FailureKind::LeaseExpired);
    assert!(
        failure.message.contains("test-worker"),
        "{}",
        failure.message
    );
    assert!(matches!(
        queue.complete(&lost.lease, vec![]),
        Err(QueueError::LeaseLost { .. })
    ));
    assert!(matches!(
        queue.heartbeat(&lost.lease, SHORT),
        Err(QueueError::LeaseLost { .. })
    ));

    // The second attempt's lease lapses inside reserve: attempts are exhausted.
    let second = reserve_one(&queue);
    assert_eq!(second.attempt, 2);
    clock.advance(Duration::from_secs(3_600));
    assert!(queue.reserve(&worker(), 1, SHORT).unwrap().is_empty());
    let record = queue.status(&id("t")).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Dead, 2));
    let stats = consistent(&queue);
    assert_eq!(
        (
            stats.expired_leases,
            stats.failed_attempts,
            stats.retried,
            stats.dead
        ),
        (2, 2, 1, 1)
    );
}

#[test]
fn a_heartbeat_keeps_the_task_past_its_first_expiry() {
    let (queue, clock) = manual_queue(MemoryConfig::default());
    queue.enqueue(task("t", 5, 1)).unwrap();
    let mut lease = queue.reserve(&worker(), 1, SHORT).unwrap().remove(0).lease;
    for _ in 0..10 {
        clock.advance(SHORT / 2);
        lease = queue.heartbeat(&lease, SHORT).unwrap();
        assert_eq!(queue.rescue_expired().unwrap(), 0);
    }
    clock.advance(SHORT);
    assert_eq!(queue.rescue_expired().unwrap(), 1);
    assert_eq!(queue.status(&id("t")).unwrap().status, TaskStatus::Dead);
}
