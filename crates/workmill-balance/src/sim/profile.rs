//! Worker profiles for the simulator: mean service time, failure rate, parallel slots, capacity, and the seed's mix.

/// One simulated worker.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerProfile {
    /// Shown in reports.
    pub name: String,
    /// Mean time one job takes, in seconds.
    pub mean_service: f64,
    /// Share of attempts that fail; a failed attempt still takes its service time.
    pub failure_rate: f64,
    /// Jobs it runs at once.
    pub slots: usize,
    /// Jobs it may hold, running or queued, when the scenario bounds queues (the seed's `max_capacity`).
    pub capacity: usize,
    /// The weight weighted strategies see.
    pub weight: u32,
}

impl WorkerProfile {
    /// A reliable single-slot worker with mean service `mean_service` seconds.
    pub fn new(name: impl Into<String>, mean_service: f64) -> WorkerProfile {
        WorkerProfile {
            name: name.into(),
            mean_service,
            failure_rate: 0.0,
            slots: 1,
            capacity: 4,
            weight: 1,
        }
    }

    /// Successful jobs per second when kept busy.
    pub fn useful_rate(&self) -> f64 {
        self.slots as f64 * (1.0 - self.failure_rate) / self.mean_service
    }
}

/// How service times spread around each worker's mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServiceShape {
    /// Exponential: memoryless, coefficient of variation 1.
    Exponential,
    /// Every job takes exactly the mean.
    Deterministic,
    /// Lognormal with shape `sigma` (0.5 is mild, 1.0 heavy-tailed), scaled to the mean.
    LogNormal {
        /// The standard deviation of the underlying normal.
        sigma: f64,
    },
}

impl ServiceShape {
    /// A short name for tables.
    pub fn label(&self) -> String {
        match self {
            ServiceShape::Exponential => "exp".to_owned(),
            ServiceShape::Deterministic => "det".to_owned(),
            ServiceShape::LogNormal { sigma } => format!("lognormal(s={sigma})"),
        }
    }
}

/// The seed's workers: 2 fast at 0.2 s, 3 medium at 0.5 s, 2 slow at 1.0 s, and
/// 1 unreliable at 0.3 s failing 30% of its attempts.
///
/// Capacities are the seed's `max_capacity` (fast 8, medium 5, slow 3,
/// unreliable 4); weights are twice the nominal rate, rounded, which is what a
/// user configuring static weights would write.
pub fn seed_profile() -> Vec<WorkerProfile> {
    let mut workers = Vec::new();
    let mut add = |name: &str, mean: f64, failure_rate: f64, capacity: usize| {
        workers.push(WorkerProfile {
            failure_rate,
            capacity,
            weight: (2.0 / mean).round() as u32,
            ..WorkerProfile::new(name, mean)
        });
    };
    add("fast-1", 0.2, 0.0, 8);
    add("fast-2", 0.2, 0.0, 8);
    add("medium-1", 0.5, 0.0, 5);
    add("medium-2", 0.5, 0.0, 5);
    add("medium-3", 0.5, 0.0, 5);
    add("slow-1", 1.0, 0.0, 3);
    add("slow-2", 1.0, 0.0, 3);
    add("unreliable", 0.3, 0.3, 4);
    workers
}

/// Successful jobs per second the workers complete when all are kept busy.
pub fn useful_capacity(workers: &[WorkerProfile]) -> f64 {
    workers.iter().map(WorkerProfile::useful_rate).sum()
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_seed_profile_has_the_seeds_workers() {
        let workers = seed_profile();
        assert_eq!(workers.len(), 8);
        // 2 x 5 + 3 x 2 + 2 x 1 + 0.7 / 0.3 jobs per second.
        let expected = 10.0 + 6.0 + 2.0 + 0.7 / 0.3;
        assert!((useful_capacity(&workers) - expected).abs() < 1e-9);
        assert_eq!(workers.iter().filter(|w| w.failure_rate > 0.0).count(), 1);
    }
}
