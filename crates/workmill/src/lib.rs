//! workmill: distribute work in Rust. This crate is the facade: the [`Runtime`] that runs named
//! tasks with priorities, retries and results, over the queue backends of `workmill-queue`.
//!
//! - Register tasks by name: [`NamedTask`] types with [`Runtime::register`], or
//!   closures with [`Runtime::register_fn`].
//! - Submit them with [`Runtime::submit`]: a [`Priority`] (lower runs first, FIFO
//!   within a priority), a [`RetryPolicy`] (attempts, backoff, demotion), a custom
//!   [`TaskId`] that doubles as an idempotency key while the backend keeps its record
//!   (see [`Submit::id`]), a delay.
//! - Watch them: [`Runtime::status`] gives the whole [`TaskRecord`],
//!   [`Runtime::get_result`] blocks for the typed result, [`Runtime::stats`] gives
//!   exact counts, [`Runtime::cancel`] stops one that has not started.
//! - Run map-reduce jobs ([`job`]): [`Job::map_reduce`] over a [`NamedTask`] map and a
//!   [`ReduceTask`] that receives the maps' outputs (or closures registered by name, with
//!   [`Runtime::map_reduce`]); [`Runtime::submit_job`], [`Runtime::job_status`] (maps done
//!   out of total), and [`Runtime::wait_job`] for the typed result or the failing map's
//!   error. The backend enqueues the reduce when the last map completes, so the worker
//!   processes that share it run jobs as they run tasks.
//! - Stop with [`Runtime::shutdown`]: drain everything, or abandon the queue and report it.
//! - Name a backend with a URL: [`backend::open`] turns `memory://`,
//!   `sqlite://path/to/tasks.db` (feature `sqlite`, on by default: SQLite is the
//!   embedded durable backend), `postgres://user@host/db?schema=name` (feature
//!   `postgres`) or `redis://host:6379?prefix=name` (feature `redis`) into an
//!   `Arc<dyn Queue>`, and [`RuntimeBuilder::url`] builds a runtime on it.
//! - Run worker processes: [`worker::run`] is the `main` of a worker binary. It runs
//!   tasks on several threads, keeps their leases alive with heartbeats, stops cleanly
//!   on `SIGTERM`/`SIGINT` (or a [`worker::StopHandle`]), and rides out store
//!   failures; a worker killed with `kill -9` loses no task, and only what it held
//!   runs again. See `examples/worker.rs`.
//! - Compute in process: [`executor`] (`join`, `scope`, `spawn`, `ThreadPool`),
//!   [`mapreduce`] (parallel map-reduce over slices, `Vec`s and ranges, keyed
//!   map-reduce with a map-side combiner) and [`balance`] (strategies, health
//!   tracking, a `Pool` of heterogeneous workers) are the crates of the same
//!   names, re-exported, so one dependency on `workmill` brings them all.
//!
//! Bad input is an outcome, not a crash: an unknown task name is retried under
//! its policy (another worker may know it, or this one once it registers it)
//! and ends [`Dead`](TaskStatus::Dead) with [`FailureKind::UnknownTask`], an
//! undecodable payload ends dead at once with the decode error, an oversized payload
//! is refused at submit, a panicking task is a failed attempt carrying the
//! panic message (the worker thread lives on), and a permanent
//! [`TaskError`] skips the remaining retries.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use workmill::{
//!     Backoff, NamedTask, Priority, RetryPolicy, Runtime, Shutdown, TaskContext, TaskError,
//!     TaskStatus,
//! };
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { width: u32, height: u32 }
//!
//! impl NamedTask for Resize {
//!     const NAME: &'static str = "image.resize";
//!     type Output = u64;
//!     fn run(self, ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
//!         if self.width == 0 {
//!             return Err(TaskError::permanent("width must be positive"));
//!         }
//!         if ctx.attempt() == 1 {
//!             return Err(TaskError::retryable("cache cold"));
//!         }
//!         Ok(u64::from(self.width) * u64::from(self.height))
//!     }
//! }
//!
//! let runtime = Runtime::builder()
//!     .threads(2)
//!     .default_retry(RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_millis(1))))
//!     .build()?;
//! runtime.register::<Resize>()?;
//! let double = runtime.register_fn("math.double", |x: u64| Ok::<_, TaskError>(x * 2))?;
//!
//! let area = runtime.submit(Resize { width: 4, height: 3 }).priority(Priority::HIGH).send()?;
//! let broken = runtime.submit(Resize { width: 0, height: 3 }).send()?;
//! let doubled = runtime.submit(double.call(21)).send()?;
//!
//! let wait = Duration::from_secs(10);
//! assert_eq!(runtime.wait_for(&area, wait)?, 12);
//! assert_eq!(runtime.wait_for(&doubled, wait)?, 42);
//! assert!(runtime.wait_for(&broken, wait).is_err());
//! assert_eq!(runtime.status(broken.id())?.status, TaskStatus::Dead);
//!
//! let report = runtime.shutdown(Shutdown::Drain)?;
//! assert_eq!((report.stats.completed, report.stats.dead, report.stats.retried), (2, 1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In process, without a queue: a word count with [`mapreduce`] on a pool of the
//! [`executor`], and requests routed to two workers by a [`balance`] strategy:
//!
//! ```
//! use workmill::balance::{Pool, PowerOfTwoChoices, ThreadWorker};
//! use workmill::executor::ThreadPool;
//! use workmill::mapreduce::MapReduce;
//!
//! let threads = ThreadPool::builder().num_threads(2).build()?;
//! let lines = ["the cat", "the dog", "a cat"];
//! let counts = MapReduce::new().pool(&threads).map_reduce_by_key_sorted(
//!     &lines,
//!     |line| line.split(' ').map(|word| (word, 1u32)),
//!     |count, one| *count += one,
//! );
//! assert_eq!(counts.into_iter().collect::<Vec<_>>(), [("a", 1), ("cat", 2), ("dog", 1), ("the", 2)]);
//!
//! let workers = Pool::builder()
//!     .worker("near", ThreadWorker::new(2, 8)?)
//!     .worker("far", ThreadWorker::new(1, 8)?)
//!     .balancer(PowerOfTwoChoices::with_seed(7))
//!     .build()?;
//! let handles = (1..=10u64)
//!     .map(|n| workers.distribute(move || Ok::<_, workmill::TaskError>(n * n)))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let total: u64 = handles.into_iter().map(|h| h.wait()).sum::<Result<u64, _>>()?;
//! assert_eq!(total, 385);
//! workers.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod backend;
mod error;
pub mod job;
mod registry;
mod runtime;
mod submit;
pub(crate) mod sync;
pub mod worker;

pub use error::{RegistryError, RuntimeError};
pub use job::{Job, JobHandle, ReduceFn, ReduceTask};
pub use registry::{FnHandle, Registry, SharedRegistry};
pub use runtime::{Runtime, RuntimeBuilder, Shutdown, ShutdownReport};
pub use submit::{Call, Submission, Submit, TaskHandle};

pub use workmill_core::{
    Backoff, Codec, CodecError, FailOutcome, Failure, FailureKind, INLINE_PAYLOAD, JobRecord,
    JobStatus, Lease, ListFilter, NamedTask, NewJob, NewTask, Payload, Postcard, Priority, Queue,
    QueueError, QueueStats, Reservation, RetryPolicy, TaskContext, TaskError, TaskId, TaskName,
    TaskRecord, TaskStatus, Timestamp, WorkerId,
};
#[cfg(feature = "postgres")]
pub use workmill_queue::postgres::{PostgresConfig, PostgresQueue, SynchronousCommit};
#[cfg(feature = "redis")]
pub use workmill_queue::redis::{RedisConfig, RedisQueue};
#[cfg(feature = "sqlite")]
pub use workmill_queue::sqlite::{SqliteConfig, SqliteQueue, Synchronous};
pub use workmill_queue::{MemoryConfig, MemoryQueue, OnFull};

/// The work-stealing executor the runtime's loops can run on ([`RuntimeBuilder::pool`]) and
/// that worker processes run their handlers on: `join`, `scope`, `spawn`, `ThreadPool`.
pub use workmill_executor as executor;

/// In-process parallel map-reduce on the [`executor`]: `map_reduce`, `fold`, ordered `map`,
/// and keyed map-reduce with a map-side combiner (the crate `workmill-mapreduce`). For
/// map-reduce jobs across worker processes, see [`job`].
pub use workmill_mapreduce as mapreduce;

/// Load balancing over heterogeneous workers: strategies, health tracking with outlier
/// ejection, a worker `Pool` and a simulator (the crate `workmill-balance`).
pub use workmill_balance as balance;
