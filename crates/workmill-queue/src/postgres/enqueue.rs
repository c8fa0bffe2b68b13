//! Enqueue: a whole batch of tasks inserted, counted and announced in one statement, one round trip.

use std::collections::HashSet;

use postgres::types::ToSql;
use workmill_core::{NewTask, QueueError, TaskId, Timestamp};

use super::counters::any_shard;
use super::pool::Session;
use super::store::{is_unique_violation, micros, store_error};
use crate::stored::{PolicyColumns, payload_checksum, validate};

const OP: &str = "enqueue tasks";

/// Inserts the batch (one array per column, unnested into rows), adds it to the counters, and
/// wakes idle workers, all in one statement and so in one implicit transaction.
///
/// Each row takes its arrival number from `task_arrivals` in array order, which is the order
/// the caller gave, so tasks of one priority in one batch run first-in first-out. A duplicate
/// id fails the whole statement: all of the batch is stored, or none.
const ENQUEUE: &str = "
WITH arrived AS (
    SELECT nextval('{s}.task_arrivals') AS arrival, batch.*
    FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::integer[],
                $6::bigint[], $7::text[], $8::bigint[], $9::float8[], $10::bigint[],
                $11::float8[], $12::integer[], $13::bigint[])
         AS batch(id, name, payload, payload_checksum, priority, max_attempts, backoff,
                  backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by, run_at)
), inserted AS (
    INSERT INTO {s}.tasks (id, name, payload, payload_checksum, status, priority, seq, submission,
        max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
        demote_by, created_at, run_at)
    SELECT id, name, payload, payload_checksum, 'pending', priority, arrival, arrival,
        max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
        demote_by, $14, run_at
    FROM arrived
    RETURNING 1
), counted AS (
    UPDATE {s}.queue_counters
    SET submitted = submitted + batch.n, pending = pending + batch.n
    FROM (SELECT count(*) AS n FROM inserted) AS batch
    WHERE shard = $15
)
SELECT pg_notify($16, '')";

/// Which of `ids` are stored already.
const EXISTING: &str = "SELECT id FROM {s}.tasks WHERE id = ANY($1)";

/// Validates and inserts `tasks` atomically: all of them, or (on a refusal) none.
pub(crate) fn enqueue_all(
    session: &mut Session,
    tasks: Vec<NewTask>,
) -> Result<Vec<TaskId>, QueueError> {
    let mut seen = HashSet::with_capacity(tasks.len());
    for task in &tasks {
        validate(task, session.settings.payload_limit)?;
        if !seen.insert(&task.id) {
            return Err(QueueError::DuplicateTask {
                id: task.id.clone(),
            });
        }
    }
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let now = Timestamp::now();
    let columns = Columns::of(&tasks, now);
    let Session {
        client,
        statements,
        settings,
    } = session;
    let insert = statements
        .get(client, settings, ENQUEUE)
        .map_err(store_error(OP))?;
    let params: [&(dyn ToSql + Sync); 16] = [
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
    ];
    match client.execute(&insert, &params) {
        Ok(_) => Ok(tasks.into_iter().map(|task| task.id).collect()),
        Err(err) if is_unique_violation(&err) => {
            let existing = statements
                .get(client, settings, EXISTING)
                .and_then(|select| client.query(&select, &[&columns.ids]))
                .map_err(store_error(OP))?;
            let taken: HashSet<String> = existing
                .iter()
                .filter_map(|row| row.try_get::<_, String>(0).ok())
                .collect();
            // The first task of the batch whose id is taken; if the other holder was rolled
            // back meanwhile, the first task stands for the batch.
            let id = tasks
                .iter()
                .find(|task| taken.contains(task.id.as_str()))
                .unwrap_or(&tasks[0])
                .id
                .clone();
            Err(QueueError::DuplicateTask { id })
        }
        Err(err) => Err(store_error(OP)(err)),
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
