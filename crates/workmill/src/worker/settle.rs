//! Writing a worker loop's outcomes (completions, failures, hand-backs) to the store, and riding
//! out store failures: a capped, jittered wait, then the same write again.

use std::time::{Duration, Instant};

use workmill_core::{Failure, Lease, Payload, QueueError};

use super::control::Mode;
use super::held::TakeBack;
use super::run_loop::WorkerLoop;

/// The longest a stopping loop keeps trying to write outcomes to a failing store.
///
/// Past its lease a task is the store's again, so trying longer is pointless;
/// and a program that is stopping (a runtime's long default lease) should not
/// wait on a dead store for long either. Its tasks then run again.
pub(crate) const STOP_RETRY_LIMIT: Duration = Duration::from_secs(30);

impl WorkerLoop<'_> {
    /// Records a failed attempt; the task's retry policy decides what follows.
    pub(super) fn record_failure(&mut self, lease: &Lease, failure: Failure) {
        self.settle(lease, "record a failed attempt", |queue| {
            queue.fail(lease, failure.clone()).map(drop)
        });
    }

    /// Hands an unstarted task back to the queue, uncounted.
    ///
    /// A task the heartbeat thread took while it waited behind a long task is its to hand
    /// back, unless the store failed that hand-back: the loop then does it, with its retries.
    pub(super) fn hand_back(&mut self, lease: &Lease) {
        match self.held.map(|held| held.take_back(lease)) {
            None | Some(TakeBack::ByLoop) => {}
            Some(TakeBack::ByHeartbeat) => {
                self.report.released += 1;
                return;
            }
            Some(TakeBack::Gone) => {
                self.report.lost_leases += 1;
                return;
            }
        }
        if self.settle(lease, "hand back an unstarted task", |queue| {
            queue.release(lease)
        }) {
            self.report.released += 1;
        }
    }

    /// Records successful attempts in one write, retrying those the store failed to record.
    pub(super) fn record_completions(&mut self, done: Vec<(Lease, Payload)>) {
        if !self.options.retry_writes {
            return self.record_completions_once(done);
        }
        let mut pending = done;
        while !pending.is_empty() {
            if self.gave_up(
                pending.iter().map(|(lease, _)| lease),
                "record completed attempts",
            ) {
                return;
            }
            let outcomes = match self.queue.complete_payloads(pending.clone()) {
                Ok(outcomes) => outcomes,
                Err(error) => {
                    if !self.retry_after(&error, "record completed attempts") {
                        for (lease, _) in &pending {
                            self.not_recorded(lease, &error);
                        }
                        return;
                    }
                    continue;
                }
            };
            self.failures = 0;
            let mut outcomes = outcomes.into_iter();
            let mut retry = Vec::new();
            let mut first_error = None;
            for (lease, result) in pending {
                let outcome = outcomes.next().unwrap_or_else(|| {
                    Err(QueueError::backend(
                        self.queue.backend_name(),
                        "record completed attempts",
                        "the store reported fewer outcomes than completions",
                    ))
                });
                match outcome {
                    Ok(()) => {
                        self.report.completed += 1;
                        self.settled(&lease);
                    }
                    Err(error) if error.is_transient() && !self.lease_lost(&lease) => {
                        retry.push((lease, result));
                        first_error.get_or_insert(error);
                    }
                    Err(error) => self.not_recorded(&lease, &error),
                }
            }
            pending = retry;
            if let Some(error) = first_error
                && !self.retry_after(&error, "record a completed attempt")
            {
                for (lease, _) in &pending {
                    self.not_recorded(lease, &error);
                }
                return;
            }
        }
    }

    /// Records successful attempts in one write, keeping no copy of the results: what the
    /// store fails to record is counted, and runs again once its lease lapses.
    fn record_completions_once(&mut self, done: Vec<(Lease, Payload)>) {
        let leases: Vec<Lease> = done.iter().map(|(lease, _)| lease.clone()).collect();
        if self.gave_up(&leases, "record completed attempts") {
            return;
        }
        match self.queue.complete_payloads(done) {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for lease in &leases {
                    match outcomes.next() {
                        Some(Ok(())) => {
                            self.report.completed += 1;
                            self.settled(lease);
                        }
                        Some(Err(error)) => self.not_recorded(lease, &error),
                        None => self.not_recorded(
                            lease,
                            &QueueError::backend(
                                self.queue.backend_name(),
                                "record completed attempts",
                                "the store reported fewer outcomes than completions",
                            ),
                        ),
                    }
                }
            }
            Err(error) => {
                self.report.backend_errors += 1;
                for lease in &leases {
                    self.not_recorded(lease, &error);
                }
            }
        }
    }

    /// Writes one outcome with `write` until the store records or refuses it; true if recorded.
    fn settle(
        &mut self,
        lease: &Lease,
        what: &'static str,
        mut write: impl FnMut(&dyn workmill_core::Queue) -> Result<(), QueueError>,
    ) -> bool {
        loop {
            if self.gave_up([lease], what) {
                return false;
            }
            match write(self.queue) {
                Ok(()) => {
                    self.failures = 0;
                    self.settled(lease);
                    return true;
                }
                Err(error)
                    if error.is_transient()
                        && !self.lease_lost(lease)
                        && self.retry_after(&error, what) => {}
                Err(error) => {
                    self.not_recorded(lease, &error);
                    return false;
                }
            }
        }
    }

    /// Counts a store failure (a [transient](QueueError::is_transient) one), logs it, and
    /// waits before the next try.
    ///
    /// The wait grows with the failures in a row ([`Reconnect`](super::Reconnect))
    /// and ends early if the loop is told to stop.
    pub(super) fn store_failed(&mut self, what: &'static str, error: &QueueError) {
        self.report.backend_errors += 1;
        self.failures = self.failures.saturating_add(1);
        let delay = self.options.reconnect.delay(self.failures, fastrand::f64());
        tracing::warn!(worker = %self.options.worker, %error, ?delay, "could not {what}; trying again");
        if self.control.mode() == Mode::Stop {
            // Stopping, a loop waits only to retry a write (a failed reserve or wait ends
            // the loop at once), and never past the moment it gives the write up.
            if let Some(give_up_at) = self.give_up_at {
                std::thread::sleep(delay.min(give_up_at.saturating_duration_since(Instant::now())));
            }
        } else {
            self.control.wait_for_stop(delay);
        }
    }

    /// After a failed write: false if the loop should give up on it, else waits and returns true.
    ///
    /// A write that failed because the store did is tried again until it goes
    /// through, except that a stopping loop tries for one lease length (or
    /// [`STOP_RETRY_LIMIT`], if shorter) at most: by then the lease has lapsed,
    /// and the store gives the task to another worker once it works again.
    fn retry_after(&mut self, error: &QueueError, what: &'static str) -> bool {
        if !error.is_transient() {
            return false;
        }
        if self.control.mode() == Mode::Stop {
            let now = Instant::now();
            let give_up_at = *self
                .give_up_at
                .get_or_insert(now + self.options.lease.min(STOP_RETRY_LIMIT));
            if now >= give_up_at {
                return false;
            }
        }
        self.store_failed(what, error);
        true
    }

    /// Once a stopping loop is past the moment it gives up on a failing store, settles the
    /// outcomes of `leases` without asking the store, counted as unrecorded like outcomes whose
    /// last try failed, and returns true: each call would wait on a store that is down
    /// (reopening it, a connect timeout each) while the stop runs past its bound, and the
    /// leases lapse and are rescued all the same.
    fn gave_up<'l>(
        &mut self,
        leases: impl IntoIterator<Item = &'l Lease>,
        what: &'static str,
    ) -> bool {
        if self.give_up_at.is_none_or(|at| Instant::now() < at) {
            return false;
        }
        for lease in leases {
            let error = QueueError::backend(
                self.queue.backend_name(),
                what,
                "not tried: the store kept failing past the stopping worker's give-up time",
            );
            self.not_recorded(lease, &error);
        }
        true
    }

    /// True if the heartbeat thread learned that the store gave this lease up.
    fn lease_lost(&self, lease: &Lease) -> bool {
        self.held.is_some_and(|held| held.is_lost(lease))
    }

    /// Counts an outcome the store did not record, and why.
    fn not_recorded(&mut self, lease: &Lease, error: &QueueError) {
        if matches!(error, QueueError::LeaseLost { .. }) || self.lease_lost(lease) {
            self.report.lost_leases += 1;
            tracing::warn!(task = %lease.task, %error, "an outcome was not recorded: the lease is gone, and the task runs again elsewhere");
        } else if error.is_transient() {
            self.report.unrecorded += 1;
            tracing::error!(task = %lease.task, %error, "gave up recording an outcome; the task will run again once its lease lapses");
        } else {
            self.report.backend_errors += 1;
            tracing::warn!(task = %lease.task, %error, "the store refused an outcome");
        }
        self.settled(lease);
    }
}
