//! `Job`, the closure a pool hands a worker, and the attempt it wraps: run the task once, report, and retry or reply.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use workmill_core::{Outcome, Request, RetryDecision, Task, TaskContext, TaskError, Worker};

use super::Shared;
use super::error::PoolError;
use crate::health::Dispatch as Admission;
use crate::sync::{Mutex, lock};

/// A unit of work as workers receive it from a [`Pool`](crate::Pool): one
/// attempt of a task, boxed.
///
/// A worker type works with the pool when its `Job` is `Job` or converts from
/// it. Running the job runs the attempt and reports its outcome to the pool;
/// dropping it unrun tells the task's caller it was not run.
///
/// After an attempt the pool hands the caller its result and places retries
/// that wait for a worker with room. [`run`](Self::run) does both before it
/// returns, which suits a worker whose job stops counting against its capacity
/// while it runs. A worker that counts the job until `run` returns, as
/// [`ThreadWorker`](crate::ThreadWorker) does, calls
/// [`run_deferred`](Self::run_deferred) instead and runs the [`Deferred`] it
/// returns once it has made room: otherwise a retry of a task that failed on a
/// full worker finds no room there until another job ends or the health monitor
/// ticks, and a caller who submits again as soon as it has a result may find
/// the worker still full.
pub struct Job(Box<dyn FnOnce() -> Deferred + Send + 'static>);

impl Job {
    /// A job from a closure.
    pub fn new(f: impl FnOnce() + Send + 'static) -> Job {
        Job(Box::new(move || {
            f();
            Deferred::none()
        }))
    }

    /// A job whose closure returns what is left to do once its worker has made room.
    pub(crate) fn with_follow_up(f: impl FnOnce() -> Deferred + Send + 'static) -> Job {
        Job(Box::new(f))
    }

    /// Runs it, and then what the pool had left for later.
    pub fn run(self) {
        self.run_deferred().run();
    }

    /// Runs it, and returns what the pool has left to do once the worker counts this
    /// job as done: hand the caller its result, and place retries waiting for room.
    pub fn run_deferred(self) -> Deferred {
        (self.0)()
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Job")
    }
}

/// What is left of a [`Job`] after [`Job::run_deferred`]: handing the caller
/// the task's result, and the pool's work that needs room on a worker (placing
/// waiting retries). Run it once the job no longer counts against the worker's
/// capacity, so that a caller who submits again on seeing the result finds the
/// room the job held, and a waiting retry finds it too.
///
/// Dropping it still hands over the result (at the drop), and leaves the
/// retries to the next job or health check.
#[must_use = "the result reaches its caller, and waiting retries are placed, when this runs"]
pub struct Deferred {
    reply: Option<Box<dyn FnOnce() + Send + 'static>>,
    later: Option<Box<dyn FnOnce() + Send + 'static>>,
}

impl Deferred {
    /// Nothing left to do.
    pub(crate) fn none() -> Deferred {
        Deferred {
            reply: None,
            later: None,
        }
    }

    /// `reply`, which hands a caller its result, and `later`, if any: pool work that
    /// needs room.
    pub(crate) fn new(
        reply: Option<Box<dyn FnOnce() + Send + 'static>>,
        later: Option<Box<dyn FnOnce() + Send + 'static>>,
    ) -> Deferred {
        Deferred { reply, later }
    }

    /// Runs it.
    pub fn run(mut self) {
        if let Some(reply) = self.reply.take() {
            reply();
        }
        if let Some(later) = self.later.take() {
            later();
        }
    }

    /// Whether there is anything to run.
    pub fn is_empty(&self) -> bool {
        self.reply.is_none() && self.later.is_none()
    }
}

impl Drop for Deferred {
    /// A result is never lost: a worker that drops this without running it still hands
    /// the caller its result.
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply();
        }
    }
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred")
            .field("empty", &self.is_empty())
            .finish()
    }
}

/// A task travelling through the pool, between attempts.
pub(crate) struct TaskCell<T: Task> {
    pub(crate) id: u64,
    pub(crate) request: Request,
    pub(crate) state: Mutex<CellState<T>>,
    reply: Sender<Result<T::Output, PoolError>>,
}

pub(crate) struct CellState<T> {
    /// The task, when no attempt holds it.
    pub(crate) task: Option<T>,
    /// Attempts dispatched so far.
    pub(crate) attempts: u32,
    /// The token of the attempt now with a worker, if any.
    pub(crate) live: Option<u64>,
    next_token: u64,
}

impl<T: Task> TaskCell<T> {
    pub(crate) fn new(
        id: u64,
        task: T,
        request: Request,
        reply: Sender<Result<T::Output, PoolError>>,
    ) -> TaskCell<T> {
        TaskCell {
            id,
            request,
            state: Mutex::new(CellState {
                task: Some(task),
                attempts: 0,
                live: None,
                next_token: 0,
            }),
            reply,
        }
    }

    /// Marks a new attempt as live; returns its token.
    pub(crate) fn begin_attempt(&self) -> u64 {
        let mut state = lock(&self.state);
        state.attempts += 1;
        state.next_token += 1;
        state.live = Some(state.next_token);
        state.next_token
    }

    /// Withdraws an attempt the worker refused, so that dropping it is silent.
    pub(crate) fn recall_attempt(&self) {
        let mut state = lock(&self.state);
        state.attempts -= 1;
        state.live = None;
    }

    /// Takes the task back out (after every worker refused it).
    pub(crate) fn take_task(&self) -> Option<T> {
        lock(&self.state).task.take()
    }

    pub(crate) fn reply(&self, result: Result<T::Output, PoolError>) {
        // The caller may have dropped its handle; the result is then unwanted.
        let _ = self.reply.send(result);
    }
}

/// One attempt of one task on one worker; what a [`Job`] runs.
pub(crate) struct Attempt<T: Task + 'static, W: Worker + 'static> {
    pub(crate) shared: Arc<Shared<W>>,
    pub(crate) cell: Arc<TaskCell<T>>,
    pub(crate) worker: usize,
    pub(crate) admission: Admission,
    pub(crate) token: u64,
    pub(crate) dispatched_at: Instant,
}

impl<T: Task + 'static, W: Worker + 'static> Attempt<T, W>
where
    W::Job: From<Job>,
{
    pub(crate) fn into_job(self) -> Job {
        Job::with_follow_up(move || self.run())
    }

    fn run(self) -> Deferred {
        let shared = Arc::clone(&self.shared);
        let slot = &shared.slots[self.worker];
        let (task, attempt) = {
            let mut state = lock(&self.cell.state);
            if state.live != Some(self.token) {
                return Deferred::none();
            }
            state.live = None;
            (state.task.take(), state.attempts)
        };
        let Some(mut task) = task else {
            return Deferred::none();
        };
        slot.counters.start();
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| task.run(&TaskContext::new(attempt))))
            .unwrap_or_else(|panic| Err(TaskError::retryable(panic_message(&*panic))));
        let service = started.elapsed();
        let success = result.is_ok();
        let finished = shared.clock.now();
        lock(&slot.metrics).record(service, success, finished);
        slot.counters.finish();
        shared.record_outcome(
            self.admission,
            &Outcome {
                worker: self.worker,
                latency: self.dispatched_at.elapsed(),
                success,
            },
        );

        // The caller gets the result once the worker has made room (see `Deferred`).
        let reply: Option<Box<dyn FnOnce() + Send>> = match result {
            Ok(output) => {
                let (cell, shared) = (Arc::clone(&self.cell), Arc::clone(&shared));
                Some(Box::new(move || {
                    cell.reply(Ok(output));
                    shared.outstanding.exit();
                }))
            }
            Err(error) => {
                let decision = shared.retry.decide(
                    attempt,
                    error.is_permanent(),
                    workmill_core::Priority::default(),
                    0.0,
                );
                if matches!(decision, RetryDecision::Retry { .. }) {
                    lock(&self.cell.state).task = Some(task);
                    shared.retry_elsewhere(Arc::clone(&self.cell), self.worker);
                    None
                } else {
                    let failed = PoolError::Failed {
                        task: self.cell.id,
                        attempts: attempt,
                        worker: slot.name.clone(),
                        error,
                    };
                    let (cell, shared) = (Arc::clone(&self.cell), Arc::clone(&shared));
                    Some(Box::new(move || {
                        cell.reply(Err(failed));
                        shared.outstanding.exit();
                    }))
                }
            }
        };
        // Retries waiting for room are placed once this job's worker has made room: a
        // retry of this very task may be waiting for this job's own place.
        let later: Option<Box<dyn FnOnce() + Send>> = if lock(&shared.backlog).is_empty() {
            None
        } else {
            Some(Box::new(move || shared.drain_backlog()))
        };
        Deferred::new(reply, later)
    }
}

impl<T: Task + 'static, W: Worker + 'static> Drop for Attempt<T, W> {
    /// A worker dropped the job without running it (it shut down): tell the caller.
    fn drop(&mut self) {
        let task = {
            let mut state = lock(&self.cell.state);
            if state.live != Some(self.token) {
                return;
            }
            state.live = None;
            state.task.take()
        };
        drop(task);
        let slot = &self.shared.slots[self.worker];
        slot.counters.start();
        slot.counters.finish();
        lock(&slot.metrics).withdraw(self.shared.clock.now());
        self.shared.cancel_admission(self.worker, self.admission);
        self.cell.reply(Err(PoolError::NotRun {
            task: self.cell.id,
            worker: slot.name.clone(),
        }));
        self.shared.outstanding.exit();
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    format!("task panicked: {text}")
}
