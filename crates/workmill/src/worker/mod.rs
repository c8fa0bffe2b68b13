//! Workers: the loop that reserves, runs and records tasks over any `Queue`, and
//! [`run`], the whole worker process built on it (concurrent loops, heartbeats, signals,
//! reconnection).
//!
//! A [`Runtime`](crate::Runtime) runs one [`run_loop`] per unit of concurrency on its
//! host. A worker process calls [`run`] with a registry and a backend URL, and gets the
//! same loops on its own threads, plus what a process sharing a durable store needs:
//!
//! - **Leases kept alive**: a heartbeat thread extends the lease of every task the
//!   process holds (running, reserved but not started, or finished with its outcome not
//!   yet written) at a fraction of the lease (at most a third), and tries again soon
//!   after a round the store failed, so only a dead or hung process, or one that cannot
//!   reach its store for about half a lease, loses them.
//! - **A clean stop**: on `SIGTERM` or `SIGINT` (or [`StopHandle::stop`]) the loops
//!   reserve nothing more, finish the tasks they are running, hand back the ones they
//!   reserved but did not start (at once, not at lease expiry), write every outcome, and
//!   [`run`] returns a [`WorkerReport`]. A second signal exits at once.
//! - **Store failures ridden out**: a failed call is tried again after a capped,
//!   jittered exponential wait ([`Reconnect`]); the store is opened again; an outcome
//!   already computed is kept and written when the store is back. A refusal no wait
//!   mends (a schema migrated by a newer build) stops the worker, and [`run`] returns it.
//!
//! Delivery is at least once: a task runs again only if a worker died, hung past its
//! lease, or could not reach the store for a lease length while holding it, and a
//! worker that dies leaves at most `concurrency * max_batch` tasks to run again. The
//! protocol, and why each guarantee holds, is in `README.md` next to this file.
//!
//! # Examples
//!
//! A worker binary: register the handlers, then run until `SIGTERM`.
//!
//! ```no_run
//! use workmill::worker::{self, RunOptions};
//! use workmill::{Registry, TaskError, WorkerId};
//!
//! let mut registry = Registry::new();
//! registry.register_fn("math.square", |x: u64| Ok::<_, TaskError>(x * x))?;
//! let options = RunOptions::new().worker_id(WorkerId::new("squarer")?).concurrency(4);
//! let report = worker::run(registry, "sqlite://tasks.db", options)?;
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same worker in a test, stopped by its handle instead of a signal:
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use std::time::Duration;
//! use workmill::worker::{self, RunOptions};
//! use workmill::{Codec, NewTask, Postcard, Queue, Registry, TaskError};
//!
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
//! let queue = workmill::backend::open(&url)?;
//! let id = queue.enqueue(NewTask::new("math.square", Postcard.encode(&12u64)?))?;
//!
//! let mut registry = Registry::new();
//! registry.register_fn("math.square", |x: u64| Ok::<_, TaskError>(x * x))?;
//! let options = RunOptions::new().concurrency(2).handle_signals(false);
//! let stop = options.stop_handle();
//! let worker = std::thread::spawn(move || worker::run(registry, &url, options));
//!
//! let record = queue.wait(&id, Duration::from_secs(60))?;
//! let square: u64 = Postcard.decode(record.result.as_deref().unwrap_or_default())?;
//! assert_eq!(square, 144);
//! stop.stop();
//! let report = worker.join().unwrap()?;
//! assert_eq!((report.tasks.completed, report.tasks.released), (1, 0));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod control;
mod heartbeat;
mod held;
#[cfg(all(test, workmill_loom))]
mod loom_tests;
mod options;
mod process;
mod reconnect;
mod report;
mod run_loop;
mod settle;
#[cfg(unix)]
mod signals;
mod stop;
#[cfg(test)]
mod tests;

use std::time::Duration;

use workmill_core::WorkerId;

pub use control::{Control, Mode};
pub(crate) use heartbeat::Heartbeat;
pub use options::{
    DEFAULT_PROCESS_BATCH_TARGET, DEFAULT_PROCESS_LEASE, DEFAULT_PROCESS_MAX_BATCH, RunOptions,
};
pub use process::{run, run_with};
pub use reconnect::Reconnect;
pub use report::WorkerReport;
pub use run_loop::run_loop;
pub(crate) use run_loop::run_until_refused;
pub use stop::{StopCause, StopHandle};

/// The largest batch a runtime's loop reserves by default.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// How long a runtime's reservation is leased by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3_600);
/// How long the tasks of one batch should take to run, by default in a runtime: a
/// batch that takes longer is halved. Short, because an in-process reservation
/// is cheap; worker processes aim longer ([`RunOptions::batch_target`]).
pub const DEFAULT_BATCH_TARGET: Duration = Duration::from_micros(500);
/// The longest a loop sleeps in [`Queue::await_work`](workmill_core::Queue::await_work)
/// before it looks at its [`Control`] again, by default.
pub const DEFAULT_IDLE_WAIT: Duration = Duration::from_millis(50);

/// How one worker loop behaves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Recorded on every task the loop runs.
    pub worker: WorkerId,
    /// The most tasks reserved at once; the loop adapts below it (see the module docs of `batch`).
    pub max_batch: usize,
    /// The fewest tasks reserved at once when that many are due (default 1). Raise it when a
    /// reservation costs far more than a task; every task in a batch waits for the ones before it.
    pub min_batch: usize,
    /// How long the tasks of one batch should take to run: batches grow while
    /// they run faster and shrink when they run longer (default 500 µs).
    pub batch_target: Duration,
    /// The lease of each reservation. [`run_loop`] alone does not heartbeat: a
    /// task that runs longer than this may be rescued by the backend and run
    /// again. [`run`] heartbeats.
    pub lease: Duration,
    /// The longest sleep waiting for work before the loop checks its control again.
    pub idle_wait: Duration,
    /// The wait between tries when the store fails.
    pub reconnect: Reconnect,
    /// Whether a batch of results is kept until the store has recorded it, so that a
    /// write the store failed can be tried again (default true). Keeping it costs a copy
    /// of each result; a runtime on its memory queue, whose writes never fail that way,
    /// turns it off. Off, such a write is logged and counted, and its tasks run again
    /// once their leases lapse.
    pub retry_writes: bool,
}

impl WorkerOptions {
    /// The defaults, for worker `worker`.
    pub fn new(worker: WorkerId) -> WorkerOptions {
        WorkerOptions {
            worker,
            max_batch: DEFAULT_MAX_BATCH,
            min_batch: 1,
            batch_target: DEFAULT_BATCH_TARGET,
            lease: DEFAULT_LEASE,
            idle_wait: DEFAULT_IDLE_WAIT,
            reconnect: Reconnect::default(),
            retry_writes: true,
        }
    }
}

/// What one worker loop did, counted when it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopReport {
    /// Attempts run (each reserved task that was started).
    pub attempts: u64,
    /// Attempts recorded as completed.
    pub completed: u64,
    /// Attempts that failed (errors, panics, unknown names, bad payloads).
    pub failed: u64,
    /// Reserved tasks handed back unstarted: the loop was told to pause or stop, or the task
    /// waited behind a long task of its batch, and the heartbeat thread of a worker process
    /// (or of a runtime on a durable backend) handed it back so that another worker can run it.
    pub released: u64,
    /// Tasks whose lease the store gave up before their outcome was written (or before
    /// they started): another worker has them, so they were not recorded here.
    pub lost_leases: u64,
    /// Outcomes not written because the store failed: given up by a stopping loop after a
    /// lease length (30 s at most), or not kept for another try ([`WorkerOptions::retry_writes`] off).
    /// Those tasks run again once their leases lapse.
    pub unrecorded: u64,
    /// Backend calls that failed (a store error, a refusal); each was logged.
    pub backend_errors: u64,
}

impl LoopReport {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &LoopReport) {
        self.attempts += other.attempts;
        self.completed += other.completed;
        self.failed += other.failed;
        self.released += other.released;
        self.lost_leases += other.lost_leases;
        self.unrecorded += other.unrecorded;
        self.backend_errors += other.backend_errors;
    }
}
