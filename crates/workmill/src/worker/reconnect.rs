//! How a worker rides out a failing store: `Reconnect`, the capped, jittered exponential wait
//! between tries, and `ReconnectingQueue`, which opens the store again after it failed.

use std::sync::Arc;
use std::time::Duration;

use workmill_core::{
    Backoff, FailOutcome, Failure, JobRecord, Lease, ListFilter, NewJob, NewTask, Payload, Queue,
    QueueError, QueueStats, Reservation, RetryPolicy, TaskId, TaskRecord, TaskStatus, WorkerId,
};

use crate::sync::{Mutex, lock};

/// How long a worker waits after the store failed: exponential from `initial`,
/// capped at `max`, shortened by up to `jitter` (a fraction) at random so that
/// workers that failed together do not come back together.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill::worker::Reconnect;
///
/// let reconnect = Reconnect::default();
/// assert_eq!(reconnect.delay(1, 0.0), Duration::from_millis(50));
/// assert_eq!(reconnect.delay(3, 0.0), Duration::from_millis(200));
/// assert_eq!(reconnect.delay(30, 0.0), Duration::from_secs(5), "capped");
/// assert!(reconnect.delay(30, 0.99) >= Duration::from_millis(2_500), "at most half is taken off");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// The largest fraction taken off a wait at random, from 0.0 to 1.0.
    pub jitter: f64,
}

impl Default for Reconnect {
    /// 50 ms, doubling to 5 s, with up to half of each wait taken off at random.
    fn default() -> Reconnect {
        Reconnect {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            jitter: 0.5,
        }
    }
}

impl Reconnect {
    /// The wait after `failures` failures in a row (1 for the first), where `random` is a
    /// uniform sample from `[0, 1)`: `min(initial * 2^(failures-1), max) * (1 - jitter * random)`.
    pub fn delay(&self, failures: u32, random: f64) -> Duration {
        // A task's retry delay with this schedule: the same formula, jitter and bounds.
        RetryPolicy::new(1)
            .backoff(Backoff::exponential(
                self.initial,
                self.max.max(self.initial),
            ))
            .jitter(self.jitter)
            .delay(failures.max(1), random)
    }
}

/// Opens a connection to the store: [`Backend::open`](crate::backend::Backend::open), or the caller's own.
pub(crate) type Connect = Box<dyn Fn() -> Result<Arc<dyn Queue>, QueueError> + Send + Sync>;

/// A [`Queue`] that opens its store on first use and again after the store failed.
///
/// Every call goes to the current connection. When one fails with
/// [`QueueError::Backend`] (the store itself: a dropped connection, an I/O
/// error, a lock held too long), that connection is marked broken and the next
/// call opens a new one first; the caller decides when that next call comes,
/// after a [`Reconnect`] wait. Leases are tokens kept in the store, so a task
/// reserved on the old connection is completed, failed, released or extended
/// on the new one. Refusals (a lost lease, an unknown task) leave the
/// connection as it is.
pub(crate) struct ReconnectingQueue {
    connect: Connect,
    link: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    current: Option<Arc<dyn Queue>>,
    broken: bool,
    /// Connections opened after the first.
    reconnects: u64,
}

impl ReconnectingQueue {
    pub(crate) fn new(connect: Connect) -> ReconnectingQueue {
        ReconnectingQueue {
            connect,
            link: Mutex::new(Link::default()),
        }
    }

    /// The current connection, opening one if there is none or it broke.
    ///
    /// The lock is held while connecting, so threads that find the store broken
    /// together open one connection, not one each.
    pub(crate) fn connection(&self) -> Result<Arc<dyn Queue>, QueueError> {
        let mut link = lock(&self.link);
        match &link.current {
            Some(queue) if !link.broken => Ok(Arc::clone(queue)),
            _ => {
                let queue = (self.connect)()?;
                if link.current.is_some() {
                    link.reconnects += 1;
                    tracing::info!(backend = queue.backend_name(), "reconnected to the store");
                }
                link.current = Some(Arc::clone(&queue));
                link.broken = false;
                Ok(queue)
            }
        }
    }

    /// How many times the store was opened again after the first connection.
    pub(crate) fn reconnects(&self) -> u64 {
        lock(&self.link).reconnects
    }

    /// Runs `call` on the current connection, marking it broken if the store failed.
    fn with<T>(
        &self,
        call: impl FnOnce(&dyn Queue) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let queue = self.connection()?;
        let result = call(&*queue);
        if let Err(QueueError::Backend { .. }) = &result {
            let mut link = lock(&self.link);
            // Only the connection that failed is marked: another thread may have replaced it already.
            if link
                .current
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, &queue))
            {
                link.broken = true;
            }
        }
        result
    }
}

impl Queue for ReconnectingQueue {
    fn backend_name(&self) -> &'static str {
        lock(&self.link)
            .current
            .as_ref()
            .map_or("unconnected", |queue| queue.backend_name())
    }

    fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
        self.with(|queue| queue.enqueue(task))
    }

    fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, QueueError> {
        self.with(|queue| queue.enqueue_batch(tasks))
    }

    fn reserve(
        &self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        self.with(|queue| queue.reserve(worker, max, lease))
    }

    fn await_work(&self, timeout: Duration) -> Result<(), QueueError> {
        self.with(|queue| queue.await_work(timeout))
    }

    fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
        self.with(|queue| queue.heartbeat(lease, extend))
    }

    fn heartbeat_batch(
        &self,
        leases: &[Lease],
        extend: Duration,
    ) -> Result<Vec<Result<Lease, QueueError>>, QueueError> {
        self.with(|queue| queue.heartbeat_batch(leases, extend))
    }

    fn complete(&self, lease: &Lease, result: Vec<u8>) -> Result<(), QueueError> {
        self.with(|queue| queue.complete(lease, result))
    }

    fn complete_batch(
        &self,
        done: Vec<(Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        self.with(|queue| queue.complete_batch(done))
    }

    fn complete_payloads(
        &self,
        done: Vec<(Lease, Payload)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        self.with(|queue| queue.complete_payloads(done))
    }

    fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
        self.with(|queue| queue.fail(lease, failure))
    }

    fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.with(|queue| queue.release(lease))
    }

    fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
        self.with(|queue| queue.cancel(id))
    }

    fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
        self.with(|queue| queue.requeue(id))
    }

    fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
        self.with(|queue| queue.status(id))
    }

    fn wait(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, QueueError> {
        self.with(|queue| queue.wait(id, timeout))
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        self.with(|queue| queue.list(filter))
    }

    fn stats(&self) -> Result<QueueStats, QueueError> {
        self.with(|queue| queue.stats())
    }

    fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
        self.with(|queue| queue.purge(statuses))
    }

    fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
        self.with(|queue| queue.submit_job(job))
    }

    fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
        self.with(|queue| queue.job(id))
    }

    fn wait_job(
        &self,
        id: &TaskId,
        timeout: Duration,
    ) -> Result<(JobRecord, Option<TaskRecord>), QueueError> {
        self.with(|queue| queue.wait_job(id, timeout))
    }

    fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        self.with(|queue| queue.job_results(id))
    }

    fn rescue_expired(&self) -> Result<u64, QueueError> {
        self.with(|queue| queue.rescue_expired())
    }
}

#[cfg(test)]
mod tests;
