//! `WorkerStats`: one worker's detailed statistics, as the seed's `get_detailed_stats` reports them.

use std::time::Duration;

use crate::health::HealthState;

/// One worker's statistics at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerStats {
    /// The name it was added under.
    pub name: String,
    /// The seed's health score, 0 to 1 (see [`health_score`](crate::health_score)).
    pub health_score: f64,
    /// Mean time from start to finish over the recent window (see
    /// [`MetricsWindows`](crate::MetricsWindows)); `None` until measured, and
    /// again once the worker has been idle (no job in flight) for longer than
    /// the windows' maximum age.
    pub mean_response_time: Option<Duration>,
    /// Share of failed attempts over the recent window; 0.0 when none is in it.
    pub error_rate: f64,
    /// Jobs running now.
    pub running: usize,
    /// Jobs waiting in its queue.
    pub queued: usize,
    /// Jobs it may hold at once; 0 if unknown.
    pub capacity: usize,
    /// Attempts that succeeded, in all.
    pub processed: u64,
    /// Attempts that failed, in all.
    pub failed: u64,
    /// False while it is ejected or awaiting its probe.
    pub healthy: bool,
    /// Its place in the ejection state machine.
    pub state: HealthState,
    /// Its ejection count (which sets the length of the next ejection).
    pub ejections: u32,
}
