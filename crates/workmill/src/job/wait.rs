//! Waiting for a job's result: the job's record while its maps run, then the reduce task, whose
//! result is the job's.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use workmill_core::{
    Codec, Failure, FailureKind, JobRecord, JobStatus, Postcard, Queue, QueueError, TaskId,
    TaskRecord, TaskStatus,
};

use crate::error::RuntimeError;

/// The longest pause between two looks at a job still mapping.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Blocks until job `id` ends, then returns its reduce's result decoded as `O`.
///
/// While the maps run it reads the job's record, 1 ms growing to 50 ms apart; once the job
/// is reducing it waits on the reduce task with the backend's own notifications. It returns
/// [`RuntimeError::JobFailed`] (naming the map or reduce that ended dead, and why) for a
/// failed job, [`RuntimeError::JobCancelled`] for a cancelled one, and
/// [`RuntimeError::JobTimeout`] (with the maps done so far) when `timeout` passes first;
/// the job goes on regardless.
pub fn wait_result<O: DeserializeOwned>(
    queue: &dyn Queue,
    id: &TaskId,
    timeout: Duration,
) -> Result<O, RuntimeError> {
    wait_result_unless_stopped(queue, id, timeout, &|| false, Duration::MAX)
}

/// [`wait_result`] for a runtime: `stopped` says whether the runtime stopped its worker loops,
/// looked at least every `slice`. Once they are stopped, a job still mapping, or whose reduce
/// is waiting to run, fails with [`RuntimeError::ShutDown`]: no loop of the runtime will run
/// what it waits for. A running reduce is still waited for, as its loop finishes it.
pub(crate) fn wait_result_unless_stopped<O: DeserializeOwned>(
    queue: &dyn Queue,
    id: &TaskId,
    timeout: Duration,
    stopped: &dyn Fn() -> bool,
    slice: Duration,
) -> Result<O, RuntimeError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    // Whether the last look found the reduce running.
    let mut reducing = false;
    loop {
        // Read before the job: a job that ended by then is reported as it ended.
        let stopped = stopped();
        let job = queue.job(id)?;
        let waited = start.elapsed();
        let left = timeout.saturating_sub(waited);
        match job.status {
            JobStatus::Completed => {
                let reduce = match queue.status(&job.reduce) {
                    Ok(record) => record,
                    Err(QueueError::NotFound { .. }) => {
                        return Err(RuntimeError::JobResultGone {
                            id: job.id,
                            reduce: job.reduce,
                        });
                    }
                    Err(error) => return Err(error.into()),
                };
                return decode(reduce);
            }
            JobStatus::Failed => return Err(failed(job)),
            JobStatus::Cancelled => return Err(RuntimeError::JobCancelled { id: job.id }),
            JobStatus::Mapping if stopped => return Err(RuntimeError::ShutDown),
            JobStatus::Mapping if left.is_zero() => return Err(timed_out(job, waited)),
            JobStatus::Mapping => {
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(MAX_PAUSE);
            }
            JobStatus::Reducing => match queue.wait(
                &job.reduce,
                if stopped && !reducing {
                    Duration::ZERO
                } else {
                    left.min(slice)
                },
            ) {
                Ok(record) if record.status == TaskStatus::Completed => return decode(record),
                // Dead or cancelled: the job ended with it; the next look says how.
                Ok(_) => {}
                Err(QueueError::Timeout { status, .. }) => {
                    reducing = status == TaskStatus::Running;
                    if stopped && !reducing {
                        return Err(RuntimeError::ShutDown);
                    }
                    if start.elapsed() >= timeout {
                        return Err(timed_out(job, start.elapsed()));
                    }
                }
                // Purged or evicted between the two looks: the job's record says what became of it.
                Err(QueueError::NotFound { .. }) => std::thread::sleep(pause.min(left)),
                Err(error) => return Err(error.into()),
            },
        }
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
