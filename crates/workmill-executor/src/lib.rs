//! A work-stealing thread pool for fork-join and task parallelism: `join`, `scope`, `spawn` with
//! `JoinHandle`s and priority lanes, `broadcast`, per-worker metrics, and a `workmill_core::Worker`.
//!
//! It covers what rayon-core is used for, with three differences users ask for:
//!
//! - **Cheap joins.** A [`join`]'s second closure is not pushed onto a shared
//!   deque. It waits in the worker's *join frames*, private and free to pop
//!   back; each busy worker offers its oldest pending join to thieves (all of
//!   them once thieves come for work), and a heartbeat wakes sleeping workers
//!   when offered work waits for a tick.
//!   Fine-grained recursion costs a few nanoseconds per join, while coarse
//!   work still spreads over every thread. [`join_context`] tells the second
//!   closure whether it was stolen, the signal adaptive splitting needs.
//! - **Panics reach their owner.** A panic in a spawned task becomes
//!   [`TaskPanicked`] in its [`JoinHandle`] (rayon aborts the process by
//!   default); the worker thread always survives.
//! - **Control over queued work.** [`JoinHandle::cancel`] prevents a task that
//!   has not started; [`Lane`]s let high-priority tasks overtake queued ones;
//!   [`ThreadPool::metrics`] counts tasks, steals, parks and wake-ups per
//!   worker; [`ThreadPool`] reports its [`Load`](workmill_core::Load) as a
//!   [`workmill_core::Worker`].
//!
//! Outside every pool the free functions use a global pool, built on first
//! use with one thread per CPU, or as many as `WORKMILL_NUM_THREADS` says (or
//! by [`ThreadPoolBuilder::build_global`]).
//! Inside a pool they use that pool. Waiting on a pool from one of its own
//! workers (`install`, `join`, `scope`, `JoinHandle::join`) runs work inline
//! or helps with other work, so it never deadlocks.
//!
//! The executor knows nothing of queues, codecs or backends; it runs closures.
//!
//! # Examples
//!
//! A parallel quicksort with `join`, on an explicit pool:
//!
//! ```
//! use workmill_executor::{ThreadPool, join};
//!
//! fn quicksort<T: Ord + Send>(v: &mut [T]) {
//!     if v.len() <= 32 {
//!         v.sort();
//!         return;
//!     }
//!     let mid = partition(v);
//!     let (lo, hi) = v.split_at_mut(mid);
//!     join(|| quicksort(lo), || quicksort(&mut hi[1..]));
//! }
//!
//! fn partition<T: Ord>(v: &mut [T]) -> usize {
//!     let pivot = v.len() - 1;
//!     let mut store = 0;
//!     for i in 0..pivot {
//!         if v[i] <= v[pivot] {
//!             v.swap(i, store);
//!             store += 1;
//!         }
//!     }
//!     v.swap(store, pivot);
//!     store
//! }
//!
//! let pool = ThreadPool::builder().num_threads(2).build()?;
//! let mut data: Vec<u32> = (0..10_000u32).map(|i| i.wrapping_mul(2_654_435_761) % 1000).collect();
//! pool.install(|| quicksort(&mut data));
//! assert!(data.windows(2).all(|w| w[0] <= w[1]));
//!
//! // 'static tasks: a handle per task, panics included.
//! let ok = pool.spawn(|| 40 + 2);
//! let boom = pool.spawn(|| -> u32 { panic!("bad input") });
//! assert_eq!(ok.join().unwrap(), 42);
//! assert_eq!(boom.join().unwrap_err().message(), "bad input");
//! # Ok::<(), workmill_executor::BuildError>(())
//! ```
//!
//! Data that is not `Send` cannot cross a `join`:
//!
//! ```compile_fail
//! use std::rc::Rc;
//!
//! let shared = Rc::new(1);
//! workmill_executor::join(|| Rc::clone(&shared), || 2);
//! ```
//!
//! and a scope's jobs cannot outlive what they borrow:
//!
//! ```compile_fail
//! let mut escaped = None;
//! workmill_executor::scope(|s| {
//!     let local = 5;
//!     s.spawn(|_| escaped = Some(&local));
//! });
//! ```
//!
//! # Design
//!
//! Each worker owns a crossbeam-deque `Worker` for spawned jobs and a stack of
//! join frames; the pool has three crossbeam `Injector` lanes (high, normal,
//! low) for work from outside. A worker looks for work in its broadcast inbox,
//! the high lane, its own deque, then a random victim's shared join frames and
//! deque (retrying on `Steal::Retry`), then the normal and low lanes. Idle
//! workers spin briefly, then park; the sleep/wake protocol that guarantees no
//! lost wake-up is written up in `src/sleep/README.md` and model-checked with
//! loom (`cargo xtask loom`).

mod block;
mod broadcast;
mod builder;
mod deque;
mod frames;
mod global;
mod heartbeat;
mod job;
mod join;
mod latch;
mod metrics;
mod pool;
mod registry;
mod scope;
mod sleep;
mod spawn;
mod sync;
mod unwind;
mod worker;

pub use broadcast::{BroadcastContext, broadcast};
pub use builder::{BuildError, ThreadPoolBuilder};
pub use global::{Yield, current_num_threads, current_thread_index, yield_now};
pub use join::{FnContext, join, join_context};
pub use metrics::{PoolMetrics, WorkerMetrics};
pub use pool::ThreadPool;
pub use scope::{Scope, scope};
pub use spawn::{JoinHandle, Lane, TaskPanicked, spawn, spawn_with};
pub use unwind::panic_message;
