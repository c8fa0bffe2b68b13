//! Load balancing for workmill: strategies, health tracking, a worker pool, and a simulator.
//!
//! (The crate documentation is completed below.)
#![forbid(unsafe_code)]

mod clock;
mod health;
mod metrics;
mod pool;
mod score;
pub mod sim;
mod strategy;
mod sync;
mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use health::{
    Dispatch, HealthConfig, HealthMonitor, HealthState, HealthTracker, InvalidHealthConfig,
};
pub use metrics::MetricsWindows;
pub use pool::{
    BuildError, Job, Pool, PoolBuilder, PoolError, Refused, TaskHandle, ThreadWorker, WorkerStats,
};
pub use score::health_score;
pub use strategy::{
    Adaptive, AdaptiveWeights, LeastLoaded, PeakEwma, PowerOfTwoChoices, Random, Rendezvous,
    RoundRobin, ShortestExpectedDelay, WeightedRoundRobin, no_available_candidate,
};

/// The strategy a [`Pool`] uses unless told otherwise: [`ShortestExpectedDelay`]
/// from learned rates.
pub fn default_balancer() -> ShortestExpectedDelay {
    ShortestExpectedDelay::new()
}
