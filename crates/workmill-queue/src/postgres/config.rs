//! `PostgresConfig`: the builder for a PostgreSQL queue's settings (schema, leases, retention,
//! payload limit, connections, commit durability, idle polling).

use std::time::Duration;

use workmill_core::QueueError;

use super::PostgresQueue;

/// Whether a commit waits for its write-ahead log record to reach the server's disk.
///
/// Set per session (`SET synchronous_commit`), never on the server, so other
/// applications sharing the server keep their own setting.
///
/// With [`On`](SynchronousCommit::On) a call returns only once its change is on
/// the server's disk. With [`Off`](SynchronousCommit::Off) it returns once the
/// change is committed in memory; the server writes it out within about three
/// times `wal_writer_delay` (600 ms by default). If the *server* crashes in that
/// window, the last acknowledged changes are lost (never half-applied: the
/// database stays consistent). A lost enqueue is a task its submitter believes
/// stored; a lost reserve or complete means the task runs again, which
/// at-least-once delivery allows. A crash of a worker or producer process loses
/// nothing under either setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SynchronousCommit {
    /// The server's default: every commit is durable when the call returns.
    #[default]
    On,
    /// Commits are acknowledged before they are flushed; see above for what that risks.
    Off,
}

/// Settings of a [`PostgresQueue`], built step by step and then opened.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use workmill_queue::postgres::{PostgresConfig, SynchronousCommit};
///
/// let queue = PostgresConfig::new()
///     .schema("billing_jobs")
///     .connections(8)
///     .retain_finished(Some(50_000))
///     .synchronous_commit(SynchronousCommit::On)
///     .open("postgres://app@db.example:5432/app")?;
/// assert_eq!(queue.schema(), "billing_jobs");
/// # Ok::<(), workmill_core::QueueError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PostgresConfig {
    pub(crate) schema: Option<String>,
    pub(crate) default_lease: Duration,
    pub(crate) retain_finished: Option<u64>,
    pub(crate) payload_limit: usize,
    pub(crate) connections: usize,
    pub(crate) synchronous_commit: SynchronousCommit,
    pub(crate) connect_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) vacuum_every: Option<u64>,
}

impl Default for PostgresConfig {
    fn default() -> PostgresConfig {
        PostgresConfig::new()
    }
}

impl PostgresConfig {
    /// The defaults: the schema from the URL (else `workmill`), 30 s leases, 100,000 finished
    /// records kept, payloads up to 8 MiB, up to 4 connections per queue value, durable
    /// commits, a 10 s connect timeout, idle workers looking again at least every second, and
    /// a background vacuum of the queue's tables after every 100,000 row versions written.
    pub fn new() -> PostgresConfig {
        PostgresConfig {
            schema: None,
            default_lease: Duration::from_secs(30),
            retain_finished: Some(100_000),
            payload_limit: 8 * 1024 * 1024,
            connections: 4,
            synchronous_commit: SynchronousCommit::On,
            connect_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            vacuum_every: Some(100_000),
        }
    }

    /// Keeps the queue in schema `name` (created on first open). A URL's `?schema=` must agree.
    ///
    /// Separate schemas are separate queues: tests, tenants or process groups sharing one
    /// database each use their own.
    #[must_use]
    pub fn schema(mut self, name: impl Into<String>) -> PostgresConfig {
        self.schema = Some(name.into());
        self
    }

    /// The lease a worker asks for when its own options do not say; workers heartbeat well within it.
    #[must_use]
    pub fn default_lease(mut self, lease: Duration) -> PostgresConfig {
        self.default_lease = lease;
        self
    }

    /// Keeps at most `bound` finished (completed, dead, cancelled) records, dropping the
    /// oldest first; `None` keeps them all until purged.
    #[must_use]
    pub fn retain_finished(mut self, bound: Option<u64>) -> PostgresConfig {
        self.retain_finished = bound;
        self
    }

    /// Refuses payloads larger than `bytes` at enqueue with `PayloadTooLarge`.
    #[must_use]
    pub fn payload_limit(mut self, bytes: usize) -> PostgresConfig {
        self.payload_limit = bytes;
        self
    }

    /// How many connections one queue value may open for its threads (at least 1); they are
    /// opened when first needed. A thread waiting in `await_work` or `wait` uses one more,
    /// shared by all of them, to listen for notifications.
    #[must_use]
    pub fn connections(mut self, count: usize) -> PostgresConfig {
        self.connections = count.max(1);
        self
    }

    /// Chooses whether commits wait for the disk; see [`SynchronousCommit`].
    #[must_use]
    pub fn synchronous_commit(mut self, setting: SynchronousCommit) -> PostgresConfig {
        self.synchronous_commit = setting;
        self
    }

    /// How long opening a connection may take before it fails with a transient backend error
    /// (a URL's `connect_timeout` wins).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> PostgresConfig {
        self.connect_timeout = timeout;
        self
    }

    /// The longest an idle worker in `await_work` sleeps before looking again, notification
    /// or not. It bounds how late a lapsed lease is noticed when nobody reserves, and how
    /// long a lost notification can delay work; due times of delayed tasks are tracked
    /// exactly and need no polling.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> PostgresConfig {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Vacuums the queue's tables (`VACUUM (ANALYZE, SKIP_LOCKED)`) on a background thread
    /// after this queue value has written about `rows` row versions (each enqueue, reserve,
    /// completion or failure writes one per task); `None` leaves it to the server.
    ///
    /// A queue turns its rows over quickly, and the statements that hand out and retire tasks
    /// read the head of their indexes, where the dead row versions gather; without a vacuum
    /// they slow down as the dead entries pile up. The server's autovacuum does this job when
    /// it is on and runs often enough for the table; this setting keeps the queue fast when it
    /// is off or lagging. Vacuuming needs the role that created the tables; another role's
    /// vacuum is skipped with a warning from the server.
    #[must_use]
    pub fn vacuum_every(mut self, rows: Option<u64>) -> PostgresConfig {
        self.vacuum_every = rows;
        self
    }

    /// Opens (creating the schema if needed, and migrating it to the current version) the
    /// queue at `url`.
    pub fn open(self, url: &str) -> Result<PostgresQueue, QueueError> {
        PostgresQueue::open_with(url, self)
    }
}
