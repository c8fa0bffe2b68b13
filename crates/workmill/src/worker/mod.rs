//! The worker loop: reserve a batch, run each task through the registry, record the outcomes, over any `Queue`.
//!
//! A [`Runtime`](crate::Runtime) runs one loop per unit of concurrency on its
//! host; a worker process runs the same loop against a shared backend. The
//! loop owns no threads and no backend: it is given a queue, a registry, a
//! [`Control`] and its [`WorkerOptions`], and returns a [`LoopReport`] when
//! told to stop.

mod batch;
mod control;
#[cfg(all(test, workmill_loom))]
mod loom_tests;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use workmill_core::{Lease, Queue, Reservation, TaskContext, WorkerId};

use crate::registry::{Registry, SharedRegistry};
use batch::BatchSize;
pub use control::{Control, Mode};

/// The largest batch a loop reserves by default.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// How long a reservation is leased by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3_600);
/// The longest a loop sleeps in [`Queue::await_work`] before it looks at its
/// [`Control`] again, by default.
pub const DEFAULT_IDLE_WAIT: Duration = Duration::from_millis(50);

/// How one worker loop behaves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Recorded on every task the loop runs.
    pub worker: WorkerId,
    /// The most tasks reserved at once; the loop adapts below it (see the module docs of `batch`).
    pub max_batch: usize,
    /// The lease of each reservation. A task that runs longer than this may be
    /// rescued by the backend and run again (this loop does not heartbeat).
    pub lease: Duration,
    /// The longest sleep waiting for work before the loop checks its control again.
    pub idle_wait: Duration,
}

impl WorkerOptions {
    /// The defaults, for worker `worker`.
    pub fn new(worker: WorkerId) -> WorkerOptions {
        WorkerOptions {
            worker,
            max_batch: DEFAULT_MAX_BATCH,
            lease: DEFAULT_LEASE,
            idle_wait: DEFAULT_IDLE_WAIT,
        }
    }
}

/// What one worker loop did, counted when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopReport {
    /// Attempts run (each reserved task that was started).
    pub attempts: u64,
    /// Attempts recorded as completed.
    pub completed: u64,
    /// Attempts recorded as failed (errors, panics, unknown names, bad payloads).
    pub failed: u64,
    /// Reserved tasks handed back unstarted because the loop was told to pause or stop.
    pub released: u64,
    /// Backend calls that failed (a lost lease, a store error); each was logged.
    pub backend_errors: u64,
}

impl LoopReport {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &LoopReport) {
        self.attempts += other.attempts;
        self.completed += other.completed;
        self.failed += other.failed;
        self.released += other.released;
        self.backend_errors += other.backend_errors;
    }
}

/// Runs tasks from `queue` with the handlers in `registry` until `control` says stop.
///
/// Each round reserves a batch (its size adapts, see `BatchSize`), takes a
/// registry snapshot (after the reservation, so every reserved task's
/// handler is in it), runs the tasks in order, records failures as they
/// happen and completions in one batch at the end. Between tasks it checks
/// `control`: on pause or stop it hands the unstarted rest of the batch back
/// with [`Queue::release`]. It never panics on a task's account: handler
/// panics are failed attempts, and backend errors are logged and counted.
pub fn run_loop(
    queue: &dyn Queue,
    registry: &SharedRegistry,
    control: &Control,
    options: &WorkerOptions,
) -> LoopReport {
    let mut report = LoopReport::default();
    let mut size = BatchSize::new(options.max_batch);
    loop {
        match control.mode() {
            Mode::Run => {}
            Mode::Pause => {
                if control.wait_while_paused() == Mode::Stop {
                    break;
                }
                continue;
            }
            Mode::Stop => break,
        }
        let batch = match queue.reserve(&options.worker, size.get(), options.lease) {
            Ok(batch) => batch,
            Err(error) => {
                report.backend_errors += 1;
                tracing::warn!(worker = %options.worker, %error, "reserve failed; retrying after the idle wait");
                std::thread::sleep(options.idle_wait);
                continue;
            }
        };
        if batch.is_empty() {
            size.reset();
            if let Err(error) = queue.await_work(options.idle_wait) {
                report.backend_errors += 1;
                tracing::warn!(worker = %options.worker, %error, "waiting for work failed");
                std::thread::sleep(options.idle_wait);
            }
            continue;
        }
        let reserved = batch.len();
        let started = Instant::now();
        run_batch(
            queue,
            &registry.snapshot(),
            control,
            options,
            batch,
            &mut report,
        );
        size.record(reserved, started.elapsed());
    }
    report
}

/// Runs one reserved batch and records its outcomes.
fn run_batch(
    queue: &dyn Queue,
    registry: &Registry,
    control: &Control,
    options: &WorkerOptions,
    batch: Vec<Reservation>,
    report: &mut LoopReport,
) {
    let mut done: Vec<(Lease, Vec<u8>)> = Vec::with_capacity(batch.len());
    let mut batch = batch.into_iter();
    for reservation in batch.by_ref() {
        report.attempts += 1;
        let ctx = TaskContext::new(reservation.attempt)
            .with_task(reservation.id())
            .with_worker(&options.worker);
        match registry.run(&reservation.name, &reservation.payload, &ctx) {
            Ok(result) => done.push((reservation.lease, result)),
            Err(failure) => {
                report.failed += 1;
                if let Err(error) = queue.fail(&reservation.lease, failure) {
                    report.backend_errors += 1;
                    tracing::warn!(task = %reservation.id(), %error, "could not record a failed attempt");
                }
            }
        }
        if control.mode() != Mode::Run {
            break;
        }
    }
    for unstarted in batch {
        match queue.release(&unstarted.lease) {
            Ok(()) => report.released += 1,
            Err(error) => {
                report.backend_errors += 1;
                tracing::warn!(task = %unstarted.id(), %error, "could not hand back an unstarted task");
            }
        }
    }
    if done.is_empty() {
        return;
    }
    match queue.complete_batch(done) {
        Ok(results) => {
            for result in results {
                match result {
                    Ok(()) => report.completed += 1,
                    Err(error) => {
                        report.backend_errors += 1;
                        tracing::warn!(%error, "could not record a completed attempt");
                    }
                }
            }
        }
        Err(error) => {
            report.backend_errors += 1;
            tracing::warn!(%error, "could not record a batch of completed attempts");
        }
    }
}
