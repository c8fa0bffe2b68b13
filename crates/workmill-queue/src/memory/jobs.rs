//! Map-reduce jobs in the memory backend: the job table, and the bookkeeping that the moves of a
//! job's tasks do under the queue's one lock, so the reduce is enqueued by the last map's completion.
//!
//! The rules are those written on [`Queue`](workmill_core::Queue) under "Jobs";
//! `README.md` next to this file says how they map onto the table.

use std::collections::{HashMap, HashSet};

use workmill_core::{
    Failure, FailureKind, JobRecord, JobStatus, NewJob, Payload, QueueError, TaskId, TaskStatus,
    Timestamp,
};

use super::state::{State, set_status};
use super::wake::Wakes;

/// What a task knows of the job it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JobLink {
    /// The job's id.
    pub(crate) job: TaskId,
    /// Which of the job's tasks it is.
    pub(crate) role: JobRole,
}

/// A task's part in its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobRole {
    /// The map at this position in submission order.
    Map(u32),
    /// The reduce.
    Reduce,
}

/// One job as the memory backend keeps it.
#[derive(Debug)]
pub(crate) struct Job {
    /// What [`Queue::job`](workmill_core::Queue::job) returns, kept current.
    pub(crate) record: JobRecord,
    /// Each map's result once it completed while the job was mapping, by position.
    results: Vec<Option<Payload>>,
    /// The reduce, held back until the last map completes.
    held_reduce: Option<workmill_core::NewTask>,
    /// Threads in `MemoryQueue::wait_job_while` registered on the job: while there are any,
    /// its reduce's final record is kept beyond the retention bound (see [`Jobs::awaits`]).
    pub(crate) waiters: u32,
    /// Tells the job apart from a later one submitted under its id once a purge removed it,
    /// and picks the result stripe its waiters sleep on.
    pub(crate) uid: u64,
}

/// Every job, and the reduce ids held back for them.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    by_id: HashMap<TaskId, Job>,
    /// The ids of the reduces of jobs still mapping: no other task may take them meanwhile.
    held_reduce_ids: HashSet<TaskId>,
    /// The uid of the next job submitted.
    next_uid: u64,
}

impl Jobs {
    /// True if `id` is held back as the reduce of a job still mapping.
    pub(crate) fn holds(&self, id: &TaskId) -> bool {
        !self.held_reduce_ids.is_empty() && self.held_reduce_ids.contains(id)
    }

    /// The job `id`, or `JobNotFound`.
    pub(crate) fn get(&self, id: &TaskId) -> Result<&Job, QueueError> {
        self.by_id
            .get(id)
            .ok_or_else(|| QueueError::JobNotFound { id: id.clone() })
    }

    /// Registers a waiter on the job `id`, if there is one.
    pub(crate) fn register_waiter(&mut self, id: &TaskId) {
        if let Some(job) = self.by_id.get_mut(id) {
            job.waiters += 1;
        }
    }

    /// Unregisters a waiter from the job `id` numbered `uid`; if a purge removed that job
    /// meanwhile, its count went with it.
    pub(crate) fn unregister_waiter(&mut self, id: &TaskId, uid: u64) {
        if let Some(job) = self.by_id.get_mut(id)
            && job.uid == uid
        {
            job.waiters -= 1;
        }
    }

    /// Marks the waiters on the job of `link` for a wake-up, if `link` is a reduce's.
    pub(crate) fn wake_waiters_of_reduce(&self, link: &JobLink, wakes: &mut Wakes) {
        if link.role == JobRole::Reduce
            && let Some(job) = self.by_id.get(&link.job)
        {
            job.wake_waiters(wakes);
        }
    }

    /// True if `link` is a reduce's and threads wait on its job: the reduce's final record,
    /// which holds the job's result, is then kept until they have read it.
    pub(crate) fn awaits(&self, link: &JobLink) -> bool {
        link.role == JobRole::Reduce && self.by_id.get(&link.job).is_some_and(|job| job.waiters > 0)
    }
}

impl Job {
    /// The maps' results in map order, once every map completed.
    pub(crate) fn results(&self) -> Result<Vec<Vec<u8>>, QueueError> {
        let incomplete = || QueueError::JobIncomplete {
            id: self.record.id.clone(),
            status: self.record.status,
            maps_done: self.record.maps_done,
            maps_total: self.record.maps_total(),
        };
        if self.record.maps_done != self.record.maps_total() {
            return Err(incomplete());
        }
        self.results
            .iter()
            .map(|result| {
                result
                    .as_ref()
                    .map(|bytes| bytes.to_vec())
                    .ok_or_else(incomplete)
            })
            .collect()
    }

    /// Marks the job's waiters for a wake-up: it ended, a purge removed it, or its reduce
    /// stopped running without finishing.
    fn wake_waiters(&self, wakes: &mut Wakes) {
        if self.waiters > 0 {
            wakes.wake_job_waiters(self.uid);
        }
    }
}

impl State {
    /// Enqueues the maps of `job` and records it, all or nothing.
    ///
    /// The caller has checked every payload and the capacity for the maps.
    pub(crate) fn submit_job(&mut self, job: NewJob, now: Timestamp) -> Result<TaskId, QueueError> {
        job.validate()?;
        let NewJob { id, maps, reduce } = job;
        if self.jobs.by_id.contains_key(&id) {
            return Err(QueueError::DuplicateJob { id });
        }
        if self.slots.find(&reduce.id).is_some() || self.jobs.holds(&reduce.id) {
            return Err(QueueError::DuplicateTask { id: reduce.id });
        }
        let map_ids: Vec<TaskId> = maps.iter().map(|map| map.id.clone()).collect();
        // `validate` refused more than `u32::MAX` maps, so every position fits.
        let linked = maps.into_iter().enumerate().map(|(position, map)| {
            let link = JobLink {
                job: id.clone(),
                role: JobRole::Map(u32::try_from(position).unwrap_or(u32::MAX)),
            };
            (map, Some(link))
        });
        // Refuses a map id that is stored or held back, and undoes the batch if so.
        self.insert_tasks(linked, now)?;
        self.jobs.held_reduce_ids.insert(reduce.id.clone());
        let record = JobRecord {
            id: id.clone(),
            status: JobStatus::Mapping,
            maps: map_ids,
            maps_done: 0,
            reduce: reduce.id.clone(),
            failure: None,
            created_at: now,
            finished_at: None,
        };
        let job = Job {
            results: vec![None; record.maps.len()],
            record,
            held_reduce: Some(reduce),
            waiters: 0,
            uid: self.jobs.next_uid,
        };
        self.jobs.next_uid += 1;
        self.jobs.by_id.insert(id.clone(), job);
        Ok(id)
    }

    /// Bookkeeping for a job's task that just completed with `result`.
    pub(crate) fn job_task_completed(&mut self, link: &JobLink, result: Payload, now: Timestamp) {
        let Some(job) = self.jobs.by_id.get_mut(&link.job) else {
            return;
        };
        match link.role {
            JobRole::Map(position) => {
                if job.record.status != JobStatus::Mapping {
                    return;
                }
                let Some(slot @ None) = job.results.get_mut(position as usize) else {
                    return;
                };
                *slot = Some(result);
                job.record.maps_done += 1;
                if job.record.maps_done == job.record.maps_total() {
                    self.start_reduce(&link.job, now);
                }
            }
            JobRole::Reduce => {
                if job.record.status == JobStatus::Reducing {
                    job.record.status = JobStatus::Completed;
                    job.record.finished_at = Some(now);
                    job.wake_waiters(&mut self.wakes);
                }
            }
        }
    }

    /// Enqueues the held-back reduce of a job whose last map just completed.
    fn start_reduce(&mut self, job_id: &TaskId, now: Timestamp) {
        let Some(job) = self.jobs.by_id.get_mut(job_id) else {
            return;
        };
        let Some(mut reduce) = job.held_reduce.take() else {
            return;
        };
        // Enqueued now: a delay given at submit that has passed does not date it earlier.
        reduce.run_at = Some(reduce.run_at.map_or(now, |at| at.max(now)));
        job.record.status = JobStatus::Reducing;
        self.jobs.held_reduce_ids.remove(&reduce.id);
        let reduce_id = reduce.id.clone();
        let link = JobLink {
            job: job_id.clone(),
            role: JobRole::Reduce,
        };
        // The id was held back since submit, so no other task can have taken it; should
        // the insert fail anyway, the job fails with the reason instead of waiting forever.
        if let Err(err) = self.insert_tasks(std::iter::once((reduce, Some(link))), now) {
            let failure = Failure::new(
                FailureKind::Permanent,
                format!("the reduce could not be enqueued: {err}"),
            );
            self.end_job(
                job_id,
                JobStatus::Failed,
                Some((reduce_id, failure)),
                now,
                &[],
            );
        }
    }

    /// Bookkeeping for a job's task `id` that just ended `Dead` with `failure`.
    pub(crate) fn job_task_dead(
        &mut self,
        link: &JobLink,
        id: &TaskId,
        failure: Failure,
        now: Timestamp,
    ) {
        if self.job_is_running(link) {
            let failure = Some((id.clone(), failure));
            self.end_job(&link.job, JobStatus::Failed, failure, now, &[]);
        }
    }

    /// Bookkeeping for a job's task that was just cancelled.
    pub(crate) fn job_task_cancelled(&mut self, link: &JobLink, now: Timestamp) {
        if self.job_is_running(link) {
            self.end_job(&link.job, JobStatus::Cancelled, None, now, &[]);
        }
    }

    /// Bookkeeping for a job's dead task `id` that was just requeued: a
    /// requeued reduce that failed its job returns the job to `Reducing`.
    pub(crate) fn job_task_requeued(&mut self, link: &JobLink, id: &TaskId) {
        let Some(job) = self.jobs.by_id.get_mut(&link.job) else {
            return;
        };
        let failed_by_it = job.record.status == JobStatus::Failed
            && job.record.failure.as_ref().is_some_and(|(by, _)| by == id);
        if link.role == JobRole::Reduce && failed_by_it {
            job.record.status = JobStatus::Reducing;
            job.record.failure = None;
            job.record.finished_at = None;
        }
    }

    /// True if the job of `link` is in the phase its task belongs to: mapping for a map,
    /// reducing for the reduce. A finished job ignores its tasks.
    fn job_is_running(&self, link: &JobLink) -> bool {
        let phase = match link.role {
            JobRole::Map(_) => JobStatus::Mapping,
            JobRole::Reduce => JobStatus::Reducing,
        };
        self.jobs
            .by_id
            .get(&link.job)
            .is_some_and(|job| job.record.status == phase)
    }

    /// Moves a job to a final status and cancels its tasks still waiting, except
    /// those in `spare` (which a purge is about to delete).
    fn end_job(
        &mut self,
        job_id: &TaskId,
        to: JobStatus,
        failure: Option<(TaskId, Failure)>,
        now: Timestamp,
        spare: &[TaskStatus],
    ) {
        let Some(job) = self.jobs.by_id.get_mut(job_id) else {
            return;
        };
        if !job.record.status.can_become(to) {
            return;
        }
        job.record.status = to;
        job.record.failure = failure;
        job.record.finished_at = Some(now);
        job.wake_waiters(&mut self.wakes);
        if let Some(reduce) = job.held_reduce.take() {
            self.jobs.held_reduce_ids.remove(&reduce.id);
        }
        let members: Vec<TaskId> = job
            .record
            .maps
            .iter()
            .chain(std::iter::once(&job.record.reduce))
            .cloned()
            .collect();
        for id in members {
            let Some(slot) = self.slots.find(&id) else {
                continue;
            };
            let Some(task) = self.slots.get_mut(slot) else {
                continue;
            };
            // A purged member's id may now name a plain task, which is not the job's to cancel.
            let member = task.job.as_ref().is_some_and(|link| link.job == *job_id);
            let status = task.record.status;
            if !member || !status.is_waiting() || spare.contains(&status) {
                continue;
            }
            if set_status(&mut self.stats, task, TaskStatus::Cancelled).is_ok() {
                task.record.finished_at = Some(now);
                self.wakes.room = true;
                self.finish(slot);
            }
        }
    }

    /// Before a purge of `statuses`: cancels every unfinished job that is about to lose
    /// a waiting or running task, so that no job waits for a task that is gone.
    pub(crate) fn cancel_jobs_losing_tasks(&mut self, statuses: &[TaskStatus], now: Timestamp) {
        if self.jobs.by_id.is_empty() || statuses.iter().all(|status| status.is_final()) {
            return;
        }
        let losing: HashSet<TaskId> = self
            .slots
            .iter()
            .filter(|(_, task)| {
                !task.record.status.is_final() && statuses.contains(&task.record.status)
            })
            .filter_map(|(_, task)| task.job.as_ref().map(|link| link.job.clone()))
            .collect();
        for job_id in losing {
            self.end_job(&job_id, JobStatus::Cancelled, None, now, statuses);
        }
    }

    /// After a purge of `statuses`: removes the jobs that a task in one of them
    /// ended, with their results; their tasks still stored become plain tasks.
    pub(crate) fn remove_jobs_purged_with(&mut self, statuses: &[TaskStatus]) {
        if self.jobs.by_id.is_empty() {
            return;
        }
        let doomed: Vec<TaskId> = self
            .jobs
            .by_id
            .values()
            .filter(|job| {
                job.record
                    .status
                    .purged_with()
                    .is_some_and(|status| statuses.contains(&status))
            })
            .map(|job| job.record.id.clone())
            .collect();
        for job_id in doomed {
            let Some(job) = self.jobs.by_id.remove(&job_id) else {
                continue;
            };
            job.wake_waiters(&mut self.wakes);
            let members = job
                .record
                .maps
                .iter()
                .chain(std::iter::once(&job.record.reduce));
            for id in members {
                let Some(task) = self
                    .slots
                    .find(id)
                    .and_then(|slot| self.slots.get_mut(slot))
                else {
                    continue;
                };
                if task.job.as_ref().is_some_and(|link| link.job == job_id) {
                    task.job = None;
                }
            }
        }
    }
}
