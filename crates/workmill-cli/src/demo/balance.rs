//! Demo step (c): load balancing over the seed's heterogeneous workers, in workmill-balance's
//! simulator of its `Pool`: round-robin (the seed's) against the pool's default strategy.

use serde::Serialize;
use workmill_balance::sim::{self, Arrivals, Dispatch, RunReport, Scenario};
use workmill_balance::{ManualClock, RoundRobin, default_balancer};

use super::checks::{Check, Checks};
use crate::cli::DemoArgs;

/// How far from `tasks / capacity` a batch on bounded queues may finish, as a share of it...
const MAKESPAN_TOLERANCE: f64 = 0.10;
/// ...plus the longest queue a worker can hold at the end (its capacity times its mean service
/// time) and this many times the slowest worker's mean service time: the batch's last tasks
/// end one by one on whatever workers hold them (an exponential tail).
const TAIL_SERVICES: f64 = 5.0;

/// One simulated run.
#[derive(Clone, Debug, Serialize)]
pub struct BalanceRow {
    /// The arrivals: a Poisson stream at a load, or a batch.
    pub scenario: String,
    /// `round-robin` or `default`.
    pub strategy: String,
    /// Median latency, arrival to success, in seconds.
    pub p50_s: f64,
    /// 99th percentile latency, in seconds.
    pub p99_s: f64,
    /// Time of the last completion, in seconds.
    pub makespan_s: f64,
    /// Tasks that succeeded.
    pub completed: usize,
    /// Tasks whose every attempt failed.
    pub out_of_retries: usize,
    /// Whether the backlog stayed bounded (for a stream; a batch starts with every task waiting).
    pub stable: Option<bool>,
}

impl BalanceRow {
    fn new(scenario: &str, strategy: &str, report: &RunReport) -> BalanceRow {
        BalanceRow {
            scenario: scenario.to_owned(),
            strategy: strategy.to_owned(),
            p50_s: report.p50,
            p99_s: report.p99,
            makespan_s: report.makespan,
            completed: report.completed,
            out_of_retries: report.out_of_retries,
            stable: (scenario != "batch").then(|| report.is_stable()),
        }
    }
}

/// What the balance step measured.
#[derive(Clone, Debug, Serialize)]
pub struct BalanceReport {
    /// The seed's workers, as `name (mean service, failure rate)`.
    pub workers: Vec<String>,
    /// Every run.
    pub runs: Vec<BalanceRow>,
}

/// Runs the step: Poisson arrivals at 70% and 90% of the workers' useful capacity (latency and
/// the time to drain the stream), and one batch of tasks on the workers' bounded queues
/// (makespan), each under both strategies, with the same arrivals and job sizes.
pub(super) fn run(args: &DemoArgs) -> (BalanceReport, Vec<Check>) {
    let tasks = args.balance_tasks as usize;
    let cases = [
        ("poisson 70% load", Arrivals::Poisson { load: 0.7, tasks }),
        ("poisson 90% load", Arrivals::Poisson { load: 0.9, tasks }),
        ("batch", Arrivals::Batch { tasks }),
    ];
    let mut runs = Vec::new();
    let mut checks = Checks::new("balance");
    // `Scenario::seed_mix` runs every case on these workers.
    let workers = sim::seed_profile()
        .iter()
        .map(|w| {
            format!(
                "{} ({} s, {:.0}% failing)",
                w.name,
                w.mean_service,
                w.failure_rate * 100.0
            )
        })
        .collect();
    for (label, arrivals) in cases {
        let scenario = Scenario::seed_mix(arrivals, args.seed);
        let rr = sim::simulate(
            &scenario,
            Dispatch::balancer("round-robin", RoundRobin::new()),
            &ManualClock::new(),
        );
        let default = sim::simulate(
            &scenario,
            Dispatch::balancer("default", default_balancer()),
            &ManualClock::new(),
        );
        let accounted = |r: &RunReport| r.completed + r.out_of_retries == tasks;
        checks.check(
            format!("{label}: every task completed or ran out of attempts"),
            accounted(&rr) && accounted(&default),
            format!(
                "round-robin {}+{}, default {}+{} of {tasks}",
                rr.completed, rr.out_of_retries, default.completed, default.out_of_retries
            ),
        );
        match arrivals {
            Arrivals::Poisson { .. } => checks.check(
                format!("{label}: the default strategy's p99 and makespan beat round-robin's"),
                default.p99 < rr.p99 && default.makespan < rr.makespan,
                format!(
                    "p99 {:.2} s vs {:.2} s, makespan {:.0} s vs {:.0} s",
                    default.p99, rr.p99, default.makespan, rr.makespan
                ),
            ),
            // The seed's workers refuse work beyond their capacity, so a batch is pulled as
            // they free up, and any strategy that skips full workers finishes near the ideal.
            Arrivals::Batch { .. } => {
                let ideal = tasks as f64 / sim::useful_capacity(&scenario.workers);
                let slowest = scenario
                    .workers
                    .iter()
                    .map(|w| w.mean_service)
                    .fold(0.0, f64::max);
                let low = ideal * (1.0 - MAKESPAN_TOLERANCE);
                let last_queue = scenario
                    .workers
                    .iter()
                    .map(|w| w.capacity as f64 * w.mean_service)
                    .fold(0.0, f64::max);
                let high =
                    ideal * (1.0 + MAKESPAN_TOLERANCE) + last_queue + TAIL_SERVICES * slowest;
                let near = |r: &RunReport| (low..=high).contains(&r.makespan);
                checks.check(
                    format!("{label}: both finish near tasks / capacity"),
                    near(&rr) && near(&default),
                    format!(
                        "{:.1} s and {:.1} s, ideal {ideal:.1} s (allowed {low:.1} to {high:.1} s)",
                        rr.makespan, default.makespan
                    ),
                );
            }
        }
        runs.push(BalanceRow::new(label, "round-robin", &rr));
        runs.push(BalanceRow::new(label, "default", &default));
    }
    (BalanceReport { workers, runs }, checks.into_vec())
}
