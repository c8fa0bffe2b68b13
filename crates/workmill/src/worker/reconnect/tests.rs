//! Tests of `Reconnect` (capped, jittered, monotone waits) and `ReconnectingQueue` (a new connection after a store failure, not after a refusal).

use workmill_core::Timestamp;
use workmill_queue::MemoryQueue;

use super::*;

#[test]
fn waits_near_duration_max_do_not_panic() {
    let endless = Reconnect {
        initial: Duration::MAX,
        max: Duration::MAX,
        jitter: 0.0,
    };
    assert_eq!(endless.delay(1, 0.0), Duration::MAX);
    assert_eq!(endless.delay(80, 0.5), Duration::MAX);
    let jittered = Reconnect {
        jitter: 0.5,
        ..endless
    };
    assert!(jittered.delay(3, 0.5) <= Duration::MAX);
}

#[test]
fn waits_grow_to_the_cap_and_jitter_only_shortens_them() {
    let reconnect = Reconnect {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(300),
        jitter: 0.25,
    };
    let mut previous = Duration::ZERO;
    for failures in 1..40 {
        let base = reconnect.delay(failures, 0.0);
        assert!(base >= previous, "monotone at failure {failures}");
        assert!(base <= reconnect.max);
        for random in [0.1, 0.5, 0.999] {
            let jittered = reconnect.delay(failures, random);
            assert!(
                jittered <= base && jittered >= base.mul_f64(0.75),
                "{failures} {random}"
            );
        }
        previous = base;
    }
    assert_eq!(
        reconnect.delay(0, 0.0),
        Duration::from_millis(10),
        "0 reads as 1"
    );
    assert_eq!(reconnect.delay(40, 0.0), Duration::from_millis(300));
    let odd = Reconnect {
        jitter: f64::NAN,
        ..reconnect
    };
    assert_eq!(odd.delay(1, f64::INFINITY), Duration::from_millis(10));
}

/// A store whose every lease operation fails with `error()`.
struct Broken {
    error: fn() -> QueueError,
}

impl Queue for Broken {
    fn backend_name(&self) -> &'static str {
        "broken"
    }
    fn enqueue(&self, _: NewTask) -> Result<TaskId, QueueError> {
        Err((self.error)())
    }
    fn reserve(&self, _: &WorkerId, _: usize, _: Duration) -> Result<Vec<Reservation>, QueueError> {
        Err((self.error)())
    }
    fn heartbeat(&self, _: &Lease, _: Duration) -> Result<Lease, QueueError> {
        Err((self.error)())
    }
    fn complete(&self, _: &Lease, _: Vec<u8>) -> Result<(), QueueError> {
        Err((self.error)())
    }
    fn fail(&self, _: &Lease, _: Failure) -> Result<FailOutcome, QueueError> {
        Err((self.error)())
    }
    fn release(&self, _: &Lease) -> Result<(), QueueError> {
        Err((self.error)())
    }
    fn cancel(&self, _: &TaskId) -> Result<(), QueueError> {
        Err((self.error)())
    }
    fn requeue(&self, _: &TaskId) -> Result<(), QueueError> {
        Err((self.error)())
    }
    fn status(&self, _: &TaskId) -> Result<TaskRecord, QueueError> {
        Err((self.error)())
    }
    fn list(&self, _: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        Err((self.error)())
    }
    fn stats(&self) -> Result<QueueStats, QueueError> {
        Err((self.error)())
    }
    fn purge(&self, _: &[TaskStatus]) -> Result<u64, QueueError> {
        Err((self.error)())
    }
    fn submit_job(&self, _: NewJob) -> Result<TaskId, QueueError> {
        Err((self.error)())
    }
    fn job(&self, _: &TaskId) -> Result<JobRecord, QueueError> {
        Err((self.error)())
    }
    fn job_results(&self, _: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        Err((self.error)())
    }
    fn rescue_expired(&self) -> Result<u64, QueueError> {
        Err((self.error)())
    }
}

/// Counts connections; a plain lock, since these tests need no atomics of their own.
#[derive(Default)]
struct Opened(std::sync::Mutex<u32>);

impl Opened {
    /// Counts one more and returns how many came before.
    fn next(&self) -> u32 {
        let mut count = self.0.lock().unwrap();
        *count += 1;
        *count - 1
    }

    fn count(&self) -> u32 {
        *self.0.lock().unwrap()
    }
}

fn store_down() -> QueueError {
    QueueError::backend("broken", "do anything", "connection reset")
}

fn lease_lost() -> QueueError {
    QueueError::LeaseLost {
        id: TaskId::new("t").unwrap(),
        token: 1,
    }
}

fn some_lease() -> Lease {
    Lease {
        task: TaskId::new("t").unwrap(),
        token: 1,
        expires_at: Timestamp::from_micros(0),
    }
}

#[test]
fn a_store_failure_opens_a_new_connection_on_the_next_call() {
    let opened = Arc::new(Opened::default());
    let queue = {
        let opened = Arc::clone(&opened);
        ReconnectingQueue::new(Box::new(move || {
            // The first connection is broken; later ones work.
            Ok(match opened.next() {
                0 => Arc::new(Broken { error: store_down }) as Arc<dyn Queue>,
                _ => Arc::new(MemoryQueue::new()),
            })
        }))
    };
    assert_eq!(queue.backend_name(), "unconnected");
    assert!(queue.stats().unwrap_err().is_transient());
    assert_eq!((opened.count(), queue.reconnects()), (1, 0));
    assert_eq!(
        queue.stats().unwrap().submitted,
        0,
        "the second connection works"
    );
    assert_eq!((opened.count(), queue.reconnects()), (2, 1));
    assert_eq!(queue.backend_name(), "memory");
    queue.stats().unwrap();
    assert_eq!(opened.count(), 2, "a working connection is kept");
}

#[test]
fn a_refusal_keeps_the_connection() {
    let opened = Arc::new(Opened::default());
    let queue = {
        let opened = Arc::clone(&opened);
        ReconnectingQueue::new(Box::new(move || {
            opened.next();
            Ok(Arc::new(Broken { error: lease_lost }) as Arc<dyn Queue>)
        }))
    };
    for _ in 0..3 {
        assert!(matches!(
            queue.complete(&some_lease(), vec![]),
            Err(QueueError::LeaseLost { .. })
        ));
    }
    assert_eq!((opened.count(), queue.reconnects()), (1, 0));
}

#[test]
fn a_failed_connect_is_the_callers_error_and_is_tried_again() {
    let opened = Arc::new(Opened::default());
    let queue = {
        let opened = Arc::clone(&opened);
        ReconnectingQueue::new(Box::new(move || {
            if opened.next() == 0 {
                Err(store_down())
            } else {
                Ok(Arc::new(MemoryQueue::new()) as Arc<dyn Queue>)
            }
        }))
    };
    assert!(queue.release(&some_lease()).unwrap_err().is_transient());
    assert!(matches!(
        queue.release(&some_lease()),
        Err(QueueError::NotFound { .. }) | Err(QueueError::LeaseLost { .. })
    ));
    assert_eq!(
        (opened.count(), queue.reconnects()),
        (2, 0),
        "the first connection that worked is not a reconnect"
    );
}
