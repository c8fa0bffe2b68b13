//! `RunReport`: what one simulated run measured, with latency percentiles.

/// The measurements of one simulated run. Times are in virtual seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// The strategy or reference that dispatched.
    pub dispatcher: String,
    /// Tasks that arrived.
    pub tasks: usize,
    /// Tasks that succeeded.
    pub completed: usize,
    /// Tasks whose every attempt failed.
    pub out_of_retries: usize,
    /// Attempts started, retries included.
    pub attempts: usize,
    /// Attempts that failed.
    pub failed_attempts: usize,
    /// Attempts sent to workers whose profile fails some jobs.
    pub attempts_to_failing: usize,
    /// Times the dispatcher found no worker to take a job and had to wait.
    pub dispatch_waits: usize,
    /// Ejections the health tracker made.
    pub ejections: usize,
    /// Successful tasks per second, from the first arrival to the last completion.
    pub throughput: f64,
    /// Median time from arrival to success.
    pub p50: f64,
    /// 99th percentile of the time from arrival to success.
    pub p99: f64,
    /// 99.9th percentile of the time from arrival to success.
    pub p999: f64,
    /// Mean time from arrival to success.
    pub mean_latency: f64,
    /// Mean time from arrival to the start of the first attempt.
    pub mean_wait: f64,
    /// Time of the last completion.
    pub makespan: f64,
    /// Busy slot-time over all slot-time until the makespan.
    pub utilisation: f64,
    /// Tasks arrived but not finished when the last task arrived.
    pub in_system_at_last_arrival: usize,
}

impl RunReport {
    /// True when the backlog stayed bounded: at the last arrival fewer than 1%
    /// of all tasks (and at most 200) were still in the system. An unstable
    /// queue grows linearly with time and ends far above this.
    pub fn is_stable(&self) -> bool {
        let bound = (self.tasks / 100).clamp(20, 200);
        self.in_system_at_last_arrival <= bound
    }
}

/// The `q`-quantile (0 to 1) of sorted samples, by the nearest rank; NaN when empty.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let samples: Vec<f64> = (1..=1_000).map(f64::from).collect();
        assert_eq!(quantile(&samples, 0.5), 500.0);
        assert_eq!(quantile(&samples, 0.99), 990.0);
        assert_eq!(quantile(&samples, 0.999), 999.0);
        assert_eq!(quantile(&samples, 1.0), 1_000.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
