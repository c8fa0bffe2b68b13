//! Enqueue: a whole batch of tasks inserted, counted and announced in one statement, one round
//! trip; the same statement inserts a job's maps inside the job's transaction.

use std::collections::HashSet;

use postgres::GenericClient;
use postgres::types::ToSql;
use workmill_core::{NewTask, QueueError, TaskId, Timestamp};

use super::counters::any_shard;
use super::pool::{Session, Settings, Statements};
use super::store::{is_unique_violation, micros, store_error};
use crate::stored::{PolicyColumns, payload_checksum, validate};

const OP: &str = "enqueue tasks";

/// Inserts the batch (one array per column, unnested into rows), adds it to the counters, and
/// wakes idle workers, all in one statement and so in one implicit transaction (or in the
/// caller's, for a job's maps).
///
/// Each row takes its arrival number from `task_arrivals` in array order, which is the order
/// the caller gave, so tasks of one priority in one batch run first-in first-out. A duplicate
/// id fails the whole statement: all of the batch is stored, or none. An id held back as the
/// reduce of a job still mapping (`held`) stores nothing either, and is returned: the held
/// table is usually empty, so plain batches pay one probe of its primary key per id.
/// `$17` is the job of the tasks (its maps), NULL for plain tasks.
const ENQUEUE: &str = "
WITH held AS (
    SELECT id FROM {s}.held_reduces WHERE id = ANY($1)
), arrived AS (
    SELECT nextval('{s}.task_arrivals') AS arrival, batch.*
    FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::integer[],
                $6::bigint[], $7::text[], $8::bigint[], $9::float8[], $10::bigint[],
                $11::float8[], $12::integer[], $13::bigint[])
         AS batch(id, name, payload, payload_checksum, priority, max_attempts, backoff,
                  backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by, run_at)
    WHERE NOT EXISTS (SELECT 1 FROM held)
), inserted AS (
    INSERT INTO {s}.tasks (id, name, payload, payload_checksum, status, priority, seq, submission,
        max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
        demote_by, created_at, run_at, job_id)
    SELECT id, name, payload, payload_checksum, 'pending', priority, arrival, arrival,
        max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
        demote_by, $14, run_at, $17::text
    FROM arrived
    RETURNING 1
), counted AS (
    UPDATE {s}.queue_counters
    SET submitted = submitted + batch.n, pending = pending + batch.n
    FROM (SELECT count(*) AS n FROM inserted) AS batch
    WHERE shard = $15 AND batch.n > 0
)
SELECT array(SELECT id FROM held),
       CASE WHEN EXISTS (SELECT 1 FROM inserted) THEN pg_notify($16, '') END";

/// Which of `ids` are stored already.
const EXISTING: &str = "SELECT id FROM {s}.tasks WHERE id = ANY($1)";

/// Checks every task before anything is stored: its policy, its payload size, and that no id
/// comes twice in the batch.
pub(crate) fn validate_batch(tasks: &[NewTask], payload_limit: usize) -> Result<(), QueueError> {
    let mut seen = HashSet::with_capacity(tasks.len());
    for task in tasks {
        validate(task, payload_limit)?;
        if !seen.insert(&task.id) {
            return Err(QueueError::DuplicateTask {
                id: task.id.clone(),
            });
        }
    }
    Ok(())
}

/// Validates and inserts `tasks` atomically: all of them, or (on a refusal) none.
pub(crate) fn enqueue_all(
    session: &mut Session,
    tasks: Vec<NewTask>,
) -> Result<Vec<TaskId>, QueueError> {
    validate_batch(&tasks, session.settings.payload_limit)?;
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let Session {
        client,
        statements,
        settings,
    } = session;
    match insert_tasks(client, statements, settings, &tasks, None, Timestamp::now()) {
        Ok(None) => Ok(tasks.into_iter().map(|task| task.id).collect()),
        Ok(Some(held)) => Err(QueueError::DuplicateTask { id: held }),
        Err(err) if is_unique_violation(&err) => {
            Err(taken_id(client, statements, settings, &tasks, OP))
        }
        Err(err) => Err(store_error(OP)(err)),
    }
}

/// Runs [`ENQUEUE`] for validated `tasks`, as maps of `job` if given; returns the first id
/// held back as a reduce, in which case nothing was stored. A unique violation (an id
/// stored already) is the driver's error, and nothing was stored either.
pub(crate) fn insert_tasks(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    tasks: &[NewTask],
    job: Option<&str>,
    now: Timestamp,
) -> Result<Option<TaskId>, postgres::Error> {
    let columns = Columns::of(tasks, now);
    let insert = statements.get(client, settings, ENQUEUE)?;
    let params: [&(dyn ToSql + Sync); 17] = [
        &columns.ids,
        &columns.names,
        &columns.payloads,
        &columns.checksums,
        &columns.priorities,
        &columns.max_attempts,
        &columns.backoffs,
        &columns.initial_us,
        &columns.factors,
        &columns.max_us,
        &columns.jitters,
        &columns.demote_by,
        &columns.run_at,
        &micros(now),
        &any_shard(),
        &settings.work_channel,
        &job,
    ];
    let row = client.query_one(&insert, &params)?;
    let held: Vec<String> = row.try_get(0)?;
    Ok(tasks
        .iter()
        .find(|task| held.iter().any(|id| id == task.id.as_str()))
        .map(|task| task.id.clone()))
}

/// After a unique violation: the first task of the batch whose id is stored, as a
/// `DuplicateTask` (or a store error). If the other holder was rolled back meanwhile, the
/// first task stands for the batch.
pub(crate) fn taken_id(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    tasks: &[NewTask],
    op: &'static str,
) -> QueueError {
    let ids: Vec<&str> = tasks.iter().map(|task| task.id.as_str()).collect();
    let existing = match statements
        .get(client, settings, EXISTING)
        .and_then(|select| client.query(&select, &[&ids]))
    {
        Ok(rows) => rows,
        Err(err) => return store_error(op)(err),
    };
    let taken: HashSet<String> = existing
        .iter()
        .filter_map(|row| row.try_get::<_, String>(0).ok())
        .collect();
    match tasks
        .iter()
        .find(|task| taken.contains(task.id.as_str()))
        .or(tasks.first())
    {
        Some(task) => QueueError::DuplicateTask {
            id: task.id.clone(),
        },
        None => QueueError::backend(
            super::store::BACKEND,
            op,
            "a unique violation in an empty batch",
        ),
    }
}

/// A batch of tasks as one array per column.
struct Columns<'a> {
    ids: Vec<&'a str>,
    names: Vec<&'a str>,
    payloads: Vec<&'a [u8]>,
    checksums: Vec<i64>,
    priorities: Vec<i32>,
    max_attempts: Vec<i64>,
    backoffs: Vec<&'static str>,
    initial_us: Vec<i64>,
    factors: Vec<f64>,
    max_us: Vec<i64>,
    jitters: Vec<f64>,
    demote_by: Vec<i32>,
    run_at: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(tasks: &'a [NewTask], now: Timestamp) -> Columns<'a> {
        let mut columns = Columns {
            ids: Vec::with_capacity(tasks.len()),
            names: Vec::with_capacity(tasks.len()),
            payloads: Vec::with_capacity(tasks.len()),
            checksums: Vec::with_capacity(tasks.len()),
            priorities: Vec::with_capacity(tasks.len()),
            max_attempts: Vec::with_capacity(tasks.len()),
            backoffs: Vec::with_capacity(tasks.len()),
            initial_us: Vec::with_capacity(tasks.len()),
            factors: Vec::with_capacity(tasks.len()),
            max_us: Vec::with_capacity(tasks.len()),
            jitters: Vec::with_capacity(tasks.len()),
            demote_by: Vec::with_capacity(tasks.len()),
            run_at: Vec::with_capacity(tasks.len()),
        };
        for task in tasks {
            let policy = PolicyColumns::of(&task.retry);
            columns.ids.push(task.id.as_str());
            columns.names.push(&task.name);
            columns.payloads.push(&task.payload);
            columns.checksums.push(payload_checksum(&task.payload));
            columns.priorities.push(i32::from(task.priority.level()));
            columns.max_attempts.push(policy.max_attempts);
            columns.backoffs.push(policy.backoff);
            columns.initial_us.push(policy.initial_us);
            columns.factors.push(policy.factor);
            columns.max_us.push(policy.max_us);
            columns.jitters.push(policy.jitter);
            // A demotion step is a u16, so it always fits.
            columns
                .demote_by
                .push(i32::try_from(policy.demote_by).unwrap_or(i32::MAX));
            columns
                .run_at
                .push(micros(task.run_at.unwrap_or(now).max(now)));
        }
        columns
    }
}
