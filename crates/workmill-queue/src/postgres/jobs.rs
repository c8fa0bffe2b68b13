//! Map-reduce jobs on PostgreSQL: submitting one in a single transaction, and reading its record
//! and its maps' results in one statement each. What the moves of a job's tasks do to it is in
//! `job_bookkeeping.rs`.

use postgres::Row;
use workmill_core::{
    Failure, FailureKind, JobRecord, JobStatus, NewJob, QueueError, TaskId, Timestamp,
};

use super::enqueue::{insert_tasks, taken_id, validate_batch};
use super::pool::Session;
use super::row::get;
use super::store::{is_unique_violation, micros, store_error, timestamp};
use crate::stored::{PolicyColumns, payload_checksum, validate};

const INSERT_JOB: &str = "
INSERT INTO {s}.jobs (id, status, maps_total, reduce_id, created_at)
VALUES ($1, 'mapping', $2, $3, $4)
ON CONFLICT (id) DO NOTHING
RETURNING 1";

/// Whether an id is a stored task's or held back as another job's reduce.
const TAKEN: &str = "
SELECT EXISTS (SELECT 1 FROM {s}.tasks WHERE id = $1)
    OR EXISTS (SELECT 1 FROM {s}.held_reduces WHERE id = $1)";

const INSERT_MAPS: &str = "
INSERT INTO {s}.job_maps (job_id, position, task_id)
SELECT $1, map.position - 1, map.task_id
FROM unnest($2::text[]) WITH ORDINALITY AS map(task_id, position)";

const HOLD_REDUCE: &str = "
INSERT INTO {s}.held_reduces (id, job_id, name, payload, payload_checksum, priority,
    max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
    demote_by, run_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (id) DO NOTHING
RETURNING 1";

/// Enqueues the maps of `job`, holds back its reduce and records the job, in one transaction.
///
/// Concurrent submits of the same job id, map id or reduce id wait for each other on the
/// primary keys and all but one are refused. An `enqueue` of an id that a job submitted at
/// the same moment holds back as its reduce can slip past both checks (neither sees the
/// other's uncommitted row); the job then fails when its last map completes, saying so,
/// instead of waiting forever.
pub(crate) fn submit_job(session: &mut Session, job: NewJob) -> Result<TaskId, QueueError> {
    const OP: &str = "submit a job";
    job.validate()?;
    validate_batch(&job.maps, session.settings.payload_limit)?;
    validate(&job.reduce, session.settings.payload_limit)?;
    let NewJob { id, maps, reduce } = job;
    let Session {
        client,
        statements,
        settings,
    } = session;
    let now = Timestamp::now();
    let mut tx = client.transaction().map_err(store_error(OP))?;
    let insert = statements
        .get(&mut tx, settings, INSERT_JOB)
        .map_err(store_error(OP))?;
    let maps_total = i64::try_from(maps.len()).unwrap_or(i64::MAX);
    let inserted = tx
        .query_opt(
            &insert,
            &[&id.as_str(), &maps_total, &reduce.id.as_str(), &micros(now)],
        )
        .map_err(store_error(OP))?;
    if inserted.is_none() {
        return Err(QueueError::DuplicateJob { id });
    }
    let taken = statements
        .get(&mut tx, settings, TAKEN)
        .and_then(|select| tx.query_one(&select, &[&reduce.id.as_str()]))
        .and_then(|row| row.try_get::<_, bool>(0))
        .map_err(store_error(OP))?;
    if taken {
        return Err(QueueError::DuplicateTask { id: reduce.id });
    }
    match insert_tasks(&mut tx, statements, settings, &maps, Some(id.as_str()), now) {
        Ok(None) => {}
        Ok(Some(held)) => return Err(QueueError::DuplicateTask { id: held }),
        Err(err) if is_unique_violation(&err) => {
            // The transaction is aborted; which id is taken is asked outside it.
            drop(tx);
            return Err(taken_id(client, statements, settings, &maps, OP));
        }
        Err(err) => return Err(store_error(OP)(err)),
    }
    let map_ids: Vec<&str> = maps.iter().map(|map| map.id.as_str()).collect();
    statements
        .get(&mut tx, settings, INSERT_MAPS)
        .and_then(|insert| tx.execute(&insert, &[&id.as_str(), &map_ids]))
        .map_err(store_error(OP))?;
    let policy = PolicyColumns::of(&reduce.retry);
    let demote_by = i32::try_from(policy.demote_by).unwrap_or(i32::MAX);
    let held = statements
        .get(&mut tx, settings, HOLD_REDUCE)
        .and_then(|hold| {
            tx.query_opt(
                &hold,
                &[
                    &reduce.id.as_str(),
                    &id.as_str(),
                    &reduce.name.as_str(),
                    &reduce.payload.as_slice(),
                    &payload_checksum(&reduce.payload),
                    &i32::from(reduce.priority.level()),
                    &policy.max_attempts,
                    &policy.backoff,
                    &policy.initial_us,
                    &policy.factor,
                    &policy.max_us,
                    &policy.jitter,
                    &demote_by,
                    &reduce.run_at.map(micros),
                ],
            )
        })
        .map_err(store_error(OP))?;
    if held.is_none() {
        // Another job submitted at the same moment holds the same reduce id.
        return Err(QueueError::DuplicateTask { id: reduce.id });
    }
    tx.commit().map_err(store_error(OP))?;
    Ok(id)
}

/// The job row and its map ids in submission order, read in one statement (one snapshot).
const JOB: &str = "
SELECT status, maps_total, maps_done, reduce_id, failed_task_id, failure_kind, failure_message,
       created_at, finished_at,
       array(SELECT task_id FROM {s}.job_maps WHERE job_id = $1 ORDER BY position)
FROM {s}.jobs WHERE id = $1";

/// The record of job `id`, or `JobNotFound`, or `Corrupt` naming the job.
pub(crate) fn job(session: &mut Session, id: &TaskId) -> Result<JobRecord, QueueError> {
    const OP: &str = "read a job";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let select = statements
        .get(client, settings, JOB)
        .map_err(store_error(OP))?;
    let row = client
        .query_opt(&select, &[&id.as_str()])
        .map_err(store_error(OP))?
        .ok_or_else(|| QueueError::JobNotFound { id: id.clone() })?;
    read_job(&row, id).map_err(|detail| QueueError::Corrupt {
        id: id.clone(),
        detail,
    })
}

/// Reads a row selected with [`JOB`], naming the column that cannot be read.
fn read_job(row: &Row, id: &TaskId) -> Result<JobRecord, String> {
    let status: &str = get(row, 0, "status")?;
    let status: JobStatus = status
        .parse()
        .map_err(|_| format!("column status: {status:?} is not a job status"))?;
    let total: i64 = get(row, 1, "maps_total")?;
    let done: i64 = get(row, 2, "maps_done")?;
    let reduce: &str = get(row, 3, "reduce_id")?;
    let failure = match (
        get::<Option<&str>>(row, 4, "failed_task_id")?,
        get::<Option<&str>>(row, 5, "failure_kind")?,
    ) {
        (Some(task), Some(kind)) => {
            let task = TaskId::new(task).map_err(|e| format!("column failed_task_id: {e}"))?;
            let kind = FailureKind::parse(kind)
                .ok_or_else(|| format!("column failure_kind: unknown kind {kind:?}"))?;
            let message: Option<String> = get(row, 6, "failure_message")?;
            Some((task, Failure::new(kind, message.unwrap_or_default())))
        }
        _ => None,
    };
    let time = |micros: i64, column: &str| {
        timestamp(micros).ok_or_else(|| format!("column {column}: negative time"))
    };
    let maps: Vec<String> = get(row, 9, "job_maps.task_id")?;
    let maps = maps
        .iter()
        .map(|map| TaskId::new(map).map_err(|e| format!("a map id of the job is unreadable: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if i64::try_from(maps.len()).ok() != Some(total) {
        return Err(format!(
            "the job has {} map rows but maps_total says {total}",
            maps.len()
        ));
    }
    Ok(JobRecord {
        id: id.clone(),
        status,
        maps,
        maps_done: u32::try_from(done).map_err(|_| "column maps_done: out of range")?,
        reduce: TaskId::new(reduce).map_err(|e| format!("column reduce_id: {e}"))?,
        failure,
        created_at: time(get(row, 7, "created_at")?, "created_at")?,
        finished_at: get::<Option<i64>>(row, 8, "finished_at")?
            .map(|t| time(t, "finished_at"))
            .transpose()?,
    })
}

/// The job's progress, and its maps' results in map order once every map is done.
const JOB_RESULTS: &str = "
SELECT status, maps_total, maps_done,
       CASE WHEN maps_done = maps_total
            THEN array(SELECT result FROM {s}.job_maps WHERE job_id = $1 ORDER BY position) END
FROM {s}.jobs WHERE id = $1";

/// The results of job `id`'s maps in map order, once every map completed.
pub(crate) fn job_results(session: &mut Session, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
    const OP: &str = "read a job's results";
    let Session {
        client,
        statements,
        settings,
    } = session;
    let select = statements
        .get(client, settings, JOB_RESULTS)
        .map_err(store_error(OP))?;
    let row = client
        .query_opt(&select, &[&id.as_str()])
        .map_err(store_error(OP))?
        .ok_or_else(|| QueueError::JobNotFound { id: id.clone() })?;
    let corrupt = |detail: String| QueueError::Corrupt {
        id: id.clone(),
        detail,
    };
    let status: &str = get(&row, 0, "status").map_err(corrupt)?;
    let status: JobStatus = status
        .parse()
        .map_err(|_| corrupt(format!("column status: {status:?} is not a job status")))?;
    let count = |idx: usize, column: &str| {
        get::<i64>(&row, idx, column)
            .and_then(|n| u32::try_from(n).map_err(|_| format!("column {column}: out of range")))
            .map_err(corrupt)
    };
    let (maps_total, maps_done) = (count(1, "maps_total")?, count(2, "maps_done")?);
    let incomplete = || QueueError::JobIncomplete {
        id: id.clone(),
        status,
        maps_done,
        maps_total,
    };
    let results: Option<Vec<Option<Vec<u8>>>> = get(&row, 3, "job_maps.result").map_err(corrupt)?;
    let results = results.ok_or_else(incomplete)?;
    results
        .into_iter()
        .map(|result| result.ok_or_else(incomplete))
        .collect()
}
