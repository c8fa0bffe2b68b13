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
mod stats;
mod thread_worker;

pub use builder::PoolBuilder;
pub use error::{BuildError, PoolError, Refused};
pub use handle::TaskHandle;
pub use job::Job;
pub use stats::WorkerStats;
pub use thread_worker::ThreadWorker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;
use workmill_core::{
    BalanceError, Balancer, Candidate, Load, Outcome, Rejected, Request, RetryPolicy, Task, Worker,
};

use self::counters::Counters;
use self::drain::Drain;
use self::job::{Attempt, TaskCell};
use crate::clock::Clock;
use crate::health::{Dispatch as Admission, HealthMonitor, HealthState, HealthTracker};
use crate::metrics::WorkerMetrics;
use crate::score::health_score;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering, lock};

/// A pool of workers that each task is pushed to, by a [`Balancer`].
///
/// Each worker keeps its own bounded queue ([`ThreadWorker`] out of the box;
/// any [`Worker`] whose job type converts from [`Job`] works). For each task
/// the pool
///
/// 1. asks its balancer to pick among the workers, giving each one's load
///    (jobs queued and running, capacity, windowed mean service time and
///    error rate) and whether the [`HealthTracker`] admits it now;
/// 2. hands the attempt to that worker; if the worker refuses (full), picks
///    again without it, and hands the task back in [`Refused`] with
///    [`BalanceError::AllAtCapacity`] or [`BalanceError::NoHealthyWorkers`]
///    if no worker will take it;
/// 3. when the attempt ends, feeds the outcome to the balancer and the health
///    tracker, and on failure retries on another worker than the one that
///    failed (the same one only if no other is healthy), up to the retry
///    policy's attempts; a retry that finds every worker full waits in a
///    backlog that each finishing job and each health check drains.
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

/// What the pool's parts share: workers, the dispatcher, and the backlog.
pub(crate) struct Shared<W: Worker + 'static> {
    pub(crate) slots: Vec<Slot<W>>,
    dispatcher: Mutex<Dispatcher>,
    clock: Arc<dyn Clock>,
    pub(crate) retry: RetryPolicy,
    pub(crate) outstanding: Drain,
    shut_down: AtomicBool,
    backlog: Mutex<VecDeque<Box<dyn Backlogged<W>>>>,
    next_task: AtomicU64,
}

/// One worker and what the pool knows of it.
pub(crate) struct Slot<W> {
    pub(crate) name: String,
    pub(crate) worker: W,
    pub(crate) weight: u32,
    pub(crate) counters: Counters,
    pub(crate) metrics: Mutex<WorkerMetrics>,
}

/// The balancer and the health tracker, behind one lock: a pick and the
/// dispatch it leads to are one step, so the next pick sees this one's job.
struct Dispatcher {
    balancer: Box<dyn Balancer>,
    health: HealthTracker,
    candidates: Vec<Candidate>,
}

/// A retry waiting for a worker with room.
trait Backlogged<W: Worker + 'static>: Send {
    /// Tries to place it; hands it back if no worker takes it yet.
    fn place(self: Box<Self>, shared: &Arc<Shared<W>>) -> Result<(), Box<dyn Backlogged<W>>>;
    /// Gives up on it: the pool is going away.
    fn abandon(self: Box<Self>, shared: &Shared<W>);
}

struct Retry<T: Task + 'static> {
    cell: Arc<TaskCell<T>>,
    failed_on: usize,
}

impl<T: Task + 'static, W: Worker + 'static> Backlogged<W> for Retry<T>
where
    W::Job: From<Job>,
{
    fn place(self: Box<Self>, shared: &Arc<Shared<W>>) -> Result<(), Box<dyn Backlogged<W>>> {
        match shared.place(&self.cell, Some(self.failed_on)) {
            Ok(()) => Ok(()),
            Err(_) => Err(self),
        }
    }

    fn abandon(self: Box<Self>, shared: &Shared<W>) {
        drop(self.cell.take_task());
        self.cell
            .reply(Err(PoolError::Abandoned { task: self.cell.id }));
        shared.outstanding.exit();
    }
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
    /// can take it now ([`BalanceError::NoHealthyWorkers`],
    /// [`BalanceError::AllAtCapacity`]).
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
                let load = shared.load_of(slot);
                let metrics = lock(&slot.metrics);
                WorkerStats {
                    name: slot.name.clone(),
                    health_score: health_score(
                        metrics.error_rate(),
                        load.in_flight(),
                        metrics.mean_service(),
                    ),
                    mean_response_time: metrics.mean_service(),
                    error_rate: metrics.error_rate(),
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

impl<W: Worker + 'static> Shared<W> {
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The load a balancer sees: the pool's own count of its jobs on the
    /// worker or the worker's report, whichever is higher, and the pool's
    /// windowed measurements when the worker has none.
    fn load_of(&self, slot: &Slot<W>) -> Load {
        let reported = slot.worker.load();
        let held = slot.counters.snapshot();
        let metrics = lock(&slot.metrics);
        Load {
            running: reported.running.max(held.running),
            queued: reported.queued.max(held.queued),
            capacity: reported.capacity,
            mean_latency: reported.mean_latency.or(metrics.mean_service()),
            error_rate: if reported.error_rate > 0.0 {
                reported.error_rate
            } else {
                metrics.error_rate()
            },
        }
    }

    pub(crate) fn record_outcome(&self, admission: Admission, outcome: &Outcome) {
        let now = self.clock.now();
        let mut dispatcher = lock(&self.dispatcher);
        dispatcher
            .health
            .record(outcome.worker, admission, outcome.success, now);
        dispatcher.balancer.observe(outcome);
    }

    pub(crate) fn cancel_admission(&self, worker: usize, admission: Admission) {
        lock(&self.dispatcher)
            .health
            .cancel_dispatch(worker, admission);
    }

    /// Picks a worker, skipping `refused` ones and the one that just failed
    /// (unless it is the only healthy one), and counts the dispatch.
    fn pick(
        &self,
        request: &Request,
        refused: &[usize],
        failed_on: Option<usize>,
    ) -> Result<(usize, Admission), BalanceError> {
        let now = self.clock.now();
        let mut guard = lock(&self.dispatcher);
        let dispatcher = &mut *guard;
        let mut candidates = std::mem::take(&mut dispatcher.candidates);
        candidates.clear();
        for (index, slot) in self.slots.iter().enumerate() {
            candidates.push(Candidate {
                index,
                load: self.load_of(slot),
                healthy: !refused.contains(&index) && dispatcher.health.admits(index, now),
                weight: slot.weight,
            });
        }
        let picked = match failed_on {
            Some(failed) if candidates[failed].healthy => {
                candidates[failed].healthy = false;
                match dispatcher.balancer.pick(&candidates, request) {
                    Err(BalanceError::NoHealthyWorkers { .. }) => {
                        candidates[failed].healthy = true;
                        dispatcher.balancer.pick(&candidates, request)
                    }
                    other => other,
                }
            }
            _ => dispatcher.balancer.pick(&candidates, request),
        };
        // A strategy may answer with a worker it should not have: treat it as full.
        let picked = picked.and_then(|index| match candidates.get(index) {
            Some(c) if c.is_available() => Ok(index),
            _ => Err(BalanceError::AllAtCapacity {
                healthy: candidates.iter().filter(|c| c.healthy).count(),
            }),
        });
        dispatcher.candidates = candidates;
        let index = picked?;
        let admission = dispatcher.health.on_dispatch(index);
        self.slots[index].counters.dispatch();
        Ok((index, admission))
    }

    /// Hands the task in `cell` to a worker, trying others while workers refuse.
    fn place<T: Task + 'static>(
        self: &Arc<Self>,
        cell: &Arc<TaskCell<T>>,
        failed_on: Option<usize>,
    ) -> Result<(), BalanceError>
    where
        W::Job: From<Job>,
    {
        let mut refused = Vec::new();
        loop {
            let (worker, admission) = self.pick(&cell.request, &refused, failed_on)?;
            let token = cell.begin_attempt();
            let attempt = Attempt {
                shared: Arc::clone(self),
                cell: Arc::clone(cell),
                worker,
                admission,
                token,
                dispatched_at: Instant::now(),
            };
            match self.slots[worker]
                .worker
                .submit(W::Job::from(attempt.into_job()))
            {
                Ok(()) => return Ok(()),
                Err(Rejected { job, .. }) => {
                    cell.recall_attempt();
                    drop(job);
                    self.slots[worker].counters.undispatch();
                    self.cancel_admission(worker, admission);
                    refused.push(worker);
                }
            }
        }
    }

    /// Retries a failed task on another worker, or queues it in the backlog.
    pub(crate) fn retry_elsewhere<T: Task + 'static>(
        self: &Arc<Self>,
        cell: Arc<TaskCell<T>>,
        failed_on: usize,
    ) where
        W::Job: From<Job>,
    {
        if self.place(&cell, Some(failed_on)).is_err() {
            lock(&self.backlog).push_back(Box::new(Retry { cell, failed_on }));
        }
    }

    /// Places waiting retries, oldest first, until one finds no room.
    ///
    /// The backlog is not locked while a retry is placed: a worker that runs
    /// jobs inline would otherwise come back here and deadlock on it.
    pub(crate) fn drain_backlog(self: &Arc<Self>) {
        loop {
            let Some(retry) = lock(&self.backlog).pop_front() else {
                return;
            };
            if let Err(retry) = retry.place(self) {
                lock(&self.backlog).push_front(retry);
                return;
            }
        }
    }

    fn check_health(self: &Arc<Self>) {
        let now = self.clock.now();
        lock(&self.dispatcher).health.tick(now);
        self.drain_backlog();
    }
}
