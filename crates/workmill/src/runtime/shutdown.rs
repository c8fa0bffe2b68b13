//! `Shutdown` and `ShutdownReport`: how a runtime stops, and what it finished and left behind.

use workmill_core::QueueStats;

use crate::worker::LoopReport;

/// How [`Runtime::shutdown`](crate::Runtime::shutdown) stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Refuse new tasks, finish every queued, delayed, retrying and running
    /// task, then stop the workers. Waits as long as that takes (delayed tasks
    /// and retry backoffs included).
    Drain,
    /// Refuse new tasks, let running tasks finish, hand back the reserved but
    /// unstarted ones, and stop. Queued work stays in the backend: in a durable
    /// backend for the next worker; in the runtime's own memory queue it is
    /// dropped with the runtime, and counted in the report.
    Abandon,
}

/// What a runtime did and left when it shut down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// How the runtime stopped: the mode of the call that stopped its loops, which is not
    /// this call's own when another call stopped them first (a drain asked for after an
    /// abandon reports the abandon), or when an abandon from inside one of the runtime's
    /// tasks stopped the loops during this call's drain.
    pub mode: Shutdown,
    /// Worker loops stopped and joined by this call (0 if the runtime had already shut
    /// down, or if this is an abandon from inside a task that left the loops to a shutdown
    /// in progress).
    pub workers: usize,
    /// Worker loops that did not report (a loop that died, or the calling loop itself).
    pub unreported_workers: usize,
    /// The counts of all loops added together.
    pub loops: LoopReport,
    /// The backend's counts after the workers stopped.
    pub stats: QueueStats,
    /// Tasks left waiting (pending, delayed or retrying): 0 when `mode` is
    /// [`Shutdown::Drain`], unless tasks were enqueued through
    /// [`Runtime::queue`](crate::Runtime::queue) since. A drain that failed stops the runtime
    /// as an abandon, and later reports say so.
    pub left_waiting: u64,
}
