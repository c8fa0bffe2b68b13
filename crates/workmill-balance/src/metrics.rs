//! `WorkerMetrics`: what the pool (and the simulator) measure of each worker: windowed service times and errors, and totals.

use std::time::Duration;

use crate::window::Window;

/// How many recent jobs the windowed measures cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsWindows {
    /// Service times (start to finish) kept for the mean; the seed keeps 10.
    pub service_times: usize,
    /// Outcomes kept for the error rate.
    pub outcomes: usize,
}

impl Default for MetricsWindows {
    /// 32 service times and 64 outcomes: enough that an exponential service
    /// time's mean is known to about 18%, short enough to follow a worker that
    /// slows down within a few dozen jobs.
    fn default() -> MetricsWindows {
        MetricsWindows {
            service_times: 32,
            outcomes: 64,
        }
    }
}

/// One worker's measured behaviour.
#[derive(Clone, Debug)]
pub(crate) struct WorkerMetrics {
    service_times: Window,
    outcomes: Window,
    processed: u64,
    failed: u64,
}

impl WorkerMetrics {
    pub(crate) fn new(windows: MetricsWindows) -> WorkerMetrics {
        WorkerMetrics {
            service_times: Window::new(windows.service_times),
            outcomes: Window::new(windows.outcomes),
            processed: 0,
            failed: 0,
        }
    }

    /// Records one finished attempt and how long it ran on the worker.
    pub(crate) fn record(&mut self, service: Duration, success: bool) {
        self.service_times.push(service.as_secs_f64());
        self.outcomes.push(if success { 0.0 } else { 1.0 });
        if success {
            self.processed += 1;
        } else {
            self.failed += 1;
        }
    }

    /// Mean time from start to finish over the window.
    pub(crate) fn mean_service(&self) -> Option<Duration> {
        self.service_times
            .mean()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// Share of failed attempts over the window; 0.0 before any.
    pub(crate) fn error_rate(&self) -> f64 {
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

    #[test]
    fn windows_follow_recent_jobs_and_totals_count_all() {
        let mut metrics = WorkerMetrics::new(MetricsWindows {
            service_times: 2,
            outcomes: 4,
        });
        assert_eq!(metrics.mean_service(), None);
        assert_eq!(metrics.error_rate(), 0.0);
        metrics.record(Duration::from_secs(10), false);
        metrics.record(Duration::from_secs(1), true);
        metrics.record(Duration::from_secs(3), true);
        assert_eq!(metrics.mean_service(), Some(Duration::from_secs(2)));
        assert!((metrics.error_rate() - 1.0 / 3.0).abs() < 1e-12);
        for _ in 0..4 {
            metrics.record(Duration::from_secs(1), true);
        }
        assert_eq!(metrics.error_rate(), 0.0);
        assert_eq!((metrics.processed(), metrics.failed()), (6, 1));
    }
}
