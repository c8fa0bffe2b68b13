//! Task queue backends for workmill, and the conformance suite that holds every backend to the
//! [`Queue`](workmill_core::Queue) contract.
//!
//! - `sqlite` (feature `sqlite`): `SqliteQueue`, durable tasks in one SQLite
//!   file shared by the processes of one machine; rusqlite with SQLite bundled.
//! - `redis` (feature `redis`): `RedisQueue`, one queue shared by workers on many
//!   machines through a Redis server; Lua scripts make every move atomic.
//!   Feature `redis-tls` adds `rediss://` (rustls).
//! - `testkit` (feature `testkit`): the conformance suite, a `Harness` trait
//!   and the `queue_conformance_tests!` macro that generates one test per check.
//!
//! # Examples
//!
//! A task goes in, is leased to a worker, fails once, and completes on its retry:
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use std::time::Duration;
//! use workmill_core::{Backoff, FailOutcome, Failure, FailureKind, NewTask, Queue, RetryPolicy, TaskStatus, WorkerId};
//! use workmill_queue::sqlite::SqliteQueue;
//!
//! let queue = SqliteQueue::open("sqlite::memory:")?;
//! let policy = RetryPolicy::new(3).backoff(Backoff::Immediate);
//! let id = queue.enqueue(NewTask::new("thumbnail.resize", vec![1, 2, 3]).retry(policy))?;
//! let worker = WorkerId::new("worker-1")?;
//!
//! let first = queue.reserve(&worker, 8, Duration::from_secs(30))?.remove(0);
//! let outcome = queue.fail(&first.lease, Failure::new(FailureKind::Error, "cold cache"))?;
//! assert!(matches!(outcome, FailOutcome::Retrying { .. }));
//!
//! let second = queue.reserve(&worker, 8, Duration::from_secs(30))?.remove(0);
//! assert_eq!(second.attempt, 2);
//! queue.complete(&second.lease, b"ok".to_vec())?;
//! let record = queue.status(&id)?;
//! assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 2));
//! assert!(queue.stats()?.is_consistent());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "testkit")]
pub mod testkit;

#[cfg(feature = "redis")]
pub use redis::RedisQueue;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteQueue;
