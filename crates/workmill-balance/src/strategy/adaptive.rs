//! `Adaptive`: the seed's adaptive balancer, scoring workers by health, load against capacity and response time.

use std::sync::Arc;
use std::time::Duration;

use workmill_core::{BalanceError, Balancer, Candidate, Outcome, Request};

use super::{advance, no_available_candidate, rotated};
use crate::clock::{Clock, SystemClock};
use crate::metrics::{DEFAULT_MAX_AGE, lapsed};
use crate::score::health_score_seconds;
use crate::window::Window;

/// How much each part of the adaptive score weighs; the seed's formula is all ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveWeights {
    /// Weight of `1 - health score`.
    pub health: f64,
    /// Weight of the load ratio, jobs in flight over capacity.
    pub load: f64,
    /// Weight of the mean response time, in seconds.
    pub response: f64,
}

impl Default for AdaptiveWeights {
    fn default() -> AdaptiveWeights {
        AdaptiveWeights {
            health: 1.0,
            load: 1.0,
            response: 1.0,
        }
    }
}

/// What the adaptive balancer remembers of one worker.
#[derive(Clone, Debug)]
struct History {
    latencies: Window,
    outcomes: Window,
    /// When the last outcome was observed.
    last_observed: Duration,
}

/// The seed's `AdaptiveLoadBalancer`, with its formula as the default and its weights tunable.
///
/// For each available worker it computes the seed's
/// [`health_score`](crate::health_score) from the worker's windowed error
/// rate, its jobs in flight and its windowed mean response time, and skips a
/// worker whose score is not above `min_health` (0.3, as in the seed). It
/// picks the lowest
///
/// ```text
/// score = w.health * (1 - health) + w.load * in_flight / capacity + w.response * mean_response_s
/// ```
///
/// The response time is the worker's processing time, as the seed measured it:
/// the mean time from start to finish the candidate reports in its load (the
/// pool measures it over a window). For a worker that reports none, it is the
/// mean of the last 10 outcome latencies observed (the seed's window), which
/// include queueing. Errors are counted over the last 20 outcomes observed.
/// The seed counted errors since the start and load as running jobs only;
/// here errors are windowed and load counts queued jobs too, so that a worker
/// recovers and a long queue counts. A worker of unknown capacity (0) has its load ratio taken
/// as `in_flight / 10`, the scale of the seed's load penalty.
///
/// A worker's windows are forgotten once nothing was observed of it for
/// [`max_age`](Self::max_age) (a minute by default, as the pool's
/// [`MetricsWindows`](crate::MetricsWindows)): otherwise a worker scored low
/// for being slow or failing, and so given no more jobs, would keep its score
/// for good, even after it recovered. It then counts as unmeasured, with no
/// errors and, unless its load reports a response time, responding instantly,
/// and is tried again. Time is read from the strategy's [`Clock`]: give it the
/// pool's clock, or in the simulator the run's, as for [`PeakEwma`](crate::PeakEwma).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_balance::{Adaptive, ManualClock};
/// use workmill_core::{Balancer, Candidate, Load, Outcome, Request};
///
/// let clock = ManualClock::new();
/// let mut adaptive = Adaptive::with_clock(clock.clone());
/// let candidates = [
///     Candidate::new(0, Load { capacity: 4, ..Load::default() }),
///     Candidate::new(1, Load { capacity: 4, ..Load::default() }),
/// ];
/// for _ in 0..5 {
///     adaptive.observe(&Outcome { worker: 0, latency: Duration::from_millis(900), success: false });
///     adaptive.observe(&Outcome { worker: 1, latency: Duration::from_millis(200), success: true });
/// }
/// assert_eq!(adaptive.pick(&candidates, &Request::default()), Ok(1));
/// // Two minutes later, with nothing observed of worker 0 since, it is tried again.
/// clock.advance(Duration::from_secs(120));
/// adaptive.observe(&Outcome { worker: 1, latency: Duration::from_millis(200), success: true });
/// assert_eq!(adaptive.pick(&candidates, &Request::default()), Ok(0));
/// ```
#[derive(Clone, Debug)]
pub struct Adaptive {
    weights: AdaptiveWeights,
    min_health: f64,
    latency_window: usize,
    outcome_window: usize,
    history: Vec<History>,
    start: usize,
    clock: Arc<dyn Clock>,
    max_age: Option<Duration>,
}

impl Adaptive {
    /// The seed's formula and thresholds, on the system clock.
    pub fn new() -> Adaptive {
        Adaptive::with_shared_clock(Arc::new(SystemClock::new()))
    }

    /// The seed's formula and thresholds, reading time from `clock`.
    pub fn with_clock(clock: impl Clock + 'static) -> Adaptive {
        Adaptive::with_shared_clock(Arc::new(clock))
    }

    /// The seed's formula and thresholds, reading time from a shared clock.
    pub fn with_shared_clock(clock: Arc<dyn Clock>) -> Adaptive {
        Adaptive {
            weights: AdaptiveWeights::default(),
            min_health: 0.3,
            latency_window: 10,
            outcome_window: 20,
            history: Vec::new(),
            start: 0,
            clock,
            max_age: Some(DEFAULT_MAX_AGE),
        }
    }

    /// How long a worker's windows last after its last observed outcome (a
    /// minute by default); `None` keeps them until newer outcomes push them
    /// out. A zero age keeps them only until the clock moves on.
    #[must_use]
    pub fn max_age(mut self, max_age: Option<Duration>) -> Adaptive {
        self.max_age = max_age;
        self
    }

    /// Sets the weights of the score's three parts.
    #[must_use]
    pub fn weights(mut self, weights: AdaptiveWeights) -> Adaptive {
        self.weights = weights;
        self
    }

    /// Workers whose health score is at or below `min_health` are not picked.
    #[must_use]
    pub fn min_health(mut self, min_health: f64) -> Adaptive {
        self.min_health = min_health;
        self
    }

    /// How many recent latencies and outcomes the windowed measures cover.
    #[must_use]
    pub fn windows(mut self, latencies: usize, outcomes: usize) -> Adaptive {
        self.latency_window = latencies.max(1);
        self.outcome_window = outcomes.max(1);
        self.history.clear();
        self
    }

    fn history(&mut self, worker: usize) -> &mut History {
        while self.history.len() <= worker {
            self.history.push(History {
                latencies: Window::new(self.latency_window),
                outcomes: Window::new(self.outcome_window),
                last_observed: Duration::ZERO,
            });
        }
        &mut self.history[worker]
    }

    /// The time, when windows can lapse; the clock is not read otherwise.
    fn now(&self) -> Duration {
        match self.max_age {
            Some(_) => self.clock.now(),
            None => Duration::ZERO,
        }
    }

    /// The health score the seed would give this worker now.
    pub fn health(&self, candidate: &Candidate) -> f64 {
        let (error_rate, mean) = self.measures(candidate, self.now());
        health_score_seconds(error_rate, candidate.load.in_flight(), mean)
    }

    /// The windowed error rate, and the response time in seconds if known, at `now`.
    fn measures(&self, candidate: &Candidate, now: Duration) -> (f64, Option<f64>) {
        let reported = candidate.load.mean_latency.map(|d| d.as_secs_f64());
        match self.history.get(candidate.index) {
            Some(h) if !lapsed(Some(h.last_observed), now, self.max_age) => (
                h.outcomes.mean().unwrap_or(0.0),
                reported.or(h.latencies.mean()),
            ),
            _ => (0.0, reported),
        }
    }

    /// The seed's selection score (lower is better), or `None` if too unhealthy to pick.
    fn score(&self, candidate: &Candidate, now: Duration) -> Option<f64> {
        let (error_rate, mean) = self.measures(candidate, now);
        let in_flight = candidate.load.in_flight();
        let health = health_score_seconds(error_rate, in_flight, mean);
        if health.partial_cmp(&self.min_health) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let in_flight = in_flight as f64;
        let load_ratio = match candidate.load.capacity {
            0 => in_flight / 10.0,
            capacity => in_flight / capacity as f64,
        };
        let response = mean.unwrap_or(0.0);
        Some(
            self.weights.health * (1.0 - health)
                + self.weights.load * load_ratio
                + self.weights.response * response,
        )
    }
}

impl Default for Adaptive {
    fn default() -> Adaptive {
        Adaptive::new()
    }
}

impl Balancer for Adaptive {
    fn pick(
        &mut self,
        candidates: &[Candidate],
        _request: &Request,
    ) -> Result<usize, BalanceError> {
        let mut best: Option<(usize, f64)> = None;
        let mut any_available = false;
        let now = self.now();
        for position in rotated(self.start, candidates.len()) {
            let candidate = &candidates[position];
            if !candidate.is_available() {
                continue;
            }
            any_available = true;
            if let Some(score) = self.score(candidate, now)
                && best.is_none_or(|(_, lowest)| score < lowest)
            {
                best = Some((candidate.index, score));
            }
        }
        self.start = advance(self.start, candidates.len());
        match best {
            Some((index, _)) => Ok(index),
            None if any_available => Err(BalanceError::NoHealthyWorkers {
                total: candidates.len(),
            }),
            None => Err(no_available_candidate(candidates)),
        }
    }

    fn observe(&mut self, outcome: &Outcome) {
        let now = self.now();
        let max_age = self.max_age;
        let history = self.history(outcome.worker);
        if lapsed(Some(history.last_observed), now, max_age) {
            history.latencies.clear();
            history.outcomes.clear();
        }
        history.last_observed = history.last_observed.max(now);
        history.latencies.push(outcome.latency.as_secs_f64());
        history
            .outcomes
            .push(if outcome.success { 0.0 } else { 1.0 });
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::strategy::test_support::{idle, loaded};

    fn observe(adaptive: &mut Adaptive, worker: usize, millis: u64, success: bool) {
        adaptive.observe(&Outcome {
            worker,
            latency: Duration::from_millis(millis),
            success,
        });
    }

    #[test]
    fn score_is_the_seeds_formula() {
        let mut adaptive = Adaptive::new();
        // Worker 0: 1 failure in 4 outcomes, mean 0.5 s, 2 jobs of capacity 4.
        for (millis, success) in [(500, true), (500, false), (500, true), (500, true)] {
            observe(&mut adaptive, 0, millis, success);
        }
        let mut candidate = idle(1)[0];
        candidate.load.running = 2;
        candidate.load.capacity = 4;
        let health = ((1.0 - 0.5) + (1.0 - 0.2) + (1.0 - 0.25)) / 3.0;
        assert!((adaptive.health(&candidate) - health).abs() < 1e-12);
        let expected = (1.0 - health) + 0.5 + 0.5;
        let score = adaptive.score(&candidate, adaptive.now()).unwrap();
        assert!((score - expected).abs() < 1e-12);
    }

    #[test]
    fn prefers_fast_reliable_idle_workers() {
        let mut adaptive = Adaptive::new();
        for _ in 0..10 {
            observe(&mut adaptive, 0, 200, true);
            observe(&mut adaptive, 1, 1_000, true);
            observe(&mut adaptive, 2, 200, false);
        }
        assert_eq!(adaptive.pick(&idle(3), &Request::default()), Ok(0));
        // Enough queued work on the fast one tips the balance to the slow one.
        assert_eq!(
            adaptive.pick(&loaded(&[12, 0, 12]), &Request::default()),
            Ok(1)
        );
    }

    #[test]
    fn a_record_is_forgotten_a_maximum_age_after_the_last_outcome() {
        let clock = ManualClock::new();
        let mut adaptive = Adaptive::with_clock(clock.clone());
        let mut never_forgets = Adaptive::with_clock(clock.clone()).max_age(None);
        for _ in 0..10 {
            for a in [&mut adaptive, &mut never_forgets] {
                observe(a, 0, 3_000, false);
                observe(a, 1, 200, true);
            }
        }
        let worker_0 = idle(1)[0];
        // (0.2 + 1 + 0.5) / 3: failing, and slow beyond the response floor.
        assert!((adaptive.health(&worker_0) - 1.7 / 3.0).abs() < 1e-12);
        assert_eq!(adaptive.pick(&idle(2), &Request::default()), Ok(1));
        // Worker 1 keeps getting jobs, worker 0 none: a minute after its last
        // outcome its record still counts, a second later no more.
        clock.advance(Duration::from_secs(60));
        assert_eq!(adaptive.pick(&idle(2), &Request::default()), Ok(1));
        clock.advance(Duration::from_secs(1));
        for a in [&mut adaptive, &mut never_forgets] {
            observe(a, 1, 200, true);
        }
        // Unmeasured now, it is tried again...
        assert_eq!(adaptive.health(&worker_0), 1.0);
        assert_eq!(adaptive.pick(&idle(2), &Request::default()), Ok(0));
        assert_eq!(adaptive.pick(&idle(2), &Request::default()), Ok(0));
        // ...where without a maximum age it would wait for ever.
        assert_eq!(never_forgets.pick(&idle(2), &Request::default()), Ok(1));
        // A load that reports a response time still counts it.
        let mut reported = worker_0;
        reported.load.mean_latency = Some(Duration::from_secs(3));
        assert!((adaptive.health(&reported) - 2.5 / 3.0).abs() < 1e-12);
        // Its next outcome starts its windows afresh: (1 + 1 + 0.95) / 3.
        observe(&mut adaptive, 0, 100, true);
        assert!((adaptive.health(&worker_0) - 2.95 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn weights_are_tunable_and_min_health_excludes() {
        let response_only = AdaptiveWeights {
            health: 0.0,
            load: 0.0,
            response: 1.0,
        };
        let mut adaptive = Adaptive::new().weights(response_only);
        for _ in 0..10 {
            observe(&mut adaptive, 0, 100, false);
            observe(&mut adaptive, 1, 900, true);
        }
        // Worker 0: health (0.2 + 1 + 0.95) / 3 = 0.717; worker 1: (1 + 1 + 0.55) / 3 = 0.85.
        assert!((adaptive.health(&idle(2)[0]) - 2.15 / 3.0).abs() < 1e-12);
        assert_eq!(adaptive.pick(&idle(2), &Request::default()), Ok(0));
        let mut strict = adaptive.clone().min_health(0.75);
        assert_eq!(strict.pick(&idle(2), &Request::default()), Ok(1));
        let mut stricter = adaptive.min_health(0.9);
        assert_eq!(
            stricter.pick(&idle(2), &Request::default()),
            Err(BalanceError::NoHealthyWorkers { total: 2 })
        );
    }
}
