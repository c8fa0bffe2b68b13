//! Where worker loops run: dedicated threads, or long-lived jobs on a `workmill-executor` pool.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use workmill_executor::ThreadPool;

use super::gate::Gate;
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
///
/// Loops on a pool start behind a gate ([`Starting`]): none runs a task until
/// every one of them holds a thread of its own. Otherwise a handler that forks
/// with `join` while a loop job still waits in the pool's queue could, while it
/// waits for the stolen half, pick that loop job up and run it nested on its own
/// stack, forever: the handler's task would never finish.
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
            Host::Pool(pool) => {
                // Started from one of the pool's own threads, that thread is taken.
                let here = usize::from(pool.current_thread_index().is_some());
                let free = pool.current_num_threads() - here;
                if loops <= free {
                    return Ok(());
                }
                Err(RuntimeError::Config(format!(
                    "{loops} worker loops cannot run on a pool of {} threads{}: each loop holds a \
                     thread for as long as it runs; lower the concurrency or give the pool more threads",
                    pool.current_num_threads(),
                    if here == 1 {
                        ", one of which is starting them"
                    } else {
                        ""
                    }
                )))
            }
        }
    }

    /// Begins starting `loops` loops: start each with [`Starting::start`], then call
    /// [`Starting::finish`].
    pub(crate) fn starting(&self, loops: usize) -> Starting<'_> {
        let gate = match self {
            Host::Threads => None,
            Host::Pool(_) => Some(Arc::new(Gate::new(loops))),
        };
        Starting { host: self, gate }
    }

    /// Starts `job` (one worker loop) under `name`, behind `gate` if any.
    fn start(
        &self,
        name: String,
        job: impl FnOnce() -> LoopReport + Send + 'static,
        gate: Option<Arc<Gate>>,
    ) -> Result<Running, RuntimeError> {
        let loop_id = NEXT_LOOP.fetch_add(1, Ordering::Relaxed);
        let job = move || {
            if let Some(gate) = gate {
                gate.arrive_and_wait();
            }
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

/// How long starting loops waits for pool threads to free up before it lets the loops that
/// have one run.
const GATE_PATIENCE: Duration = Duration::from_secs(5);

/// Loops being started on a host; see [`Host::starting`].
pub(crate) struct Starting<'a> {
    host: &'a Host,
    gate: Option<Arc<Gate>>,
}

impl Starting<'_> {
    /// Starts `job` (one worker loop) under `name`. On a pool it holds a thread but runs
    /// nothing until [`finish`](Starting::finish) opens the gate.
    pub(crate) fn start(
        &self,
        name: String,
        job: impl FnOnce() -> LoopReport + Send + 'static,
    ) -> Result<Running, RuntimeError> {
        self.host.start(name, job, self.gate.clone())
    }

    /// Waits until every loop in `running` holds a thread, then lets them all run. With
    /// fewer loops than announced (a start failed), or a loop that ended before it arrived
    /// (its pool shut down), it opens the gate at once, so that the started loops can see
    /// their stop and return. If the pool's threads stay busy with other work for
    /// [`GATE_PATIENCE`] (another runtime's loops hold them), it opens the gate anyway and
    /// warns: the loops start as threads free up.
    pub(crate) fn finish(self, running: &[Running]) {
        let Some(gate) = self.gate else { return };
        if running.len() == gate.expected {
            let started = Instant::now();
            while !gate.wait_all_arrived(Duration::from_millis(100)) {
                if running.iter().any(Running::is_finished) {
                    break;
                }
                if started.elapsed() >= GATE_PATIENCE {
                    tracing::warn!(
                        loops = gate.expected,
                        "not every worker loop found a free pool thread; starting them as threads free up"
                    );
                    break;
                }
            }
        }
        gate.open();
    }
}

/// The loop running on this thread, 0 if none.
pub(crate) fn current_loop() -> u64 {
    CURRENT_LOOP.with(Cell::get)
}

impl Running {
    /// True if called from inside this loop (from one of the tasks it runs).
    pub(crate) fn is_current(&self) -> bool {
        current_loop() == self.loop_id
    }

    /// The loop's id, as [`current_loop`] gives it inside the loop.
    pub(crate) fn id(&self) -> u64 {
        self.loop_id
    }

    /// True if the loop has returned (or never ran).
    fn is_finished(&self) -> bool {
        match &self.how {
            How::Thread(thread) => thread.is_finished(),
            How::Job(job) => job.is_finished(),
        }
    }

    /// Waits for the loop to return its report; `None` if it died (a bug: loops
    /// catch task panics) or if called from inside the loop itself, which cannot
    /// wait for itself (a runtime dropped from inside one of its tasks).
    pub(crate) fn join(self) -> Option<LoopReport> {
        if self.is_current() {
            return None;
        }
        match self.how {
            How::Thread(thread) => thread.join().ok(),
            How::Job(job) => job.join().ok(),
        }
    }
}
