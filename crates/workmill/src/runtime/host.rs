//! Where worker loops run: dedicated threads, or long-lived jobs on a `workmill-executor` pool.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use workmill_executor::ThreadPool;

use crate::error::RuntimeError;
use crate::worker::LoopReport;

/// Where worker loops run.
///
/// Each loop blocks its thread while it waits for work. On [`Host::Threads`]
/// every loop gets a dedicated, named thread. On [`Host::Pool`] every loop is
/// a long-lived job of a `workmill-executor` pool, so the handlers it runs are
/// on pool threads: the `join`, `scope` and map-reduce calls they make use
/// that pool's workers instead of starting more threads. A pool must have at
/// least as many threads as it hosts loops, or the extra loops would wait for
/// a thread that never frees up; [`Host::check`] refuses that.
#[derive(Clone)]
pub(crate) enum Host {
    /// One dedicated thread per worker loop.
    Threads,
    /// One job per worker loop on this pool.
    Pool(Arc<ThreadPool>),
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Threads => f.write_str("Threads"),
            Host::Pool(pool) => write!(f, "Pool({} threads)", pool.current_num_threads()),
        }
    }
}

/// A worker loop started on a host.
#[derive(Debug)]
pub(crate) struct Running {
    loop_id: u64,
    how: How,
}

#[derive(Debug)]
enum How {
    Thread(JoinHandle<LoopReport>),
    Job(workmill_executor::JoinHandle<LoopReport>),
}

thread_local! {
    /// The loop running on this thread right now, 0 if none: a loop cannot wait for itself.
    static CURRENT_LOOP: Cell<u64> = const { Cell::new(0) };
}

/// Numbers loops so that [`Running::join`] can tell whether it is called from inside the loop.
static NEXT_LOOP: AtomicU64 = AtomicU64::new(1);

impl Host {
    /// Checks that the host can run `loops` loops at once.
    pub(crate) fn check(&self, loops: usize) -> Result<(), RuntimeError> {
        match self {
            Host::Threads => Ok(()),
            Host::Pool(pool) if loops <= pool.current_num_threads() => Ok(()),
            Host::Pool(pool) => Err(RuntimeError::Config(format!(
                "{loops} worker loops cannot run on a pool of {} threads: each loop holds a thread \
                 for as long as it runs; lower the concurrency or give the pool more threads",
                pool.current_num_threads()
            ))),
        }
    }

    /// Starts `job` (one worker loop) under `name`.
    pub(crate) fn start(
        &self,
        name: String,
        job: impl FnOnce() -> LoopReport + Send + 'static,
    ) -> Result<Running, RuntimeError> {
        let loop_id = NEXT_LOOP.fetch_add(1, Ordering::Relaxed);
        let job = move || {
            let outer = CURRENT_LOOP.with(|current| current.replace(loop_id));
            let report = job();
            CURRENT_LOOP.with(|current| current.set(outer));
            report
        };
        let how = match self {
            Host::Threads => thread::Builder::new()
                .name(name.clone())
                .spawn(job)
                .map(How::Thread)
                .map_err(|source| RuntimeError::Spawn { name, source })?,
            Host::Pool(pool) => How::Job(pool.spawn(job)),
        };
        Ok(Running { loop_id, how })
    }
}

impl Running {
    /// Waits for the loop to return its report; `None` if it died (a bug: loops
    /// catch task panics) or if called from inside the loop itself, which cannot
    /// wait for itself (a runtime dropped from inside one of its tasks).
    pub(crate) fn join(self) -> Option<LoopReport> {
        if CURRENT_LOOP.with(Cell::get) == self.loop_id {
            return None;
        }
        match self.how {
            How::Thread(thread) => thread.join().ok(),
            How::Job(job) => job.join().ok(),
        }
    }
}
