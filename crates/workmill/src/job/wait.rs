//! Waiting for a job's result: the job's record while its maps run, then the reduce task, whose
//! result is the job's.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use workmill_core::{
    Codec, Failure, FailureKind, JobRecord, JobStatus, Postcard, Queue, QueueError, TaskId,
    TaskRecord, TaskStatus,
};
use workmill_queue::MemoryQueue;

use crate::error::RuntimeError;
use crate::runtime::wait::Waits;

/// The longest pause between two looks at a job still mapping, for a wait that looks (a
/// runtime's wait on the memory queue is woken by the job's end instead).
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Blocks until job `id` ends, then returns its reduce's result decoded as `O`.
///
/// It waits with the backend's [`Queue::wait_job`]: on the memory queue one wait registered on
/// the job, which gets the reduce's record however small the retention bound; elsewhere the
/// job's record is read 1 ms growing to 50 ms apart while its maps run, and then the reduce is
/// waited for with the backend's own notifications. It returns
/// [`RuntimeError::JobFailed`] (naming the map or reduce that ended dead, and why) for a
/// failed job, [`RuntimeError::JobCancelled`] for a cancelled one, and
/// [`RuntimeError::JobTimeout`] (with the maps done so far) when `timeout` passes first;
/// the job goes on regardless. On a durable backend with a bound on finished records, the
/// reduce's record may be evicted before it is read: [`RuntimeError::JobResultGone`].
pub fn wait_result<O: DeserializeOwned>(
    queue: &dyn Queue,
    id: &TaskId,
    timeout: Duration,
) -> Result<O, RuntimeError> {
    let start = Instant::now();
    let (job, reduce) = queue.wait_job(id, timeout)?;
    ended(job, reduce, start.elapsed(), false)
}

/// [`wait_result`] for a runtime, whose `waits` give up once it stopped its worker loops: a
/// job still mapping, or whose reduce is waiting to run, then fails with
/// [`RuntimeError::ShutDown`], as no loop of the runtime will run what it waits for. A running
/// reduce is still waited for, as its loop finishes it. On the memory queue it is one wait,
/// registered on the job throughout, which the stop interrupts; elsewhere the reduce is waited
/// for with [`Waits::task`], as a task is.
pub(crate) fn wait_result_with<O: DeserializeOwned>(
    waits: Waits<'_>,
    id: &TaskId,
    timeout: Duration,
) -> Result<O, RuntimeError> {
    if let Some(memory) = waits.memory() {
        return wait_on_memory(memory, waits, id, timeout);
    }
    let queue = waits.queue();
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        // Read before the job: a job that ended by then is reported as it ended.
        let stopped = waits.loops_stopped();
        let job = queue.job(id)?;
        let left = timeout.saturating_sub(start.elapsed());
        match job.status {
            JobStatus::Completed => {
                let reduce = match queue.status(&job.reduce) {
                    Ok(record) => Some(record),
                    Err(QueueError::NotFound { .. }) => None,
                    Err(error) => return Err(error.into()),
                };
                return completed(job, reduce);
            }
            JobStatus::Failed => return Err(failed(job)),
            JobStatus::Cancelled => return Err(RuntimeError::JobCancelled { id: job.id }),
            JobStatus::Mapping if stopped => return Err(RuntimeError::ShutDown),
            JobStatus::Mapping if left.is_zero() => return Err(timed_out(job, start.elapsed())),
            JobStatus::Mapping => {
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(MAX_PAUSE);
            }
            JobStatus::Reducing => match waits.task(&job.reduce, left) {
                Ok(record) if record.status == TaskStatus::Completed => return decode(record),
                Err(RuntimeError::Timeout { .. }) => {
                    return Err(timed_out(job, start.elapsed()));
                }
                // Dead or cancelled: the job ended with it. Or purged or evicted between the
                // two looks. Either way the job's record says what became of it, at the next
                // look; a job whose record lags its reduce (a damaged link) is looked at with
                // the same backoff as a mapping one, until the timeout.
                Ok(_) | Err(RuntimeError::Queue(QueueError::NotFound { .. })) => {
                    let left = timeout.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Err(timed_out(job, start.elapsed()));
                    }
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(error) => return Err(error),
            },
        }
    }
}

/// [`wait_result_with`] on the memory queue: one [`MemoryQueue::wait_job_while`], registered on
/// the job from its first look to its last, so the reduce's record is kept for it however small
/// the retention bound.
fn wait_on_memory<O: DeserializeOwned>(
    memory: &MemoryQueue,
    waits: Waits<'_>,
    id: &TaskId,
    timeout: Duration,
) -> Result<O, RuntimeError> {
    let start = Instant::now();
    // What the wait waits for to run: the reduce, held back (so waiting to run) while the maps
    // run; a stop gives up on a job still mapping, as no loop will run the maps left.
    let awaited = |reduce: Option<TaskStatus>| reduce.unwrap_or(TaskStatus::Pending);
    let (job, reduce) = memory.wait_job_while(id, timeout, |reduce| {
        waits.keeps_waiting_for(awaited(reduce))
    })?;
    let stopped = waits.gives_up_on(awaited(reduce.as_ref().map(|reduce| reduce.status)));
    ended(job, reduce, start.elapsed(), stopped)
}

/// What a wait that returned `job` (with its reduce's record, if stored) after `waited` reports:
/// the job's result or how it ended; if it has not ended, [`RuntimeError::ShutDown`] when the
/// wait gave up because the loops were `stopped`, or else a timeout.
fn ended<O: DeserializeOwned>(
    job: JobRecord,
    reduce: Option<TaskRecord>,
    waited: Duration,
    stopped: bool,
) -> Result<O, RuntimeError> {
    match job.status {
        JobStatus::Completed => completed(job, reduce),
        JobStatus::Failed => Err(failed(job)),
        JobStatus::Cancelled => Err(RuntimeError::JobCancelled { id: job.id }),
        JobStatus::Mapping | JobStatus::Reducing if stopped => Err(RuntimeError::ShutDown),
        JobStatus::Mapping | JobStatus::Reducing => Err(timed_out(job, waited)),
    }
}

/// The result of a completed job, from its reduce's record, if that is still stored.
fn completed<O: DeserializeOwned>(
    job: JobRecord,
    reduce: Option<TaskRecord>,
) -> Result<O, RuntimeError> {
    match reduce {
        Some(reduce) => decode(reduce),
        None => Err(RuntimeError::JobResultGone {
            id: job.id,
            reduce: job.reduce,
        }),
    }
}

/// The reduce's result, decoded.
fn decode<O: DeserializeOwned>(reduce: TaskRecord) -> Result<O, RuntimeError> {
    let bytes = reduce.result.unwrap_or_default();
    Postcard
        .decode(&bytes)
        .map_err(|source| RuntimeError::DecodeResult {
            id: reduce.id,
            source,
        })
}

fn failed(job: JobRecord) -> RuntimeError {
    let (task, failure) = job.failure.unwrap_or_else(|| {
        let unknown = Failure::new(FailureKind::Permanent, "the backend recorded no reason");
        (job.reduce.clone(), unknown)
    });
    RuntimeError::JobFailed {
        id: job.id,
        task,
        failure,
    }
}

fn timed_out(job: JobRecord, waited: Duration) -> RuntimeError {
    RuntimeError::JobTimeout {
        maps_total: job.maps_total(),
        id: job.id,
        waited,
        status: job.status,
        maps_done: job.maps_done,
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use workmill_core::{
        FailOutcome, Lease, ListFilter, NewJob, NewTask, QueueStats, Reservation, WorkerId,
    };

    use super::*;
    use crate::worker::{Control, Mode};

    /// A memory queue whose job records never leave `Reducing`, as a durable store's can when
    /// the reduce's link to its job is damaged: the reduce ends as a plain task.
    struct LaggingJobs {
        inner: MemoryQueue,
        looks: AtomicU32,
    }

    impl Queue for LaggingJobs {
        fn backend_name(&self) -> &'static str {
            "lagging"
        }
        fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
            self.inner.enqueue(task)
        }
        fn reserve(
            &self,
            worker: &WorkerId,
            max: usize,
            lease: Duration,
        ) -> Result<Vec<Reservation>, QueueError> {
            self.inner.reserve(worker, max, lease)
        }
        fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
            self.inner.heartbeat(lease, extend)
        }
        fn complete(&self, lease: &Lease, result: Vec<u8>) -> Result<(), QueueError> {
            self.inner.complete(lease, result)
        }
        fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
            self.inner.fail(lease, failure)
        }
        fn release(&self, lease: &Lease) -> Result<(), QueueError> {
            self.inner.release(lease)
        }
        fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
            self.inner.cancel(id)
        }
        fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
            self.inner.requeue(id)
        }
        fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
            self.inner.status(id)
        }
        fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
            self.inner.list(filter)
        }
        fn stats(&self) -> Result<QueueStats, QueueError> {
            self.inner.stats()
        }
        fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
            self.inner.purge(statuses)
        }
        fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
            self.inner.submit_job(job)
        }
        fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
            let looks = self.looks.fetch_add(1, Ordering::Relaxed) + 1;
            assert!(looks < 1_000, "the wait looked at the job {looks} times");
            let mut record = self.inner.job(id)?;
            record.status = JobStatus::Reducing;
            Ok(record)
        }
        fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
            self.inner.job_results(id)
        }
        fn rescue_expired(&self) -> Result<u64, QueueError> {
            self.inner.rescue_expired()
        }
    }

    /// A job that stays `Reducing` after its reduce died is looked at with a backoff and the
    /// wait ends at its timeout. (It looked again at once, for as long as the caller's
    /// timeout, and past it for good once no time was left.)
    #[test]
    fn a_job_that_lags_its_dead_reduce_is_waited_for_with_a_backoff_until_the_timeout() {
        let queue = LaggingJobs {
            inner: MemoryQueue::new(),
            looks: AtomicU32::new(0),
        };
        let maps = vec![NewTask::new("map", vec![1])];
        let job = queue
            .inner
            .submit_job(NewJob::new(maps, NewTask::new("reduce", vec![])))
            .unwrap();
        let worker = WorkerId::new("w").unwrap();
        let lease = Duration::from_secs(60);
        let map = queue.inner.reserve(&worker, 1, lease).unwrap().remove(0);
        queue.inner.complete(&map.lease, vec![2]).unwrap();
        let reduce = queue.inner.reserve(&worker, 1, lease).unwrap().remove(0);
        let dead = Failure::new(FailureKind::Permanent, "no");
        queue.inner.fail(&reduce.lease, dead).unwrap();
        let control = Control::new(Mode::Run);
        let waits = Waits::for_loops(&queue, None, &control, Duration::from_millis(50));
        let timeout = Duration::from_millis(100);
        let started = Instant::now();
        let outcome = wait_result_with::<u64>(waits, &job, timeout);
        assert!(
            matches!(outcome, Err(RuntimeError::JobTimeout { .. })),
            "{outcome:?}"
        );
        assert!(started.elapsed() >= timeout);
        let looks = queue.looks.load(Ordering::Relaxed);
        assert!(
            looks <= 20,
            "looked at the job {looks} times in {timeout:?}"
        );
    }
}
