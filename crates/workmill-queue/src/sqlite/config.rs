//! `SqliteConfig`: the builder for a SQLite queue's settings (leases, busy timeout, retention, payload limit, durability).

use std::time::Duration;

use workmill_core::QueueError;

use super::SqliteQueue;

/// How hard SQLite works to make each commit survive a power cut.
///
/// In WAL mode, [`Normal`](Synchronous::Normal) writes each commit to the
/// write-ahead log without waiting for the disk, and syncs at checkpoints: a
/// commit survives a crash of the process (kill -9) but the last few commits
/// may be lost if the *machine* loses power. [`Full`](Synchronous::Full)
/// syncs the log at every commit, which survives power loss too, at the price
/// of one disk flush per commit (typically 10 to 100 times slower on ordinary
/// disks). At-least-once delivery holds under both: a task lost to a power
/// cut is one whose enqueue was lost, and its submitter saw no durable
/// acknowledgement only under `Normal`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `PRAGMA synchronous = NORMAL`: durable against process crashes; the default.
    #[default]
    Normal,
    /// `PRAGMA synchronous = FULL`: durable against power loss as well.
    Full,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Settings of a [`SqliteQueue`], built step by step and then opened.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_queue::sqlite::SqliteConfig;
///
/// let queue = SqliteConfig::new()
///     .busy_timeout(Duration::from_secs(10))
///     .retain_finished(Some(10_000))
///     .payload_limit(64 * 1024)
///     .open("sqlite::memory:")?;
/// assert_eq!(queue.retention(), Some(10_000));
/// # Ok::<(), workmill_core::QueueError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SqliteConfig {
    pub(crate) default_lease: Duration,
    pub(crate) busy_timeout: Duration,
    pub(crate) retain_finished: Option<u64>,
    pub(crate) payload_limit: usize,
    pub(crate) synchronous: Synchronous,
    pub(crate) connections: usize,
    pub(crate) checkpoint_pages: u32,
}

impl Default for SqliteConfig {
    fn default() -> SqliteConfig {
        SqliteConfig::new()
    }
}

impl SqliteConfig {
    /// The defaults: 30 s leases, a 5 s busy timeout, 100,000 finished records kept,
    /// payloads up to 8 MiB, `synchronous = NORMAL`, 4 connections per queue value, and a
    /// WAL checkpoint every 8,192 pages.
    pub fn new() -> SqliteConfig {
        SqliteConfig {
            default_lease: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
            retain_finished: Some(100_000),
            payload_limit: 8 * 1024 * 1024,
            synchronous: Synchronous::Normal,
            connections: 4,
            checkpoint_pages: 8_192,
        }
    }

    /// The lease a worker asks for when its own options do not say; workers heartbeat well within it.
    #[must_use]
    pub fn default_lease(mut self, lease: Duration) -> SqliteConfig {
        self.default_lease = lease;
        self
    }

    /// How long a connection waits for another writer (in this process or another) before
    /// an operation fails with a transient backend error.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> SqliteConfig {
        self.busy_timeout = timeout;
        self
    }

    /// Keeps at most `bound` finished (completed, dead, cancelled) records, dropping the
    /// oldest first; `None` keeps them all until purged.
    #[must_use]
    pub fn retain_finished(mut self, bound: Option<u64>) -> SqliteConfig {
        self.retain_finished = bound;
        self
    }

    /// Refuses payloads larger than `bytes` at enqueue with `PayloadTooLarge`.
    #[must_use]
    pub fn payload_limit(mut self, bytes: usize) -> SqliteConfig {
        self.payload_limit = bytes;
        self
    }

    /// Chooses the durability of each commit; see [`Synchronous`].
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> SqliteConfig {
        self.synchronous = synchronous;
        self
    }

    /// How many connections one queue value keeps for its threads (at least 1). An
    /// in-memory database always uses one, since each connection would see its own database.
    #[must_use]
    pub fn connections(mut self, count: usize) -> SqliteConfig {
        self.connections = count.max(1);
        self
    }

    /// Checkpoints the write-ahead log into the database file once it holds `pages` pages
    /// (SQLite's `wal_autocheckpoint`; its own default is 1,000).
    ///
    /// Every checkpoint flushes the log and the database file to disk, so under
    /// `synchronous = NORMAL` checkpoints are where the disk flushes happen; a queue writes
    /// several pages per commit (the task row, its indexes, the counters row), so SQLite's
    /// default would flush every few hundred commits. The price of a larger value is disk
    /// space: the log grows to about `pages` times the page size (32 MiB at the default)
    /// before it is reused. 0 turns automatic checkpoints off, for a process that runs
    /// `PRAGMA wal_checkpoint` itself.
    #[must_use]
    pub fn checkpoint_pages(mut self, pages: u32) -> SqliteConfig {
        self.checkpoint_pages = pages;
        self
    }

    /// Opens (creating if needed, and migrating to the current schema) the queue at `url`:
    /// `sqlite://path/to/file.db`, `sqlite:///absolute/path.db` or `sqlite::memory:`.
    pub fn open(self, url: &str) -> Result<SqliteQueue, QueueError> {
        SqliteQueue::open_with(url, self)
    }
}
