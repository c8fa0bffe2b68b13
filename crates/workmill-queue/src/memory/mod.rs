//! `MemoryQueue`: the in-process backend, a priority queue with delays, leases, dead letters and exact stats behind one lock.
//!
//! The design (one lock, lazy deletion, tokens that encode the slot, wake-ups
//! sent after unlocking and only to sleepers) is written down in `README.md`
//! next to this file.

mod clock;
mod config;
mod enqueue;
mod job_wait;
mod jobs;
mod ready;
mod slots;
mod state;
mod timers;
mod transitions;
mod wake;

#[cfg(all(test, workmill_loom))]
mod loom_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use workmill_core::{
    FailOutcome, Failure, JobRecord, Lease, ListFilter, NewJob, NewTask, Payload, Queue,
    QueueError, QueueStats, Reservation, TaskId, TaskRecord, TaskStatus, WorkerId,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{DEFAULT_MAX_PAYLOAD, DEFAULT_RETENTION, MemoryConfig, OnFull};
pub use ready::ReadyQueue;

use crate::sync::{Mutex, MutexGuard, lock};
use state::{Spares, State};
use wake::{Notices, Signals};

/// The longest single sleep when a caller asked to wait "forever" (a timeout
/// too large to add to the current instant); the wait simply resumes.
const LONGEST_SLEEP: Duration = Duration::from_secs(3_600);

/// A task queue held in this process's memory.
///
/// It keeps the same semantics as the durable backends (see
/// [`Queue`]): tasks leave in [`QueueKey`](workmill_core::QueueKey) order,
/// delayed and retrying tasks wait in a timer set, every reservation carries
/// a lease that a rescue turns into a failed attempt once it lapses, failures
/// follow [`RetryPolicy::decide`](workmill_core::RetryPolicy::decide), and
/// dead tasks stay as dead letters until requeued or purged. Beyond the
/// trait it can bound the waiting tasks ([`MemoryConfig::capacity`]) and
/// the finished records it keeps ([`MemoryConfig::retention`]), and it wakes
/// sleepers directly: [`Queue::await_work`] and [`Queue::wait`] block on
/// condition variables rather than polling, [`MemoryQueue::wait_job_while`]
/// waits for a job's end the same way, and [`MemoryQueue::wait_idle`] waits
/// for all work to finish.
///
/// Every operation takes one lock for a short, allocation-light critical
/// section; the batch operations ([`Queue::enqueue_batch`],
/// [`Queue::reserve`] with `max > 1`, [`Queue::complete_batch`]) take it once
/// per batch.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_core::{NewTask, Priority, Queue, TaskStatus, WorkerId};
/// use workmill_queue::MemoryQueue;
///
/// let queue = MemoryQueue::new();
/// let low = queue.enqueue(NewTask::new("report", vec![1]).priority(Priority::LOW))?;
/// let high = queue.enqueue(NewTask::new("alert", vec![2]).priority(Priority::HIGH))?;
///
/// let worker = WorkerId::new("w-1")?;
/// let batch = queue.reserve(&worker, 10, Duration::from_secs(30))?;
/// assert_eq!(batch.iter().map(|r| r.id().clone()).collect::<Vec<_>>(), [high.clone(), low]);
///
/// queue.complete(&batch[0].lease, b"sent".to_vec())?;
/// let record = queue.status(&high)?;
/// assert_eq!(record.status, TaskStatus::Completed);
/// assert_eq!(record.result.as_deref(), Some(&b"sent"[..]));
/// assert!(queue.stats()?.is_consistent());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MemoryQueue {
    state: Mutex<State>,
    /// A copy of the slots' id hasher, to hash new ids before taking the lock.
    hasher: slots::IdHasher,
    signals: Signals,
    /// Boxes of evicted records, for new ones.
    spares: Spares,
    clock: Arc<dyn Clock>,
    max_payload: Option<usize>,
    capacity: Option<usize>,
    on_full: OnFull,
}

/// [`MemoryQueue::wait_idle`] ran out of time with work still unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleTimeout {
    /// How long the caller waited.
    pub waited: Duration,
    /// The counts when the wait ended.
    pub stats: QueueStats,
}

impl fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the queue still had {} pending, {} retrying and {} running tasks after {:?}",
            self.stats.pending, self.stats.retrying, self.stats.running, self.waited
        )
    }
}

impl std::error::Error for IdleTimeout {}

impl MemoryQueue {
    /// An unbounded queue with the default retention and payload limit.
    pub fn new() -> MemoryQueue {
        MemoryQueue::with_config(MemoryConfig::default())
    }

    /// A queue bounded as `config` says.
    pub fn with_config(config: MemoryConfig) -> MemoryQueue {
        let state = State::new(config.clone());
        MemoryQueue {
            clock: Arc::clone(&config.clock),
            max_payload: config.max_payload,
            capacity: config.capacity,
            on_full: config.on_full,
            hasher: state.slots.hasher().clone(),
            state: Mutex::new(state),
            signals: Signals::new(),
            spares: Spares::default(),
        }
    }

    /// Blocks until no task is pending, retrying or running (delayed tasks
    /// count as pending), or until `timeout` passes.
    pub fn wait_idle(&self, timeout: Duration) -> Result<QueueStats, IdleTimeout> {
        let start = Instant::now();
        let mut state = lock(&self.state);
        loop {
            if state.active() == 0 {
                return Ok(state.stats);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(IdleTimeout {
                    waited,
                    stats: state.stats,
                });
            }
            state.sleepers.idle += 1;
            state = self
                .signals
                .sleep_for_idle(state, (timeout - waited).min(LONGEST_SLEEP));
            state.sleepers.idle -= 1;
        }
    }

    /// Wakes every worker blocked in [`Queue::await_work`], for example so that
    /// they notice a request to stop. They see a spurious return, which the
    /// contract allows.
    pub fn wake_workers(&self) {
        self.signals.send(Notices::all_workers());
    }

    /// [`Queue::wait`] that also gives up early, returning its [`QueueError::Timeout`] (with
    /// the task's status then), once `keep_waiting(status)` returns false.
    ///
    /// `keep_waiting` is asked whenever the task is found unfinished: as the wait starts and
    /// after every wake-up (the task's end, its return from running to waiting, handed back or
    /// failed with a retry to come, and [`interrupt_waits`](MemoryQueue::interrupt_waits)). It
    /// runs under the queue's lock, so it must be quick and must not call the queue. A
    /// caller whose reason to stop waiting lies outside the queue (a runtime that stopped
    /// the loops that would run the task, say) changes what `keep_waiting` reads, then calls
    /// `interrupt_waits`: the wait sees the change at once, and it is one wait throughout,
    /// registered on the task from start to end, so a task finishing at any moment hands it
    /// its final record (see [`Queue::wait`]), where a caller waiting in slices, with nobody
    /// registered between them, could find the record already evicted by a small retention
    /// bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// use workmill_core::{NewTask, QueueError, Queue, TaskStatus};
    /// use workmill_queue::MemoryQueue;
    ///
    /// let queue = MemoryQueue::new();
    /// let id = queue.enqueue(NewTask::new("never-run", vec![]))?;
    /// let stop = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| {
    ///         queue.wait_while(&id, Duration::from_secs(3_600), |_| !stop.load(Ordering::SeqCst))
    ///     });
    ///     stop.store(true, Ordering::SeqCst);
    ///     queue.interrupt_waits();
    ///     let outcome = waiter.join().unwrap();
    ///     assert!(matches!(outcome, Err(QueueError::Timeout { status: TaskStatus::Pending, .. })));
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_while(
        &self,
        id: &TaskId,
        timeout: Duration,
        mut keep_waiting: impl FnMut(TaskStatus) -> bool,
    ) -> Result<TaskRecord, QueueError> {
        // The waiter stays registered on the task from its first look to its last: it
        // unregisters after each wake-up and registers again before it sleeps, all under the
        // lock that a finish takes, so no finish passes unseen.
        let start = Instant::now();
        let mut state = lock(&self.state);
        loop {
            let slot = state.slots.slot_of(id)?;
            let Some(task) = state.slots.get_mut(slot) else {
                return Err(QueueError::NotFound { id: id.clone() });
            };
            if task.record.status.is_final() {
                let record = task.record.clone();
                // A record kept for its waiters beyond the retention bound goes once the last
                // has read it: releasing the lock applies the bound.
                self.unlock(state);
                return Ok(record);
            }
            let waited = start.elapsed();
            if waited >= timeout || !keep_waiting(task.record.status) {
                return Err(QueueError::Timeout {
                    id: id.clone(),
                    waited,
                    status: task.record.status,
                });
            }
            task.waiters += 1;
            let uid = task.uid;
            state = self.signals.sleep_on_stripe(
                wake::stripe(slot),
                state,
                (timeout - waited).min(LONGEST_SLEEP),
            );
            // Unregister from the task that was waited on; if it was removed
            // meanwhile, its count went with it.
            if let Some(task) = state.slots.get_mut(slot)
                && task.uid == uid
            {
                task.waiters -= 1;
            }
        }
    }

    /// Wakes every thread blocked in [`Queue::wait`], [`MemoryQueue::wait_while`] or
    /// [`MemoryQueue::wait_job_while`], so that each looks at its task or job again and asks
    /// its `keep_waiting` once more, and every producer waiting for room
    /// ([`MemoryQueue::enqueue_batch_while`], [`MemoryQueue::submit_job_while`]), so that each
    /// looks for room again and asks its own. A plain [`Queue::wait`] or
    /// [`Queue::enqueue_batch`] goes back to sleep: it sees a spurious wake-up, which changes
    /// nothing.
    ///
    /// A change made before the call that makes a `keep_waiting` return false is seen by
    /// every wait in progress: it takes the queue's lock (under which a wait asks
    /// `keep_waiting` and goes to sleep) before it wakes them.
    pub fn interrupt_waits(&self) {
        drop(lock(&self.state));
        self.signals.wake_all_waiters();
    }

    /// Runs `op` under the lock with the current time, then sends the wake-ups it owes.
    fn apply<R>(&self, op: impl FnOnce(&mut State, workmill_core::Timestamp) -> R) -> R {
        let mut state = lock(&self.state);
        let now = self.clock.now();
        let out = op(&mut state, now);
        self.unlock(state);
        out
    }

    /// Releases the lock, then notifies whoever the work done under it concerns.
    fn unlock(&self, mut state: MutexGuard<'_, State>) {
        state.evict_excess();
        let evicted = std::mem::take(&mut state.graveyard);
        let notices = Notices::take(&mut state);
        drop(state);
        self.signals.send(notices);
        // Nobody waits on an evicted record (one with waiters is kept until they have read
        // it). A record that held nothing elsewhere as it finished (the common case: inline
        // ids, payloads and results, a static name) needs no emptying: it is not read here at
        // all. The others are rarely in cache: one pass brings in what emptying them reads,
        // with their misses overlapped.
        std::hint::black_box(
            evicted
                .iter()
                .filter(|gone| !gone.clean)
                .fold(0, |acc, gone| acc ^ gone.task.touch()),
        );
        self.spares.keep(evicted);
    }
}

impl Default for MemoryQueue {
    fn default() -> MemoryQueue {
        MemoryQueue::new()
    }
}

impl fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("capacity", &self.capacity)
            .field("on_full", &self.on_full)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl Queue for MemoryQueue {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
        let id = task.id.clone();
        self.enqueue_batch(vec![task])?
            .pop()
            .ok_or(QueueError::NotFound { id })
    }

    /// Adds all of `tasks` or none of them: a duplicate id, an invalid policy
    /// or an oversized payload anywhere in the batch refuses the whole batch.
    fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, QueueError> {
        self.enqueue_batch_while(tasks, || true)
    }

    fn reserve(
        &self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        Ok(self.apply(|state, now| state.reserve(worker, max, lease, now)))
    }

    /// Sleeps on a condition variable until a task is queued, the earliest
    /// delayed task or lease falls due, or `timeout` passes.
    fn await_work(&self, timeout: Duration) -> Result<(), QueueError> {
        let mut state = lock(&self.state);
        let now = self.clock.now();
        state.promote_due(now);
        if state.peek_ready().is_some() {
            return Ok(());
        }
        let mut sleep = timeout.min(LONGEST_SLEEP);
        for at in [state.timers.next_due(), state.timers.next_expiry()]
            .into_iter()
            .flatten()
        {
            sleep = sleep.min(at.saturating_duration_since(now));
        }
        if sleep.is_zero() {
            return Ok(());
        }
        state.sleepers.workers += 1;
        let mut state = self.signals.sleep_for_work(state, sleep);
        state.sleepers.workers -= 1;
        Ok(())
    }

    fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
        self.apply(|state, now| state.heartbeat(lease, extend, now))
    }

    fn complete(&self, lease: &Lease, result: Vec<u8>) -> Result<(), QueueError> {
        // Copied into its stored form before the lock is taken.
        let result = Payload::from(result);
        self.apply(|state, now| state.complete(lease, result, now))
    }

    /// Records every attempt under one lock; the results are copied into
    /// their stored form before it is taken.
    fn complete_batch(
        &self,
        done: Vec<(Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        self.complete_payloads(
            done.into_iter()
                .map(|(lease, result)| (lease, Payload::from(result)))
                .collect(),
        )
    }

    /// Records every attempt under one lock, keeping the results as they are.
    fn complete_payloads(
        &self,
        done: Vec<(Lease, Payload)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        Ok(self.apply(|state, now| {
            done.into_iter()
                .map(|(lease, result)| state.complete(&lease, result, now))
                .collect()
        }))
    }

    fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
        self.apply(|state, now| state.fail(lease, failure, now))
    }

    fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.apply(|state, now| state.release(lease, now))
    }

    fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
        self.apply(|state, now| state.cancel(id, now))
    }

    fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
        self.apply(|state, now| state.requeue(id, now))
    }

    fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
        let state = lock(&self.state);
        let slot = state.slots.slot_of(id)?;
        state
            .slots
            .get(slot)
            .map(|task| task.record.clone())
            .ok_or_else(|| QueueError::NotFound { id: id.clone() })
    }

    /// Blocks on a condition variable that the task's completion, failure,
    /// cancellation or removal signals; never polls. A waiter gets the final record it was
    /// woken for even if the retention bound would have evicted it meanwhile: the record is
    /// kept until its waiters have read it.
    fn wait(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, QueueError> {
        self.wait_while(id, timeout, |_| true)
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        Ok(lock(&self.state).list(filter))
    }

    fn stats(&self) -> Result<QueueStats, QueueError> {
        Ok(lock(&self.state).stats)
    }

    fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
        Ok(self.apply(|state, now| state.purge(statuses, now)))
    }

    /// Enqueues the maps and records the job under one lock; the maps count
    /// against the capacity (waiting for room as [`OnFull`] says), the reduce
    /// does not.
    fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
        self.submit_job_while(job, || true)
    }

    fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
        lock(&self.state).jobs.get(id).map(|job| job.record.clone())
    }

    /// One [`wait_job_while`](MemoryQueue::wait_job_while) that never gives up before its
    /// timeout: registered on the job throughout, it gets the reduce's final record however
    /// small the retention bound.
    fn wait_job(
        &self,
        id: &TaskId,
        timeout: Duration,
    ) -> Result<(JobRecord, Option<TaskRecord>), QueueError> {
        self.wait_job_while(id, timeout, |_| true)
    }

    fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        lock(&self.state).jobs.get(id)?.results()
    }

    fn rescue_expired(&self) -> Result<u64, QueueError> {
        Ok(self.apply(|state, now| state.rescue_expired(now)))
    }
}
