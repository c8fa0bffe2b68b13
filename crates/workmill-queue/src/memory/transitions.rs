//! The memory backend's operations on tasks already in the table: complete, fail, release, extend, cancel,
//! requeue, purge, and the retention bound that drops the oldest finished records.

use std::time::Duration;

use workmill_core::{
    FailOutcome, Failure, IllegalTransition, Lease, ListFilter, Payload, QueueError, RetryDecision,
    TaskId, TaskRecord, TaskStatus, Timestamp,
};

use super::jobs::Jobs;
use super::slots::{NOT_FINISHED, Task};
use super::state::{Evicted, Finished, State, due_is_live, gauge, lease_is_live, set_status};
use super::timers::Expiry;

impl State {
    /// Records a successful attempt of the task `lease` holds.
    pub(crate) fn complete(
        &mut self,
        lease: &Lease,
        result: Payload,
        now: Timestamp,
    ) -> Result<(), QueueError> {
        let slot = self.held(lease)?;
        let task = self
            .slots
            .get_mut(slot)
            .ok_or_else(|| not_found(&lease.task))?;
        set_status(&mut self.stats, task, TaskStatus::Completed)?;
        let job = task.job.clone();
        // A map's result is kept with its job too, beyond the retention bound.
        let job_result = job.as_ref().map(|_| result.clone());
        task.record.result = Some(result);
        task.record.finished_at = Some(now);
        self.finish(slot);
        if let (Some(link), Some(result)) = (job, job_result) {
            self.job_task_completed(&link, result, now);
        }
        Ok(())
    }

    /// Records a failed attempt of the task `lease` holds.
    pub(crate) fn fail(
        &mut self,
        lease: &Lease,
        failure: Failure,
        now: Timestamp,
    ) -> Result<FailOutcome, QueueError> {
        let slot = self.held(lease)?;
        self.fail_slot(slot, &lease.task, failure, now)
    }

    /// Applies the task's retry policy to a failed attempt of the running task in `slot`.
    pub(crate) fn fail_slot(
        &mut self,
        slot: u32,
        id: &TaskId,
        failure: Failure,
        now: Timestamp,
    ) -> Result<FailOutcome, QueueError> {
        let seq = self.next_seq;
        let task = self.slots.get_mut(slot).ok_or_else(|| not_found(id))?;
        let record = &mut task.record;
        let decision = record.retry.decide_now(
            record.attempts,
            failure.kind.is_permanent(),
            record.priority,
        );
        self.stats.failed_attempts += 1;
        match decision {
            RetryDecision::Retry { delay, priority } => {
                set_status(&mut self.stats, task, TaskStatus::Retrying)?;
                let record = &mut task.record;
                record.last_error = Some(failure);
                record.priority = priority;
                record.run_at = now.saturating_add(delay);
                // A retry re-enters behind the tasks already waiting at its priority.
                task.seq = seq;
                self.next_seq += 1;
                self.stats.retried += 1;
                let run_at = record.run_at;
                self.schedule(slot, now);
                self.wake_waiters_of_stopped_run(slot);
                Ok(FailOutcome::Retrying { run_at, priority })
            }
            RetryDecision::GiveUp => {
                set_status(&mut self.stats, task, TaskStatus::Dead)?;
                let job = task.job.clone();
                let job_failure = job.as_ref().map(|_| failure.clone());
                task.record.last_error = Some(failure);
                task.record.finished_at = Some(now);
                self.finish(slot);
                if let (Some(link), Some(failure)) = (job, job_failure) {
                    self.job_task_dead(&link, id, failure, now);
                }
                Ok(FailOutcome::Dead)
            }
        }
    }

    /// Hands an unstarted task back to its place in the queue, undoing the attempt.
    pub(crate) fn release(&mut self, lease: &Lease, now: Timestamp) -> Result<(), QueueError> {
        let slot = self.held(lease)?;
        let task = self
            .slots
            .get_mut(slot)
            .ok_or_else(|| not_found(&lease.task))?;
        set_status(&mut self.stats, task, TaskStatus::Pending)?;
        let record = &mut task.record;
        record.attempts -= 1;
        let before = std::mem::take(&mut task.before_reserve);
        // Back to no attempts (the first reservation, or the first since a requeue, whose
        // `before_reserve` holds the run before it): never started, as the contract says.
        (record.started_at, record.worker) = if record.attempts == 0 {
            (None, None)
        } else {
            before
        };
        // It keeps its arrival number, so it returns to the front of its priority.
        self.schedule(slot, now);
        self.wake_waiters_of_stopped_run(slot);
        Ok(())
    }

    /// Wakes the threads waiting on the task in `slot` (on the task, or, for a reduce, on its
    /// job) after it stopped running without finishing: handed back unstarted, or failed with
    /// a retry to come. A wait whose `keep_waiting` kept it waiting while the task ran (a
    /// runtime's, once its loops stopped: a stopping loop finishes its running task, but
    /// hands back the unstarted rest of its batch) may give up on the task now.
    fn wake_waiters_of_stopped_run(&mut self, slot: u32) {
        let Some(task) = self.slots.get(slot) else {
            return;
        };
        if task.waiters > 0 {
            self.wakes.wake_waiters_of(slot);
        }
        if let Some(link) = &task.job {
            self.jobs.wake_waiters_of_reduce(link, &mut self.wakes);
        }
    }

    /// Extends the lease to `extend` from `now`.
    pub(crate) fn heartbeat(
        &mut self,
        lease: &Lease,
        extend: Duration,
        now: Timestamp,
    ) -> Result<Lease, QueueError> {
        let slot = self.held(lease)?;
        let expires_at = now.saturating_add(extend);
        let running = self.stats.running;
        let task = self
            .slots
            .get_mut(slot)
            .ok_or_else(|| not_found(&lease.task))?;
        task.lease_expires = expires_at;
        // A lease cut shorter than every expiry in the heap may lapse before a sleeping
        // worker wakes (see `Wakes`).
        if self.sleepers.workers > 0
            && self
                .timers
                .next_expiry()
                .is_none_or(|next| expires_at < next)
        {
            self.wakes.earlier_due = true;
        }
        let slots = &self.slots;
        self.timers.lease(
            Expiry {
                at: expires_at,
                token: lease.token,
            },
            running,
            |expiry| lease_is_live(slots, expiry),
        );
        Ok(Lease {
            task: lease.task.clone(),
            token: lease.token,
            expires_at,
        })
    }

    /// Cancels a task that has not started.
    pub(crate) fn cancel(&mut self, id: &TaskId, now: Timestamp) -> Result<(), QueueError> {
        let slot = self.slots.slot_of(id)?;
        let task = self.slots.get_mut(slot).ok_or_else(|| not_found(id))?;
        set_status(&mut self.stats, task, TaskStatus::Cancelled)?;
        task.record.finished_at = Some(now);
        let job = task.job.clone();
        self.wakes.room = true;
        self.finish(slot);
        if let Some(link) = job {
            self.job_task_cancelled(&link, now);
        }
        Ok(())
    }

    /// Puts a dead task back to `Pending` with a fresh set of attempts, as a new arrival.
    pub(crate) fn requeue(&mut self, id: &TaskId, now: Timestamp) -> Result<(), QueueError> {
        let slot = self.slots.slot_of(id)?;
        let seq = self.next_seq;
        let task = self.slots.get_mut(slot).ok_or_else(|| not_found(id))?;
        // Pending is reachable from Running and Retrying too, but only a dead
        // task is requeued.
        if task.record.status != TaskStatus::Dead {
            return Err(QueueError::IllegalTransition {
                id: id.clone(),
                source: IllegalTransition {
                    from: task.record.status,
                    to: TaskStatus::Pending,
                },
            });
        }
        set_status(&mut self.stats, task, TaskStatus::Pending)?;
        let record = &mut task.record;
        record.attempts = 0;
        record.run_at = now;
        record.finished_at = None;
        record.result = None;
        task.seq = seq;
        self.next_seq += 1;
        let job = task.job.clone();
        // Its entry in the finished list is now stale and is skipped.
        self.slots.set_finish_seq(slot, NOT_FINISHED);
        self.retained_finished -= 1;
        self.schedule(slot, now);
        if let Some(link) = job {
            self.job_task_requeued(&link, id);
        }
        Ok(())
    }

    /// Deletes every task in one of `statuses` as if it had never been submitted,
    /// cancelling first the unfinished jobs that lose a waiting or running task, and
    /// removing after the finished jobs that a purged status ended.
    pub(crate) fn purge(&mut self, statuses: &[TaskStatus], now: Timestamp) -> u64 {
        self.cancel_jobs_losing_tasks(statuses, now);
        let purged = self.purge_tasks(statuses);
        self.remove_jobs_purged_with(statuses);
        purged
    }

    /// Deletes every task in one of `statuses` as if it had never been submitted.
    fn purge_tasks(&mut self, statuses: &[TaskStatus]) -> u64 {
        let doomed: Vec<u32> = self
            .slots
            .iter()
            .filter(|(_, task)| statuses.contains(&task.record.status))
            .map(|(slot, _)| slot)
            .collect();
        for &slot in &doomed {
            let Some(task) = self.slots.remove(slot) else {
                continue;
            };
            let status = task.record.status;
            *gauge(&mut self.stats, status) -= 1;
            self.stats.submitted -= 1;
            if status.is_final() {
                self.retained_finished -= 1;
            }
            if status.is_waiting() {
                self.wakes.room = true;
            }
            if task.waiters > 0 {
                self.wakes.wake_waiters_of(slot);
            }
        }
        if !doomed.is_empty() {
            // Drop the entries that pointed at purged tasks rather than wait for them to surface.
            let slots = &self.slots;
            self.ready
                .retain(|key, &slot| super::state::waiting_is_live(slots, slot, key.seq));
            self.timers.retain_delayed(|due| due_is_live(slots, due));
            let slots = &self.slots;
            self.finished
                .retain(|entry| slots.finish_seq(entry.slot) == entry.seq);
        }
        // Records the retention bound already dropped are still counted in their final status;
        // a purge takes them out of the counts too, as if they had never been submitted.
        let mut purged = doomed.len() as u64;
        let mut seen: Vec<TaskStatus> = Vec::with_capacity(statuses.len());
        for &status in statuses {
            if !status.is_final() || seen.contains(&status) {
                continue;
            }
            seen.push(status);
            let evicted = std::mem::take(gauge(&mut self.stats, status));
            self.stats.submitted -= evicted;
            purged += evicted;
        }
        purged
    }

    /// Records matching `filter`, oldest first.
    pub(crate) fn list(&self, filter: &ListFilter) -> Vec<TaskRecord> {
        let mut matching: Vec<(u64, &TaskRecord)> = self
            .slots
            .iter()
            .filter(|(_, task)| {
                filter
                    .status
                    .is_none_or(|status| task.record.status == status)
            })
            .map(|(_, task)| (task.uid, &task.record))
            .collect();
        matching.sort_unstable_by_key(|&(uid, _)| uid);
        matching
            .into_iter()
            .take(filter.limit)
            .map(|(_, record)| record.clone())
            .collect()
    }

    /// Bookkeeping for a task that just reached a final status: wake its
    /// waiters and add it to the finished list. The retention bound is kept
    /// by [`State::evict_excess`] before the operation releases the lock.
    pub(crate) fn finish(&mut self, slot: u32) {
        let finish_seq = self.next_finish;
        self.next_finish += 1;
        self.slots.set_finish_seq(slot, finish_seq);
        let Some(task) = self.slots.get(slot) else {
            return;
        };
        if task.waiters > 0 {
            self.wakes.wake_waiters_of(slot);
        }
        let clean = task.holds_nothing_elsewhere();
        let awaited = is_awaited(&self.jobs, task);
        self.finished.push_back(Finished {
            seq: finish_seq,
            slot,
            clean,
            awaited,
        });
        self.retained_finished += 1;
    }

    /// Drops the oldest finished records beyond the retention bound; every operation that
    /// finishes tasks calls it before it releases the lock, so the bound holds whenever
    /// anyone can look.
    ///
    /// A record that threads waited on as it finished is kept, beyond the bound, until the
    /// last of them has read it (they were woken as it finished, and read it when they next
    /// hold the lock); it goes in the first eviction after that, the one the last waiter's
    /// own release of the lock runs. So a waiter always gets the final record it was woken
    /// for, however small the bound and however many tasks finish before it runs. Threads
    /// waiting on a job wait on its reduce's record so (see [`is_awaited`]).
    ///
    /// It never reads the other records it evicts (they are rarely in cache): their finish
    /// numbers and index tags are in the slab, and whether they held anything elsewhere was
    /// noted as they finished. It works in passes over all the records due to go (a batch
    /// of completions brings one per task): it picks them by their finish numbers; it looks
    /// up their index entries without changing anything
    /// ([`Slots::warm_index`](super::slots::Slots::warm_index)); then it takes them out.
    /// Within a pass the accesses are independent of each other, so the processor overlaps
    /// their cache misses instead of taking them one at a time.
    pub(crate) fn evict_excess(&mut self) {
        let Some(retention) = self.config.retention else {
            return;
        };
        let Some(mut excess) = self.retained_finished.checked_sub(retention) else {
            return;
        };
        let mut doomed = std::mem::take(&mut self.doomed);
        let mut awaited = std::mem::take(&mut self.awaited);
        while excess > 0 {
            let Some(entry) = self.finished.pop_front() else {
                break;
            };
            // An entry whose task was requeued or purged since it finished is stale.
            if self.slots.finish_seq(entry.slot) != entry.seq {
                continue;
            }
            excess -= 1;
            // Waiters only leave a finished task, so one nobody waited on as it finished has
            // none now, and its record is not read. (A job's waiter never registers once its
            // reduce is final: the job ended with it, so the waiter returns at its first look.)
            if entry.awaited
                && self
                    .slots
                    .get(entry.slot)
                    .is_some_and(|task| is_awaited(&self.jobs, task))
            {
                awaited.push(entry);
            } else {
                doomed.push(entry);
            }
        }
        // Kept in finish order at the front, to go first once read.
        for entry in awaited.drain(..).rev() {
            self.finished.push_front(entry);
        }
        self.awaited = awaited;
        std::hint::black_box(self.slots.warm_index(doomed.iter().map(|entry| entry.slot)));
        for Finished { slot, clean, .. } in doomed.drain(..) {
            if let Some(task) = self.slots.remove(slot) {
                self.graveyard.push(Evicted { task, clean });
                self.retained_finished -= 1;
                self.stats.evicted += 1;
            }
        }
        self.doomed = doomed;
    }

    /// Queue order of the next ready task, for tests of the ordering.
    #[cfg(test)]
    pub(crate) fn next_key(&mut self) -> Option<workmill_core::QueueKey> {
        let slot = self.peek_ready()?;
        let task = self.slots.get(slot)?;
        Some(workmill_core::QueueKey::new(task.record.priority, task.seq))
    }
}

/// True if threads wait on `task`'s final record: on the task itself, or, for a reduce, on its
/// job (whose result the record holds).
fn is_awaited(jobs: &Jobs, task: &Task) -> bool {
    task.waiters > 0 || task.job.as_ref().is_some_and(|link| jobs.awaits(link))
}

fn not_found(id: &TaskId) -> QueueError {
    QueueError::NotFound { id: id.clone() }
}
