//! `PeakEwma`: the cost `peak-sensitive latency EWMA x (in flight + 1)`, as Finagle and tower balance by it.

use std::sync::Arc;
use std::time::Duration;

use workmill_core::{BalanceError, Balancer, Candidate, Outcome, Request};

use super::{PowerOfTwoChoices, no_available_candidate, slot};
use crate::clock::{Clock, SystemClock};

/// One worker's latency estimate, in seconds, and when it last changed.
#[derive(Clone, Copy, Debug, Default)]
struct Estimate {
    seconds: f64,
    updated_at: f64,
    known: bool,
}

/// Peak-EWMA load balancing, the algorithm of Finagle's `PeakEwma` and tower's `peak_ewma`.
///
/// Each worker has a latency estimate that jumps up at once to any slower
/// observation (the *peak*) and otherwise decays towards recent observations
/// exponentially in time, with time constant `decay` (10 s by default).
/// Reading the estimate counts as observing zero, as both originals do, so a
/// worker that has been left alone looks cheaper and gets tried again.
/// A worker's cost is `estimate x (jobs in flight + 1)`; a worker never seen
/// starts at `default_latency` (100 ms by default).
///
/// Like tower and Finagle it compares the costs of two random workers (power
/// of two choices); [`scan_all`](PeakEwma::scan_all) compares every worker
/// instead. The clock is injectable so that the simulator can run it in
/// virtual time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_balance::{ManualClock, PeakEwma};
/// use workmill_core::{Balancer, Candidate, Load, Outcome, Request};
///
/// let clock = ManualClock::new();
/// let mut ewma = PeakEwma::with_clock(clock.clone()).scan_all(true);
/// let candidates = [Candidate::new(0, Load::default()), Candidate::new(1, Load::default())];
/// ewma.observe(&Outcome { worker: 0, latency: Duration::from_secs(2), success: true });
/// ewma.observe(&Outcome { worker: 1, latency: Duration::from_millis(50), success: true });
/// clock.advance(Duration::from_millis(10));
/// assert_eq!(ewma.pick(&candidates, &Request::default()), Ok(1));
/// ```
#[derive(Debug)]
pub struct PeakEwma {
    clock: Arc<dyn Clock>,
    decay_seconds: f64,
    default_seconds: f64,
    estimates: Vec<Estimate>,
    chooser: Option<PowerOfTwoChoices>,
}

impl PeakEwma {
    /// Peak-EWMA on the system clock, choosing between two random workers.
    pub fn new() -> PeakEwma {
        PeakEwma::with_clock(SystemClock::new())
    }

    /// Peak-EWMA reading time from `clock`.
    pub fn with_clock(clock: impl Clock + 'static) -> PeakEwma {
        PeakEwma::with_shared_clock(Arc::new(clock))
    }

    /// Peak-EWMA reading time from a shared clock.
    pub fn with_shared_clock(clock: Arc<dyn Clock>) -> PeakEwma {
        PeakEwma {
            clock,
            decay_seconds: 10.0,
            default_seconds: 0.1,
            estimates: Vec::new(),
            chooser: Some(PowerOfTwoChoices::new()),
        }
    }

    /// The time constant of the decay: after `decay`, an old estimate keeps
    /// `1/e` of its weight. Zero is read as one nanosecond.
    #[must_use]
    pub fn decay(mut self, decay: Duration) -> PeakEwma {
        self.decay_seconds = decay.as_secs_f64().max(1e-9);
        self
    }

    /// The latency assumed for a worker not yet observed.
    #[must_use]
    pub fn default_latency(mut self, latency: Duration) -> PeakEwma {
        self.default_seconds = latency.as_secs_f64();
        self
    }

    /// Compare every worker (true) or two random ones (false, the default).
    #[must_use]
    pub fn scan_all(mut self, all: bool) -> PeakEwma {
        self.chooser = if all {
            None
        } else {
            Some(PowerOfTwoChoices::new())
        };
        self
    }

    /// Seeds the generator that draws the two workers, for reproducible picks.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> PeakEwma {
        if self.chooser.is_some() {
            self.chooser = Some(PowerOfTwoChoices::with_seed(seed));
        }
        self
    }

    /// Folds `sample` seconds, observed at `now`, into a worker's estimate.
    fn update(&mut self, worker: usize, sample: f64, now: f64) -> f64 {
        let default_seconds = self.default_seconds;
        let decay_seconds = self.decay_seconds;
        let estimate = slot(&mut self.estimates, worker);
        if !estimate.known {
            *estimate = Estimate {
                seconds: default_seconds,
                updated_at: now,
                known: true,
            };
        }
        if sample > estimate.seconds {
            estimate.seconds = sample;
        } else {
            let elapsed = (now - estimate.updated_at).max(0.0);
            let keep = (-elapsed / decay_seconds).exp();
            estimate.seconds = estimate.seconds * keep + sample * (1.0 - keep);
        }
        estimate.updated_at = now;
        estimate.seconds
    }

    fn cost(&mut self, candidate: &Candidate, now: f64) -> f64 {
        let latency = self.update(candidate.index, 0.0, now);
        latency * (candidate.load.in_flight() as f64 + 1.0)
    }
}

impl Default for PeakEwma {
    fn default() -> PeakEwma {
        PeakEwma::new()
    }
}

impl Balancer for PeakEwma {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        let now = self.clock.now().as_secs_f64();
        if let Some(mut chooser) = self.chooser.take() {
            // Rank by cost: hand the chooser the costs as its load figure.
            let picked = chooser.pick_by(candidates, request, |c| self.cost(c, now));
            self.chooser = Some(chooser);
            return picked;
        }
        let mut best: Option<(usize, f64)> = None;
        for candidate in candidates.iter().filter(|c| c.is_available()) {
            let cost = self.cost(candidate, now);
            if best.is_none_or(|(_, lowest)| cost < lowest) {
                best = Some((candidate.index, cost));
            }
        }
        best.map(|(index, _)| index)
            .ok_or_else(|| no_available_candidate(candidates))
    }

    fn observe(&mut self, outcome: &Outcome) {
        let now = self.clock.now().as_secs_f64();
        self.update(outcome.worker, outcome.latency.as_secs_f64(), now);
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::strategy::test_support::{idle, loaded};

    fn observe(ewma: &mut PeakEwma, worker: usize, millis: u64) {
        ewma.observe(&Outcome {
            worker,
            latency: Duration::from_millis(millis),
            success: true,
        });
    }

    #[test]
    fn a_peak_is_taken_at_once_and_forgotten_with_time() {
        let clock = ManualClock::new();
        let mut ewma = PeakEwma::with_clock(clock.clone()).scan_all(true);
        observe(&mut ewma, 0, 100);
        observe(&mut ewma, 1, 100);
        clock.advance(Duration::from_millis(1));
        observe(&mut ewma, 0, 1_000);
        assert_eq!(ewma.pick(&idle(2), &Request::default()), Ok(1));
        // Twenty time constants later, worker 0's peak has decayed away.
        clock.advance(Duration::from_secs(200));
        observe(&mut ewma, 0, 10);
        observe(&mut ewma, 1, 100);
        assert_eq!(ewma.pick(&idle(2), &Request::default()), Ok(0));
    }

    #[test]
    fn cost_multiplies_latency_by_jobs_in_flight_plus_one() {
        let clock = ManualClock::new();
        let mut ewma = PeakEwma::with_clock(clock.clone()).scan_all(true);
        observe(&mut ewma, 0, 100);
        observe(&mut ewma, 1, 300);
        // 100 ms x (3 + 1) = 400 ms is dearer than 300 ms x (0 + 1).
        assert_eq!(ewma.pick(&loaded(&[3, 0]), &Request::default()), Ok(1));
        assert_eq!(ewma.pick(&loaded(&[1, 0]), &Request::default()), Ok(0));
    }

    #[test]
    fn two_choices_never_take_the_dearer_of_two() {
        let clock = ManualClock::new();
        let mut ewma = PeakEwma::with_clock(clock).seed(1);
        observe(&mut ewma, 0, 10);
        observe(&mut ewma, 1, 10);
        for _ in 0..200 {
            assert_eq!(ewma.pick(&loaded(&[0, 9]), &Request::default()), Ok(0));
        }
    }
}
