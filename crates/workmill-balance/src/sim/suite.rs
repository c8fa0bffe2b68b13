//! The standard suite: the seed's profile under every strategy and both references, and its markdown table.

use std::fmt::Write as _;

use workmill_core::Balancer;

use super::{
    Arrivals, Dispatch, RunReport, Scenario, ServiceShape, Slowdown, simulate, useful_capacity,
};
use crate::clock::ManualClock;
use crate::strategy::{
    Adaptive, LeastLoaded, PeakEwma, PowerOfTwoChoices, Random, Rendezvous, RoundRobin,
    WeightedRoundRobin,
};

/// Builds a strategy for one run, given the run's virtual clock and a seed.
pub type StrategyFactory = fn(&ManualClock, u64) -> Box<dyn Balancer>;

/// Every built-in strategy, the pool's default first, under the names the table shows.
pub fn standard_strategies() -> Vec<(&'static str, StrategyFactory)> {
    vec![
        ("default: shortest-expected-delay", |_, _| {
            Box::new(crate::default_balancer())
        }),
        ("round-robin", |_, _| Box::new(RoundRobin::new())),
        ("weighted-round-robin", |_, _| {
            Box::new(WeightedRoundRobin::new())
        }),
        ("random", |_, seed| Box::new(Random::with_seed(seed))),
        ("least-loaded", |_, _| Box::new(LeastLoaded::new())),
        ("power-of-two-choices", |_, seed| {
            Box::new(PowerOfTwoChoices::with_seed(seed))
        }),
        ("peak-ewma", |clock, seed| {
            Box::new(PeakEwma::with_clock(clock.clone()).seed(seed))
        }),
        ("adaptive (seed formula)", |clock, _| {
            Box::new(Adaptive::with_clock(clock.clone()))
        }),
        ("rendezvous (1000 keys)", |_, seed| {
            Box::new(Rendezvous::with_fallback(PowerOfTwoChoices::with_seed(
                seed,
            )))
        }),
    ]
}

/// The standard scenarios on the seed's profile, each with `tasks` tasks
/// (the batch with a fifth as many):
/// exponential service at 0.35, 0.7 and 0.9 load; deterministic and lognormal
/// (sigma 1) at 0.7 and 0.9; the first fast worker slowed 10x through the
/// middle third of a 0.7-load run; and a batch measuring makespan.
pub fn standard_scenarios(tasks: usize, seed: u64) -> Vec<Scenario> {
    let poisson = |load| Arrivals::Poisson { load, tasks };
    let mut scenarios = Vec::new();
    for load in [0.35, 0.7, 0.9] {
        scenarios.push(Scenario::seed_mix(poisson(load), seed));
    }
    for shape in [
        ServiceShape::Deterministic,
        ServiceShape::LogNormal { sigma: 1.0 },
    ] {
        for load in [0.7, 0.9] {
            let mut scenario = Scenario::seed_mix(poisson(load), seed);
            scenario.shape = shape;
            scenario.name = format!("seed-mix {} load {load}", shape.label());
            scenarios.push(scenario);
        }
    }
    let mut slowed = Scenario::seed_mix(poisson(0.7), seed);
    let horizon = tasks as f64 / slowed.arrival_rate();
    slowed.slowdown = Some(Slowdown {
        worker: 0,
        factor: 10.0,
        from: horizon / 3.0,
        until: 2.0 * horizon / 3.0,
    });
    slowed.name = "seed-mix exp load 0.7, fast-1 10x slower mid-run".to_owned();
    scenarios.push(slowed);
    scenarios.push(Scenario::seed_mix(
        Arrivals::Batch {
            tasks: (tasks / 5).max(1),
        },
        seed,
    ));
    scenarios
}

/// One dispatcher's run of one scenario, beside the oracle's.
#[derive(Clone, Debug)]
pub struct SuiteRow {
    /// The scenario's name.
    pub scenario: String,
    /// True for a batch scenario (compare makespans), false for Poisson (compare latencies).
    pub batch: bool,
    /// What the run measured.
    pub report: RunReport,
    /// The oracle's p99 in the same scenario.
    pub oracle_p99: f64,
    /// For a batch, `tasks / useful capacity`, the makespan no dispatcher can beat.
    pub makespan_bound: f64,
}

impl SuiteRow {
    /// p99 over the oracle's p99.
    pub fn p99_vs_oracle(&self) -> f64 {
        self.report.p99 / self.oracle_p99
    }

    /// Makespan over its lower bound.
    pub fn makespan_vs_bound(&self) -> f64 {
        self.report.makespan / self.makespan_bound
    }
}

/// The results of every strategy and reference on every scenario.
#[derive(Clone, Debug)]
pub struct Suite {
    /// One row per scenario and dispatcher, in order.
    pub rows: Vec<SuiteRow>,
}

impl Suite {
    /// Runs every strategy of [`standard_strategies`] and both references on `scenarios`.
    pub fn run(scenarios: &[Scenario]) -> Suite {
        let mut rows = Vec::new();
        for scenario in scenarios {
            let oracle = simulate(scenario, Dispatch::Oracle, &ManualClock::new());
            let batch = matches!(scenario.arrivals, Arrivals::Batch { .. });
            let makespan_bound =
                scenario.arrivals.tasks() as f64 / useful_capacity(&scenario.workers);
            let mut push = |report: RunReport| {
                rows.push(SuiteRow {
                    scenario: scenario.name.clone(),
                    batch,
                    report,
                    oracle_p99: oracle.p99,
                    makespan_bound,
                });
            };
            for (name, make) in standard_strategies() {
                let clock = ManualClock::new();
                let balancer = make(&clock, super::dist::stream(scenario.seed, 5).u64(..));
                push(simulate(
                    scenario,
                    Dispatch::Balancer(name.to_owned(), balancer),
                    &clock,
                ));
            }
            push(oracle.clone());
            push(simulate(
                scenario,
                Dispatch::CentralQueue,
                &ManualClock::new(),
            ));
        }
        Suite { rows }
    }

    /// The row of `dispatcher` in `scenario`.
    pub fn row(&self, scenario: &str, dispatcher: &str) -> Option<&SuiteRow> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.report.dispatcher == dispatcher)
    }

    /// The results as markdown: one table per scenario.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut current = None;
        for row in &self.rows {
            if current != Some(&row.scenario) {
                current = Some(&row.scenario);
                let _ = writeln!(out, "\n### {}\n", row.scenario);
                if row.batch {
                    out.push_str(
                        "| dispatcher | makespan s | / bound N/capacity | tasks/s | to failing | out of retries | utilisation |\n\
                         |---|---:|---:|---:|---:|---:|---:|\n",
                    );
                } else {
                    out.push_str(
                        "| dispatcher | tasks/s | p50 s | p99 s | p99.9 s | p99 / oracle | to failing | out of retries | utilisation | backlog at end | stable |\n\
                         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
                    );
                }
            }
            let r = &row.report;
            if row.batch {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} | {:.3} | {:.2} | {} | {} | {:.1}% |",
                    r.dispatcher,
                    r.makespan,
                    row.makespan_vs_bound(),
                    r.throughput,
                    r.attempts_to_failing,
                    r.out_of_retries,
                    100.0 * r.utilisation,
                );
            } else {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {} | {:.1}% | {} | {} |",
                    r.dispatcher,
                    r.throughput,
                    r.p50,
                    r.p99,
                    r.p999,
                    row.p99_vs_oracle(),
                    r.attempts_to_failing,
                    r.out_of_retries,
                    100.0 * r.utilisation,
                    r.in_system_at_last_arrival,
                    if r.is_stable() { "yes" } else { "NO" },
                );
            }
        }
        out
    }
}
