//! `Shared`: the state a pool's parts share, and the dispatch path: pick under one lock, submit, retry elsewhere, backlog.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use workmill_core::{
    BalanceError, Balancer, Candidate, Load, Outcome, Rejected, Request, RetryPolicy, Task, Worker,
};

use super::counters::Counters;
use super::drain::Drain;
use super::error::PoolError;
use super::job::{Attempt, Job, TaskCell};
use crate::clock::Clock;
use crate::health::{Dispatch as Admission, HealthTracker};
use crate::metrics::WorkerMetrics;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering, lock};

/// What the pool's parts share: workers, the dispatcher, and the backlog.
pub(crate) struct Shared<W: Worker + 'static> {
    pub(crate) slots: Vec<Slot<W>>,
    pub(crate) dispatcher: Mutex<Dispatcher>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry: RetryPolicy,
    pub(crate) outstanding: Drain,
    pub(crate) shut_down: AtomicBool,
    pub(crate) backlog: Mutex<VecDeque<Box<dyn Backlogged<W>>>>,
    pub(crate) next_task: AtomicU64,
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
pub(crate) struct Dispatcher {
    pub(crate) balancer: Box<dyn Balancer>,
    pub(crate) health: HealthTracker,
    pub(crate) candidates: Vec<Candidate>,
}

/// A retry waiting for a worker with room.
pub(crate) trait Backlogged<W: Worker + 'static>: Send {
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

impl<W: Worker + 'static> Shared<W> {
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The load a balancer sees at `now`: the pool's own count of its jobs on
    /// the worker or the worker's report, whichever is higher, and the pool's
    /// windowed measurements (forgotten once the worker has been idle for their
    /// maximum age) when the worker has none.
    pub(crate) fn load_of(&self, slot: &Slot<W>, now: Duration) -> Load {
        let reported = slot.worker.load();
        let held = slot.counters.snapshot();
        let metrics = lock(&slot.metrics);
        Load {
            running: reported.running.max(held.running),
            queued: reported.queued.max(held.queued),
            capacity: reported.capacity,
            mean_latency: reported.mean_latency.or(metrics.mean_service(now)),
            error_rate: if reported.error_rate > 0.0 {
                reported.error_rate
            } else {
                metrics.error_rate(now)
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
    /// (unless it is the only healthy one), and counts the dispatch (in the
    /// worker's counters and its measurements, which last while it has a job).
    ///
    /// A worker that refused is full, not unhealthy: it is offered as saturated, so that a
    /// pool of full workers reports `AllAtCapacity`, and a retry that only a full worker
    /// could take waits in the backlog rather than going back to the worker that failed it.
    /// The pick itself, waiting probes and slow start included, is [`HealthTracker::pick`],
    /// which the simulator shares.
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
            let mut load = self.load_of(slot, now);
            if refused.contains(&index) {
                load.capacity = load.capacity.max(1);
                load.running = load.running.max(load.capacity);
            }
            candidates.push(Candidate {
                index,
                load,
                healthy: dispatcher.health.admits(index, now),
                weight: slot.weight,
            });
        }
        let picked = dispatcher.health.pick(
            &mut *dispatcher.balancer,
            &mut candidates,
            request,
            failed_on,
        );
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
        lock(&self.slots[index].metrics).dispatch(now);
        Ok((index, admission))
    }

    /// Hands the task in `cell` to a worker, trying others while workers refuse.
    pub(crate) fn place<T: Task + 'static>(
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
                    lock(&self.slots[worker].metrics).withdraw(self.clock.now());
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

    pub(crate) fn check_health(self: &Arc<Self>) {
        let now = self.clock.now();
        lock(&self.dispatcher).health.tick(now);
        self.drain_backlog();
    }
}
