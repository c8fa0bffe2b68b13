//! The database schema and its versioned migrations, applied in order when a queue is opened.
//!
//! Each migration runs once, inside the same `BEGIN IMMEDIATE` transaction that
//! records it in `schema_migrations`, so two processes opening one new file at
//! the same moment cannot both migrate it: the second waits for the first and
//! then finds nothing left to do. A file written by a newer workmill (a version
//! this build does not know) is refused rather than misread.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;
use workmill_core::{QueueError, Timestamp};

use super::row::payload_checksum;
use super::store::micros;

/// One step of the schema's history.
pub(crate) struct Migration {
    /// Its version; versions are 1, 2, 3, ... in order.
    pub(crate) version: i64,
    /// What it does, as stored in `schema_migrations.description`.
    pub(crate) description: &'static str,
    /// The change itself.
    pub(crate) apply: fn(&Connection) -> rusqlite::Result<()>,
}

/// The schema's history; a new version appends a migration and never edits an old one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "create tasks, queue_counters, the task_overview view and the indexes for reserve, lease expiry and retention",
        apply: create_tables,
    },
    Migration {
        version: 2,
        description: "add tasks.payload_checksum so that damaged payloads are detected instead of run",
        apply: add_payload_checksum,
    },
    Migration {
        version: 3,
        description: "add map-reduce jobs: tasks.job_id, the jobs, job_maps and held_reduces tables and the job_overview view",
        apply: add_jobs,
    },
];

/// The schema version this build writes.
pub(crate) const LATEST_VERSION: i64 = 3;

/// The database holds something this build cannot use as a queue.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// The file was migrated by a newer workmill.
    #[error(
        "the database is at schema version {found}, newer than the {supported} this build of workmill knows; upgrade workmill to open it"
    )]
    TooNew {
        /// The version recorded in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

/// Brings the database up to `target` (normally [`LATEST_VERSION`]) and returns the version it was at.
pub(crate) fn migrate(conn: &mut Connection, target: i64) -> Result<i64, MigrateError> {
    // A file already at `target` needs nothing written, and reading its version takes no write
    // lock: so opening a store (a worker's reconnect, many processes starting at once) does not
    // queue behind every writer of a busy file. A read-only file still takes the path below,
    // where the write lock refuses it as it always did.
    if !conn.is_readonly(rusqlite::MAIN_DB)?
        && let Some(found) = recorded_version(conn)
    {
        if found > LATEST_VERSION {
            return Err(MigrateError::Schema(SchemaError::TooNew {
                found,
                supported: LATEST_VERSION,
            }));
        }
        if found >= target {
            return Ok(found);
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER PRIMARY KEY,
             description TEXT    NOT NULL,
             applied_at  INTEGER NOT NULL  -- microseconds since the Unix epoch
         );",
    )?;
    let found: i64 = tx
        .query_row("SELECT max(version) FROM schema_migrations", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if found > LATEST_VERSION {
        return Err(MigrateError::Schema(SchemaError::TooNew {
            found,
            supported: LATEST_VERSION,
        }));
    }
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > found && m.version <= target)
    {
        (migration.apply)(&tx)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![
                migration.version,
                migration.description,
                micros(Timestamp::now())
            ],
        )?;
    }
    tx.commit()?;
    Ok(found)
}

/// The newest schema version recorded in the file, read without a transaction of its own; `None`
/// if it cannot be read now (no migrations table yet, or the file locked past the busy timeout),
/// which [`migrate`] then settles under the write lock.
fn recorded_version(conn: &Connection) -> Option<i64> {
    conn.query_row("SELECT max(version) FROM schema_migrations", [], |row| {
        row.get::<_, Option<i64>>(0)
    })
    .ok()
    .flatten()
}

/// Why [`migrate`] failed.
#[derive(Debug, Error)]
pub(crate) enum MigrateError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl MigrateError {
    /// The error `open` returns: a schema too new for this build, a file that is not a
    /// database and a read-only file are [`QueueError::Incompatible`], which no retry can mend
    /// (a worker must not wait it out); anything else is the store failing.
    pub(crate) fn into_queue_error(self) -> QueueError {
        match self {
            MigrateError::Schema(schema) => QueueError::Incompatible {
                backend: super::BACKEND,
                reason: schema.to_string(),
            },
            MigrateError::Sqlite(err) if super::connection::unusable(&err) => {
                QueueError::Incompatible {
                    backend: super::BACKEND,
                    reason: format!(
                        "cannot set up the schema: {err}; the file is not a SQLite database, or \
                         is read-only for this process"
                    ),
                }
            }
            MigrateError::Sqlite(err) => {
                QueueError::backend(super::BACKEND, "migrate the schema", err)
            }
        }
    }
}

/// Version 1: the tables, the view and the indexes.
///
/// Index choice, for a table that grows to millions of rows of which almost all
/// are finished records:
///
/// - `tasks_ready (priority, seq, run_at) WHERE status IN ('pending', 'retrying')`
///   serves `reserve`. It is partial, so it holds only waiting tasks and stays
///   as small as the backlog however many finished records the table keeps;
///   its order is exactly the queue order (`QueueKey` = priority, then arrival
///   number), so `ORDER BY priority, seq LIMIT n` reads the first entries and
///   stops, with no sort. `run_at` rides along so that tasks delayed into the
///   future are skipped inside the index without touching the table. (A backlog
///   of many future-delayed tasks at a more urgent priority than the due ones is
///   skipped entry by entry; the common case reads `n` entries.)
/// - `tasks_leased (lease_expires_at) WHERE status = 'running'` lets the rescue
///   of lapsed leases, run inside every `reserve`, look at exactly the running
///   tasks whose lease is over: a range scan from the start of the index.
/// - `tasks_finished (finished_at) WHERE status IN (final)` lets the retention
///   bound delete the oldest finished records in order without a sort.
///
/// Every status change touches at most these three small partial indexes and
/// the primary key, which keeps commits cheap.
fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE tasks (
             id                 TEXT    NOT NULL PRIMARY KEY,
             name               TEXT    NOT NULL,  -- the registered handler that runs it
             payload            BLOB    NOT NULL,  -- the encoded input
             status             TEXT    NOT NULL CHECK (status IN
                                    ('pending', 'running', 'retrying', 'completed', 'dead', 'cancelled')),
             priority           INTEGER NOT NULL,  -- lower runs first
             seq                INTEGER NOT NULL,  -- arrival number: FIFO within a priority
             attempts           INTEGER NOT NULL DEFAULT 0,  -- attempts started
             max_attempts       INTEGER NOT NULL,  -- the retry policy, column by column
             backoff            TEXT    NOT NULL CHECK (backoff IN ('immediate', 'fixed', 'exponential')),
             backoff_initial_us INTEGER NOT NULL,
             backoff_factor     REAL    NOT NULL,
             backoff_max_us     INTEGER NOT NULL,
             jitter             REAL    NOT NULL,
             demote_by          INTEGER NOT NULL,  -- priority levels lost per retry
             created_at         INTEGER NOT NULL,  -- times in microseconds since the Unix epoch
             run_at             INTEGER NOT NULL,  -- not handed out before this time
             started_at         INTEGER,
             finished_at        INTEGER,
             lease_token        INTEGER,           -- set while running: identifies the reservation
             lease_expires_at   INTEGER,
             worker             TEXT,              -- the worker of the latest attempt
             last_error_kind    TEXT,              -- error, permanent, panic, lease_expired, ...
             last_error_message TEXT,
             result             BLOB               -- the encoded output, once completed
         );

         CREATE INDEX tasks_ready ON tasks (priority, seq, run_at)
             WHERE status IN ('pending', 'retrying');
         CREATE INDEX tasks_leased ON tasks (lease_expires_at)
             WHERE status = 'running';
         CREATE INDEX tasks_finished ON tasks (finished_at)
             WHERE status IN ('completed', 'dead', 'cancelled');

         -- One row of exact counts, updated in the same transaction as the tasks they count.
         CREATE TABLE queue_counters (
             id                INTEGER PRIMARY KEY CHECK (id = 1),
             submitted         INTEGER NOT NULL DEFAULT 0,
             pending           INTEGER NOT NULL DEFAULT 0,
             retrying          INTEGER NOT NULL DEFAULT 0,
             running           INTEGER NOT NULL DEFAULT 0,
             completed         INTEGER NOT NULL DEFAULT 0,  -- gauges include evicted records
             dead              INTEGER NOT NULL DEFAULT 0,
             cancelled         INTEGER NOT NULL DEFAULT 0,
             failed_attempts   INTEGER NOT NULL DEFAULT 0,
             retried           INTEGER NOT NULL DEFAULT 0,
             expired_leases    INTEGER NOT NULL DEFAULT 0,
             evicted           INTEGER NOT NULL DEFAULT 0,
             retained_finished INTEGER NOT NULL DEFAULT 0,  -- finished records still stored
             last_seq          INTEGER NOT NULL DEFAULT 0,  -- the last arrival number handed out
             last_lease_token  INTEGER NOT NULL DEFAULT 0   -- the last lease token handed out
         );
         INSERT INTO queue_counters (id) VALUES (1);

         -- The tasks with readable times, for a person at the sqlite3 prompt.
         CREATE VIEW task_overview AS
             SELECT id, name, status, priority, attempts, max_attempts,
                    strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1e6, 'unixepoch') AS created,
                    strftime('%Y-%m-%dT%H:%M:%fZ', run_at / 1e6, 'unixepoch') AS run_at,
                    strftime('%Y-%m-%dT%H:%M:%fZ', started_at / 1e6, 'unixepoch') AS started,
                    strftime('%Y-%m-%dT%H:%M:%fZ', finished_at / 1e6, 'unixepoch') AS finished,
                    strftime('%Y-%m-%dT%H:%M:%fZ', lease_expires_at / 1e6, 'unixepoch') AS lease_expires,
                    worker, last_error_kind, last_error_message,
                    length(payload) AS payload_bytes, length(result) AS result_bytes
             FROM tasks;",
    )
}

/// Version 2: a checksum of each payload, backfilled for the tasks already stored.
///
/// SQLite does not checksum its pages, so a payload damaged on disk or by a hand
/// edit would otherwise reach a handler as if it were the submitter's input.
fn add_payload_checksum(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "ALTER TABLE tasks ADD COLUMN payload_checksum INTEGER NOT NULL DEFAULT 0;",
    )?;
    let mut select = conn.prepare("SELECT rowid, payload FROM tasks")?;
    let mut update = conn.prepare("UPDATE tasks SET payload_checksum = ?1 WHERE rowid = ?2")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        // A payload stored with the wrong type keeps checksum 0 and reads as corrupt later;
        // one damaged row must not make the whole file unopenable.
        if let ValueRef::Blob(payload) = row.get_ref(1)? {
            update.execute(params![payload_checksum(payload), rowid])?;
        }
    }
    Ok(())
}

/// Version 3: map-reduce jobs.
///
/// - `tasks.job_id` links a job's maps and its reduce to the job; it is NULL
///   for a plain task, so the partial index `tasks_by_job` holds job tasks only
///   and costs plain tasks nothing. `complete` reads it back with `RETURNING`,
///   so telling a plain task from a job's costs no extra query.
/// - `jobs`: one row per job: its status, maps done out of total, its reduce's
///   id, and the task that failed it.
/// - `job_maps`: one row per map, in submission order (`position`), holding
///   the map's result once it completed, apart from the task rows so that the
///   retention bound never takes a result the reduce needs. `job_maps_by_task`
///   finds a completing map's row without scanning its job's other maps.
/// - `held_reduces`: a job's reduce, spelled out in the columns of `tasks`,
///   until the last map completes and it is copied into `tasks`. Its primary
///   key is how `enqueue` refuses a held-back id.
fn add_jobs(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "ALTER TABLE tasks ADD COLUMN job_id TEXT;  -- the job it is a map or the reduce of; NULL for a plain task
         CREATE INDEX tasks_by_job ON tasks (job_id) WHERE job_id IS NOT NULL;

         CREATE TABLE jobs (
             id              TEXT    NOT NULL PRIMARY KEY,
             status          TEXT    NOT NULL CHECK (status IN
                                 ('mapping', 'reducing', 'completed', 'failed', 'cancelled')),
             maps_total      INTEGER NOT NULL,
             maps_done       INTEGER NOT NULL DEFAULT 0,  -- maps completed while the job was mapping
             reduce_id       TEXT    NOT NULL,  -- a task of this id exists once the last map completed
             failed_task_id  TEXT,              -- the map or reduce that failed the job
             failure_kind    TEXT,              -- error, permanent, panic, lease_expired, ...
             failure_message TEXT,
             created_at      INTEGER NOT NULL,  -- times in microseconds since the Unix epoch
             finished_at     INTEGER
         );

         -- One row per map of a job, with the map's result once it completed.
         CREATE TABLE job_maps (
             job_id       TEXT    NOT NULL REFERENCES jobs (id),
             position     INTEGER NOT NULL,  -- the map's place in the job: results come back in this order
             task_id      TEXT    NOT NULL,
             result       BLOB,              -- kept here, beyond the retention bound of task records
             completed_at INTEGER,
             PRIMARY KEY (job_id, position)
         );
         CREATE INDEX job_maps_by_task ON job_maps (task_id);

         -- The reduce of a job still mapping, held back until its last map completes.
         CREATE TABLE held_reduces (
             id                 TEXT    NOT NULL PRIMARY KEY,
             job_id             TEXT    NOT NULL REFERENCES jobs (id),
             name               TEXT    NOT NULL,
             payload            BLOB    NOT NULL,
             payload_checksum   INTEGER NOT NULL,
             priority           INTEGER NOT NULL,
             max_attempts       INTEGER NOT NULL,
             backoff            TEXT    NOT NULL,
             backoff_initial_us INTEGER NOT NULL,
             backoff_factor     REAL    NOT NULL,
             backoff_max_us     INTEGER NOT NULL,
             jitter             REAL    NOT NULL,
             demote_by          INTEGER NOT NULL,
             run_at             INTEGER            -- NULL: as soon as it is enqueued
         );
         CREATE INDEX held_reduces_by_job ON held_reduces (job_id);

         -- The jobs with readable times and progress, for a person at the sqlite3 prompt.
         CREATE VIEW job_overview AS
             SELECT id, status, maps_done || '/' || maps_total AS maps_done, reduce_id,
                    failed_task_id, failure_kind, failure_message,
                    strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1e6, 'unixepoch') AS created,
                    strftime('%Y-%m-%dT%H:%M:%fZ', finished_at / 1e6, 'unixepoch') AS finished
             FROM jobs;",
    )
}
