//! `WorkerReport`: what a worker process did, returned by `worker::run` when it stops.

use std::fmt;

use workmill_core::WorkerId;

use super::{LoopReport, StopCause};

/// What a worker process did, from start to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The worker's id (its loops are `{worker}-{i}`).
    pub worker: WorkerId,
    /// Loops started.
    pub loops: usize,
    /// Loops that did not report (one died: a bug, since loops catch task panics).
    pub unreported_loops: usize,
    /// The counts of all loops added together.
    pub tasks: LoopReport,
    /// Leases extended by the heartbeat thread.
    pub heartbeats: u64,
    /// Heartbeat calls that failed because the store did: lease extensions, and hand-backs of
    /// tasks that waited behind a long task of their batch.
    pub heartbeat_errors: u64,
    /// Held leases the store refused to extend (they had lapsed and been rescued, or the task
    /// was gone); the loops then skip those tasks if they have not started them.
    pub heartbeat_refused: u64,
    /// Times the store was opened again after it failed.
    pub reconnects: u64,
    /// What stopped the worker.
    pub stopped_by: Option<StopCause>,
}

impl fmt::Display for WorkerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tasks = &self.tasks;
        write!(
            f,
            "worker {} ({} loops) stopped by {}: {} attempts, {} completed, {} failed, {} handed back, \
             {} lost leases, {} unrecorded; {} heartbeats ({} failed, {} refused), {} reconnects, {} store errors",
            self.worker,
            self.loops,
            self.stopped_by
                .map_or_else(|| "nothing".to_owned(), |cause| cause.to_string()),
            tasks.attempts,
            tasks.completed,
            tasks.failed,
            tasks.released,
            tasks.lost_leases,
            tasks.unrecorded,
            self.heartbeats,
            self.heartbeat_errors,
            self.heartbeat_refused,
            self.reconnects,
            tasks.backend_errors,
        )
    }
}
