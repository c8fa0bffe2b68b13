//! `HealthTracker`: the outlier-ejection state machine, driven by outcomes and by the time it is told.

use std::time::Duration;

use workmill_core::{BalanceError, Balancer, Candidate, Request};

use super::HealthConfig;
use crate::window::Window;

/// Where a worker stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HealthState {
    /// Takes its full share of work.
    Healthy,
    /// Takes no work until `until` (time on the tracker's clock).
    Ejected {
        /// When the ejection ends.
        until: Duration,
    },
    /// Back from ejection: it may take one job, the probe, whose outcome decides.
    Probing {
        /// True once the probe has been dispatched.
        probe_in_flight: bool,
    },
    /// Passed its probe; its share of work ramps up since `since`.
    SlowStart {
        /// When the probe succeeded.
        since: Duration,
    },
}

/// Whether a dispatched job is a returning worker's probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// An ordinary job.
    Normal,
    /// The one job a worker back from ejection gets before its outcome is known.
    Probe,
}

#[derive(Clone, Debug)]
struct WorkerHealth {
    state: HealthState,
    outcomes: Window,
    consecutive_failures: u32,
    ejections: u32,
    healthy_since: Duration,
}

/// Outlier detection in the manner of Envoy and Finagle: a worker whose
/// windowed error rate or run of consecutive failures crosses its threshold is
/// ejected for `base x ejections` (capped), comes back to one probe, and on
/// success returns, through an optional slow start.
///
/// The tracker holds no clock: every call takes `now`, the time on whatever
/// clock the caller keeps (a [`Clock`](crate::Clock) in the pool, virtual time
/// in the simulator), so tests drive ejection and return without sleeping.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_balance::{Dispatch, HealthConfig, HealthState, HealthTracker};
///
/// let mut health = HealthTracker::new(HealthConfig::default(), 4);
/// let t = Duration::from_secs(100);
/// for _ in 0..10 {
///     health.record(2, Dispatch::Normal, false, t);
/// }
/// assert_eq!(health.state(2), HealthState::Ejected { until: t + Duration::from_secs(30) });
/// assert!(!health.admits(2, t + Duration::from_secs(29)));
/// assert!(health.admits(2, t + Duration::from_secs(30)));
/// assert_eq!(health.on_dispatch(2), Dispatch::Probe);
/// health.record(2, Dispatch::Probe, true, t + Duration::from_secs(31));
/// assert_eq!(health.state(2), HealthState::Healthy);
/// ```
#[derive(Clone, Debug)]
pub struct HealthTracker {
    config: HealthConfig,
    workers: Vec<WorkerHealth>,
    out_of_rotation: usize,
    rng: fastrand::Rng,
}

/// The least share of traffic a slow-starting worker gets (Envoy's `min_weight_percent`).
const SLOW_START_MIN_SHARE: f64 = 0.1;

impl HealthTracker {
    /// A tracker for `workers` workers, all healthy.
    pub fn new(config: HealthConfig, workers: usize) -> HealthTracker {
        let window = config.error_window;
        HealthTracker {
            config,
            workers: (0..workers)
                .map(|_| WorkerHealth {
                    state: HealthState::Healthy,
                    outcomes: Window::new(window),
                    consecutive_failures: 0,
                    ejections: 0,
                    healthy_since: Duration::ZERO,
                })
                .collect(),
            out_of_rotation: 0,
            rng: fastrand::Rng::with_seed(0x5EED_0F51_0700),
        }
    }

    /// Seeds the generator that thins a slow-starting worker's traffic.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> HealthTracker {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// How many workers it tracks.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// True when it tracks no worker.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Picks a worker for a job among `candidates` (built with [`admits`](Self::admits)), as
    /// the pool and its simulator both dispatch:
    ///
    /// - a worker back from an ejection and waiting for its probe gets the job, whatever
    ///   `balancer` would pick: a strategy that ranks workers by their measurements would
    ///   keep avoiding the one those measurements ejected;
    /// - slow-starting workers that their ramp left out are offered after all when no
    ///   candidate can take the job otherwise: the ramp spreads load, it does not refuse work
    ///   nobody else can take;
    /// - `excluded` (the worker a retry just failed on) is masked, and unmasked only if no
    ///   other worker is healthy.
    pub(crate) fn pick(
        &self,
        balancer: &mut dyn Balancer,
        candidates: &mut [Candidate],
        request: &Request,
        excluded: Option<usize>,
    ) -> Result<usize, BalanceError> {
        if !candidates.iter().any(Candidate::is_available) {
            for candidate in candidates.iter_mut() {
                if matches!(self.state(candidate.index), HealthState::SlowStart { .. }) {
                    candidate.healthy = true;
                }
            }
        }
        let probe = candidates.iter().find(|c| {
            c.is_available()
                && Some(c.index) != excluded
                && self.state(c.index)
                    == HealthState::Probing {
                        probe_in_flight: false,
                    }
        });
        if let Some(probe) = probe {
            return Ok(probe.index);
        }
        let Some(excluded) = excluded.filter(|&e| candidates.get(e).is_some_and(|c| c.healthy))
        else {
            return balancer.pick(candidates, request);
        };
        candidates[excluded].healthy = false;
        match balancer.pick(candidates, request) {
            Err(BalanceError::NoHealthyWorkers { .. }) => {
                candidates[excluded].healthy = true;
                balancer.pick(candidates, request)
            }
            other => other,
        }
    }

    /// A worker's state, as of its last update (see [`refresh`](Self::refresh)).
    /// An index out of range reads as healthy.
    pub fn state(&self, worker: usize) -> HealthState {
        self.workers
            .get(worker)
            .map_or(HealthState::Healthy, |w| w.state)
    }

    /// How many times the worker has been ejected, less one for each
    /// `base_ejection` it has since spent in rotation.
    pub fn ejections(&self, worker: usize) -> u32 {
        self.workers.get(worker).map_or(0, |w| w.ejections)
    }

    /// Workers now ejected or waiting on their probe.
    pub fn out_of_rotation(&self) -> usize {
        self.out_of_rotation
    }

    /// Brings a worker's state up to `now`: an ejection that has run out turns
    /// into a probe, a finished slow start into health, and each
    /// `base_ejection` spent in rotation forgives one past ejection.
    pub fn refresh(&mut self, worker: usize, now: Duration) {
        let base = self.config.base_ejection;
        let slow_start = self.config.slow_start;
        let Some(w) = self.workers.get_mut(worker) else {
            return;
        };
        match w.state {
            HealthState::Ejected { until } if now >= until => {
                w.state = HealthState::Probing {
                    probe_in_flight: false,
                };
            }
            HealthState::SlowStart { since }
                if slow_start.is_none_or(|ramp| now.saturating_sub(since) >= ramp) =>
            {
                w.state = HealthState::Healthy;
            }
            _ => {}
        }
        if matches!(
            w.state,
            HealthState::Healthy | HealthState::SlowStart { .. }
        ) {
            while w.ejections > 0 && now.saturating_sub(w.healthy_since) >= base {
                w.ejections -= 1;
                w.healthy_since += base;
            }
        }
    }

    /// Refreshes every worker; what the [`HealthMonitor`](super::HealthMonitor) calls each interval.
    pub fn tick(&mut self, now: Duration) {
        for worker in 0..self.workers.len() {
            self.refresh(worker, now);
        }
    }

    /// Whether the worker may be offered a job now. A worker on probation is
    /// offered one job, and a slow-starting one a growing share of picks.
    pub fn admits(&mut self, worker: usize, now: Duration) -> bool {
        self.refresh(worker, now);
        match self.state(worker) {
            HealthState::Healthy => true,
            HealthState::Ejected { .. } => false,
            HealthState::Probing { probe_in_flight } => !probe_in_flight,
            HealthState::SlowStart { since } => {
                let ramp = self.config.slow_start.unwrap_or(Duration::ZERO);
                let share = if ramp.is_zero() {
                    1.0
                } else {
                    now.saturating_sub(since).as_secs_f64() / ramp.as_secs_f64()
                };
                self.rng.f64() < share.max(SLOW_START_MIN_SHARE)
            }
        }
    }

    /// Notes that a job was sent to `worker`; returns whether it is the worker's probe.
    pub fn on_dispatch(&mut self, worker: usize) -> Dispatch {
        match self.workers.get_mut(worker) {
            Some(w)
                if w.state
                    == (HealthState::Probing {
                        probe_in_flight: false,
                    }) =>
            {
                w.state = HealthState::Probing {
                    probe_in_flight: true,
                };
                Dispatch::Probe
            }
            _ => Dispatch::Normal,
        }
    }

    /// Takes back a dispatch that never reached the worker (it refused the job),
    /// so that a probe can be offered again.
    pub fn cancel_dispatch(&mut self, worker: usize, dispatch: Dispatch) {
        if let (Some(w), Dispatch::Probe) = (self.workers.get_mut(worker), dispatch)
            && w.state
                == (HealthState::Probing {
                    probe_in_flight: true,
                })
        {
            w.state = HealthState::Probing {
                probe_in_flight: false,
            };
        }
    }

    /// Records a job's outcome. Returns true if this outcome ejected the worker.
    ///
    /// Outcomes of ordinary jobs that finish while the worker is out of
    /// rotation (they were queued before the ejection) are ignored: the probe
    /// alone decides its return.
    pub fn record(
        &mut self,
        worker: usize,
        dispatch: Dispatch,
        success: bool,
        now: Duration,
    ) -> bool {
        self.refresh(worker, now);
        let Some(w) = self.workers.get_mut(worker) else {
            return false;
        };
        match (w.state, dispatch) {
            (HealthState::Probing { .. }, Dispatch::Probe) => {
                if success {
                    w.state = match self.config.slow_start {
                        Some(_) => HealthState::SlowStart { since: now },
                        None => HealthState::Healthy,
                    };
                    w.healthy_since = now;
                    self.out_of_rotation -= 1;
                    false
                } else {
                    w.ejections = w.ejections.saturating_add(1);
                    w.state = HealthState::Ejected {
                        until: now.saturating_add(self.config.ejection_time(w.ejections)),
                    };
                    true
                }
            }
            (HealthState::Healthy | HealthState::SlowStart { .. }, _) => {
                w.outcomes.push(if success { 0.0 } else { 1.0 });
                w.consecutive_failures = if success {
                    0
                } else {
                    w.consecutive_failures.saturating_add(1)
                };
                let by_streak = self.config.consecutive_failures > 0
                    && w.consecutive_failures >= self.config.consecutive_failures;
                let by_rate = w.outcomes.count() >= self.config.min_requests
                    && w.outcomes.mean().unwrap_or(0.0) >= self.config.max_error_rate;
                (by_streak || by_rate) && self.eject(worker, now)
            }
            _ => false,
        }
    }

    /// Ejects a worker in rotation, if the share allows another ejection.
    fn eject(&mut self, worker: usize, now: Duration) -> bool {
        if self.out_of_rotation >= self.config.max_ejected(self.workers.len()) {
            return false;
        }
        let w = &mut self.workers[worker];
        w.ejections = w.ejections.saturating_add(1);
        w.state = HealthState::Ejected {
            until: now.saturating_add(self.config.ejection_time(w.ejections)),
        };
        w.outcomes.clear();
        w.consecutive_failures = 0;
        self.out_of_rotation += 1;
        true
    }
}
