//! A deterministic simulator in virtual time: heterogeneous workers, Poisson or batch arrivals, and every strategy measured the same way.
//!
//! The simulator models a [`Pool`](crate::Pool): each worker has its own
//! FIFO queue and parallel slots, the pool measures it with the same windowed
//! metrics and ejects it with the same [`HealthTracker`](crate::HealthTracker),
//! and a failed attempt is retried at once on another worker. Only time is
//! virtual, so a run of 50 000 tasks takes milliseconds, and a run is a pure
//! function of its [`Scenario`] (seed included) and its dispatcher.
//!
//! Every dispatcher sees the same arrivals and job sizes (common random
//! numbers): a job's size is drawn at arrival and scaled by the mean service
//! time of the worker that runs it. Failures are drawn from one stream per
//! worker, so a worker's n-th attempt fails or not alike under every dispatcher.
//!
//! Two references bound what strategies can do: [`Dispatch::Oracle`] is
//! shortest expected delay given the true (current) service rates, and
//! [`Dispatch::CentralQueue`] keeps one queue that idle workers pull from,
//! the M/M/c discipline, which no per-worker-queue strategy can beat on
//! mean wait.
//!
//! # Examples
//!
//! ```
//! use workmill_balance::sim::{self, Arrivals, Dispatch, Scenario};
//! use workmill_balance::{ManualClock, ShortestExpectedDelay};
//!
//! let scenario = Scenario::seed_mix(Arrivals::Poisson { load: 0.7, tasks: 2_000 }, 7);
//! let clock = ManualClock::new();
//! let sed = sim::simulate(&scenario, Dispatch::balancer("sed", ShortestExpectedDelay::new()), &clock);
//! let oracle = sim::simulate(&scenario, Dispatch::Oracle, &ManualClock::new());
//! assert_eq!(sed.completed + sed.out_of_retries, 2_000);
//! assert!(sed.p99 < 3.0 * oracle.p99);
//! ```

mod dist;
mod engine;
mod erlang;
mod profile;
mod report;
mod suite;

pub use engine::simulate;
pub use erlang::{erlang_c, mmc_mean_wait};
pub use profile::{ServiceShape, WorkerProfile, seed_profile, useful_capacity};
pub use report::RunReport;
pub use suite::{StrategyFactory, Suite, SuiteRow, standard_scenarios, standard_strategies};

use std::fmt;

use workmill_core::Balancer;

use crate::health::HealthConfig;
use crate::metrics::MetricsWindows;

/// How tasks arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrivals {
    /// A Poisson stream at `load` times the workers' useful capacity, `tasks` in all.
    Poisson {
        /// Arrival rate over useful capacity, e.g. 0.7.
        load: f64,
        /// How many tasks arrive.
        tasks: usize,
    },
    /// `tasks` tasks all waiting at time zero, handed out as workers have room;
    /// the run measures the makespan.
    Batch {
        /// How many tasks.
        tasks: usize,
    },
}

impl Arrivals {
    /// How many tasks arrive.
    pub fn tasks(&self) -> usize {
        match *self {
            Arrivals::Poisson { tasks, .. } | Arrivals::Batch { tasks } => tasks,
        }
    }
}

/// One worker running `factor` times slower between two times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slowdown {
    /// Which worker.
    pub worker: usize,
    /// How many times slower its jobs run.
    pub factor: f64,
    /// When it slows down, in virtual seconds.
    pub from: f64,
    /// When it recovers.
    pub until: f64,
}

/// Everything a run depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Shown in reports.
    pub name: String,
    /// The workers.
    pub workers: Vec<WorkerProfile>,
    /// How service times spread.
    pub shape: ServiceShape,
    /// How tasks arrive.
    pub arrivals: Arrivals,
    /// A worker slowed down for a while, if any.
    pub slowdown: Option<Slowdown>,
    /// Whether workers refuse jobs beyond their [`WorkerProfile::capacity`]
    /// (the dispatcher then waits); otherwise their queues are unbounded.
    pub bounded_queues: bool,
    /// Attempts per task, the first included.
    pub max_attempts: u32,
    /// The health tracking every dispatcher runs under.
    pub health: HealthConfig,
    /// The windows of the per-worker measurements, and how long a measurement counts.
    pub windows: MetricsWindows,
    /// Distinct affinity keys tasks carry (uniformly), for rendezvous hashing.
    pub keys: u64,
    /// The seed of every random draw.
    pub seed: u64,
}

impl Scenario {
    /// The seed's worker mix with exponential service times, the pool's default
    /// health tracking and three attempts per task. Batch arrivals bound the
    /// queues at the seed's capacities; Poisson arrivals leave them unbounded so
    /// that an unstable strategy shows as a growing backlog.
    pub fn seed_mix(arrivals: Arrivals, seed: u64) -> Scenario {
        let name = match arrivals {
            Arrivals::Poisson { load, .. } => format!("seed-mix exp load {load}"),
            Arrivals::Batch { tasks } => format!("seed-mix exp batch {tasks}"),
        };
        Scenario {
            name,
            workers: seed_profile(),
            shape: ServiceShape::Exponential,
            arrivals,
            slowdown: None,
            bounded_queues: matches!(arrivals, Arrivals::Batch { .. }),
            max_attempts: 3,
            health: HealthConfig::default(),
            windows: MetricsWindows::default(),
            keys: 1_000,
            seed,
        }
    }

    /// The arrival rate in tasks per second (0 for a batch).
    pub fn arrival_rate(&self) -> f64 {
        match self.arrivals {
            Arrivals::Poisson { load, .. } => load * useful_capacity(&self.workers),
            Arrivals::Batch { .. } => 0.0,
        }
    }
}

/// Who decides where each task goes.
pub enum Dispatch {
    /// A strategy, under the name given.
    Balancer(String, Box<dyn Balancer>),
    /// Shortest expected delay with the true, current service rates.
    Oracle,
    /// One central queue; idle workers pull from it, the longest idle first.
    CentralQueue,
}

impl Dispatch {
    /// A strategy under a name.
    pub fn balancer(name: impl Into<String>, balancer: impl Balancer + 'static) -> Dispatch {
        Dispatch::Balancer(name.into(), Box::new(balancer))
    }

    /// The name shown in reports.
    pub fn name(&self) -> &str {
        match self {
            Dispatch::Balancer(name, _) => name,
            Dispatch::Oracle => "oracle (SED, true rates)",
            Dispatch::CentralQueue => "central queue (pull)",
        }
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
