//! `RedisQueue`: one queue shared by workers on many machines through one Redis server.
//!
//! The design (key layout, scripts, the lease and retry protocol, wake-ups) is written down
//! in `README.md` next to this file.

mod admin;
mod config;
mod enqueue;
mod jobs;
mod lease;
mod pool;
mod record;
mod reserve;
mod scripts;
mod url;
mod wait;

#[cfg(feature = "testkit")]
mod testkit_hooks;
#[cfg(test)]
mod tests;

use std::time::Duration;

use workmill_core::{
    FailOutcome, Failure, JobRecord, Lease, ListFilter, NewJob, NewTask, Queue, QueueError,
    QueueStats, Reservation, TaskId, TaskRecord, TaskStatus, WorkerId,
};

pub use config::RedisConfig;
pub use url::RedisUrl;

use pool::{BACKEND, Pool};

/// The prefix of every key when neither the URL nor the config names one.
pub const DEFAULT_PREFIX: &str = "workmill";

/// The queue's shared structures: one key each, `<prefix>:<name>` (`lua/prelude.lua` builds
/// them; README.md says what each holds).
const SHARED_KEYS: [&str; 8] = [
    "counters", "ready", "delayed", "leases", "finished", "all", "wake", "jobs",
];
/// The kinds of keys made from an id: `<prefix>:<kind>:<id>`, one per task, job or held reduce.
const KEYS_BY_ID: [&str; 5] = ["task", "job", "job-maps", "job-results", "held"];

/// Refuses a prefix with a segment (after its first) that names a kind of id key, such as
/// `orders:task`: that queue's keys are keys of queue `orders` too. Its ready set,
/// `orders:task:ready`, is where queue `orders` keeps its task `ready`, and its task `x` is
/// `orders:task:task:x`, queue `orders`' task `task:x`; each queue would read and delete
/// the other's records. Ids may hold colons, so no other rule separates them; a prefix
/// without such a segment cannot meet another queue's keys, nested or not.
///
/// Returns the part of the prefix before that segment (the other queue's prefix) and the kind.
fn prefix_collision(prefix: &str) -> Option<(&str, &'static str)> {
    prefix.match_indices(':').find_map(|(at, _)| {
        let segment = prefix[at + 1..].split(':').next().unwrap_or_default();
        let kind = KEYS_BY_ID.into_iter().find(|kind| *kind == segment)?;
        Some((&prefix[..at], kind))
    })
}

/// True when `key` is one of the keys of the queue under `prefix` (given the prefix rule of
/// [`prefix_collision`], no other queue's).
fn is_own_key(prefix: &str, key: &[u8]) -> bool {
    let Some(rest) = key
        .strip_prefix(prefix.as_bytes())
        .and_then(|rest| rest.strip_prefix(b":"))
    else {
        return false;
    };
    SHARED_KEYS.iter().any(|name| rest == name.as_bytes())
        || KEYS_BY_ID.iter().any(|kind| {
            rest.strip_prefix(kind.as_bytes())
                .is_some_and(|id| id.first() == Some(&b':'))
        })
}

/// A [`Queue`] kept in a Redis server and shared by every process that opens the same URL
/// and prefix.
///
/// Each operation is one Lua script (or one read), which Redis runs atomically: no two
/// workers ever reserve the same task, and the stats change in the same script as the
/// tasks they count. Ready tasks wait in a sorted set scored by priority and arrival,
/// delayed tasks and retries in a set scored by due time, reserved tasks in a set scored
/// by lease expiry. Retry decisions are [`RetryPolicy::decide`](workmill_core::RetryPolicy::decide),
/// made in Rust and applied by a script that checks the lease token first.
///
/// Connections have a connect timeout and a response timeout ([`RedisConfig`]); a call
/// whose connection failed returns a transient [`QueueError::Backend`], and the next call
/// reconnects, so a worker rides out a server restart. Durability is the server's:
/// with `appendonly yes` and `appendfsync always` an acknowledged operation survives a
/// restart; with less, the last moments before a crash may be lost.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use workmill_core::{NewTask, Queue, WorkerId};
/// use workmill_queue::redis::RedisQueue;
///
/// let queue = RedisQueue::open("redis://127.0.0.1:6379/0?prefix=emails")?;
/// let id = queue.enqueue(NewTask::new("email.send", b"hello".to_vec()))?;
/// let worker = WorkerId::new("worker-1")?;
/// for task in queue.reserve(&worker, 10, Duration::from_secs(30))? {
///     queue.complete(&task.lease, b"sent".to_vec())?;
/// }
/// assert_eq!(queue.status(&id)?.result.as_deref(), Some(&b"sent"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisQueue {
    pool: Pool,
    url: RedisUrl,
    prefix: String,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    /// Opens the queue at `url` with the default [`RedisConfig`].
    pub fn open(url: &str) -> Result<RedisQueue, QueueError> {
        RedisQueue::open_with(url, RedisConfig::new())
    }

    /// Opens the queue at `url` with `config`, and checks that the server answers.
    pub fn open_with(url: &str, config: RedisConfig) -> Result<RedisQueue, QueueError> {
        let parsed = RedisUrl::parse(url)?;
        let invalid = |reason: String| QueueError::InvalidUrl {
            url: url::redact(url),
            reason,
        };
        if parsed.tls && !cfg!(feature = "redis-tls") {
            return Err(invalid(
                "rediss:// (TLS) needs the `redis-tls` feature of workmill-queue, which this \
                 build leaves out"
                    .to_owned(),
            ));
        }
        let prefix = config
            .prefix
            .clone()
            .or_else(|| parsed.prefix.clone())
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!(
                "the key prefix {prefix:?} is empty or holds whitespace; choose a word like \"workmill\""
            )));
        }
        if let Some((outer, kind)) = prefix_collision(&prefix) {
            let rest = &prefix[outer.len() + 1 + kind.len()..];
            return Err(invalid(format!(
                "the key prefix {prefix:?} has the segment \":{kind}\", so its keys are also keys \
                 of the queue with prefix {outer:?}, which keeps its records under \
                 \"{outer}:{kind}:<id>\", and each queue would read and delete the other's; \
                 choose a prefix without :task, :job, :job-maps, :job-results or :held after its \
                 first segment, such as \"{outer}-{kind}{rest}\""
            )));
        }
        let client = client(&parsed, &config)
            .map_err(|err| invalid(format!("the redis client refused it: {err}")))?;
        // Client names may hold only printable ASCII without spaces.
        let client_name: String = format!("workmill:{prefix}")
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        let pool = Pool::new(
            client,
            config.connections,
            client_name,
            config.connect_timeout,
            config.response_timeout,
        );
        let queue = RedisQueue {
            pool,
            url: parsed,
            prefix,
            config,
        };
        queue.ping()?;
        Ok(queue)
    }

    /// Asks the server for a `PONG`, over a pooled connection.
    pub fn ping(&self) -> Result<(), QueueError> {
        self.pool
            .run("reach the server", |con| {
                redis::cmd("PING").query::<String>(con)
            })
            .map(drop)
    }

    /// Where the server is (the password shown as `***`).
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// The prefix of every key this queue uses.
    pub fn prefix(&self) -> &str {
        &self.prefix
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

    /// Deletes every key of this queue: the tasks, the jobs, the indexes and the counters.
    ///
    /// For tests and for retiring a queue; it walks the keys with `SCAN`, so it does not
    /// block the server, but tasks enqueued meanwhile may survive it. Only the queue's own
    /// keys go (its shared structures, and `<prefix>:<kind>:<id>` for its tasks, jobs and held
    /// reduces): the keys of a queue whose prefix starts with this one, such as `orders:eu`
    /// beside `orders`, or any other key a user put under the prefix, stay.
    pub fn destroy(&self) -> Result<u64, QueueError> {
        const OP: &str = "delete the queue's keys";
        let pattern = format!("{}:*", glob_escape(&self.prefix));
        let keys: Vec<Vec<u8>> = self.pool.run(OP, |con| {
            let keys: redis::Iter<'_, Vec<u8>> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .clone()
                .iter(con)?;
            // An error is kept, for `collect` to return it.
            keys.filter(|key| match key {
                Ok(key) => is_own_key(&self.prefix, key),
                Err(_) => true,
            })
            .collect()
        })?;
        let mut deleted = 0;
        for chunk in keys.chunks(500) {
            deleted += self
                .pool
                .run(OP, |con| redis::cmd("UNLINK").arg(chunk).query::<u64>(con))?;
        }
        Ok(deleted)
    }
}

/// The client for `url`: with the configured root certificate for TLS, if one is set.
fn client(url: &RedisUrl, config: &RedisConfig) -> redis::RedisResult<redis::Client> {
    #[cfg(feature = "redis-tls")]
    if url.tls {
        // The redis crate builds its TLS configuration with rustls' process-wide provider. When
        // more than one provider is compiled in (another crate of the program enabling rustls'
        // aws-lc-rs), rustls picks none and that build panics; so install ring, the one this
        // feature brings, unless the program installed one already (then this call fails, and
        // the program's choice stands).
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    #[cfg(feature = "redis-tls")]
    if let (true, Some(pem)) = (url.tls, &config.tls_root_certificate) {
        return redis::Client::build_with_tls(
            url.connect.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        );
    }
    #[cfg(not(feature = "redis-tls"))]
    let _ = config;
    redis::Client::open(url.connect.as_str())
}

/// `text` with the glob characters of `SCAN MATCH` escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl Queue for RedisQueue {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
        let mut ids = self.enqueue_batch(vec![task])?;
        ids.pop()
            .ok_or_else(|| QueueError::backend(BACKEND, "enqueue a task", "no id reported"))
    }

    /// Adds every task in one script: all of them, or (on a duplicate id) none.
    fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, QueueError> {
        enqueue::enqueue_all(self, tasks)
    }

    fn reserve(
        &self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        reserve::reserve(self, worker, max, lease)
    }

    /// Blocks on the queue's notification list (`BLPOP`) until a task is made ready (enqueued,
    /// released, requeued, retried at once), a delayed task is added (the wait then resumes
    /// until the new first due time), the first delayed task or lease seen when the wait began
    /// comes due, the poll interval ([`RedisConfig::poll_interval`]) passes, or `timeout` does.
    fn await_work(&self, timeout: Duration) -> Result<(), QueueError> {
        wait::await_work(self, timeout)
    }

    fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
        lease::heartbeat(self, lease, extend)
    }

    /// Extends every lease in one script: one round trip for the whole batch, each lease
    /// checked as [`heartbeat`](Queue::heartbeat) checks it, all held ones given the same
    /// new expiry.
    fn heartbeat_batch(
        &self,
        leases: &[Lease],
        extend: Duration,
    ) -> Result<Vec<Result<Lease, QueueError>>, QueueError> {
        lease::heartbeat_all(self, leases, extend)
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

    /// Records every completion in one script.
    fn complete_batch(
        &self,
        done: Vec<(Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        lease::complete_all(self, done)
    }

    fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
        lease::fail(self, lease, failure)
    }

    fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        lease::release(self, lease)
    }

    fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
        admin::cancel(self, id)
    }

    fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
        admin::requeue(self, id)
    }

    fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
        admin::status(self, id)
    }

    /// Subscribes to the queue's completion channel and sleeps until a message names the task
    /// (or a one-second re-check, in case a message was lost with a connection), instead of polling.
    fn wait(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, QueueError> {
        wait::wait(self, id, timeout)
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        admin::list(self, filter)
    }

    fn stats(&self) -> Result<QueueStats, QueueError> {
        admin::stats(self)
    }

    fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
        admin::purge(self, statuses)
    }

    /// Enqueues the maps, holds back the reduce and records the job in one script.
    fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
        jobs::submit_job(self, job)
    }

    fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
        jobs::job(self, id)
    }

    fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        jobs::job_results(self, id)
    }

    fn rescue_expired(&self) -> Result<u64, QueueError> {
        lease::rescue_expired(self)
    }
}

impl RedisQueue {
    /// The key of a task's hash.
    pub(crate) fn task_key(&self, id: &TaskId) -> String {
        format!("{}:task:{}", self.prefix, id.as_str())
    }

    /// The key of one of the queue's shared structures (`counters`, `ready`, ...).
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}
