//! `SqliteQueue`: durable tasks in one SQLite file that several processes on one machine share.
//!
//! The design (schema, transactions, why several processes are safe) is
//! written down in `README.md` next to this file.

mod admin;
mod config;
mod connection;
mod counters;
mod enqueue;
mod failure;
mod job_bookkeeping;
mod jobs;
mod lease;
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

use std::path::Path;
use std::time::{Duration, Instant};

use workmill_core::{
    FailOutcome, Failure, JobRecord, Lease, ListFilter, NewJob, NewTask, Queue, QueueError,
    QueueStats, Reservation, TaskId, TaskRecord, TaskStatus, WorkerId,
};

pub use config::{SqliteConfig, Synchronous};
pub use connection::OpenError;
pub use schema::SchemaError;
pub use url::SqliteLocation;

use connection::{Connections, open_connection};
use store::{BACKEND, store_error};
use wakeup::Wakeup;

use crate::doorbell::Bell;

/// A [`Queue`] kept in a SQLite database file.
///
/// Every operation is one SQLite transaction, so a task's state survives a
/// crash of any process at any point (see [`Synchronous`] for power loss).
/// Several `SqliteQueue` values, in one process or in many, may open the same
/// file at once: writes are serialised by SQLite's write lock, taken up front
/// (`BEGIN IMMEDIATE`), and a writer that finds the lock taken waits up to the
/// busy timeout. Reservations are leases: a task whose worker dies returns to
/// the queue when its lease lapses, counted as a failed attempt.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_core::{NewTask, Queue, WorkerId};
/// use workmill_queue::sqlite::SqliteQueue;
///
/// let queue = SqliteQueue::open("sqlite::memory:")?;
/// let id = queue.enqueue(NewTask::new("email.send", b"hello".to_vec()))?;
/// let worker = WorkerId::new("worker-1")?;
/// let [task] = <[_; 1]>::try_from(queue.reserve(&worker, 10, Duration::from_secs(30))?).unwrap();
/// assert_eq!(task.id(), &id);
/// queue.complete(&task.lease, b"sent".to_vec())?;
/// assert_eq!(queue.status(&id)?.result.as_deref(), Some(&b"sent"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteQueue {
    connections: Connections,
    location: SqliteLocation,
    config: SqliteConfig,
    wakeup: Wakeup,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("location", &self.location)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqliteQueue {
    /// Opens the queue at `url` with the default [`SqliteConfig`].
    pub fn open(url: &str) -> Result<SqliteQueue, QueueError> {
        SqliteQueue::open_with(url, SqliteConfig::new())
    }

    /// Opens the queue in the database file at `path` with `config`.
    pub fn open_path(
        path: impl AsRef<Path>,
        config: SqliteConfig,
    ) -> Result<SqliteQueue, QueueError> {
        SqliteQueue::open_location(SqliteLocation::File(path.as_ref().to_path_buf()), config)
    }

    /// Opens the queue at `url` with `config`.
    pub fn open_with(url: &str, config: SqliteConfig) -> Result<SqliteQueue, QueueError> {
        SqliteQueue::open_location(SqliteLocation::parse(url)?, config)
    }

    fn open_location(
        location: SqliteLocation,
        config: SqliteConfig,
    ) -> Result<SqliteQueue, QueueError> {
        let count = match location {
            SqliteLocation::Memory => 1,
            SqliteLocation::File(_) => config.connections.max(1),
        };
        let mut first = open_connection(&location, &config)?;
        schema::migrate(&mut first, schema::LATEST_VERSION)
            .map_err(schema::MigrateError::into_queue_error)?;
        let mut slots = vec![first];
        for _ in 1..count {
            slots.push(open_connection(&location, &config)?);
        }
        Ok(SqliteQueue {
            connections: Connections::new(slots),
            wakeup: Wakeup::new(location.clone(), config.clone()),
            location,
            config,
        })
    }

    /// Where the tasks are kept.
    pub fn location(&self) -> &SqliteLocation {
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

    /// The schema version of the database (the newest migration applied).
    pub fn schema_version(&self) -> Result<i64, QueueError> {
        self.connections
            .get()
            .query_row("SELECT max(version) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .map_err(store_error("read the schema version"))
    }
}

impl Queue for SqliteQueue {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
        let mut ids = self.enqueue_batch(vec![task])?;
        ids.pop().ok_or_else(|| {
            QueueError::backend(BACKEND, "enqueue a task", "the insert reported no id")
        })
    }

    /// Adds every task in one transaction: all of them, or none.
    fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, QueueError> {
        let ids = enqueue::enqueue_all(
            &mut self.connections.get(),
            tasks,
            self.config.payload_limit,
        )?;
        self.wakeup.work();
        Ok(ids)
    }

    fn reserve(
        &self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        reserve::reserve(
            &mut self.connections.get(),
            worker,
            max,
            lease,
            self.config.retain_finished,
        )
    }

    /// Returns at once if a task is due or a lease has lapsed; otherwise sleeps until news
    /// makes one so (this queue value's own writes, or another connection's commit, seen
    /// within 5 ms through `PRAGMA data_version`), or `timeout` (at most 50 ms, so that
    /// delayed tasks coming due are looked at). Each look is a read: idle workers do not
    /// take the write lock until there is work.
    fn await_work(&self, timeout: Duration) -> Result<(), QueueError> {
        let deadline = Instant::now() + timeout.min(Duration::from_millis(50));
        loop {
            // Read before the look: news after the look rings past it.
            let seen = self.wakeup.seen(Bell::Work);
            if wakeup::work_due(&self.connections.get())? {
                return Ok(());
            }
            if !self.wakeup.sleep(Bell::Work, seen, deadline) {
                return Ok(());
            }
        }
    }

    fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
        lease::heartbeat(&mut self.connections.get(), lease, extend)
    }

    /// Extends every lease in one write transaction.
    fn heartbeat_batch(
        &self,
        leases: &[Lease],
        extend: Duration,
    ) -> Result<Vec<Result<Lease, QueueError>>, QueueError> {
        lease::heartbeat_all(&mut self.connections.get(), leases, extend)
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

    /// Records every completion in one transaction.
    fn complete_batch(
        &self,
        done: Vec<(Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let outcomes = lease::complete_all(
            &mut self.connections.get(),
            done,
            self.config.retain_finished,
        )?;
        // A completion may release a job's reduce: work, too.
        self.wakeup.done_or_work();
        Ok(outcomes)
    }

    fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
        let outcome = lease::fail(
            &mut self.connections.get(),
            lease,
            failure,
            self.config.retain_finished,
        )?;
        self.wakeup.done_or_work();
        Ok(outcome)
    }

    fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        lease::release(&mut self.connections.get(), lease)?;
        self.wakeup.work();
        Ok(())
    }

    fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
        admin::cancel(&mut self.connections.get(), id, self.config.retain_finished)?;
        self.wakeup.done();
        Ok(())
    }

    fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
        admin::requeue(&mut self.connections.get(), id)?;
        self.wakeup.work();
        Ok(())
    }

    fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
        admin::status(&self.connections.get(), id)
    }

    /// Looks again whenever this queue value records an outcome or another connection commits
    /// (seen within 5 ms), instead of polling on a timer.
    fn wait(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, QueueError> {
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        loop {
            let seen = self.wakeup.seen(Bell::Done);
            let record = self.status(id)?;
            if record.status.is_final() {
                return Ok(record);
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return Err(QueueError::Timeout {
                    id: id.clone(),
                    waited: now - start,
                    status: record.status,
                });
            }
            // A slice at a time, so that a rescue that ends the task is seen too.
            let slice = now + Duration::from_millis(50);
            self.wakeup.sleep(
                Bell::Done,
                seen,
                deadline.map_or(slice, |deadline| deadline.min(slice)),
            );
        }
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        admin::list(&self.connections.get(), filter)
    }

    fn stats(&self) -> Result<QueueStats, QueueError> {
        admin::stats(&self.connections.get())
    }

    fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
        admin::purge(
            &mut self.connections.get(),
            statuses,
            self.config.retain_finished,
        )
    }

    /// Enqueues the maps, holds back the reduce and records the job in one transaction.
    fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
        let id = jobs::submit_job(&mut self.connections.get(), job, self.config.payload_limit)?;
        self.wakeup.work();
        Ok(id)
    }

    fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
        jobs::job(&mut self.connections.get(), id)
    }

    fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        jobs::job_results(&mut self.connections.get(), id)
    }

    fn rescue_expired(&self) -> Result<u64, QueueError> {
        let rescued =
            admin::rescue_expired(&mut self.connections.get(), self.config.retain_finished)?;
        if rescued > 0 {
            self.wakeup.done_or_work();
        }
        Ok(rescued)
    }
}
