//! What the moves of a job's tasks do to the job, inside the very transaction that moves them:
//! a map's completion stores its result and, for the last map, enqueues the reduce; a dead or
//! cancelled task ends the job; a requeued dead reduce revives it; a purge cancels or removes jobs.
//!
//! Every function here returns only store errors: the caller has already changed the
//! task's row, and anything else it reported would leave that change without its counts.
//! A job row that cannot be read is left alone with a warning; `job` reports it.

use rusqlite::{Connection, OptionalExtension, params};
use workmill_core::{Failure, FailureKind, JobStatus, TaskId, TaskStatus, Timestamp};

use super::counters::{Deltas, next_seqs};
use super::row::{integer, text};
use super::store::{is_unique_violation, micros};

/// The status of job `job_id` and its reduce's id, if the job is stored and readable.
///
/// Both columns are checked, not converted: a damaged job row (a value of the wrong type
/// written by hand) is left alone with a warning, never a store error, which would roll back
/// the move of the task that reads it and fail every later attempt the same way.
fn job_state(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<(JobStatus, String)>> {
    let found = conn
        .prepare_cached("SELECT status, reduce_id FROM jobs WHERE id = ?1")?
        .query_row([job_id], |row| {
            Ok(text(row, 0, "status").and_then(|status| {
                let status = status
                    .parse()
                    .map_err(|_| format!("column status: {status:?} is not a job status"))?;
                Ok((status, text(row, 1, "reduce_id")?.to_owned()))
            }))
        })
        .optional()?;
    match found {
        None => Ok(None),
        Some(Ok(state)) => Ok(Some(state)),
        Some(Err(damage)) => {
            tracing::warn!(
                job = job_id,
                damage,
                "leaving a job whose row cannot be read"
            );
            Ok(None)
        }
    }
}

/// The phase in which a job listens to `task`: reducing for its reduce, mapping for a map.
fn phase_of(task: &TaskId, reduce_id: &str) -> JobStatus {
    if task.as_str() == reduce_id {
        JobStatus::Reducing
    } else {
        JobStatus::Mapping
    }
}

/// `task` of job `job_id` just completed with `result`.
pub(crate) fn task_completed(
    conn: &Connection,
    job_id: &str,
    task: &TaskId,
    result: &[u8],
    now: Timestamp,
    deltas: &mut Deltas,
) -> rusqlite::Result<()> {
    let Some((status, reduce_id)) = job_state(conn, job_id)? else {
        return Ok(());
    };
    match (status, phase_of(task, &reduce_id)) {
        (JobStatus::Mapping, JobStatus::Mapping) => {
            let stored = conn
                .prepare_cached(
                    "UPDATE job_maps SET result = ?1, completed_at = ?2
                     WHERE task_id = ?3 AND job_id = ?4 AND completed_at IS NULL",
                )?
                .execute(params![result, micros(now), task.as_str(), job_id])?;
            if stored == 0 {
                return Ok(());
            }
            let counts = conn
                .prepare_cached(
                    "UPDATE jobs SET maps_done = maps_done + 1 WHERE id = ?1
                     RETURNING maps_done, maps_total",
                )?
                .query_row([job_id], |row| {
                    Ok(integer(row, 0, "maps_done")
                        .and_then(|done| Ok((done, integer(row, 1, "maps_total")?))))
                })?;
            match counts {
                Ok((done, total)) if done == total => {
                    start_reduce(conn, job_id, &reduce_id, now, deltas)?;
                }
                Ok(_) => {}
                Err(damage) => {
                    tracing::warn!(
                        job = job_id,
                        damage,
                        "leaving a job whose row cannot be read"
                    );
                }
            }
        }
        (JobStatus::Reducing, JobStatus::Reducing) => {
            conn.prepare_cached(
                "UPDATE jobs SET status = 'completed', finished_at = ?1 WHERE id = ?2",
            )?
            .execute(params![micros(now), job_id])?;
        }
        // A finished job is inert: its late tasks are plain tasks.
        _ => {}
    }
    Ok(())
}

/// Copies the held-back reduce of a job whose last map just completed into `tasks`.
fn start_reduce(
    conn: &Connection,
    job_id: &str,
    reduce_id: &str,
    now: Timestamp,
    deltas: &mut Deltas,
) -> rusqlite::Result<()> {
    let seq = next_seqs(conn, 1)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO tasks (id, name, payload, payload_checksum, status, priority, seq,
                 max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us,
                 jitter, demote_by, created_at, run_at, job_id)
             SELECT id, name, payload, payload_checksum, 'pending', priority, ?1,
                 max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us,
                 jitter, demote_by, ?2, max(coalesce(run_at, ?2), ?2), job_id
             FROM held_reduces WHERE job_id = ?3",
        )?
        .execute(params![seq, micros(now), job_id]);
    let why = match inserted {
        Ok(1) => None,
        Ok(_) => Some("its held-back row is missing".to_owned()),
        // The id was held back since submit; only a hand edit of the file can get here.
        Err(err) if is_unique_violation(&err) => Some(format!("a task {reduce_id} exists already")),
        Err(err) => return Err(err),
    };
    conn.prepare_cached("DELETE FROM held_reduces WHERE job_id = ?1")?
        .execute([job_id])?;
    conn.prepare_cached("UPDATE jobs SET status = 'reducing' WHERE id = ?1")?
        .execute([job_id])?;
    match why {
        None => {
            deltas.submitted += 1;
            deltas.pending += 1;
        }
        Some(why) => {
            let failure = Failure::new(
                FailureKind::Permanent,
                format!("the reduce could not be enqueued: {why}"),
            );
            let reduce = TaskId::new(reduce_id).ok();
            let failure = reduce.as_ref().map(|reduce| (reduce, &failure));
            end_job(conn, job_id, JobStatus::Failed, failure, now, &[], deltas)?;
        }
    }
    Ok(())
}

/// `task` of job `job_id` just ended `Dead` with `failure`.
pub(crate) fn task_dead(
    conn: &Connection,
    job_id: &str,
    task: &TaskId,
    failure: &Failure,
    now: Timestamp,
    deltas: &mut Deltas,
) -> rusqlite::Result<()> {
    match job_state(conn, job_id)? {
        Some((status, reduce_id)) if status == phase_of(task, &reduce_id) => {
            let failure = Some((task, failure));
            end_job(conn, job_id, JobStatus::Failed, failure, now, &[], deltas)
        }
        _ => Ok(()),
    }
}

/// `task` of job `job_id` was just cancelled.
pub(crate) fn task_cancelled(
    conn: &Connection,
    job_id: &str,
    task: &TaskId,
    now: Timestamp,
    deltas: &mut Deltas,
) -> rusqlite::Result<()> {
    match job_state(conn, job_id)? {
        Some((status, reduce_id)) if status == phase_of(task, &reduce_id) => {
            end_job(conn, job_id, JobStatus::Cancelled, None, now, &[], deltas)
        }
        _ => Ok(()),
    }
}

/// Dead `task` of job `job_id` was just requeued: if it is the reduce that failed the
/// job, the job is reducing again.
pub(crate) fn task_requeued(
    conn: &Connection,
    job_id: &str,
    task: &TaskId,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET status = 'reducing', failed_task_id = NULL, failure_kind = NULL,
             failure_message = NULL, finished_at = NULL
         WHERE id = ?1 AND status = 'failed' AND reduce_id = ?2 AND failed_task_id = ?2",
    )?
    .execute(params![job_id, task.as_str()])?;
    Ok(())
}

/// Moves job `job_id` to the final status `to`, drops its held-back reduce, and cancels
/// its tasks still waiting, except those in `spare` (which a purge is about to delete).
fn end_job(
    conn: &Connection,
    job_id: &str,
    to: JobStatus,
    failure: Option<(&TaskId, &Failure)>,
    now: Timestamp,
    spare: &[TaskStatus],
    deltas: &mut Deltas,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET status = ?1, failed_task_id = ?2, failure_kind = ?3,
             failure_message = ?4, finished_at = ?5
         WHERE id = ?6",
    )?
    .execute(params![
        to.as_str(),
        failure.map(|(task, _)| task.as_str()),
        failure.map(|(_, why)| why.kind.as_str()),
        failure.map(|(_, why)| why.message.as_str()),
        micros(now),
        job_id
    ])?;
    conn.prepare_cached("DELETE FROM held_reduces WHERE job_id = ?1")?
        .execute([job_id])?;
    let waiting: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT rowid, status FROM tasks
             WHERE job_id = ?1 AND status IN ('pending', 'retrying')",
        )?
        .query_map([job_id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut cancel = conn.prepare_cached(
        "UPDATE tasks SET status = 'cancelled', finished_at = ?1 WHERE rowid = ?2",
    )?;
    for (rowid, status) in waiting {
        let Ok(from) = status.parse::<TaskStatus>() else {
            continue;
        };
        if spare.contains(&from) || !from.can_become(TaskStatus::Cancelled) {
            continue;
        }
        cancel.execute(params![micros(now), rowid])?;
        deltas.moved(from, TaskStatus::Cancelled);
    }
    Ok(())
}

/// The SQL list of the names of `statuses`, e.g. `('pending', 'running')`; the names are
/// the program's own constants, never user text.
fn sql_list(names: impl Iterator<Item = &'static str>) -> String {
    let quoted: Vec<String> = names.map(|name| format!("'{name}'")).collect();
    format!("({})", quoted.join(", "))
}

/// Before a purge of `statuses`: cancels every job still mapping or reducing that is about
/// to lose a waiting or running task, so that no job waits for a task that is gone.
pub(crate) fn cancel_jobs_losing_tasks(
    conn: &Connection,
    statuses: &[TaskStatus],
    now: Timestamp,
    deltas: &mut Deltas,
) -> rusqlite::Result<()> {
    let live = statuses.iter().filter(|status| !status.is_final());
    let live = sql_list(live.map(|status| status.as_str()));
    if live == "()" {
        return Ok(());
    }
    let losing: Vec<String> = conn
        .prepare(&format!(
            "SELECT DISTINCT jobs.id FROM tasks JOIN jobs ON jobs.id = tasks.job_id
             WHERE tasks.job_id IS NOT NULL AND tasks.status IN {live}
                 AND jobs.status IN ('mapping', 'reducing')"
        ))?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for job_id in losing {
        end_job(
            conn,
            &job_id,
            JobStatus::Cancelled,
            None,
            now,
            statuses,
            deltas,
        )?;
    }
    Ok(())
}

/// After a purge of `statuses`: removes the jobs that a task in one of them ended, with
/// their results; their tasks still stored become plain tasks.
pub(crate) fn remove_jobs_purged_with(
    conn: &Connection,
    statuses: &[TaskStatus],
) -> rusqlite::Result<()> {
    let ended = JobStatus::ALL.into_iter().filter(|job| {
        job.purged_with()
            .is_some_and(|status| statuses.contains(&status))
    });
    let ended = sql_list(ended.map(JobStatus::as_str));
    if ended == "()" {
        return Ok(());
    }
    let doomed = format!("(SELECT id FROM jobs WHERE status IN {ended})");
    conn.execute_batch(&format!(
        "UPDATE tasks SET job_id = NULL WHERE job_id IN {doomed};
         DELETE FROM job_maps WHERE job_id IN {doomed};
         DELETE FROM held_reduces WHERE job_id IN {doomed};
         DELETE FROM jobs WHERE status IN {ended};"
    ))
}
