//! The worker loop: reserve a batch, run each task through the registry, record the outcomes;
//! the same code for a runtime's threads and a worker process's.

use std::time::{Duration, Instant};

use workmill_core::{Lease, Payload, Queue, QueueError, Reservation, TaskContext};

use super::batch::BatchSize;
use super::control::{Control, Mode};
use super::held::{HeldLeases, Standing};
use super::{LoopReport, WorkerOptions};
use crate::registry::{Registry, SharedRegistry};

/// Runs tasks from `queue` with the handlers in `registry` until `control` says stop.
///
/// Each round reserves a batch (its size adapts between
/// [`min_batch`](WorkerOptions::min_batch) and
/// [`max_batch`](WorkerOptions::max_batch)), takes a registry snapshot (after
/// the reservation, so every reserved task's handler is in it), runs the tasks
/// in order, records failures as they happen and completions in one batch at
/// the end. Between tasks it checks `control`: on pause or stop it hands the
/// unstarted rest of the batch back with [`Queue::release`].
///
/// It never panics on a task's account (handler panics are failed attempts)
/// and never drops an outcome because the store failed: a write that fails
/// with a [transient](workmill_core::QueueError::is_transient) error is tried
/// again after a [`Reconnect`](super::Reconnect) wait, until it is recorded or
/// refused (a lost lease), or, once the loop is stopping, until one lease
/// length (30 s at most) has passed (the store then gives the task to another
/// worker, which runs it again).
///
/// A store that refuses to reserve or wait for work for a reason no wait mends (not
/// [transient](workmill_core::QueueError::is_transient): a schema migrated by a newer build)
/// ends the loop, logged as an error: trying again would only log the same error forever.
pub fn run_loop(
    queue: &dyn Queue,
    registry: &SharedRegistry,
    control: &Control,
    options: &WorkerOptions,
) -> LoopReport {
    WorkerLoop::new(queue, control, options, None).run(registry)
}

/// [`run_loop`], keeping `held` up to date for a heartbeat thread if given, and returning the
/// refusal that ended the loop, if one did: a worker process, or a runtime, stops on it.
pub(crate) fn run_until_refused(
    queue: &dyn Queue,
    registry: &SharedRegistry,
    control: &Control,
    options: &WorkerOptions,
    held: Option<&HeldLeases>,
) -> (LoopReport, Option<QueueError>) {
    let mut worker = WorkerLoop::new(queue, control, options, held);
    let report = worker.run(registry);
    (report, worker.refusal)
}

/// One loop's state.
pub(crate) struct WorkerLoop<'a> {
    pub(super) queue: &'a dyn Queue,
    pub(super) control: &'a Control,
    pub(super) options: &'a WorkerOptions,
    pub(super) held: Option<&'a HeldLeases>,
    pub(super) report: LoopReport,
    /// Store failures in a row, for the [`Reconnect`](super::Reconnect) wait.
    pub(super) failures: u32,
    /// When a stopping loop gives up writing outcomes to a failing store.
    pub(super) give_up_at: Option<Instant>,
    /// The store's refusal to reserve or wait for work, which ended the loop.
    pub(super) refusal: Option<QueueError>,
}

impl<'a> WorkerLoop<'a> {
    pub(crate) fn new(
        queue: &'a dyn Queue,
        control: &'a Control,
        options: &'a WorkerOptions,
        held: Option<&'a HeldLeases>,
    ) -> WorkerLoop<'a> {
        WorkerLoop {
            queue,
            control,
            options,
            held,
            report: LoopReport::default(),
            failures: 0,
            give_up_at: None,
            refusal: None,
        }
    }

    fn run(&mut self, registry: &SharedRegistry) -> LoopReport {
        let mut size = BatchSize::new(
            self.options.min_batch,
            self.options.max_batch,
            self.options.batch_target,
        );
        loop {
            match self.control.mode() {
                Mode::Run => {}
                Mode::Pause => {
                    if self.control.wait_while_paused() == Mode::Stop {
                        break;
                    }
                    continue;
                }
                Mode::Stop => break,
            }
            let batch =
                match self
                    .queue
                    .reserve(&self.options.worker, size.get(), self.options.lease)
                {
                    Ok(batch) => {
                        self.failures = 0;
                        batch
                    }
                    Err(error) if error.is_transient() => {
                        self.store_failed("reserve tasks", &error);
                        continue;
                    }
                    Err(error) => {
                        self.refused("reserve tasks", error);
                        break;
                    }
                };
            if batch.is_empty() {
                size.reset();
                match self.queue.await_work(self.options.idle_wait) {
                    Ok(()) => {}
                    Err(error) if error.is_transient() => {
                        self.store_failed("wait for work", &error)
                    }
                    Err(error) => {
                        self.refused("wait for work", error);
                        break;
                    }
                }
                continue;
            }
            if let Some(held) = self.held {
                held.hold(batch.iter().map(|r| &r.lease), Instant::now());
            }
            let reserved = batch.len();
            let ran_for = self.run_batch(&registry.snapshot(), batch);
            size.record(reserved, ran_for);
        }
        std::mem::take(&mut self.report)
    }

    /// Ends the loop on a refusal no wait mends, as a worker process refuses such an error
    /// from its first connection. The loop holds nothing between batches, so there is
    /// nothing to settle.
    fn refused(&mut self, what: &'static str, error: QueueError) {
        self.report.backend_errors += 1;
        tracing::error!(worker = %self.options.worker, %error, "the store refused to {what}; the loop stops");
        self.refusal = Some(error);
    }

    /// Where the task of `lease` stands as it is about to start: [`Standing::Current`] if it
    /// may start; lost if the heartbeat found the lease lost; handed back if the heartbeat
    /// thread gave it to the store while it waited behind a long task. If the lease has gone
    /// half its length without an extension (the heartbeat thread starved on a loaded
    /// machine, or a store slow to take writes), it is extended here first, and a refusal
    /// marks it lost, so the task is not started while another worker may hold it; a store
    /// failure leaves it to the heartbeat.
    fn may_start(&mut self, lease: &Lease) -> Standing {
        let Some(held) = self.held else {
            return Standing::Current;
        };
        let asked = Instant::now();
        match held.begin(lease, asked, self.options.lease / 2) {
            Standing::Stale => match self.queue.heartbeat(lease, self.options.lease) {
                Ok(_) => {
                    held.extended(lease, asked);
                    Standing::Current
                }
                Err(error) if error.is_transient() => {
                    self.report.backend_errors += 1;
                    tracing::warn!(task = %lease.task, %error, "could not confirm a stale lease before starting its task");
                    Standing::Current
                }
                Err(error) => {
                    tracing::warn!(task = %lease.task, %error, "a stale lease was refused; its task is not started here");
                    held.mark_lost(lease);
                    Standing::Lost
                }
            },
            standing => standing,
        }
    }

    /// Runs one reserved batch and records its outcomes; how long its tasks took to run.
    ///
    /// The time excludes handing back and recording completions: what the batch
    /// size weighs is how long a task waits behind the others of its batch, and
    /// a slow store argues for larger batches, not smaller ones.
    pub(crate) fn run_batch(&mut self, registry: &Registry, batch: Vec<Reservation>) -> Duration {
        let started = Instant::now();
        let mut done: Vec<(Lease, Payload)> = Vec::with_capacity(batch.len());
        let mut batch = batch.into_iter();
        for reservation in batch.by_ref() {
            // Checked before each task, the first included: a stop that arrived while the
            // batch was being reserved hands the whole batch back.
            if self.control.mode() != Mode::Run {
                self.hand_back(&reservation.lease);
                break;
            }
            match self.may_start(&reservation.lease) {
                Standing::Current | Standing::Stale => {}
                Standing::Lost => {
                    // The store refused to extend this lease: the task may be running
                    // elsewhere already, so it is not started here.
                    self.report.lost_leases += 1;
                    self.settled(&reservation.lease);
                    continue;
                }
                Standing::HandedBack => {
                    // It waited behind a long task, and the heartbeat thread took it to hand
                    // back to the store, where another worker may have it already.
                    self.hand_back(&reservation.lease);
                    continue;
                }
            }
            self.report.attempts += 1;
            let ctx = TaskContext::new(reservation.attempt)
                .with_task(reservation.id())
                .with_worker(&self.options.worker);
            let outcome =
                registry.run_from(self.queue, &reservation.name, &reservation.payload, &ctx);
            if let Some(held) = self.held {
                held.finished(&reservation.lease);
            }
            match outcome {
                Ok(result) => done.push((reservation.lease, result)),
                Err(failure) => {
                    self.report.failed += 1;
                    self.record_failure(&reservation.lease, failure);
                }
            }
        }
        let ran_for = started.elapsed();
        for unstarted in batch {
            self.hand_back(&unstarted.lease);
        }
        if !done.is_empty() {
            self.record_completions(done);
        }
        ran_for
    }

    /// Forgets a lease whose task's outcome is settled.
    pub(super) fn settled(&self, lease: &Lease) {
        if let Some(held) = self.held {
            held.forget(lease);
        }
    }
}
