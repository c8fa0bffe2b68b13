//! Random operation sequences: after every operation the stats add up, every gauge equals the
//! number of records in its status, and every status change is a legal move of the lifecycle.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use workmill_core::{
    Backoff, Failure, FailureKind, Lease, ListFilter, NewTask, Priority, Queue, QueueError,
    RetryPolicy, TaskId, TaskStatus,
};
use workmill_queue::{Clock, MemoryConfig};

use crate::support::{manual_queue, worker};

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        priority: u16,
        delay_ms: u64,
        attempts: u32,
    },
    Reserve {
        max: usize,
        lease_ms: u64,
    },
    Complete(usize),
    Fail {
        lease: usize,
        permanent: bool,
    },
    Release(usize),
    Heartbeat(usize),
    Cancel(usize),
    Requeue(usize),
    Advance(u64),
    Rescue,
    Purge(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..4, prop_oneof![Just(0u64), 1u64..50], 1u32..4)
            .prop_map(|(priority, delay_ms, attempts)| Op::Enqueue { priority, delay_ms, attempts }),
        3 => (1usize..4, 5u64..100).prop_map(|(max, lease_ms)| Op::Reserve { max, lease_ms }),
        2 => any::<usize>().prop_map(Op::Complete),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(lease, permanent)| Op::Fail { lease, permanent }),
        1 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Heartbeat),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Requeue),
        2 => (1u64..40).prop_map(Op::Advance),
        1 => Just(Op::Rescue),
        1 => any::<usize>().prop_map(Op::Purge),
    ]
}

fn pick<T>(items: &[T], index: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[index % items.len()])
}

/// Refusals the contract allows for an operation on an arbitrary task or lease.
fn refused_as_documented(result: Result<(), QueueError>) {
    match result {
        Ok(())
        | Err(QueueError::LeaseLost { .. })
        | Err(QueueError::IllegalTransition { .. })
        | Err(QueueError::NotFound { .. }) => {}
        Err(other) => panic!("unexpected error: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn stats_and_statuses_follow_the_lifecycle(ops in prop::collection::vec(op(), 1..120)) {
        let (queue, clock) = manual_queue(MemoryConfig::default().retention(None));
        let mut ids: Vec<TaskId> = Vec::new();
        let mut leases: Vec<Lease> = Vec::new();
        let mut seen: HashMap<TaskId, TaskStatus> = HashMap::new();
        for op in ops {
            match op {
                Op::Enqueue { priority, delay_ms, attempts } => {
                    let policy = RetryPolicy::new(attempts).backoff(Backoff::Fixed(Duration::from_millis(10))).jitter(0.0);
                    let run_at = clock.now().saturating_add(Duration::from_millis(delay_ms));
                    let task = NewTask::new("model", vec![])
                        .priority(Priority::new(priority))
                        .retry(policy)
                        .run_at(run_at);
                    ids.push(queue.enqueue(task).unwrap());
                }
                Op::Reserve { max, lease_ms } => {
                    let batch = queue.reserve(&worker(), max, Duration::from_millis(lease_ms)).unwrap();
                    prop_assert!(batch.len() <= max);
                    for pair in batch.windows(2) {
                        prop_assert!(pair[0].priority <= pair[1].priority, "a batch leaves in priority order");
                    }
                    for reservation in batch {
                        let record = queue.status(reservation.id()).unwrap();
                        prop_assert_eq!(record.status, TaskStatus::Running);
                        prop_assert_eq!(record.attempts, reservation.attempt);
                        leases.push(reservation.lease);
                    }
                }
                Op::Complete(i) => if let Some(lease) = pick(&leases, i) {
                    refused_as_documented(queue.complete(lease, vec![1]));
                },
                Op::Fail { lease, permanent } => if let Some(lease) = pick(&leases, lease) {
                    let kind = if permanent { FailureKind::Permanent } else { FailureKind::Error };
                    refused_as_documented(queue.fail(lease, Failure::new(kind, "model")).map(|_| ()));
                },
                Op::Release(i) => if let Some(lease) = pick(&leases, i) {
                    refused_as_documented(queue.release(lease));
                },
                Op::Heartbeat(i) => if let Some(lease) = pick(&leases, i) {
                    refused_as_documented(queue.heartbeat(lease, Duration::from_millis(50)).map(|_| ()));
                },
                Op::Cancel(i) => if let Some(id) = pick(&ids, i) {
                    refused_as_documented(queue.cancel(id));
                },
                Op::Requeue(i) => if let Some(id) = pick(&ids, i) {
                    refused_as_documented(queue.requeue(id));
                },
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Rescue => { queue.rescue_expired().unwrap(); }
                Op::Purge(i) => {
                    let status = TaskStatus::ALL[i % TaskStatus::ALL.len()];
                    let before = queue.stats().unwrap().count(status);
                    let purged = queue.purge(&[status]).unwrap();
                    prop_assert_eq!(purged, before);
                    ids.retain(|id| queue.status(id).is_ok());
                    seen.retain(|id, _| queue.status(id).is_ok());
                }
            }

            let stats = queue.stats().unwrap();
            prop_assert!(stats.is_consistent(), "{:?}", stats);
            let records = queue.list(&ListFilter { status: None, limit: usize::MAX }).unwrap();
            prop_assert_eq!(records.len() as u64, stats.submitted);
            for status in TaskStatus::ALL {
                let count = records.iter().filter(|r| r.status == status).count() as u64;
                prop_assert_eq!(count, stats.count(status), "gauge of {}", status);
            }
            for record in &records {
                if let Some(&before) = seen.get(&record.id)
                    && before != record.status
                {
                    prop_assert!(
                        before.can_become(record.status),
                        "{} moved {} -> {}", record.id, before, record.status
                    );
                }
                seen.insert(record.id.clone(), record.status);
                prop_assert!(record.finished_at.is_some() == record.status.is_final());
                prop_assert!(record.attempts <= record.retry.max_attempts());
            }
        }
    }
}
