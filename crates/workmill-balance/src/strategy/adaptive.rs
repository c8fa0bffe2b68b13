//! `Adaptive`: the seed's adaptive balancer, scoring workers by health, load against capacity and response time.

use std::sync::Arc;
use std::time::Duration;

use workmill_core::{BalanceError, Balancer, Candidate, Outcome, Request};

use super::{advance, no_available_candidate, rotated};
use crate::clock::{Clock, SystemClock};
use crate::metrics::DEFAULT_MAX_AGE;
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
    /// Jobs on the worker as far as this balancer knows: the jobs in flight
    /// its last pick was shown, plus those it picked the worker for since, less
    /// the outcomes observed since. Kept only under a maximum age.
    in_flight: usize,
    /// When the worker was last known busy: its last observed outcome, or a
    /// pick that showed fewer jobs in flight than it knew of (jobs that ended
    /// unobserved so far). When it went idle, if it has no job in flight.
    busy_until: Duration,
    /// Whether the last pick that showed the worker idle found its windows
    /// lapsed (and none started on it since).
    seen_lapsed: bool,
}

impl History {
    /// Whether its windows have lapsed at `now`, given the jobs it has in
    /// flight: idle, and nothing observed for longer than `max_age`. Asks for
    /// the time only if there are windows to lapse.
    fn lapsed(
        &self,
        in_flight: usize,
        max_age: Option<Duration>,
        now: impl FnOnce() -> Duration,
    ) -> bool {
        match max_age {
            Some(max_age) if in_flight == 0 && self.outcomes.count() > 0 => {
                now().saturating_sub(self.busy_until) > max_age
            }
            _ => false,
        }
    }

    /// The windowed error rate, and the response time in seconds: `reported` if the candidate
    /// reports one, else the windowed mean if known. For windows that have not lapsed.
    fn measures(&self, reported: Option<f64>) -> (f64, Option<f64>) {
        (
            self.outcomes.mean().unwrap_or(0.0),
            reported.or_else(|| self.latencies.mean()),
        )
    }

    fn clear(&mut self) {
        self.latencies.clear();
        self.outcomes.clear();
        self.seen_lapsed = false;
    }
}

/// The strategy's clock, read at most once per decision, and only if the
/// decision depends on the time: most picks in a busy pool never read it.
struct LazyNow<'a> {
    clock: &'a dyn Clock,
    now: Option<Duration>,
}

impl LazyNow<'_> {
    fn get(&mut self) -> Duration {
        *self.now.get_or_insert_with(|| self.clock.now())
    }
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
/// A worker's windows are forgotten once it has been idle for longer than
/// [`max_age`](Self::max_age) (a minute by default, as the pool's
/// [`MetricsWindows`](crate::MetricsWindows)): otherwise a worker scored low
/// for being slow or failing, and so given no more jobs, would keep its score
/// for good, even after it recovered. It then counts as unmeasured, with no
/// errors and, unless its load reports a response time, responding instantly,
/// and is tried again; its windows start afresh with the job it is picked for.
/// A worker with a job in flight keeps its windows however long its jobs take.
///
/// The strategy knows of a worker's jobs only what a [`Balancer`] is told: the
/// jobs in flight each [`Candidate`] shows at a pick, the picks it makes, and
/// the outcomes it observes. So a worker is idle when its candidate shows no
/// job in flight, and idle since its last observed outcome (or since the pick
/// that first showed it idle, if a job it was picked for ended unobserved). A
/// job it was not picked for (a health probe, say) clears windows that had
/// lapsed when the strategy learns of it: at a pick that shows it in flight if
/// the last pick that showed the worker idle found them lapsed, or else at its
/// outcome if they have lapsed by then.
///
/// Time is read from the strategy's [`Clock`], at most once per pick and only
/// when the pick depends on it (a worker with windows shows no job in flight),
/// and once per outcome: give it the pool's clock, or in the simulator the
/// run's, as for [`PeakEwma`](crate::PeakEwma).
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
/// // Two minutes later, worker 0 idle since, it is tried again.
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

    /// How long a worker's windows last once it is idle, after its last
    /// observed outcome (a minute by default); a worker with a job in flight
    /// keeps them. `None` keeps them until newer outcomes push them out. A zero
    /// age keeps them, once the worker is idle, only until the clock moves on.
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
                in_flight: 0,
                busy_until: Duration::ZERO,
                seen_lapsed: false,
            });
        }
        &mut self.history[worker]
    }

    /// The clock, to be read when a decision needs the time.
    fn lazy_now(&self) -> LazyNow<'_> {
        LazyNow {
            clock: &*self.clock,
            now: None,
        }
    }

    /// The health score the seed would give this worker now.
    pub fn health(&self, candidate: &Candidate) -> f64 {
        let (error_rate, mean) = self.measures(candidate, &mut self.lazy_now());
        health_score_seconds(error_rate, candidate.load.in_flight(), mean)
    }

    /// The windowed error rate, and the response time in seconds if known, at `now`.
    fn measures(&self, candidate: &Candidate, now: &mut LazyNow<'_>) -> (f64, Option<f64>) {
        let reported = candidate.load.mean_latency.map(|d| d.as_secs_f64());
        match self.history.get(candidate.index) {
            Some(h) if !h.lapsed(candidate.load.in_flight(), self.max_age, || now.get()) => {
                h.measures(reported)
            }
            _ => (0.0, reported),
        }
    }

    /// The seed's selection score (lower is better), or `None` if too unhealthy to pick.
    #[cfg(all(test, not(workmill_loom)))]
    fn score(&self, candidate: &Candidate, now: &mut LazyNow<'_>) -> Option<f64> {
        let (error_rate, mean) = self.measures(candidate, now);
        self.score_of(candidate, error_rate, mean)
    }

    /// The score of `candidate` given its measures: the windowed error rate and
    /// the response time in seconds if known.
    fn score_of(&self, candidate: &Candidate, error_rate: f64, mean: Option<f64>) -> Option<f64> {
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
        let max_age = self.max_age;
        // Not `lazy_now`: the windows are updated while it borrows the clock.
        let mut now = LazyNow {
            clock: &*self.clock,
            now: None,
        };
        for position in rotated(self.start, candidates.len()) {
            let candidate = &candidates[position];
            let in_flight = candidate.load.in_flight();
            // The bookkeeping, which also tells whether the candidate's windows have lapsed.
            let lapsed = match self.history.get_mut(candidate.index) {
                Some(h) if max_age.is_some() => {
                    // What the candidate shows is what is in flight now. A worker
                    // idle now although it had jobs the strategy knew of, gone
                    // without an outcome (yet: a pool may count a job out just before
                    // it reports it), was busy until now. A job the strategy did not
                    // pick it for, on a worker last seen idle with lapsed windows,
                    // starts them afresh. The time is read only for an idle worker
                    // with windows.
                    if in_flight == 0 {
                        if h.in_flight > 0 && h.outcomes.count() > 0 {
                            h.busy_until = h.busy_until.max(now.get());
                        }
                        h.seen_lapsed = h.lapsed(0, max_age, || now.get());
                    } else if h.in_flight == 0 && h.seen_lapsed {
                        h.clear();
                    }
                    h.in_flight = in_flight;
                    // Idle with lapsed windows is exactly what `measures` would find.
                    in_flight == 0 && h.seen_lapsed
                }
                _ => false,
            };
            if !candidate.is_available() {
                continue;
            }
            any_available = true;
            let reported = candidate.load.mean_latency.map(|d| d.as_secs_f64());
            let (error_rate, mean) = match self.history.get(candidate.index) {
                Some(h) if !lapsed => h.measures(reported),
                _ => (0.0, reported),
            };
            if let Some(score) = self.score_of(candidate, error_rate, mean)
                && best.is_none_or(|(_, lowest)| score < lowest)
            {
                best = Some((candidate.index, score));
            }
        }
        self.start = advance(self.start, candidates.len());
        if let Some((index, _)) = best
            && max_age.is_some()
            && let Some(h) = self.history.get_mut(index)
        {
            // A job starts on it: windows that had lapsed start afresh.
            if h.in_flight == 0 && h.seen_lapsed {
                h.clear();
            }
            h.in_flight += 1;
        }
        match best {
            Some((index, _)) => Ok(index),
            None if any_available => Err(BalanceError::NoHealthyWorkers {
                total: candidates.len(),
            }),
            None => Err(no_available_candidate(candidates)),
        }
    }

    fn observe(&mut self, outcome: &Outcome) {
        let max_age = self.max_age;
        let now = match max_age {
            Some(_) => self.clock.now(),
            None => Duration::ZERO,
        };
        let history = self.history(outcome.worker);
        // The outcome of a job this strategy knew nothing of (see `pick`): if
        // the worker's windows have lapsed, they start afresh with it.
        if history.lapsed(history.in_flight, max_age, || now) {
            history.clear();
        }
        history.in_flight = history.in_flight.saturating_sub(1);
        history.busy_until = history.busy_until.max(now);
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
        let score = adaptive
            .score(&candidate, &mut adaptive.lazy_now())
            .unwrap();
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
    fn a_worker_busy_with_jobs_longer_than_the_maximum_age_keeps_its_record() {
        let clock = ManualClock::new();
        let mut adaptive = Adaptive::with_clock(clock.clone());
        let mut never_forgets = Adaptive::with_clock(clock.clone()).max_age(None);
        let busy = loaded(&[1]);
        // Worker 0 runs one 90 s job after another, each handed out as the last
        // ends, so it is never idle; the first of every four fails.
        for n in 0..8u64 {
            for a in [&mut adaptive, &mut never_forgets] {
                assert_eq!(a.pick(&idle(1), &Request::default()), Ok(0));
            }
            clock.advance(Duration::from_secs(45));
            for a in [&mut adaptive, &mut never_forgets] {
                assert_eq!(a.pick(&busy, &Request::default()), Ok(0));
            }
            clock.advance(Duration::from_secs(44));
            if n > 0 {
                // 89 s into a job its record counts whole, as if nothing ever lapsed.
                assert_eq!(
                    adaptive.health(&busy[0]),
                    never_forgets.health(&busy[0]),
                    "job {n}"
                );
            }
            clock.advance(Duration::from_secs(1));
            for a in [&mut adaptive, &mut never_forgets] {
                observe(a, 0, 90_000, n % 4 != 0);
            }
        }
        // Every outcome counts, not just the last: 2 failures in 8, 90 s each.
        let worker_0 = idle(1)[0];
        let health = ((1.0 - 0.5) + 1.0 + 0.5) / 3.0;
        assert!((adaptive.health(&worker_0) - health).abs() < 1e-12);
        // Idle for a minute, it keeps them; idle for longer, it is unmeasured again.
        clock.advance(Duration::from_secs(60));
        assert!((adaptive.health(&worker_0) - health).abs() < 1e-12);
        clock.advance(Duration::from_nanos(1));
        assert_eq!(adaptive.health(&worker_0), 1.0);
        assert!((never_forgets.health(&worker_0) - health).abs() < 1e-12);
    }

    #[test]
    fn a_job_counted_out_before_its_outcome_keeps_the_worker_busy() {
        let clock = ManualClock::new();
        let mut adaptive = Adaptive::with_clock(clock.clone());
        for _ in 0..4 {
            observe(&mut adaptive, 0, 3_000, true);
        }
        let measured = adaptive.health(&idle(1)[0]);
        assert!(measured < 1.0);
        // A 90 s job, that the pool counts out a moment before it reports its
        // outcome: a pick in between shows the worker idle, with its last
        // outcome 90 s old. It was busy until then, so its windows still count...
        assert_eq!(adaptive.pick(&idle(1), &Request::default()), Ok(0));
        clock.advance(Duration::from_secs(90));
        assert_eq!(adaptive.pick(&idle(1), &Request::default()), Ok(0));
        assert_eq!(adaptive.health(&idle(1)[0]), measured);
        // ...and go on counting with the outcome, a failure of 1 s among four
        // successes of 3 s: (0.6 + 1 + 0.5) / 3, not (0.2 + 1 + 0.5) / 3 afresh.
        observe(&mut adaptive, 0, 1_000, false);
        assert!((adaptive.health(&idle(1)[0]) - 2.1 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_job_it_did_not_pick_for_on_a_lapsed_worker_starts_its_windows_afresh() {
        let clock = ManualClock::new();
        let mut adaptive = Adaptive::with_clock(clock.clone());
        for worker in 0..3 {
            for _ in 0..4 {
                observe(&mut adaptive, worker, 3_000, false);
            }
        }
        clock.advance(Duration::from_secs(120));
        // Worker 0, ejected, is shown idle at a pick, its windows lapsed; then
        // a job it was not picked for (its probe) shows in flight. Its windows
        // start afresh with that job, rather than count again because it is busy.
        let mut candidates = idle(2);
        candidates[0].healthy = false;
        assert_eq!(adaptive.pick(&candidates, &Request::default()), Ok(1));
        let busy = loaded(&[1, 1]);
        assert!(adaptive.pick(&busy, &Request::default()).is_ok());
        assert!((adaptive.health(&busy[0]) - 2.9 / 3.0).abs() < 1e-12);
        observe(&mut adaptive, 0, 1_000, true);
        assert!((adaptive.health(&idle(1)[0]) - 2.5 / 3.0).abs() < 1e-12);
        // Worker 2's such job shows at no pick: its outcome starts them afresh.
        observe(&mut adaptive, 2, 1_000, true);
        assert!((adaptive.health(&idle(3)[2]) - 2.5 / 3.0).abs() < 1e-12);
    }

    /// A clock that counts how often it is read, and reads as time zero.
    #[derive(Debug, Default)]
    struct CountingClock(std::sync::atomic::AtomicUsize);

    impl CountingClock {
        fn reads(&self) -> usize {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    impl Clock for CountingClock {
        fn now(&self) -> Duration {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Duration::ZERO
        }
    }

    #[test]
    fn the_clock_is_read_only_when_a_pick_depends_on_the_time() {
        let clock = Arc::new(CountingClock::default());
        let mut adaptive = Adaptive::with_shared_clock(clock.clone());
        for worker in 0..3 {
            observe(&mut adaptive, worker, 200, true);
        }
        // Once per outcome, for the time the worker is busy until.
        assert_eq!(clock.reads(), 3);
        // Busy workers keep their windows whatever the time: not read.
        for _ in 0..10 {
            assert!(
                adaptive
                    .pick(&loaded(&[1, 2, 3]), &Request::default())
                    .is_ok()
            );
        }
        assert_eq!(clock.reads(), 3);
        // With idle measured workers, once per pick however many there are.
        assert!(adaptive.pick(&idle(3), &Request::default()).is_ok());
        assert!(
            adaptive
                .pick(&loaded(&[0, 1, 0]), &Request::default())
                .is_ok()
        );
        assert_eq!(clock.reads(), 5);
        // Never without a maximum age.
        let mut ageless = Adaptive::with_shared_clock(clock.clone()).max_age(None);
        observe(&mut ageless, 0, 200, true);
        assert!(ageless.pick(&idle(3), &Request::default()).is_ok());
        assert_eq!(clock.reads(), 5);
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
