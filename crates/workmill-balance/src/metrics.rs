//! `WorkerMetrics`: what the pool (and the simulator) measure of each worker: windowed service times and errors, forgotten when stale, and totals.

use std::time::Duration;

use thiserror::Error;

use crate::window::Window;

/// How long measurements outlive the moment a worker went idle (its last job in
/// flight ended) unless configured otherwise: one minute.
///
/// A worker with a job in flight keeps its windows however long its jobs
/// take, so the minute only has to cover the gaps between a worker's jobs:
/// long enough that a worker in use keeps its windows (the seed's slowest
/// workers get a job every few seconds even when a strategy ranks them last);
/// short enough that a worker left idle because of what it did a while ago is
/// tried again within a minute, as soon as an ejected worker would be after
/// its second ejection.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

/// How many recent jobs the windowed measures cover, and how long they last
/// once the worker is idle.
///
/// A worker's mean service time and error rate count its last
/// `service_times` and `outcomes` jobs for as long as it is in use: while it
/// has a job in flight (dispatched to it and not yet finished), however long
/// that job takes, and for `max_age` after its last one ended. Once it has
/// been idle for longer than `max_age`, the windows lapse and the worker counts
/// as unmeasured, as a new worker does: no service time, no errors; they are
/// cleared when its next job is dispatched, so that they start afresh. Without
/// this, a worker measured slow or failing, which strategies such as
/// [`ShortestExpectedDelay`](crate::ShortestExpectedDelay) then rank last,
/// would keep those measurements for as long as it got no new job, that is for
/// good once the load is moderate: it would never be tried again after it
/// recovered. (Finagle's and tower's peak EWMA,
/// [`PeakEwma`](crate::PeakEwma) here, decay with time for the same reason.)
///
/// The windows are forgotten whole rather than sample by sample: dropping each
/// sample a minute after it was taken would shrink the window of every worker
/// that gets a job only now and then, such as the slow ones a strategy rightly
/// uses least. Their noisier means raised the default strategy's p99 from 1.18x
/// to 1.25x the oracle's in one of the simulator's target runs (seed mix, 0.9
/// load), where forgetting whole windows changes nothing until a worker
/// actually starves.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_balance::MetricsWindows;
///
/// let windows = MetricsWindows {
///     max_age: Some(Duration::from_secs(300)),
///     ..MetricsWindows::default()
/// };
/// assert_eq!(windows.validate(), Ok(()));
/// let never = MetricsWindows { max_age: Some(Duration::ZERO), ..windows };
/// assert!(never.validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsWindows {
    /// Service times (start to finish) kept for the mean; the seed keeps 10. 0 is read as 1.
    pub service_times: usize,
    /// Outcomes kept for the error rate. 0 is read as 1.
    pub outcomes: usize,
    /// How long a worker can be idle (no job of the pool's in flight on it)
    /// and still keep its measurements; a worker with a job in flight keeps
    /// them however long the job takes. `None` keeps them until newer jobs
    /// push them out of the windows (which a worker that gets no job never
    /// has). Zero is refused by [`validate`](Self::validate); a duration too
    /// long for the clock to reach is the same as `None`. Time is read from the pool's
    /// [`Clock`](crate::Clock) (virtual time in the simulator).
    pub max_age: Option<Duration>,
}

impl Default for MetricsWindows {
    /// 32 service times and 64 outcomes: enough that an exponential service
    /// time's mean is known to about 18%, short enough to follow a worker that
    /// slows down within a few dozen jobs; forgotten after a minute idle.
    fn default() -> MetricsWindows {
        MetricsWindows {
            service_times: 32,
            outcomes: 64,
            max_age: Some(DEFAULT_MAX_AGE),
        }
    }
}

/// A [`MetricsWindows`] that cannot work as written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid metrics windows: {reason}")]
pub struct InvalidMetricsWindows {
    /// Which rule it broke.
    pub reason: &'static str,
}

impl MetricsWindows {
    /// Checks the settings: a `max_age` of zero would forget every job as soon as its worker is idle.
    pub fn validate(&self) -> Result<(), InvalidMetricsWindows> {
        if self.max_age.is_some_and(|age| age.is_zero()) {
            return Err(InvalidMetricsWindows {
                reason: "max_age must be positive, or None to keep measurements until pushed out",
            });
        }
        Ok(())
    }
}

/// Whether measurements of a worker idle since `last` have lapsed by `now`: more than `max_age` ago.
pub(crate) fn lapsed(last: Option<Duration>, now: Duration, max_age: Option<Duration>) -> bool {
    match (last, max_age) {
        (Some(last), Some(max_age)) => now.saturating_sub(last) > max_age,
        _ => false,
    }
}

/// One worker's measured behaviour.
///
/// The pool and the simulator call [`dispatch`](Self::dispatch) when they give
/// the worker a job, and then either [`record`](Self::record) when it finishes
/// or [`withdraw`](Self::withdraw) if it never runs, so that the windows lapse
/// only once the worker has been idle for the maximum age. Each is O(1).
#[derive(Clone, Debug)]
pub(crate) struct WorkerMetrics {
    service_times: Window,
    outcomes: Window,
    max_age: Option<Duration>,
    /// Jobs dispatched and not yet finished or withdrawn.
    in_flight: usize,
    /// When the last job in flight ended, if one has: the worker is idle since
    /// then unless `in_flight` is above 0.
    idle_since: Option<Duration>,
    processed: u64,
    failed: u64,
}

impl WorkerMetrics {
    pub(crate) fn new(windows: MetricsWindows) -> WorkerMetrics {
        WorkerMetrics {
            service_times: Window::new(windows.service_times),
            outcomes: Window::new(windows.outcomes),
            max_age: windows.max_age,
            in_flight: 0,
            idle_since: None,
            processed: 0,
            failed: 0,
        }
    }

    /// A job was dispatched to the worker at `now`: its windows start afresh if
    /// they had lapsed, and last for as long as it has a job in flight.
    pub(crate) fn dispatch(&mut self, now: Duration) {
        if self.lapsed(now) {
            self.service_times.clear();
            self.outcomes.clear();
        }
        self.in_flight += 1;
    }

    /// A dispatched job that will not run (refused, or dropped unrun) left at `now`.
    pub(crate) fn withdraw(&mut self, now: Duration) {
        self.job_ended(now);
    }

    /// Records one attempt that finished at `now`, and how long it ran on the worker.
    ///
    /// An attempt that was never [dispatched](Self::dispatch) counts as
    /// dispatched just before it finished.
    pub(crate) fn record(&mut self, service: Duration, success: bool, now: Duration) {
        if self.in_flight == 0 {
            self.dispatch(now);
        }
        self.service_times.push(service.as_secs_f64());
        self.outcomes.push(if success { 0.0 } else { 1.0 });
        if success {
            self.processed += 1;
        } else {
            self.failed += 1;
        }
        self.job_ended(now);
    }

    fn job_ended(&mut self, now: Duration) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.idle_since = Some(self.idle_since.map_or(now, |since| since.max(now)));
        }
    }

    /// Whether the windows are stale at `now`: no job in flight, and idle for
    /// longer than the maximum age.
    fn lapsed(&self, now: Duration) -> bool {
        self.in_flight == 0 && lapsed(self.idle_since, now, self.max_age)
    }

    /// Mean time from start to finish over the window, as of `now`; `None`
    /// before any job, and once the worker has been idle for longer than the
    /// maximum age.
    pub(crate) fn mean_service(&self, now: Duration) -> Option<Duration> {
        if self.lapsed(now) {
            return None;
        }
        self.service_times
            .mean()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// Share of failed attempts over the window, as of `now`; 0.0 before any,
    /// and once the worker has been idle for longer than the maximum age.
    pub(crate) fn error_rate(&self, now: Duration) -> f64 {
        if self.lapsed(now) {
            return 0.0;
        }
        self.outcomes.mean().unwrap_or(0.0)
    }

    /// Attempts that succeeded, in all.
    pub(crate) fn processed(&self) -> u64 {
        self.processed
    }

    /// Attempts that failed, in all.
    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::{Clock, ManualClock};

    #[test]
    fn windows_follow_recent_jobs_and_totals_count_all() {
        let mut metrics = WorkerMetrics::new(MetricsWindows {
            service_times: 2,
            outcomes: 4,
            max_age: None,
        });
        let now = Duration::ZERO;
        assert_eq!(metrics.mean_service(now), None);
        assert_eq!(metrics.error_rate(now), 0.0);
        metrics.record(Duration::from_secs(10), false, now);
        metrics.record(Duration::from_secs(1), true, now);
        metrics.record(Duration::from_secs(3), true, now);
        assert_eq!(metrics.mean_service(now), Some(Duration::from_secs(2)));
        assert!((metrics.error_rate(now) - 1.0 / 3.0).abs() < 1e-12);
        for _ in 0..4 {
            metrics.record(Duration::from_secs(1), true, now);
        }
        assert_eq!(metrics.error_rate(now), 0.0);
        assert_eq!((metrics.processed(), metrics.failed()), (6, 1));
        // Without a maximum age nothing is forgotten, however long the worker idles.
        metrics.record(Duration::from_secs(5), false, now);
        let much_later = Duration::from_secs(1_000_000);
        assert_eq!(
            metrics.mean_service(much_later),
            Some(Duration::from_secs(3))
        );
        assert!((metrics.error_rate(much_later) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn measurements_are_forgotten_a_maximum_age_after_the_last_job_without_dispatches() {
        let clock = ManualClock::new();
        let mut metrics = WorkerMetrics::new(MetricsWindows {
            service_times: 8,
            outcomes: 8,
            max_age: Some(Duration::from_secs(60)),
        });
        // Slow and failing, a job every 50 s: each comes within the age of the
        // last, so the windows keep all of them. (Jobs recorded without a
        // dispatch count as dispatched as they finish.)
        for _ in 0..4 {
            metrics.record(Duration::from_secs(10), false, clock.now());
            clock.advance(Duration::from_secs(50));
        }
        metrics.record(Duration::from_secs(2), true, clock.now());
        assert_eq!(
            metrics.mean_service(clock.now()),
            Some(Duration::from_secs(42) / 5)
        );
        assert!((metrics.error_rate(clock.now()) - 0.8).abs() < 1e-12);
        // Exactly a minute after the last job they still count...
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            metrics.mean_service(clock.now()),
            Some(Duration::from_secs(42) / 5)
        );
        assert!((metrics.error_rate(clock.now()) - 0.8).abs() < 1e-12);
        // ...and no longer: the worker is unmeasured again, as a new worker is.
        clock.advance(Duration::from_nanos(1));
        assert_eq!(metrics.mean_service(clock.now()), None);
        assert_eq!(metrics.error_rate(clock.now()), 0.0);
        // The next job starts the windows afresh; the totals count everything.
        metrics.record(Duration::from_secs(1), true, clock.now());
        assert_eq!(
            metrics.mean_service(clock.now()),
            Some(Duration::from_secs(1))
        );
        assert_eq!(metrics.error_rate(clock.now()), 0.0);
        assert_eq!((metrics.processed(), metrics.failed()), (2, 4));
    }

    #[test]
    fn measurements_last_while_a_job_is_in_flight_and_lapse_once_idle() {
        let mut metrics = WorkerMetrics::new(MetricsWindows {
            service_times: 8,
            outcomes: 8,
            max_age: Some(Duration::from_secs(60)),
        });
        let t = Duration::from_secs;
        let just_after = |secs| t(secs) + Duration::from_nanos(1);
        // Two overlapping jobs, of 90 s and 150 s: busy from 0 to 150 s.
        metrics.dispatch(t(0));
        metrics.dispatch(t(0));
        metrics.record(t(90), false, t(90));
        assert_eq!(metrics.mean_service(just_after(150)), Some(t(90)));
        metrics.record(t(150), true, t(150));
        // Idle from 150 s, then busy again from 180 s with a 180 s job: all
        // that time, long after the last job finished, the windows count.
        metrics.dispatch(t(180));
        assert_eq!(metrics.mean_service(just_after(359)), Some(t(120)));
        assert!((metrics.error_rate(just_after(359)) - 0.5).abs() < 1e-12);
        metrics.record(t(180), true, t(360));
        // Idle from 360 s: a minute later they count, then no more.
        assert_eq!(metrics.mean_service(t(420)), Some(t(140)));
        assert!((metrics.error_rate(t(420)) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(metrics.mean_service(just_after(420)), None);
        assert_eq!(metrics.error_rate(just_after(420)), 0.0);
        // The next job dispatched starts them afresh.
        metrics.dispatch(t(500));
        metrics.record(t(10), false, t(510));
        assert_eq!(metrics.mean_service(t(510)), Some(t(10)));
        assert_eq!(metrics.error_rate(t(510)), 1.0);
        // A job that never runs is in flight until it is withdrawn, and the
        // worker idle from then.
        metrics.dispatch(t(510));
        assert_eq!(metrics.error_rate(t(600)), 1.0);
        metrics.withdraw(t(600));
        assert_eq!(metrics.error_rate(t(660)), 1.0);
        assert_eq!(metrics.error_rate(just_after(660)), 0.0);
        assert_eq!((metrics.processed(), metrics.failed()), (2, 2));
    }

    #[test]
    fn a_zero_maximum_age_is_refused_and_huge_ones_never_expire() {
        let zero = MetricsWindows {
            max_age: Some(Duration::ZERO),
            ..MetricsWindows::default()
        };
        assert!(zero.validate().unwrap_err().reason.contains("max_age"));
        assert_eq!(MetricsWindows::default().validate(), Ok(()));
        let huge = MetricsWindows {
            max_age: Some(Duration::MAX),
            ..MetricsWindows::default()
        };
        assert_eq!(huge.validate(), Ok(()));
        let mut metrics = WorkerMetrics::new(huge);
        metrics.record(Duration::from_secs(1), true, Duration::ZERO);
        let end_of_time = Duration::from_nanos(u64::MAX);
        assert_eq!(
            metrics.mean_service(end_of_time),
            Some(Duration::from_secs(1))
        );
    }
}
