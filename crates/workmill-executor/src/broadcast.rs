//! `broadcast`: run one closure once on every worker of a pool and collect the results in worker order.

use std::fmt;

use crate::global;
use crate::job::StackJob;
use crate::latch::{CountLatch, CountLatchRef};
use crate::registry::Registry;
use crate::unwind;
use crate::worker::WorkerThread;

/// What a broadcast closure learns about where it runs.
///
/// # Examples
///
/// ```
/// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
/// let seen = pool.broadcast(|ctx| (ctx.index(), ctx.num_threads()));
/// assert_eq!(seen, vec![(0, 2), (1, 2)]);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
#[derive(Clone, Copy)]
pub struct BroadcastContext {
    index: usize,
    num_threads: usize,
}

impl BroadcastContext {
    /// The index of the worker running this copy, from 0 to `num_threads() - 1`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers run the broadcast (the pool's size).
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }
}

impl fmt::Debug for BroadcastContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastContext")
            .field("index", &self.index)
            .field("num_threads", &self.num_threads)
            .finish()
    }
}

/// Runs `op` once on every worker of the current pool (the global pool
/// outside every pool) and returns the results ordered by worker index.
///
/// Each worker runs its copy as soon as it finishes the job at hand, before
/// any other queued work. Use it to warm thread-local caches or to collect
/// per-thread state.
///
/// # Panics
///
/// If a copy panics, the others still run; once all have finished the first
/// panic (by worker index) is re-raised here.
///
/// # Examples
///
/// ```
/// use workmill_executor::ThreadPool;
///
/// let pool = ThreadPool::builder().num_threads(3).build()?;
/// let indices = pool.broadcast(|ctx| ctx.index());
/// assert_eq!(indices, vec![0, 1, 2]);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
pub fn broadcast<OP, R>(op: OP) -> Vec<R>
where
    OP: Fn(BroadcastContext) -> R + Sync,
    R: Send,
{
    let worker = WorkerThread::current();
    // SAFETY: a non-null current worker is alive on this thread.
    match unsafe { worker.as_ref() } {
        Some(worker) => broadcast_on_worker(worker, &op),
        None => Registry::in_worker(global::registry(), |worker, _| {
            broadcast_on_worker(worker, &op)
        }),
    }
}

/// Queues one copy in every worker's inbox, then waits by working.
pub(crate) fn broadcast_on_worker<OP, R>(worker: &WorkerThread, op: &OP) -> Vec<R>
where
    OP: Fn(BroadcastContext) -> R + Sync,
    R: Send,
{
    let registry = worker.registry();
    let num_threads = registry.num_threads();
    let remaining = CountLatch::new(num_threads, registry, worker.index());
    let jobs: Vec<_> = (0..num_threads)
        .map(|index| {
            StackJob::new(
                move |_migrated| op(BroadcastContext { index, num_threads }),
                CountLatchRef(&remaining),
            )
        })
        .collect();
    for (info, job) in registry.thread_infos.iter().zip(&jobs) {
        // SAFETY: `jobs` is neither moved nor dropped before `remaining` is
        // set, which happens only after every job has run.
        info.inbox.push(unsafe { job.as_job_ref() });
    }
    registry.sleep.new_jobs_for_all();
    worker.wait_until(&remaining.core);
    let mut results = Vec::with_capacity(num_threads);
    let mut first_panic = None;
    for job in jobs {
        // SAFETY: every job has run: the count latch is set.
        match unsafe { job.into_outcome() } {
            Ok(value) => results.push(value),
            Err(payload) if first_panic.is_none() => first_panic = Some(payload),
            // A later panic is dropped here, and so are the results when one panicked: a
            // `Drop` that panics (`panic_any` of such a value) must not unwind with the
            // remaining payloads still to drop, which would abort the process.
            Err(payload) => unwind::drop_quietly(payload, |_| {}),
        }
    }
    if let Some(payload) = first_panic {
        // One at a time: dropping them as one `Vec`, a second value whose `Drop` panics would
        // do so while the first one's panic unwinds, and abort.
        for value in results {
            unwind::drop_quietly(value, |_| {});
        }
        unwind::resume_unwinding(payload);
    }
    results
}
