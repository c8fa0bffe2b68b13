//! The queue's tables in its PostgreSQL schema, as numbered migrations applied in order when a
//! queue is opened, and recorded in `schema_migrations`.
//!
//! Every opener takes a transaction-scoped advisory lock named after the schema before it looks
//! at the version, so processes opening a new schema together migrate it exactly once: the
//! others wait, then find nothing left to do. A schema migrated by a newer workmill is refused
//! rather than misread.

use postgres::Client;
use thiserror::Error;
use workmill_core::QueueError;

use super::pool::Settings;

/// One step of the schema's history.
pub(crate) struct Migration {
    /// Its version; versions are 1, 2, 3, ... in order.
    pub(crate) version: i32,
    /// What it does, as stored in `schema_migrations.description`.
    pub(crate) description: &'static str,
    /// The change, with `{s}` standing for the schema.
    pub(crate) sql: &'static str,
}

/// The schema's history; a new version appends a migration and never edits an old one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "create tasks, the arrival and lease-token sequences, the sharded queue_counters and the indexes for reserve, due times, lease expiry and retention",
        sql: CREATE_TABLES,
    },
    Migration {
        version: 2,
        description: "add the task_overview and queue_stats views and column comments, for people reading the queue in psql",
        sql: ADD_VIEWS,
    },
    Migration {
        version: 3,
        description: "add map-reduce jobs: tasks.job_id, the jobs, job_maps and held_reduces tables and the job_overview view",
        sql: ADD_JOBS,
    },
];

/// The schema version this build writes.
pub(crate) const LATEST_VERSION: i32 = 3;

/// How many rows `queue_counters` has. Each transaction adds its changes to one row chosen at
/// random, so concurrent commits rarely wait for each other on one hot row; the stats are the
/// column sums, read in one snapshot.
pub(crate) const COUNTER_SHARDS: i16 = 8;

/// The schema holds something this build cannot use as a queue.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// The schema was migrated by a newer workmill.
    #[error(
        "schema {schema} is at version {found}, newer than the {supported} this build of workmill knows; upgrade workmill to open it"
    )]
    TooNew {
        /// The schema.
        schema: String,
        /// The version recorded in it.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
}

/// Why [`migrate`] failed.
#[derive(Debug, Error)]
pub(crate) enum MigrateError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
}

impl MigrateError {
    /// The error `open` returns: a schema too new for this build is [`QueueError::Incompatible`],
    /// which no retry can mend (a worker must not wait it out); anything else is the store
    /// failing.
    pub(crate) fn into_queue_error(self) -> QueueError {
        match self {
            MigrateError::Schema(schema) => QueueError::Incompatible {
                backend: super::BACKEND,
                reason: schema.to_string(),
            },
            MigrateError::Postgres(err) => {
                QueueError::backend(super::BACKEND, "migrate the schema", err)
            }
        }
    }
}

/// Brings `schema` up to `target` (normally [`LATEST_VERSION`]), creating it if needed, and
/// returns the version it was at.
pub(crate) fn migrate(
    client: &mut Client,
    schema: &str,
    settings: &Settings,
    target: i32,
) -> Result<i32, MigrateError> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!("workmill:migrate:{schema}")],
    )?;
    tx.batch_execute(&settings.render(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
             version     integer     PRIMARY KEY,
             description text        NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );",
    ))?;
    let found: i32 = tx
        .query_one(
            &settings.render("SELECT coalesce(max(version), 0) FROM {s}.schema_migrations"),
            &[],
        )?
        .try_get(0)?;
    if found > LATEST_VERSION {
        return Err(MigrateError::Schema(SchemaError::TooNew {
            schema: schema.to_owned(),
            found,
            supported: LATEST_VERSION,
        }));
    }
    let record =
        settings.render("INSERT INTO {s}.schema_migrations (version, description) VALUES ($1, $2)");
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        tx.batch_execute(&settings.render(migration.sql))?;
        tx.execute(&record, &[&migration.version, &migration.description])?;
    }
    tx.commit()?;
    Ok(found)
}

/// Version 1: the tables, sequences and indexes.
///
/// Times are `bigint` microseconds since the Unix epoch, the one format every
/// workmill store keeps, taken from the clock of the process that writes them. Ids compare
/// byte by byte (`COLLATE "C"`): they are opaque names, and every task passes through the
/// primary key several times, where a linguistic collation would cost a `strcoll` per step.
///
/// Index choice, for a table that grows to millions of rows of which almost
/// all are finished records. Every status change moves a row out of one partial
/// index and into another, so each index below holds only the rows one query
/// needs and stays as small as that set:
///
/// - `tasks_ready (priority, seq)` over waiting tasks is the queue order
///   (`QueueKey`): `reserve` reads its first entries, skipping rows other
///   workers hold (`FOR UPDATE SKIP LOCKED`) and rows not yet due, and stops.
/// - `tasks_due (run_at)` over waiting tasks answers "when is the next task
///   due?" for an idle worker with one index probe.
/// - `tasks_leased (lease_expires_at)` over running tasks finds lapsed leases,
///   and the next lease to lapse, with one probe.
/// - `tasks_finished (finished_at, submission)` over finished tasks lets the
///   retention bound delete the oldest first without a sort.
const CREATE_TABLES: &str = "
CREATE SEQUENCE {s}.task_arrivals;
CREATE SEQUENCE {s}.lease_tokens;

CREATE TABLE {s}.tasks (
    id                 text COLLATE \"C\" PRIMARY KEY,
    name               text             NOT NULL,
    payload            bytea            NOT NULL,
    payload_checksum   bigint           NOT NULL,
    status             text             NOT NULL CHECK (status IN
                           ('pending', 'running', 'retrying', 'completed', 'dead', 'cancelled')),
    priority           integer          NOT NULL CHECK (priority BETWEEN 0 AND 65535),
    seq                bigint           NOT NULL,
    submission         bigint           NOT NULL,
    attempts           bigint           NOT NULL DEFAULT 0,
    max_attempts       bigint           NOT NULL,
    backoff            text             NOT NULL CHECK (backoff IN ('immediate', 'fixed', 'exponential')),
    backoff_initial_us bigint           NOT NULL,
    backoff_factor     double precision NOT NULL,
    backoff_max_us     bigint           NOT NULL,
    jitter             double precision NOT NULL,
    demote_by          integer          NOT NULL,
    created_at         bigint           NOT NULL,
    run_at             bigint           NOT NULL,
    started_at         bigint,
    finished_at        bigint,
    lease_token        bigint,
    lease_expires_at   bigint,
    worker             text,
    last_error_kind    text,
    last_error_message text,
    result             bytea
);

CREATE INDEX tasks_ready ON {s}.tasks (priority, seq)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX tasks_due ON {s}.tasks (run_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX tasks_leased ON {s}.tasks (lease_expires_at)
    WHERE status = 'running';
CREATE INDEX tasks_finished ON {s}.tasks (finished_at, submission)
    WHERE status IN ('completed', 'dead', 'cancelled');

CREATE TABLE {s}.queue_counters (
    shard             smallint PRIMARY KEY,
    submitted         bigint   NOT NULL DEFAULT 0,
    pending           bigint   NOT NULL DEFAULT 0,
    retrying          bigint   NOT NULL DEFAULT 0,
    running           bigint   NOT NULL DEFAULT 0,
    completed         bigint   NOT NULL DEFAULT 0,
    dead              bigint   NOT NULL DEFAULT 0,
    cancelled         bigint   NOT NULL DEFAULT 0,
    failed_attempts   bigint   NOT NULL DEFAULT 0,
    retried           bigint   NOT NULL DEFAULT 0,
    expired_leases    bigint   NOT NULL DEFAULT 0,
    evicted           bigint   NOT NULL DEFAULT 0,
    retained_finished bigint   NOT NULL DEFAULT 0
);
INSERT INTO {s}.queue_counters (shard) SELECT generate_series(0, 7);
";

/// Version 2: views and comments for a person at the `psql` prompt.
const ADD_VIEWS: &str = "
CREATE VIEW {s}.task_overview AS
    SELECT id, name, status, priority, attempts, max_attempts,
           to_timestamp(created_at / 1e6) AS created,
           to_timestamp(run_at / 1e6) AS run_at,
           to_timestamp(started_at / 1e6) AS started,
           to_timestamp(finished_at / 1e6) AS finished,
           to_timestamp(lease_expires_at / 1e6) AS lease_expires,
           worker, last_error_kind, last_error_message,
           octet_length(payload) AS payload_bytes, octet_length(result) AS result_bytes
    FROM {s}.tasks;

CREATE VIEW {s}.queue_stats AS
    SELECT sum(submitted)::bigint AS submitted, sum(pending)::bigint AS pending,
           sum(retrying)::bigint AS retrying, sum(running)::bigint AS running,
           sum(completed)::bigint AS completed, sum(dead)::bigint AS dead,
           sum(cancelled)::bigint AS cancelled, sum(failed_attempts)::bigint AS failed_attempts,
           sum(retried)::bigint AS retried, sum(expired_leases)::bigint AS expired_leases,
           sum(evicted)::bigint AS evicted, sum(retained_finished)::bigint AS retained_finished
    FROM {s}.queue_counters;

COMMENT ON TABLE {s}.tasks IS 'One row per task: its input, where it is in its life, its retry policy, its lease and its result.';
COMMENT ON COLUMN {s}.tasks.name IS 'The registered handler that runs the task.';
COMMENT ON COLUMN {s}.tasks.payload_checksum IS 'FNV-1a of payload; a mismatch marks the task corrupt instead of running damaged input.';
COMMENT ON COLUMN {s}.tasks.priority IS 'Lower runs first.';
COMMENT ON COLUMN {s}.tasks.seq IS 'Place in line within a priority (FIFO); renewed when a retry or requeue re-enters the line.';
COMMENT ON COLUMN {s}.tasks.submission IS 'Submission order; never changes. list() returns tasks in this order.';
COMMENT ON COLUMN {s}.tasks.attempts IS 'Attempts started, counted at reserve.';
COMMENT ON COLUMN {s}.tasks.run_at IS 'Not handed out before this time (microseconds since the Unix epoch).';
COMMENT ON COLUMN {s}.tasks.lease_token IS 'Set while running: identifies the reservation; complete, fail and heartbeat must present it.';
COMMENT ON COLUMN {s}.tasks.lease_expires_at IS 'Set while running: past this time the lease may be rescued as a failed attempt.';
COMMENT ON COLUMN {s}.tasks.worker IS 'The worker of the latest attempt.';
COMMENT ON TABLE {s}.queue_counters IS 'Exact counts, changed in the same transaction as the tasks they count, spread over shards; queue_stats sums them.';
COMMENT ON VIEW {s}.task_overview IS 'The tasks with readable times and sizes instead of bytes.';
COMMENT ON VIEW {s}.queue_stats IS 'The exact counts: submitted = pending + retrying + running + completed + dead + cancelled.';
";

/// Version 3: map-reduce jobs (the rules are on `Queue` in workmill-core, under "Jobs").
///
/// - `tasks.job_id` names the job of a map or a reduce; NULL for a plain task, and for the
///   tasks already stored when this migration runs (adding a nullable column without a
///   default rewrites nothing). `tasks_by_job` holds job tasks only, so it costs plain
///   tasks nothing; it finds a job's waiting tasks when the job ends.
/// - `jobs`: one row per job. Its row lock is what orders everything that happens to one
///   job: every transaction that changes a job locks its row first (`FOR UPDATE`), reads
///   the latest committed version, decides, and writes, so two workers completing a job's
///   last two maps cannot both see the last count.
/// - `job_maps`: one row per map, in submission order (`position`), holding its result once
///   it completed while the job was mapping: apart from `tasks`, so that neither the
///   retention bound nor a purge of completed tasks takes a result the reduce needs.
/// - `held_reduces`: a job's reduce, in the columns of `tasks`, until the last map completes
///   and it is copied into `tasks`. `enqueue` refuses an id held here.
const ADD_JOBS: &str = "
ALTER TABLE {s}.tasks ADD COLUMN job_id text COLLATE \"C\";
CREATE INDEX tasks_by_job ON {s}.tasks (job_id) WHERE job_id IS NOT NULL;

CREATE TABLE {s}.jobs (
    id              text COLLATE \"C\" PRIMARY KEY,
    status          text   NOT NULL CHECK (status IN
                        ('mapping', 'reducing', 'completed', 'failed', 'cancelled')),
    maps_total      bigint NOT NULL CHECK (maps_total BETWEEN 1 AND 4294967295),
    maps_done       bigint NOT NULL DEFAULT 0,
    reduce_id       text COLLATE \"C\" NOT NULL,
    failed_task_id  text COLLATE \"C\",
    failure_kind    text,
    failure_message text,
    created_at      bigint NOT NULL,
    finished_at     bigint
);

CREATE TABLE {s}.job_maps (
    job_id       text COLLATE \"C\" NOT NULL REFERENCES {s}.jobs (id),
    position     bigint NOT NULL,
    task_id      text COLLATE \"C\" NOT NULL,
    result       bytea,
    completed_at bigint,
    PRIMARY KEY (job_id, position),
    UNIQUE (job_id, task_id)
);

CREATE TABLE {s}.held_reduces (
    id                 text COLLATE \"C\" PRIMARY KEY,
    job_id             text COLLATE \"C\" NOT NULL UNIQUE REFERENCES {s}.jobs (id),
    name               text             NOT NULL,
    payload            bytea            NOT NULL,
    payload_checksum   bigint           NOT NULL,
    priority           integer          NOT NULL CHECK (priority BETWEEN 0 AND 65535),
    max_attempts       bigint           NOT NULL,
    backoff            text             NOT NULL CHECK (backoff IN ('immediate', 'fixed', 'exponential')),
    backoff_initial_us bigint           NOT NULL,
    backoff_factor     double precision NOT NULL,
    backoff_max_us     bigint           NOT NULL,
    jitter             double precision NOT NULL,
    demote_by          integer          NOT NULL,
    run_at             bigint
);

CREATE VIEW {s}.job_overview AS
    SELECT id, status, maps_done || '/' || maps_total AS maps_done, reduce_id,
           failed_task_id, failure_kind, failure_message,
           to_timestamp(created_at / 1e6) AS created,
           to_timestamp(finished_at / 1e6) AS finished
    FROM {s}.jobs;

COMMENT ON COLUMN {s}.tasks.job_id IS 'The map-reduce job this task is a map or the reduce of; NULL for a plain task.';
COMMENT ON TABLE {s}.jobs IS 'One row per map-reduce job: its status, maps done out of total, its reduce, and the task that failed it.';
COMMENT ON COLUMN {s}.jobs.maps_done IS 'Maps that completed while the job was mapping; the reduce is enqueued when this reaches maps_total.';
COMMENT ON COLUMN {s}.jobs.reduce_id IS 'The reduce task; a task of this id exists once the last map completed.';
COMMENT ON COLUMN {s}.jobs.failed_task_id IS 'The map or reduce whose death failed the job (with failure_kind and failure_message).';
COMMENT ON TABLE {s}.job_maps IS 'One row per map of a job, in submission order, with the map''s result once it completed: kept here, beyond the retention bound of task records.';
COMMENT ON TABLE {s}.held_reduces IS 'The reduce of a job still mapping, held back until its last map completes and then copied into tasks.';
COMMENT ON VIEW {s}.job_overview IS 'The jobs with readable times and progress (maps_done as 3/8).';
";
