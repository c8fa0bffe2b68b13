//! `Pool`: workers with their own queues, a balancer choosing among them, health tracking, retries elsewhere, and stats.
//!
//! How a task moves through the pool is written down in `pool/README.md`.

mod builder;
mod counters;
mod drain;
mod error;
mod gate;
mod handle;
mod job;
mod shared;
mod stats;
mod thread_worker;

pub use builder::PoolBuilder;
pub use error::{BuildError, PoolError, Refused};
pub use handle::TaskHandle;
pub use job::{Deferred, Job};
pub use stats::WorkerStats;
pub use thread_worker::ThreadWorker;

use std::sync::Arc;

use crossbeam_channel::bounded;
use workmill_core::{Request, Task, Worker};

use self::job::TaskCell;
pub(crate) use self::shared::Shared;
use crate::health::{HealthMonitor, HealthState};
use crate::score::health_score;
use crate::sync::{Ordering, lock};

/// A pool of workers that each task is pushed to, by a [`Balancer`](workmill_core::Balancer).
///
/// Each worker keeps its own bounded queue ([`ThreadWorker`] out of the box;
/// any [`Worker`] whose job type converts from [`Job`] works). For each task
/// the pool
///
/// 1. asks its balancer to pick among the workers, giving each one's load
///    (jobs queued and running, capacity, windowed mean service time and
///    error rate) and whether the [`HealthTracker`](crate::HealthTracker) admits it now;
/// 2. hands the attempt to that worker; if the worker refuses (full), picks
///    again without it, and hands the task back in [`Refused`] with
///    [`BalanceError::AllAtCapacity`](workmill_core::BalanceError::AllAtCapacity) or [`BalanceError::NoHealthyWorkers`](workmill_core::BalanceError::NoHealthyWorkers)
///    if no worker will take it;
/// 3. when the attempt ends, feeds the outcome to the balancer and the health
///    tracker, and on failure retries on another worker than the one that
///    failed (the same one only if no other is healthy), up to the retry
///    policy's attempts; a retry that finds every worker full waits in a
///    backlog that each finishing job drains once its worker has made room
///    (see [`Job::run_deferred`]), and each health check.
///
/// Results reach the caller through the [`TaskHandle`]. Unless told
/// otherwise the pool balances with [`default_balancer`](crate::default_balancer)
/// (shortest expected delay from learned rates), tracks health with
/// [`HealthConfig::default`](crate::HealthConfig), and gives each task three
/// attempts.
///
/// # Examples
///
/// ```
/// use workmill_balance::{Pool, ThreadWorker};
/// use workmill_core::TaskError;
///
/// let pool = Pool::builder()
///     .worker("fast", ThreadWorker::new(2, 8)?)
///     .worker("slow", ThreadWorker::new(1, 3)?)
///     .build()?;
/// let handles: Vec<_> = (0..10u64)
///     .map(|n| pool.distribute(move || Ok::<_, TaskError>(n * n)).unwrap())
///     .collect();
/// let sum: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
/// assert_eq!(sum, 285);
/// let stats = pool.stats();
/// assert_eq!(stats.iter().map(|s| s.processed).sum::<u64>(), 10);
/// pool.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<W: Worker + 'static = ThreadWorker> {
    shared: Arc<Shared<W>>,
    monitor: Option<HealthMonitor>,
}

impl Pool<ThreadWorker> {
    /// A builder; add workers with [`PoolBuilder::worker`].
    pub fn builder() -> PoolBuilder<ThreadWorker> {
        PoolBuilder::new()
    }
}

impl<W: Worker + 'static> Pool<W>
where
    W::Job: From<Job>,
{
    /// Pushes `task` to the worker the balancer picks; the result arrives on the handle.
    ///
    /// Refuses, handing the task back, when the pool is shut down or no worker
    /// can take it now ([`BalanceError::NoHealthyWorkers`](workmill_core::BalanceError::NoHealthyWorkers),
    /// [`BalanceError::AllAtCapacity`](workmill_core::BalanceError::AllAtCapacity)).
    pub fn distribute<T>(&self, task: T) -> Result<TaskHandle<T::Output>, Refused<T>>
    where
        T: Task + 'static,
        T::Output: 'static,
    {
        self.distribute_with(Request::default(), task)
    }

    /// [`distribute`](Self::distribute) with what the balancer may know of the
    /// task, such as an affinity key for [`Rendezvous`](crate::Rendezvous).
    pub fn distribute_with<T>(
        &self,
        request: Request,
        task: T,
    ) -> Result<TaskHandle<T::Output>, Refused<T>>
    where
        T: Task + 'static,
        T::Output: 'static,
    {
        if self.shared.is_shut_down() {
            return Err(Refused {
                task,
                error: PoolError::ShutDown,
            });
        }
        let id = self.shared.next_task.fetch_add(1, Ordering::Relaxed);
        let (reply, result) = bounded(1);
        let cell = Arc::new(TaskCell::new(id, task, request, reply));
        self.shared.outstanding.enter();
        match self.shared.place(&cell, None) {
            Ok(()) => Ok(TaskHandle::new(id, result)),
            Err(error) => {
                self.shared.outstanding.exit();
                match cell.take_task() {
                    Some(task) => Err(Refused {
                        task,
                        error: PoolError::Balance(error),
                    }),
                    // Unreachable: a task no worker took is still in its cell.
                    None => Ok(TaskHandle::new(id, result)),
                }
            }
        }
    }

    /// Each worker's detailed statistics, in the order they were added.
    pub fn stats(&self) -> Vec<WorkerStats> {
        let shared = &self.shared;
        let now = shared.clock.now();
        let mut dispatcher = lock(&shared.dispatcher);
        shared
            .slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                dispatcher.health.refresh(index, now);
                let state = dispatcher.health.state(index);
                let load = shared.load_of(slot, now);
                let metrics = lock(&slot.metrics);
                let (mean_service, error_rate) =
                    (metrics.mean_service(now), metrics.error_rate(now));
                WorkerStats {
                    name: slot.name.clone(),
                    health_score: health_score(error_rate, load.in_flight(), mean_service),
                    mean_response_time: mean_service,
                    error_rate,
                    running: load.running,
                    queued: load.queued,
                    capacity: load.capacity,
                    processed: metrics.processed(),
                    failed: metrics.failed(),
                    healthy: matches!(state, HealthState::Healthy | HealthState::SlowStart { .. }),
                    state,
                    ejections: dispatcher.health.ejections(index),
                }
            })
            .collect()
    }

    /// How many workers the pool has.
    pub fn len(&self) -> usize {
        self.shared.slots.len()
    }

    /// Never true: a pool has at least one worker.
    pub fn is_empty(&self) -> bool {
        self.shared.slots.is_empty()
    }

    /// Tasks accepted whose result has not been delivered yet.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding.outstanding()
    }

    /// Runs one health check now, as the monitor does each interval: brings
    /// every worker's ejection state up to the clock and places waiting retries.
    pub fn check_health(&self) {
        self.shared.check_health();
    }

    /// Stops taking tasks, waits until every accepted task has its result
    /// (retries included), then stops the monitor and the workers.
    pub fn shutdown(mut self) {
        self.shared.shut_down.store(true, Ordering::Release);
        let interval = lock(&self.shared.dispatcher).health.config().interval;
        while !self.shared.outstanding.wait_idle_for(interval) {
            // Retries waiting for room get their chance even if no job finishes.
            self.shared.check_health();
        }
        if let Some(monitor) = self.monitor.take() {
            monitor.stop();
        }
    }
}

impl<W: Worker + 'static> Drop for Pool<W> {
    /// Stops taking tasks and abandons retries still waiting for a worker;
    /// jobs already with a worker run and deliver their results.
    fn drop(&mut self) {
        self.shared.shut_down.store(true, Ordering::Release);
        if let Some(monitor) = self.monitor.take() {
            monitor.stop();
        }
        let abandoned: Vec<_> = lock(&self.shared.backlog).drain(..).collect();
        for retry in abandoned {
            retry.abandon(&self.shared);
        }
    }
}
