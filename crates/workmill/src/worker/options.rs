//! `RunOptions`: how a worker process runs: its id, how many tasks at once, batches, leases,
//! heartbeats, reconnection, and whether it answers `SIGTERM`/`SIGINT`.

use std::sync::Arc;
use std::time::Duration;

use workmill_core::WorkerId;
use workmill_executor::ThreadPool;

use super::{DEFAULT_IDLE_WAIT, Reconnect, StopHandle, WorkerOptions};
use crate::error::RuntimeError;

/// The most tasks one loop of a worker process reserves at once, by default.
///
/// Smaller than a runtime's: a process that dies leaves what it held to run
/// again, so the batch bounds the duplicates a crash can cause.
pub const DEFAULT_PROCESS_MAX_BATCH: usize = 32;
/// A worker process's lease by default: long enough to ride out a stalled disk or a
/// slow network, short enough that a dead worker's tasks come back soon.
pub const DEFAULT_PROCESS_LEASE: Duration = Duration::from_secs(30);
/// How long the tasks of one batch of a worker process should take to run, by default.
///
/// Longer than a runtime's: each reservation is a write to a shared store (a
/// transaction, perhaps a round trip), so batches of short tasks should grow
/// until that cost is small beside them.
pub const DEFAULT_PROCESS_BATCH_TARGET: Duration = Duration::from_millis(20);

/// How [`worker::run`](super::run) runs a worker process.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill::worker::{Reconnect, RunOptions};
/// use workmill::WorkerId;
///
/// let options = RunOptions::new()
///     .worker_id(WorkerId::new("thumbnails")?)
///     .concurrency(8)
///     .max_batch(16)
///     .lease(Duration::from_secs(60))
///     .heartbeat_every(Duration::from_secs(10))
///     .reconnect(Reconnect { initial: Duration::from_millis(100), max: Duration::from_secs(30), jitter: 0.5 });
/// let stop = options.stop_handle(); // another thread may stop the worker with it
/// assert!(!stop.is_stopped());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "options do nothing until passed to worker::run"]
pub struct RunOptions {
    pub(crate) worker: WorkerId,
    pub(crate) concurrency: usize,
    pub(crate) max_batch: usize,
    pub(crate) min_batch: usize,
    pub(crate) batch_target: Duration,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) idle_wait: Duration,
    pub(crate) reconnect: Reconnect,
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) signals: bool,
    pub(crate) stop: StopHandle,
    pub(crate) pool: Option<Arc<ThreadPool>>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions::new()
    }
}

impl RunOptions {
    /// The defaults: a generated worker id (`host-pid-n`), one loop per CPU, batches of up
    /// to 32 aiming at 20 ms of work, 30 s leases extended every quarter lease, the default [`Reconnect`], and
    /// `SIGTERM`/`SIGINT` handled.
    pub fn new() -> RunOptions {
        RunOptions {
            worker: WorkerId::generate(),
            concurrency: std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get),
            max_batch: DEFAULT_PROCESS_MAX_BATCH,
            min_batch: 1,
            batch_target: DEFAULT_PROCESS_BATCH_TARGET,
            lease: DEFAULT_PROCESS_LEASE,
            heartbeat: None,
            idle_wait: DEFAULT_IDLE_WAIT,
            reconnect: Reconnect::default(),
            signals: true,
            stop: StopHandle::new(),
            pool: None,
        }
    }

    /// The worker's id; loop `i` records `{id}-{i}` on the tasks it runs.
    pub fn worker_id(mut self, id: WorkerId) -> RunOptions {
        self.worker = id;
        self
    }

    /// How many tasks run at once: one loop, on its own thread, per unit.
    pub fn concurrency(mut self, loops: usize) -> RunOptions {
        self.concurrency = loops;
        self
    }

    /// The most tasks one loop reserves at once (default 32); loops adapt below it.
    pub fn max_batch(mut self, tasks: usize) -> RunOptions {
        self.max_batch = tasks;
        self
    }

    /// The fewest tasks one loop reserves at once when that many are due (default 1).
    pub fn min_batch(mut self, tasks: usize) -> RunOptions {
        self.min_batch = tasks;
        self
    }

    /// How long the tasks of one batch should take to run (default 20 ms): a loop's batch
    /// grows while its batches run faster and shrinks when they run longer.
    pub fn batch_target(mut self, target: Duration) -> RunOptions {
        self.batch_target = target;
        self
    }

    /// The lease of each reservation (default 30 s). The heartbeat keeps it from lapsing
    /// while the process lives; after a crash, the process's tasks come back within it.
    pub fn lease(mut self, lease: Duration) -> RunOptions {
        self.lease = lease;
        self
    }

    /// How often held leases are extended (default a quarter of the lease); at most a third of
    /// the lease, since a lease may wait one and a half intervals for its first extension, and
    /// the rest of the lease is what the heartbeat has to try again if the store fails then.
    ///
    /// The same rounds hand back to the store the unstarted tasks of a batch whose running task
    /// has gone half an interval, so that a task reserved behind a long one waits at most about
    /// one and a half intervals before another worker can take it.
    pub fn heartbeat_every(mut self, every: Duration) -> RunOptions {
        self.heartbeat = Some(every);
        self
    }

    /// The longest an idle loop sleeps before it looks for work and for a stop again (default 50 ms).
    pub fn idle_wait(mut self, wait: Duration) -> RunOptions {
        self.idle_wait = wait;
        self
    }

    /// The wait between tries while the store fails.
    pub fn reconnect(mut self, reconnect: Reconnect) -> RunOptions {
        self.reconnect = reconnect;
        self
    }

    /// Whether `SIGTERM` and `SIGINT` stop the worker (default true, on Unix). Turn it off
    /// when the program handles signals itself, or runs workers inside tests; stop them
    /// with the [`stop_handle`](RunOptions::stop_handle) instead.
    pub fn handle_signals(mut self, on: bool) -> RunOptions {
        self.signals = on;
        self
    }

    /// Runs the loops as long-lived jobs on `pool` (which needs at least
    /// [`concurrency`](RunOptions::concurrency) threads) instead of on a pool of
    /// the worker's own. Either way handlers run on `workmill-executor` threads,
    /// so the `join`, `scope` and map-reduce calls they make share those threads.
    pub fn pool(mut self, pool: Arc<ThreadPool>) -> RunOptions {
        self.pool = Some(pool);
        self
    }

    /// A handle that stops the worker run with these options.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The interval between heartbeat rounds.
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        self.heartbeat.unwrap_or(self.lease / 4)
    }

    /// Refuses settings that cannot work, saying which.
    pub(crate) fn validate(&self) -> Result<(), RuntimeError> {
        let refuse = |reason: &str| Err(RuntimeError::Config(reason.to_owned()));
        if self.concurrency == 0 {
            return refuse("concurrency must be at least 1");
        }
        if self.max_batch == 0 {
            return refuse("max_batch must be at least 1");
        }
        if self.min_batch > self.max_batch {
            return refuse("min_batch must not exceed max_batch");
        }
        if self.lease.is_zero() || self.idle_wait.is_zero() {
            return refuse("lease and idle_wait must be longer than zero");
        }
        // A round extends only leases older than half the interval, so a lease can wait up
        // to 1.5 intervals for its first extension. At a third of the lease that is half the
        // lease, and the other half is left for the quick retries that follow a round the
        // store failed; any longer, one failed round could let a running task's lease lapse
        // and the task run elsewhere too.
        let every = self.heartbeat_interval();
        if every.is_zero() || every > self.lease / 3 {
            return refuse(&format!(
                "the heartbeat interval ({every:?}) must be longer than zero and at most a third of the lease ({:?}): a lease may wait one and a half intervals for its first extension, and needs the rest of its length to try again if the store fails; a quarter of the lease is a good choice",
                self.lease
            ));
        }
        if self.reconnect.initial.is_zero() {
            return refuse("the reconnect wait must be longer than zero");
        }
        Ok(())
    }

    /// The options of loop `index`.
    pub(crate) fn loop_options(&self, index: usize) -> Result<WorkerOptions, RuntimeError> {
        Ok(WorkerOptions {
            worker: WorkerId::new(format!("{}-{index}", self.worker))?,
            max_batch: self.max_batch,
            min_batch: self.min_batch,
            batch_target: self.batch_target,
            lease: self.lease,
            idle_wait: self.idle_wait,
            reconnect: self.reconnect.clone(),
            // A process shares its store and must outlast its failures.
            retry_writes: true,
        })
    }
}
