//! `RedisConfig`: the builder for a Redis queue's settings (key prefix, timeouts, leases, retention, payload limit).

use std::time::Duration;

use workmill_core::QueueError;

use super::RedisQueue;

/// Settings of a [`RedisQueue`], built step by step and then opened.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use workmill_queue::redis::RedisConfig;
///
/// let queue = RedisConfig::new()
///     .prefix("billing")
///     .response_timeout(Duration::from_secs(2))
///     .retain_finished(Some(50_000))
///     .open("redis://:secret@cache.internal:6379/2")?;
/// # Ok::<(), workmill_core::QueueError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RedisConfig {
    pub(crate) prefix: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) default_lease: Duration,
    pub(crate) retain_finished: Option<u64>,
    pub(crate) retain_for: Option<Duration>,
    pub(crate) payload_limit: usize,
    pub(crate) connections: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) tls_root_certificate: Option<Vec<u8>>,
}

impl Default for RedisConfig {
    fn default() -> RedisConfig {
        RedisConfig::new()
    }
}

impl RedisConfig {
    /// The defaults: the prefix from the URL (or `workmill`), a 5 s connect timeout, a 5 s
    /// response timeout, 30 s leases, 100,000 finished records kept with no age limit,
    /// payloads up to 8 MiB, up to 8 idle connections kept per queue value, and idle workers
    /// looking again at least every second.
    pub fn new() -> RedisConfig {
        RedisConfig {
            prefix: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            default_lease: Duration::from_secs(30),
            retain_finished: Some(100_000),
            retain_for: None,
            payload_limit: 8 * 1024 * 1024,
            connections: 8,
            poll_interval: Duration::from_secs(1),
            tls_root_certificate: None,
        }
    }

    /// Puts every key of the queue under `prefix:` (overriding a `?prefix=` in the URL), so
    /// that several queues, or several test runs, share one server without meeting.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisConfig {
        self.prefix = Some(prefix.into());
        self
    }

    /// How long opening a connection (TCP, TLS and authentication) may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.connect_timeout = timeout;
        self
    }

    /// How long a command may wait for the server's answer before it fails with a transient
    /// backend error and its connection is dropped. Blocking waits (`await_work`, `wait`)
    /// get this much on top of the time they block for.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.response_timeout = timeout;
        self
    }

    /// The lease a worker asks for when its own options do not say; workers heartbeat well within it.
    #[must_use]
    pub fn default_lease(mut self, lease: Duration) -> RedisConfig {
        self.default_lease = lease;
        self
    }

    /// Keeps at most `bound` finished (completed, dead, cancelled) records, dropping the
    /// oldest first; `None` keeps them all (unless [`retain_for`](RedisConfig::retain_for)
    /// limits their age).
    #[must_use]
    pub fn retain_finished(mut self, bound: Option<u64>) -> RedisConfig {
        self.retain_finished = bound;
        self
    }

    /// Drops finished records once they are older than `age`, like a time to live on
    /// results. Dropped records are counted in `QueueStats::evicted` and stay in their
    /// status gauge, exactly as with the count bound; the age is checked whenever a task
    /// finishes, so an idle queue keeps its last records until work resumes.
    #[must_use]
    pub fn retain_for(mut self, age: Option<Duration>) -> RedisConfig {
        self.retain_for = age;
        self
    }

    /// Refuses payloads larger than `bytes` at enqueue with `PayloadTooLarge`.
    #[must_use]
    pub fn payload_limit(mut self, bytes: usize) -> RedisConfig {
        self.payload_limit = bytes;
        self
    }

    /// How many idle connections one queue value keeps for its threads (at least 1). More
    /// threads than this still work: extra connections are opened and closed as needed.
    #[must_use]
    pub fn connections(mut self, count: usize) -> RedisConfig {
        self.connections = count.max(1);
        self
    }

    /// The longest an idle worker in `await_work` blocks before looking again, woken or not
    /// (at least 1 ms, at most an hour).
    ///
    /// Enqueues, releases, requeues and retries wake sleeping workers, and a worker sleeps no
    /// longer than until the first delayed task or lease it saw comes due. What it cannot see
    /// coming is a lease taken, or shortened by a heartbeat, after it went to sleep: this
    /// bounds how late such a lease is rescued when it lapses and nobody reserves, and how
    /// long a lost wake-up (a restarted server empties the list) can delay work.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> RedisConfig {
        self.poll_interval = interval.clamp(Duration::from_millis(1), Duration::from_secs(3_600));
        self
    }

    /// Trusts the certificate authority in `pem` (PEM text) for `rediss://` connections,
    /// instead of the system's trust store: for servers whose certificate a private CA signed.
    #[cfg(feature = "redis-tls")]
    #[must_use]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> RedisConfig {
        self.tls_root_certificate = Some(pem.into());
        self
    }

    /// Opens the queue at `url`: `redis://[[user]:password@]host[:port][/db][?prefix=name]`,
    /// or `rediss://` for TLS (feature `redis-tls`; without it `rediss://` is refused with an
    /// explanation).
    pub fn open(self, url: &str) -> Result<RedisQueue, QueueError> {
        RedisQueue::open_with(url, self)
    }

    /// The retention bound as the scripts take it: -1 for none.
    pub(crate) fn bound_arg(&self) -> i64 {
        self.retain_finished
            .map_or(-1, |bound| i64::try_from(bound).unwrap_or(i64::MAX))
    }

    /// The retention age in microseconds as the scripts take it: -1 for none.
    pub(crate) fn age_arg(&self) -> i64 {
        self.retain_for
            .map_or(-1, |age| i64::try_from(age.as_micros()).unwrap_or(i64::MAX))
    }
}
