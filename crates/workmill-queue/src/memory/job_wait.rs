//! `MemoryQueue::wait_job_while`: one wait for a job's end, registered on the job from its first
//! look to its last, so that its reduce's record, which holds the job's result, is kept for it
//! however small the retention bound.

use std::time::{Duration, Instant};

use workmill_core::{JobRecord, JobStatus, QueueError, TaskId, TaskRecord, TaskStatus};

use super::jobs::JobRole;
use super::state::State;
use super::wake::job_stripe;
use super::{LONGEST_SLEEP, MemoryQueue};
use crate::sync::lock;

impl MemoryQueue {
    /// Blocks until job `id` ends, or `timeout` passes, or `keep_waiting` gives up; returns
    /// the job's record as last seen, with its reduce's record if the reduce is stored.
    ///
    /// The job's record is final if the job ended; otherwise the wait ran out of time, or
    /// `keep_waiting(reduce)` returned false. `keep_waiting` is asked, as
    /// [`wait_while`](MemoryQueue::wait_while) asks its own, whenever the job is found
    /// unfinished: as the wait starts and after every wake-up (the job's end, its reduce's
    /// return from running to waiting, and [`interrupt_waits`](MemoryQueue::interrupt_waits)),
    /// under the queue's lock, so it must
    /// be quick and must not call the queue. It gets the reduce's status: `None` while the
    /// maps run (the reduce is held back until the last completes).
    ///
    /// The wait is registered on the job throughout, and a job's waiters keep its reduce's
    /// final record beyond the retention bound until they have read it, as a task's waiters
    /// keep the task's: so the record of a reduce that completes at any moment of the wait is
    /// returned with the job's, where a caller looking at the job from time to time could find
    /// it already evicted. (A job that ended, and whose reduce was evicted, before the wait
    /// began is returned without it.) [`JobNotFound`](QueueError::JobNotFound) if there is no
    /// such job, or a purge removed it meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workmill_core::{JobStatus, NewJob, NewTask, Queue, WorkerId};
    /// use workmill_queue::MemoryQueue;
    ///
    /// let queue = MemoryQueue::new();
    /// let maps = vec![NewTask::new("count", vec![2])];
    /// let job = queue.submit_job(NewJob::new(maps, NewTask::new("sum", vec![])))?;
    /// let wait = Duration::from_secs(60);
    ///
    /// // Gives up while the maps run, as its `keep_waiting` says: the reduce is held back.
    /// let (record, reduce) = queue.wait_job_while(&job, wait, |reduce| reduce.is_some())?;
    /// assert_eq!((record.status, reduce), (JobStatus::Mapping, None));
    ///
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| queue.wait_job_while(&job, wait, |_| true));
    ///     let worker = WorkerId::new("w-1")?;
    ///     for (name, result) in [("count", vec![2]), ("sum", vec![4])] {
    ///         let reservation = loop {
    ///             match queue.reserve(&worker, 1, Duration::from_secs(30))?.pop() {
    ///                 Some(reservation) => break reservation,
    ///                 None => queue.await_work(wait)?,
    ///             }
    ///         };
    ///         assert_eq!(reservation.name, name);
    ///         queue.complete(&reservation.lease, result)?;
    ///     }
    ///     let (record, reduce) = waiter.join().unwrap()?;
    ///     assert_eq!(record.status, JobStatus::Completed);
    ///     assert_eq!(reduce.and_then(|reduce| reduce.result).as_deref(), Some(&[4][..]));
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_job_while(
        &self,
        id: &TaskId,
        timeout: Duration,
        mut keep_waiting: impl FnMut(Option<TaskStatus>) -> bool,
    ) -> Result<(JobRecord, Option<TaskRecord>), QueueError> {
        let start = Instant::now();
        let mut state = lock(&self.state);
        // The uid of the job the wait registered on before it first slept; it stays registered
        // until it returns, under the lock that every change of the job takes.
        let mut registered = None;
        let outcome = loop {
            let Ok(job) = state.jobs.get(id) else {
                break Err(QueueError::JobNotFound { id: id.clone() });
            };
            if registered.is_some_and(|uid| uid != job.uid) {
                // Purged, and another job submitted under its id: the count went with it (and
                // `unregister_waiter` leaves the new job's alone).
                break Err(QueueError::JobNotFound { id: id.clone() });
            }
            let reduce = reduce_of(&state, id, &job.record);
            let waited = start.elapsed();
            if job.record.status.is_final()
                || waited >= timeout
                || !keep_waiting(reduce.map(|reduce| reduce.status))
            {
                break Ok((job.record.clone(), reduce.cloned()));
            }
            let uid = job.uid;
            if registered.is_none() {
                state.jobs.register_waiter(id);
                registered = Some(uid);
            }
            state = self.signals.sleep_on_stripe(
                job_stripe(uid),
                state,
                (timeout - waited).min(LONGEST_SLEEP),
            );
        };
        if let Some(uid) = registered {
            state.jobs.unregister_waiter(id, uid);
        }
        // A reduce record kept for the job's waiters beyond the retention bound goes once the
        // last has read it: releasing the lock applies the bound.
        self.unlock(state);
        outcome
    }
}

/// The record of the reduce of job `id`, if it is stored: not while the maps run, nor once
/// evicted or purged (its id may then name another task, which is not the job's).
fn reduce_of<'a>(state: &'a State, id: &TaskId, job: &JobRecord) -> Option<&'a TaskRecord> {
    if job.status == JobStatus::Mapping {
        return None;
    }
    let task = state.slots.get(state.slots.find(&job.reduce)?)?;
    let link = task.job.as_ref()?;
    (link.job == *id && link.role == JobRole::Reduce).then_some(&task.record)
}
