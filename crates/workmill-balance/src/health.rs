//! Health: outlier ejection by error rate and consecutive failures, probing on return, slow start, and the interval monitor.
//!
//! The state machine and why it is shaped this way are in `health/README.md`.

mod monitor;
mod tracker;

pub use monitor::HealthMonitor;
pub use tracker::{Dispatch, HealthState, HealthTracker};

use std::time::Duration;

use thiserror::Error;

/// When a worker is ejected, for how long, and how it comes back.
///
/// The durations follow Envoy's outlier detection: 30 s times the number of
/// ejections, capped at 300 s, at most 10% of the workers ejected at once (but
/// always at least one). The triggers are set so that a worker that is merely
/// unreliable, like the seed's that fails 30% of its jobs yet does 70% useful
/// work, is almost never ejected, while a dead one is ejected within ten jobs:
/// ten consecutive failures (a 30%-failing worker has a run of ten once in
/// about 200 000 jobs; Envoy's five would eject it every few hundred), or an
/// error rate of 50% or more over the last 100 outcomes once 50 are in.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthConfig {
    /// Outcomes in the sliding window the error rate is measured over.
    pub error_window: usize,
    /// Outcomes the window must hold before the error rate can eject.
    pub min_requests: usize,
    /// A windowed error rate at or above this ejects; from 0.0 to 1.0.
    pub max_error_rate: f64,
    /// This many failures in a row eject; 0 turns the rule off.
    pub consecutive_failures: u32,
    /// The first ejection lasts this long; the n-th lasts n times as long.
    pub base_ejection: Duration,
    /// No ejection lasts longer.
    pub max_ejection: Duration,
    /// At most this share of the workers is ejected at once (but at least one
    /// worker may be, unless the share is 0, which turns ejection off).
    pub max_ejected_share: f64,
    /// After a successful probe, the worker's share of traffic ramps up from
    /// 10% to all of it over this long; `None` returns it at full share.
    pub slow_start: Option<Duration>,
    /// How often the [`HealthMonitor`] of a pool runs (the seed's 5 s).
    pub interval: Duration,
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            error_window: 100,
            min_requests: 50,
            max_error_rate: 0.5,
            consecutive_failures: 10,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_share: 0.1,
            slow_start: None,
            interval: Duration::from_secs(5),
        }
    }
}

/// A [`HealthConfig`] that cannot work as written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid health config: {reason}")]
pub struct InvalidHealthConfig {
    /// Which rule it broke.
    pub reason: &'static str,
}

impl HealthConfig {
    /// Never ejects anyone: for measuring a strategy on its own.
    pub fn never_eject() -> HealthConfig {
        HealthConfig {
            max_ejected_share: 0.0,
            ..HealthConfig::default()
        }
    }

    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), InvalidHealthConfig> {
        let fail = |reason| Err(InvalidHealthConfig { reason });
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return fail("max_error_rate must lie between 0.0 and 1.0");
        }
        if !(0.0..=1.0).contains(&self.max_ejected_share) {
            return fail("max_ejected_share must lie between 0.0 and 1.0");
        }
        if self.error_window == 0 {
            return fail("error_window must hold at least one outcome");
        }
        if self.min_requests > self.error_window {
            return fail("min_requests cannot exceed error_window, or the error rate never ejects");
        }
        if self.base_ejection.is_zero() || self.base_ejection > self.max_ejection {
            return fail("base_ejection must be positive and at most max_ejection");
        }
        if self.interval.is_zero() {
            return fail("interval must be positive");
        }
        if self.slow_start.is_some_and(|d| d.is_zero()) {
            return fail("slow_start must be positive, or None to turn it off");
        }
        Ok(())
    }

    /// How many of `workers` may be ejected at once.
    pub fn max_ejected(&self, workers: usize) -> usize {
        if self.max_ejected_share <= 0.0 || workers == 0 {
            0
        } else {
            ((self.max_ejected_share * workers as f64).floor() as usize).max(1)
        }
    }

    /// How long ejection number `n` (1-based) lasts.
    pub fn ejection_time(&self, n: u32) -> Duration {
        self.base_ejection
            .saturating_mul(n.max(1))
            .min(self.max_ejection)
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests;
