//! The vocabulary of workmill: the traits and types every other workmill crate speaks.
//!
//! This crate holds nothing that runs. It defines
//!
//! - the four traits: [`Task`] (a unit of work; [`NamedTask`] when it crosses processes),
//!   [`Worker`] (executes jobs, reports [`Load`]), [`Balancer`] (picks a worker, learns from
//!   each [`Outcome`]) and [`Queue`] (the backend contract);
//! - the task's identity and scheduling: [`TaskId`], [`Priority`] (lower runs first, FIFO
//!   within one priority), [`RetryPolicy`] with [`Backoff`];
//! - its life: [`TaskStatus`] with the one transition table every backend consults, and
//!   [`TaskRecord`];
//! - map-reduce jobs that backends keep: [`NewJob`], [`JobStatus`] and [`JobRecord`];
//! - what a task carries: its [`TaskName`] (a borrowed literal or one shared string) and its
//!   encoded input and result as a [`Payload`] (up to [`INLINE_PAYLOAD`] bytes inline, more
//!   behind one `Arc`), both cheap to clone, so a backend hands a task out without copying it;
//! - the bytes: [`Codec`], with [`Postcard`] as default and `Bincode` behind the opt-in
//!   `bincode` feature;
//! - the errors, whose messages say what failed and on which task.
//!
//! # Examples
//!
//! A named task travels as bytes, fails once, and is retried by its policy:
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use workmill_core::{
//!     Backoff, Codec, NamedTask, NewTask, Postcard, Priority, RetryDecision, RetryPolicy,
//!     TaskContext, TaskError, TaskStatus,
//! };
//!
//! #[derive(Serialize, Deserialize)]
//! struct Square(u64);
//!
//! impl NamedTask for Square {
//!     const NAME: &'static str = "math.square";
//!     type Output = u64;
//!     fn run(self, ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
//!         if ctx.attempt() == 1 {
//!             return Err(TaskError::retryable("cold cache"));
//!         }
//!         Ok(self.0 * self.0)
//!     }
//! }
//!
//! // The submitter encodes the input and chooses priority and retries.
//! let policy = RetryPolicy::new(3)
//!     .backoff(Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10)))
//!     .demote_by(10);
//! let task = NewTask::new(Square::NAME, Postcard.encode(&Square(12))?)
//!     .priority(Priority::HIGH)
//!     .retry(policy.clone());
//!
//! // A worker decodes and runs attempt 1, which fails...
//! let input: Square = Postcard.decode(&task.payload)?;
//! let err = input.run(&TaskContext::new(1)).unwrap_err();
//! assert!(TaskStatus::Running.can_become(TaskStatus::Retrying));
//! let RetryDecision::Retry { priority, delay } =
//!     policy.decide(1, err.is_permanent(), task.priority, 0.0)
//! else {
//!     panic!("a retryable error with attempts left is retried");
//! };
//! assert_eq!(priority, Priority::new(11));
//! assert_eq!(delay, Duration::from_millis(100));
//!
//! // ...and attempt 2 succeeds; the result travels back as bytes.
//! let input: Square = Postcard.decode(&task.payload)?;
//! let result = Postcard.encode(&input.run(&TaskContext::new(2)).map_err(|e| e.to_string())?)?;
//! assert_eq!(Postcard.decode::<u64>(&result)?, 144);
//! assert!(!TaskStatus::Completed.can_become(TaskStatus::Running));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod balancer;
mod codec;
mod error;
mod id;
mod job;
mod name;
mod payload;
mod priority;
mod queue;
mod record;
mod retry;
mod rng;
mod status;
mod task;
mod time;
mod worker;

pub use balancer::{Balancer, Candidate, Outcome, Request};
#[cfg(feature = "bincode")]
pub use codec::Bincode;
pub use codec::{Codec, Postcard};
pub use error::{
    BalanceError, CodecError, CodecOp, IllegalTransition, InvalidId, InvalidRetryPolicy,
    QueueError, UnknownJobStatus, UnknownStatus,
};
pub use id::{GeneratedParts, MAX_ID_LEN, TaskId, WorkerId};
pub use job::{JobRecord, JobStatus, NewJob};
pub use name::TaskName;
pub use payload::{INLINE_PAYLOAD, Payload};
pub use priority::{Priority, QueueKey};
pub use queue::{FailOutcome, Lease, ListFilter, NewTask, Queue, QueueStats, Reservation};
pub use record::{Failure, FailureKind, TaskRecord};
pub use retry::{Backoff, RetryDecision, RetryPolicy};
pub use status::{TaskStatus, Transition};
pub use task::{FnTask, NamedTask, Task, TaskContext, TaskError, task_fn};
pub use time::Timestamp;
pub use worker::{Load, RejectReason, Rejected, Worker};
