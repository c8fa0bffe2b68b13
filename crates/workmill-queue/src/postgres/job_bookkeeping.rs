//! What the moves of a job's tasks do to the job, inside the transaction that moves them: a map's
//! completion stores its result and, for the last map, enqueues the reduce; a dead or cancelled
//! task ends the job; a requeued dead reduce revives it; a purge cancels or removes jobs.
//!
//! Every function here returns only store errors (the driver's): the caller has already moved
//! the task, and any other error would leave that move without its counts. A job row that
//! cannot be read is left alone with a warning; `job` reports it.
//!
//! **Locks.** A job's row lock orders everything that happens to the job: each function locks
//! the rows of the jobs it may change (`FOR UPDATE`, in id order, so two transactions locking
//! overlapping sets never wait for each other in a cycle) and decides from their latest
//! committed version. Every caller locks the task rows it moves first and the job rows after,
//! and no transaction holding a job's row waits for a task's row: a job that ends cancels its
//! waiting tasks with `SKIP LOCKED`. So lock waits only ever go from task rows to job rows,
//! and from job rows to job rows in id order, and never close a cycle.

use std::collections::{BTreeSet, HashMap};

use postgres::GenericClient;
use workmill_core::{Failure, FailureKind, JobStatus, TaskStatus, Timestamp};

use super::pool::{Settings, Statements};
use super::store::micros;
use super::wakeup::notify_or_error;
use crate::stored::Deltas;

/// A job's state as its row holds it, read under the row lock.
pub(crate) struct LockedJob {
    pub(crate) status: JobStatus,
    pub(crate) reduce_id: String,
    maps_done: i64,
    maps_total: i64,
}

impl LockedJob {
    /// The phase in which the job listens to `task`: reducing for its reduce, mapping for a map.
    fn phase_of(&self, task: &str) -> JobStatus {
        if task == self.reduce_id {
            JobStatus::Reducing
        } else {
            JobStatus::Mapping
        }
    }
}

const LOCK_JOBS: &str = "
SELECT id, status, reduce_id, maps_done, maps_total FROM {s}.jobs
WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Locks the jobs named in `ids`, in id order, and reads their latest committed state.
pub(crate) fn lock_jobs<'a>(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, LockedJob>, postgres::Error> {
    let ids: Vec<&str> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let select = statements.get(client, settings, LOCK_JOBS)?;
    let mut jobs = HashMap::with_capacity(ids.len());
    for row in client.query(&select, &[&ids])? {
        let id: String = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        let Ok(status) = status.parse::<JobStatus>() else {
            tracing::warn!(
                job = id,
                status,
                "leaving a job whose status cannot be read"
            );
            continue;
        };
        jobs.insert(
            id,
            LockedJob {
                status,
                reduce_id: row.try_get(2)?,
                maps_done: row.try_get(3)?,
                maps_total: row.try_get(4)?,
            },
        );
    }
    Ok(jobs)
}

/// A task of a job that just completed.
pub(crate) struct CompletedTask<'a> {
    pub(crate) task: &'a str,
    pub(crate) job: &'a str,
    pub(crate) result: &'a [u8],
}

/// Stores the results of maps that completed while their job was mapping; returns the job of
/// each map row filled (a map counts once: `completed_at IS NULL`).
const STORE_RESULTS: &str = "
UPDATE {s}.job_maps AS m SET result = done.result, completed_at = $4
FROM unnest($1::text[], $2::text[], $3::bytea[]) AS done(job_id, task_id, result)
WHERE m.job_id = done.job_id AND m.task_id = done.task_id AND m.completed_at IS NULL
RETURNING m.job_id";

/// Sets each job's new count, and makes it reducing when every map is done.
const COUNT_MAPS: &str = "
UPDATE {s}.jobs AS j
SET maps_done = counted.done,
    status = CASE WHEN counted.done = j.maps_total THEN 'reducing' ELSE j.status END
FROM unnest($1::text[], $2::bigint[]) AS counted(id, done)
WHERE j.id = counted.id";

const COMPLETE_JOBS: &str =
    "UPDATE {s}.jobs SET status = 'completed', finished_at = $2 WHERE id = ANY($1)";

/// Bookkeeping for job tasks that just completed, in the caller's transaction.
pub(crate) fn tasks_completed(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    completed: &[CompletedTask<'_>],
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<(), postgres::Error> {
    let mut jobs = lock_jobs(
        client,
        statements,
        settings,
        completed.iter().map(|c| c.job),
    )?;
    let (mut map_jobs, mut map_tasks, mut map_results) = (Vec::new(), Vec::new(), Vec::new());
    let mut reduced = Vec::new();
    for done in completed {
        let Some(job) = jobs.get(done.job) else {
            continue;
        };
        match (job.status, job.phase_of(done.task)) {
            (JobStatus::Mapping, JobStatus::Mapping) => {
                map_jobs.push(done.job);
                map_tasks.push(done.task);
                map_results.push(done.result);
            }
            (JobStatus::Reducing, JobStatus::Reducing) => reduced.push(done.job),
            // A finished job is inert: its late tasks are plain tasks.
            _ => {}
        }
    }
    if !map_jobs.is_empty() {
        let store = statements.get(client, settings, STORE_RESULTS)?;
        let stored = client.query(&store, &[&map_jobs, &map_tasks, &map_results, &micros(now)])?;
        let mut counted: HashMap<String, i64> = HashMap::new();
        for row in &stored {
            *counted.entry(row.try_get(0)?).or_default() += 1;
        }
        let (mut ids, mut dones, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for (id, more) in counted {
            let Some(job) = jobs.get_mut(&id) else {
                continue;
            };
            job.maps_done += more;
            if job.maps_done == job.maps_total {
                job.status = JobStatus::Reducing;
                full.push(id.clone());
            }
            dones.push(job.maps_done);
            ids.push(id);
        }
        let count = statements.get(client, settings, COUNT_MAPS)?;
        client.execute(&count, &[&ids, &dones])?;
        if !full.is_empty() {
            start_reduces(client, statements, settings, &full, &jobs, now, deltas)?;
        }
    }
    if !reduced.is_empty() {
        let complete = statements.get(client, settings, COMPLETE_JOBS)?;
        client.execute(&complete, &[&reduced, &micros(now)])?;
    }
    Ok(())
}

/// Copies the held-back reduces of jobs into `tasks` (a new arrival number each, due no
/// earlier than now) and drops them from `held_reduces`; returns the jobs whose reduce went in.
/// A reduce whose id a task took meanwhile (an `enqueue` racing the job's submit) is skipped.
const START_REDUCES: &str = "
WITH started AS (
    INSERT INTO {s}.tasks (id, name, payload, payload_checksum, status, priority, seq, submission,
        max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
        demote_by, created_at, run_at, job_id)
    SELECT id, name, payload, payload_checksum, 'pending', priority, arrival, arrival,
        max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
        demote_by, $2, greatest(coalesce(run_at, $2), $2), job_id
    FROM (SELECT nextval('{s}.task_arrivals') AS arrival, held.*
          FROM (SELECT * FROM {s}.held_reduces WHERE job_id = ANY($1) ORDER BY job_id) AS held)
         AS arrived
    ON CONFLICT (id) DO NOTHING
    RETURNING job_id
), unheld AS (
    DELETE FROM {s}.held_reduces WHERE job_id = ANY($1)
)
SELECT array(SELECT job_id FROM started)";

/// Enqueues the reduces of `full` jobs, whose last map just completed; a job whose reduce
/// cannot go in fails with the reason instead of waiting forever.
fn start_reduces(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    full: &[String],
    jobs: &HashMap<String, LockedJob>,
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<(), postgres::Error> {
    let start = statements.get(client, settings, START_REDUCES)?;
    let started: Vec<String> = client
        .query_one(&start, &[&full, &micros(now)])?
        .try_get(0)?;
    let enqueued = i64::try_from(started.len()).unwrap_or(i64::MAX);
    deltas.submitted += enqueued;
    deltas.pending += enqueued;
    if enqueued > 0 {
        notify_or_error(client, statements, settings, &settings.work_channel)?;
    }
    for job_id in full.iter().filter(|job| !started.contains(job)) {
        let Some(job) = jobs.get(job_id) else {
            continue;
        };
        let failure = Failure::new(
            FailureKind::Permanent,
            format!(
                "the reduce could not be enqueued: a task {} exists already (enqueued while \
                 the job was submitted), or its held-back row is missing",
                job.reduce_id
            ),
        );
        let reduce_id = job.reduce_id.clone();
        let ending = Ending::failed(&reduce_id, &failure);
        end_job(
            client,
            statements,
            settings,
            job_id,
            ending,
            now,
            &[],
            deltas,
        )?;
    }
    Ok(())
}

/// A job task that just ended `Dead`.
pub(crate) struct DeadTask<'a> {
    pub(crate) task: &'a str,
    pub(crate) job: &'a str,
    pub(crate) failure: &'a Failure,
}

/// Bookkeeping for job tasks that just ended `Dead`: each fails its job if the job was in the
/// phase that task belongs to (a map while mapping, the reduce while reducing).
pub(crate) fn tasks_dead(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    dead: &[DeadTask<'_>],
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<(), postgres::Error> {
    let mut jobs = lock_jobs(client, statements, settings, dead.iter().map(|d| d.job))?;
    for task in dead {
        let Some(job) = jobs.get_mut(task.job) else {
            continue;
        };
        if job.status == job.phase_of(task.task) {
            job.status = JobStatus::Failed;
            let ending = Ending::failed(task.task, task.failure);
            end_job(
                client,
                statements,
                settings,
                task.job,
                ending,
                now,
                &[],
                deltas,
            )?;
        }
    }
    Ok(())
}

/// Bookkeeping for job task `task` of `job_id`, just cancelled: the job is cancelled with it.
pub(crate) fn task_cancelled(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    job_id: &str,
    task: &str,
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<(), postgres::Error> {
    let jobs = lock_jobs(client, statements, settings, [job_id])?;
    match jobs.get(job_id) {
        Some(job) if job.status == job.phase_of(task) => {
            let ending = Ending::cancelled();
            end_job(
                client,
                statements,
                settings,
                job_id,
                ending,
                now,
                &[],
                deltas,
            )
        }
        _ => Ok(()),
    }
}

const REVIVE: &str = "
UPDATE {s}.jobs SET status = 'reducing', failed_task_id = NULL, failure_kind = NULL,
    failure_message = NULL, finished_at = NULL
WHERE id = $1 AND status = 'failed' AND reduce_id = $2 AND failed_task_id = $2";

/// Bookkeeping for dead task `task` of `job_id`, just requeued: if it is the reduce that failed
/// the job, the job is reducing again (every map result is still there).
pub(crate) fn task_requeued(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    job_id: &str,
    task: &str,
) -> Result<(), postgres::Error> {
    let revive = statements.get(client, settings, REVIVE)?;
    client.execute(&revive, &[&job_id, &task])?;
    Ok(())
}

/// How a job ends: its final status, and for a failed job the task and failure that failed it.
pub(crate) struct Ending<'a> {
    status: JobStatus,
    failure: Option<(&'a str, &'a Failure)>,
}

impl<'a> Ending<'a> {
    fn failed(task: &'a str, failure: &'a Failure) -> Ending<'a> {
        Ending {
            status: JobStatus::Failed,
            failure: Some((task, failure)),
        }
    }

    fn cancelled() -> Ending<'a> {
        Ending {
            status: JobStatus::Cancelled,
            failure: None,
        }
    }
}

const END_JOB: &str = "
UPDATE {s}.jobs SET status = $2, failed_task_id = $3, failure_kind = $4, failure_message = $5,
    finished_at = $6
WHERE id = $1";

const DROP_HELD: &str = "DELETE FROM {s}.held_reduces WHERE job_id = $1";

/// Cancels the job's tasks in one of the statuses `$2`; returns how many left each status.
///
/// A waiting task whose row another transaction holds at this moment is skipped, never
/// waited for (waiting while holding the job's row could close a cycle with a transaction
/// that holds the task and waits for the job). That transaction is a reserve, which then runs
/// the task as one of a finished job (its completion changes nothing), or an operator's
/// command on the task, which finds the job finished; only if it rolls back does the task
/// stay waiting, to run later as a plain task.
const CANCEL_WAITING: &str = "
WITH waiting AS (
    SELECT id, status FROM {s}.tasks WHERE job_id = $1 AND status = ANY($2)
    FOR UPDATE SKIP LOCKED
), cancelled AS (
    UPDATE {s}.tasks AS t SET status = 'cancelled', finished_at = $3
    FROM waiting WHERE t.id = waiting.id
    RETURNING waiting.status
)
SELECT status, count(*) FROM cancelled GROUP BY status";

/// Moves job `job_id` (locked by the caller) to its final status, drops its held-back reduce,
/// and cancels its tasks still waiting, except those in `spare` (which a purge is about to
/// delete). The tasks it cancels are counted in `deltas` and announced to waiters.
#[allow(clippy::too_many_arguments)]
fn end_job(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    job_id: &str,
    ending: Ending<'_>,
    now: Timestamp,
    spare: &[TaskStatus],
    deltas: &mut Deltas,
) -> Result<(), postgres::Error> {
    let end = statements.get(client, settings, END_JOB)?;
    client.execute(
        &end,
        &[
            &job_id,
            &ending.status.as_str(),
            &ending.failure.map(|(task, _)| task),
            &ending.failure.map(|(_, why)| why.kind.as_str()),
            &ending.failure.map(|(_, why)| why.message.as_str()),
            &micros(now),
        ],
    )?;
    let drop_held = statements.get(client, settings, DROP_HELD)?;
    client.execute(&drop_held, &[&job_id])?;
    let cancellable: Vec<&str> = TaskStatus::ALL
        .into_iter()
        .filter(|from| from.can_become(TaskStatus::Cancelled) && !spare.contains(from))
        .map(TaskStatus::as_str)
        .collect();
    let cancel = statements.get(client, settings, CANCEL_WAITING)?;
    let mut any = false;
    for row in client.query(&cancel, &[&job_id, &cancellable, &micros(now)])? {
        let from: String = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;
        let Ok(from) = from.parse::<TaskStatus>() else {
            continue;
        };
        for _ in 0..count {
            deltas.moved(from, TaskStatus::Cancelled);
        }
        any |= count > 0;
    }
    if any {
        notify_or_error(client, statements, settings, &settings.done_channel)?;
    }
    Ok(())
}

const LOSING: &str = "
SELECT DISTINCT job_id FROM {s}.tasks WHERE job_id IS NOT NULL AND status = ANY($1)";

/// Before a purge of `statuses` (with the table locked against writers): cancels every job
/// still mapping or reducing that is about to lose a waiting or running task, so that no job
/// waits for a task that is gone.
pub(crate) fn cancel_jobs_losing_tasks(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    statuses: &[TaskStatus],
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<(), postgres::Error> {
    let live: Vec<&str> = statuses
        .iter()
        .filter(|status| !status.is_final())
        .map(|status| status.as_str())
        .collect();
    if live.is_empty() {
        return Ok(());
    }
    let select = statements.get(client, settings, LOSING)?;
    let losing: Vec<String> = client
        .query(&select, &[&live])?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let jobs = lock_jobs(
        client,
        statements,
        settings,
        losing.iter().map(String::as_str),
    )?;
    let mut running: Vec<&String> = jobs
        .iter()
        .filter(|(_, job)| !job.status.is_final())
        .map(|(id, _)| id)
        .collect();
    running.sort();
    for job_id in running {
        let ending = Ending::cancelled();
        end_job(
            client, statements, settings, job_id, ending, now, statuses, deltas,
        )?;
    }
    Ok(())
}

const UNLINK_TASKS: &str = "
UPDATE {s}.tasks SET job_id = NULL
WHERE job_id IN (SELECT id FROM {s}.jobs WHERE status = ANY($1))";
const REMOVE_MAPS: &str = "
DELETE FROM {s}.job_maps WHERE job_id IN (SELECT id FROM {s}.jobs WHERE status = ANY($1))";
const REMOVE_HELD: &str = "
DELETE FROM {s}.held_reduces WHERE job_id IN (SELECT id FROM {s}.jobs WHERE status = ANY($1))";
const REMOVE_JOBS: &str = "DELETE FROM {s}.jobs WHERE status = ANY($1)";

/// After a purge of `statuses`: removes the jobs that a task in one of them ended, with their
/// results; their tasks still stored become plain tasks.
pub(crate) fn remove_jobs_purged_with(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    statuses: &[TaskStatus],
) -> Result<(), postgres::Error> {
    let ended: Vec<&str> = JobStatus::ALL
        .into_iter()
        .filter(|job| {
            job.purged_with()
                .is_some_and(|status| statuses.contains(&status))
        })
        .map(JobStatus::as_str)
        .collect();
    if ended.is_empty() {
        return Ok(());
    }
    // Rows that name a job go before the job: `job_maps` and `held_reduces` reference it.
    for template in [UNLINK_TASKS, REMOVE_MAPS, REMOVE_HELD, REMOVE_JOBS] {
        let statement = statements.get(client, settings, template)?;
        client.execute(&statement, &[&ended])?;
    }
    Ok(())
}
