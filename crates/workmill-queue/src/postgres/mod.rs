//! `PostgresQueue`: durable tasks in a PostgreSQL schema that worker processes on many machines share.
//!
//! The design (schema, statements, the lease and retry protocol, wake-ups) is written down in
//! `README.md` next to this file.

mod admin;
mod complete;
mod config;
mod counters;
mod enqueue;
mod failure;
mod job_bookkeeping;
mod jobs;
mod lease;
mod maintenance;
mod pool;
mod rescue;
mod reserve;
mod row;
mod schema;
mod store;
mod url;
mod wakeup;

#[cfg(feature = "testkit")]
mod testkit_hooks;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use workmill_core::{
    FailOutcome, Failure, JobRecord, Lease, ListFilter, NewJob, NewTask, Queue, QueueError,
    QueueStats, Reservation, TaskId, TaskRecord, TaskStatus, WorkerId,
};

pub use config::{PostgresConfig, SynchronousCommit};
pub use pool::ConnectError;
pub use schema::SchemaError;
pub use url::{DEFAULT_SCHEMA, MAX_SCHEMA_LEN, PostgresLocation, validate_schema_name};

use maintenance::Maintenance;
use pool::{Connector, Pool, Session, Settings};
use store::{BACKEND, store_error};
use wakeup::Wakeup;

/// A [`Queue`] kept in a PostgreSQL schema.
///
/// Every operation is one statement or one transaction, so a task's state survives a crash
/// of any client at any point. Any number of `PostgresQueue` values, in one process or on
/// many machines, may open the same schema: reservers skip each other's rows
/// (`FOR UPDATE SKIP LOCKED`), lease holders prove their lease in the statement that uses
/// it, and a task whose worker dies returns to the queue when its lease lapses, counted as
/// a failed attempt. Idle workers sleep on LISTEN/NOTIFY instead of polling.
///
/// A connection the server closes (a restart, `pg_terminate_backend`, a network failure)
/// fails the call that finds it with a transient [`QueueError::Backend`]; the next call
/// opens a new one, so a worker loop carries on by itself.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use workmill_core::{NewTask, Queue, WorkerId};
/// use workmill_queue::postgres::PostgresQueue;
///
/// let queue = PostgresQueue::open("postgres://app@db.example:5432/app?schema=mail")?;
/// let id = queue.enqueue(NewTask::new("email.send", b"hello".to_vec()))?;
/// let worker = WorkerId::new("worker-1")?;
/// for task in queue.reserve(&worker, 10, Duration::from_secs(30))? {
///     queue.complete(&task.lease, b"sent".to_vec())?;
/// }
/// assert!(queue.status(&id)?.status.is_final());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PostgresQueue {
    pool: Pool,
    wakeup: Wakeup,
    maintenance: Maintenance,
    schema: String,
    location: PostgresLocation,
    config: PostgresConfig,
}

impl std::fmt::Debug for PostgresQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresQueue")
            .field("location", &self.location)
            .field("schema", &self.schema)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PostgresQueue {
    /// Opens the queue at `url` with the default [`PostgresConfig`].
    pub fn open(url: &str) -> Result<PostgresQueue, QueueError> {
        PostgresQueue::open_with(url, PostgresConfig::new())
    }

    /// Opens the queue at `url` with `config`: connects, creates the schema if needed and
    /// migrates it to the current version.
    pub fn open_with(url: &str, config: PostgresConfig) -> Result<PostgresQueue, QueueError> {
        let mut location = PostgresLocation::parse(url)?;
        let invalid = |reason: String| QueueError::InvalidUrl {
            url: location.redacted().to_owned(),
            reason,
        };
        let schema = match (&config.schema, location.schema()) {
            (Some(configured), Some(named)) if configured != named => {
                return Err(invalid(format!(
                    "the URL names schema {named:?} but PostgresConfig::schema says {configured:?}; give it once"
                )));
            }
            (Some(configured), _) => configured.clone(),
            (None, Some(named)) => named.to_owned(),
            (None, None) => DEFAULT_SCHEMA.to_owned(),
        };
        validate_schema_name(&schema).map_err(&invalid)?;
        if location.config.get_connect_timeout().is_none() {
            location.config.connect_timeout(config.connect_timeout);
        }
        location.config.notice_callback(|notice| {
            tracing::debug!(message = notice.message(), "PostgreSQL notice");
        });
        let settings = Arc::new(Settings::new(
            &schema,
            config.retain_finished,
            config.payload_limit,
        ));
        let connector = Connector {
            config: location.config.clone(),
            redacted_url: location.redacted().to_owned(),
            synchronous_commit: config.synchronous_commit,
        };
        let mut client = connector.connect()?;
        schema::migrate(&mut client, &schema, &settings, schema::LATEST_VERSION)
            .map_err(schema::MigrateError::into_queue_error)?;
        let first = Session::new(client, Arc::clone(&settings));
        Ok(PostgresQueue {
            pool: Pool::new(
                config.connections,
                first,
                connector.clone(),
                Arc::clone(&settings),
            ),
            wakeup: Wakeup::new(
                connector.clone(),
                Arc::clone(&settings),
                config.poll_interval,
            ),
            maintenance: Maintenance::new(config.vacuum_every, connector, settings),
            schema,
            location,
            config,
        })
    }

    /// The schema the queue's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The server, database and schema, as given (password removed).
    pub fn location(&self) -> &PostgresLocation {
        &self.location
    }

    /// The lease a worker should ask for when its own options do not say.
    pub fn default_lease(&self) -> Duration {
        self.config.default_lease
    }

    /// The bound on stored finished records, if any.
    pub fn retention(&self) -> Option<u64> {
        self.config.retain_finished
    }

    /// The largest payload accepted, in bytes.
    pub fn payload_limit(&self) -> usize {
        self.config.payload_limit
    }

    /// Passes `outcome` through, counting the row versions it wrote toward the next vacuum.
    fn wrote<T>(
        &self,
        outcome: Result<T, QueueError>,
        rows: impl FnOnce(&T) -> usize,
    ) -> Result<T, QueueError> {
        if let Ok(value) = &outcome {
            self.maintenance.wrote(rows(value) as u64);
        }
        outcome
    }

    /// The schema version in the database (the newest migration applied).
    pub fn schema_version(&self) -> Result<i32, QueueError> {
        const OP: &str = "read the schema version";
        self.pool.with(|session| {
            let sql = session
                .settings
                .render("SELECT max(version) FROM {s}.schema_migrations");
            session
                .client
                .query_one(&sql, &[])
                .and_then(|row| row.try_get(0))
                .map_err(store_error(OP))
        })
    }
}

impl Queue for PostgresQueue {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
        let mut ids = self.enqueue_batch(vec![task])?;
        ids.pop().ok_or_else(|| {
            QueueError::backend(BACKEND, "enqueue a task", "the insert reported no id")
        })
    }

    /// Adds every task in one statement: all of them, or none.
    fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, QueueError> {
        let outcome = self
            .pool
            .with(|session| enqueue::enqueue_all(session, tasks));
        self.wrote(outcome, Vec::len)
    }

    fn reserve(
        &self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        let outcome = self
            .pool
            .with(|session| reserve::reserve(session, worker, max, lease));
        self.wrote(outcome, Vec::len)
    }

    /// Sleeps until a notification says work arrived, the next delayed task or lease is due,
    /// the poll interval passes, or `timeout`; returns at once if work is due now.
    fn await_work(&self, timeout: Duration) -> Result<(), QueueError> {
        self.wakeup.await_work(&self.pool, timeout)
    }

    fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
        let outcome = self
            .pool
            .with(|session| lease::heartbeat(session, lease, extend));
        self.wrote(outcome, |_| 1)
    }

    fn complete(&self, lease: &Lease, result: Vec<u8>) -> Result<(), QueueError> {
        let mut outcomes = self.complete_batch(vec![(lease.clone(), result)])?;
        outcomes.pop().unwrap_or_else(|| {
            Err(QueueError::backend(
                BACKEND,
                "complete a task",
                "no outcome reported",
            ))
        })
    }

    /// Records every completion in one statement.
    fn complete_batch(
        &self,
        done: Vec<(Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let outcome = self
            .pool
            .with(|session| complete::complete_all(session, done));
        self.wrote(outcome, |outcomes| {
            outcomes.iter().filter(|o| o.is_ok()).count()
        })
    }

    fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
        let outcome = self
            .pool
            .with(|session| lease::fail(session, lease, failure));
        self.wrote(outcome, |_| 1)
    }

    fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        let outcome = self.pool.with(|session| lease::release(session, lease));
        self.wrote(outcome, |_| 1)
    }

    fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
        let outcome = self.pool.with(|session| admin::cancel(session, id));
        self.wrote(outcome, |_| 1)
    }

    fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
        let outcome = self.pool.with(|session| admin::requeue(session, id));
        self.wrote(outcome, |_| 1)
    }

    fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
        self.pool.with(|session| admin::status(session, id))
    }

    /// Waits on completion notifications, looking at the task again at each one.
    fn wait(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, QueueError> {
        self.wakeup.wait(&self.pool, id, timeout)
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        self.pool.with(|session| admin::list(session, filter))
    }

    fn stats(&self) -> Result<QueueStats, QueueError> {
        self.pool.with(admin::stats)
    }

    fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
        self.pool.with(|session| admin::purge(session, statuses))
    }

    /// Enqueues the maps, holds back the reduce and records the job in one transaction.
    fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
        let maps = job.maps.len();
        let outcome = self.pool.with(|session| jobs::submit_job(session, job));
        self.wrote(outcome, |_| maps + 2)
    }

    fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
        self.pool.with(|session| jobs::job(session, id))
    }

    fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        self.pool.with(|session| jobs::job_results(session, id))
    }

    fn rescue_expired(&self) -> Result<u64, QueueError> {
        let outcome = self.pool.with(admin::rescue_expired);
        self.wrote(outcome, |&rescued| {
            usize::try_from(rescued).unwrap_or(usize::MAX)
        })
    }
}
