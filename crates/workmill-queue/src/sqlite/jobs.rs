//! Map-reduce jobs on SQLite: submitting one in a single transaction, and reading its record and
//! its maps' results. What the moves of a job's tasks do to it is in `job_bookkeeping.rs`.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use workmill_core::{
    Failure, FailureKind, JobRecord, JobStatus, NewJob, QueueError, TaskId, Timestamp,
};

use super::enqueue::{insert_tasks, validate_all};
use super::row::{
    PolicyColumns, integer, optional_text, optional_timestamp, payload_checksum, text, timestamp,
};
use super::store::{is_unique_violation, micros, store_error};

/// Enqueues the maps of `job`, holds back its reduce and records the job, in one transaction.
pub(crate) fn submit_job(
    conn: &mut Connection,
    job: NewJob,
    payload_limit: usize,
) -> Result<TaskId, QueueError> {
    const OP: &str = "submit a job";
    job.validate()?;
    validate_all(
        job.maps.iter().chain(std::iter::once(&job.reduce)),
        payload_limit,
    )?;
    let NewJob { id, maps, reduce } = job;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error(OP))?;
    let now = Timestamp::now();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO jobs (id, status, maps_total, reduce_id, created_at)
             VALUES (?1, 'mapping', ?2, ?3, ?4)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                id.as_str(),
                maps.len() as i64,
                reduce.id.as_str(),
                micros(now)
            ])
        });
    match inserted {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => return Err(QueueError::DuplicateJob { id }),
        Err(err) => return Err(store_error(OP)(err)),
    }
    let reduce_taken: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?1)
                 OR EXISTS (SELECT 1 FROM held_reduces WHERE id = ?1)",
        )
        .and_then(|mut select| select.query_row([reduce.id.as_str()], |row| row.get(0)))
        .map_err(store_error(OP))?;
    if reduce_taken {
        return Err(QueueError::DuplicateTask { id: reduce.id });
    }
    let map_ids = insert_tasks(&tx, maps, Some(&id), now)?;
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO job_maps (job_id, position, task_id) VALUES (?1, ?2, ?3)")
            .map_err(store_error(OP))?;
        for (position, map) in (0i64..).zip(&map_ids) {
            insert
                .execute(params![id.as_str(), position, map.as_str()])
                .map_err(store_error(OP))?;
        }
    }
    let policy = PolicyColumns::of(&reduce.retry);
    tx.prepare_cached(
        "INSERT INTO held_reduces (id, job_id, name, payload, payload_checksum, priority,
             max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
             demote_by, run_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            reduce.id.as_str(),
            id.as_str(),
            reduce.name.as_str(),
            reduce.payload.as_slice(),
            payload_checksum(&reduce.payload),
            i64::from(reduce.priority.level()),
            policy.max_attempts,
            policy.backoff,
            policy.initial_us,
            policy.factor,
            policy.max_us,
            policy.jitter,
            policy.demote_by,
            reduce.run_at.map(micros),
        ])
    })
    .map_err(store_error(OP))?;
    tx.commit().map_err(store_error(OP))?;
    Ok(id)
}

/// The columns [`read_job`] expects, in order.
const JOB_COLUMNS: &str = "status, maps_total, maps_done, reduce_id, failed_task_id, \
     failure_kind, failure_message, created_at, finished_at";

/// A job row without its maps, or what makes it unreadable: every column is checked as it is
/// read, so a value of the wrong type is reported with its column, not as a store failure.
fn read_job(row: &Row<'_>, id: &TaskId) -> Result<(JobRecord, u32), String> {
    let status = text(row, 0, "status")?;
    let status: JobStatus = status
        .parse()
        .map_err(|_| format!("the job's status {status:?} is not a job status"))?;
    let count = |idx: usize, column: &str| {
        let n = integer(row, idx, column)?;
        u32::try_from(n).map_err(|_| format!("column {column}: {n} is out of range"))
    };
    let failure = match (
        optional_text(row, 4, "failed_task_id")?,
        optional_text(row, 5, "failure_kind")?,
    ) {
        (Some(task), Some(kind)) => {
            let task = TaskId::new(task).map_err(|e| format!("column failed_task_id: {e}"))?;
            let kind = FailureKind::parse(kind)
                .ok_or_else(|| format!("column failure_kind: unknown kind {kind:?}"))?;
            let message = optional_text(row, 6, "failure_message")?.unwrap_or_default();
            Some((task, Failure::new(kind, message)))
        }
        _ => None,
    };
    let record = JobRecord {
        id: id.clone(),
        status,
        maps: Vec::new(),
        maps_done: count(2, "maps_done")?,
        reduce: TaskId::new(text(row, 3, "reduce_id")?)
            .map_err(|e| format!("column reduce_id: {e}"))?,
        failure,
        created_at: timestamp(row, 7, "created_at")?,
        finished_at: optional_timestamp(row, 8, "finished_at")?,
    };
    Ok((record, count(1, "maps_total")?))
}

/// The job row of `id`, or `JobNotFound`, or `Corrupt` naming the job.
fn job_row(
    conn: &Connection,
    id: &TaskId,
    op: &'static str,
) -> Result<(JobRecord, u32), QueueError> {
    let found = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .and_then(|mut select| {
            select
                .query_row([id.as_str()], |row| Ok(read_job(row, id)))
                .optional()
        })
        .map_err(store_error(op))?;
    match found {
        None => Err(QueueError::JobNotFound { id: id.clone() }),
        Some(Err(detail)) => Err(QueueError::Corrupt {
            id: id.clone(),
            detail,
        }),
        Some(Ok(job)) => Ok(job),
    }
}

/// The record of job `id`, its maps in submission order, read in one snapshot.
pub(crate) fn job(conn: &mut Connection, id: &TaskId) -> Result<JobRecord, QueueError> {
    const OP: &str = "read a job";
    let tx = conn.transaction().map_err(store_error(OP))?;
    let (mut record, _) = job_row(&tx, id, OP)?;
    let mut select = tx
        .prepare_cached("SELECT task_id FROM job_maps WHERE job_id = ?1 ORDER BY position")
        .map_err(store_error(OP))?;
    let maps = select
        .query_map([id.as_str()], |row| row.get::<_, String>(0))
        .map_err(store_error(OP))?;
    for map in maps {
        let map = map.map_err(store_error(OP))?;
        record
            .maps
            .push(TaskId::new(&map).map_err(|e| QueueError::Corrupt {
                id: id.clone(),
                detail: format!("a map id of the job is unreadable: {e}"),
            })?);
    }
    Ok(record)
}

/// The results of job `id`'s maps in map order, once every map completed.
pub(crate) fn job_results(conn: &mut Connection, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
    const OP: &str = "read a job's results";
    let tx = conn.transaction().map_err(store_error(OP))?;
    let (record, total) = job_row(&tx, id, OP)?;
    let incomplete = || QueueError::JobIncomplete {
        id: id.clone(),
        status: record.status,
        maps_done: record.maps_done,
        maps_total: total,
    };
    if record.maps_done != total {
        return Err(incomplete());
    }
    let mut select = tx
        .prepare_cached("SELECT result FROM job_maps WHERE job_id = ?1 ORDER BY position")
        .map_err(store_error(OP))?;
    let rows = select
        .query_map([id.as_str()], |row| row.get::<_, Option<Vec<u8>>>(0))
        .map_err(store_error(OP))?;
    let mut results = Vec::with_capacity(total as usize);
    for result in rows {
        results.push(result.map_err(store_error(OP))?.ok_or_else(incomplete)?);
    }
    Ok(results)
}
