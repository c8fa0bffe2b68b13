//! Where a runtime's worker loops run: dedicated threads today; the seam where the executor pool plugs in.

use std::thread::{self, JoinHandle};

use crate::error::RuntimeError;
use crate::worker::LoopReport;

/// Where worker loops run.
///
/// Each loop blocks its thread while it waits for work, so today every loop
/// gets a dedicated, named thread. A `workmill-executor` pool will be a second
/// variant: its loops then run as pool jobs, and [`Running::join`] waits on
/// the job's latch instead of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    /// One dedicated thread per worker loop.
    Threads,
}

/// A worker loop started on a host.
#[derive(Debug)]
pub(crate) struct Running {
    thread: JoinHandle<LoopReport>,
}

impl Host {
    /// Starts `job` (one worker loop) under `name`.
    pub(crate) fn start(
        self,
        name: String,
        job: impl FnOnce() -> LoopReport + Send + 'static,
    ) -> Result<Running, RuntimeError> {
        match self {
            Host::Threads => thread::Builder::new()
                .name(name.clone())
                .spawn(job)
                .map(|thread| Running { thread })
                .map_err(|source| RuntimeError::Spawn { name, source }),
        }
    }
}

impl Running {
    /// Waits for the loop to return its report; `None` if it died (a bug: loops
    /// catch task panics) or if this is the loop's own thread, which cannot wait
    /// for itself (a runtime dropped from inside one of its tasks).
    pub(crate) fn join(self) -> Option<LoopReport> {
        if self.thread.thread().id() == thread::current().id() {
            return None;
        }
        self.thread.join().ok()
    }
}
