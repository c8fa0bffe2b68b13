//! Task queue backends for workmill: where submitted tasks wait, are leased to workers, and keep
//! their results; and the conformance suite that holds every backend to the
//! [`Queue`](workmill_core::Queue) contract.
//!
//! Every backend implements [`workmill_core::Queue`] with the same semantics:
//! priority order with FIFO within a priority, attempts counted at reserve,
//! leases that a rescue turns into failed attempts, retries decided by
//! [`RetryPolicy::decide`](workmill_core::RetryPolicy::decide), dead letters,
//! cancel and requeue, and exact [`QueueStats`](workmill_core::QueueStats).
//!
//! - [`MemoryQueue`]: in this process, for one program that submits and runs
//!   its own tasks (the `workmill` runtime's default backend). Bounded
//!   capacity with [`OnFull`], a retention bound on finished records, and
//!   condition-variable wake-ups instead of polling.
//! - `sqlite` (feature `sqlite`): `SqliteQueue`, durable tasks in one SQLite
//!   file shared by the processes of one machine; rusqlite with SQLite bundled.
//! - `postgres` (feature `postgres`): `PostgresQueue`, durable tasks in a
//!   PostgreSQL schema shared by worker processes on many machines; the sync
//!   `postgres` crate.
//! - `redis` (feature `redis`): `RedisQueue`, one queue shared by workers on many
//!   machines through a Redis server; Lua scripts make every move atomic.
//!   Feature `redis-tls` adds `rediss://` (rustls).
//! - `testkit` (feature `testkit`): the conformance suite, a `Harness` trait
//!   and the `queue_conformance_tests!` macro that generates one test per check.
//!
//! Every backend also keeps map-reduce jobs ([`NewJob`](workmill_core::NewJob)):
//! the maps are ordinary tasks, and the completion of the last map enqueues the
//! reduce in the same atomic step (one lock, one transaction), with the maps'
//! results kept beside the job for it.
//!
//! # Examples
//!
//! A task that fails once is retried, demoted, and completes:
//!
//! ```
//! use std::time::Duration;
//! use workmill_core::{
//!     Backoff, Failure, FailureKind, FailOutcome, NewTask, Priority, Queue, RetryPolicy,
//!     TaskStatus, WorkerId,
//! };
//! use workmill_queue::MemoryQueue;
//!
//! let queue = MemoryQueue::new();
//! let policy = RetryPolicy::new(3).backoff(Backoff::Immediate).demote_by(10);
//! let id = queue.enqueue(NewTask::new("resize", vec![7]).priority(Priority::HIGH).retry(policy))?;
//! let worker = WorkerId::new("worker-1")?;
//!
//! let first = queue.reserve(&worker, 1, Duration::from_secs(30))?.remove(0);
//! let outcome = queue.fail(&first.lease, Failure::new(FailureKind::Error, "disk busy"))?;
//! assert!(matches!(outcome, FailOutcome::Retrying { priority, .. } if priority == Priority::new(11)));
//!
//! let second = queue.reserve(&worker, 1, Duration::from_secs(30))?.remove(0);
//! assert_eq!(second.attempt, 2);
//! queue.complete(&second.lease, vec![])?;
//!
//! let stats = queue.stats()?;
//! assert_eq!((stats.completed, stats.failed_attempts, stats.retried), (1, 1, 1));
//! assert_eq!(queue.status(&id)?.status, TaskStatus::Completed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same flow on a durable SQLite file (feature `sqlite`):
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use std::time::Duration;
//! use workmill_core::{Backoff, NewTask, Queue, RetryPolicy, TaskStatus, WorkerId};
//! use workmill_queue::sqlite::SqliteQueue;
//!
//! let queue = SqliteQueue::open("sqlite::memory:")?;
//! let id = queue.enqueue(NewTask::new("thumbnail.resize", vec![1, 2, 3]).retry(RetryPolicy::new(3).backoff(Backoff::Immediate)))?;
//! let worker = WorkerId::new("worker-1")?;
//! let task = queue.reserve(&worker, 8, Duration::from_secs(30))?.remove(0);
//! queue.complete(&task.lease, b"ok".to_vec())?;
//! assert_eq!(queue.status(&id)?.status, TaskStatus::Completed);
//! assert!(queue.stats()?.is_consistent());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A job of three maps; the reduce appears when the last map completes:
//!
//! ```
//! use std::time::Duration;
//! use workmill_core::{JobStatus, NewJob, NewTask, Queue, WorkerId};
//! use workmill_queue::MemoryQueue;
//!
//! let queue = MemoryQueue::new();
//! let maps = (1..=3u8).map(|n| NewTask::new("count", vec![n])).collect();
//! let job = queue.submit_job(NewJob::new(maps, NewTask::new("sum", Vec::new())))?;
//! let worker = WorkerId::new("worker-1")?;
//!
//! for map in queue.reserve(&worker, 10, Duration::from_secs(30))? {
//!     assert_eq!(map.name, "count", "the reduce is held back");
//!     queue.complete(&map.lease, vec![map.payload[0] * 10])?;
//! }
//! let record = queue.job(&job)?;
//! assert_eq!((record.status, record.maps_done), (JobStatus::Reducing, 3));
//!
//! let [reduce] = <[_; 1]>::try_from(queue.reserve(&worker, 10, Duration::from_secs(30))?).unwrap();
//! let total: u8 = queue.job_results(&job)?.iter().map(|r| r[0]).sum();
//! queue.complete(&reduce.lease, vec![total])?;
//! assert_eq!(queue.job(&job)?.status, JobStatus::Completed);
//! assert_eq!(queue.status(&record.reduce)?.result.as_deref(), Some(&[60][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
#![forbid(unsafe_code)]

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod doorbell;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod stored;
pub(crate) mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresQueue;
#[cfg(feature = "redis")]
pub use self::redis::RedisQueue;
pub use memory::{
    Clock, DEFAULT_MAX_PAYLOAD, DEFAULT_RETENTION, IdleTimeout, ManualClock, MemoryConfig,
    MemoryQueue, OnFull, ReadyQueue, SystemClock,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteQueue;
