//! The simulator checked against Erlang C, for determinism, and the default strategy against the targets.

use workmill_balance::sim::{
    self, Arrivals, Dispatch, Scenario, ServiceShape, WorkerProfile, mmc_mean_wait,
};
use workmill_balance::{HealthConfig, ManualClock, RoundRobin, ShortestExpectedDelay};

/// `servers` identical reliable exponential workers at `rho` load.
fn mmc(servers: usize, slots: usize, rho: f64, tasks: usize, seed: u64) -> Scenario {
    let mut scenario = Scenario::seed_mix(Arrivals::Poisson { load: rho, tasks }, seed);
    scenario.workers = (0..servers)
        .map(|i| WorkerProfile {
            slots,
            ..WorkerProfile::new(format!("w{i}"), 1.0)
        })
        .collect();
    scenario.shape = ServiceShape::Exponential;
    scenario.health = HealthConfig::never_eject();
    scenario
}

fn relative_error(measured: f64, expected: f64) -> f64 {
    (measured - expected).abs() / expected
}

#[test]
fn a_central_queue_of_identical_exponential_workers_is_erlang_c() {
    // M/M/4 at 70% load: Wq = C(4, 2.8) / (4 - 2.8) = 0.4287 / 1.2 = 0.3572 s.
    // A million tasks put the sampling error near 1% (2% at worst over eight
    // seeds tried), so 3% is a real check of the simulator, not of luck.
    let expected = mmc_mean_wait(4, 2.8, 1.0);
    assert!((expected - 0.3572).abs() < 1e-3, "{expected}");
    for seed in [1, 2] {
        let report = sim::simulate(
            &mmc(4, 1, 0.7, 1_000_000, seed),
            Dispatch::CentralQueue,
            &ManualClock::new(),
        );
        let error = relative_error(report.mean_wait, expected);
        assert!(
            error < 0.03,
            "seed {seed}: mean wait {:.4} s against Erlang C {expected:.4} s ({:.1}% off)",
            report.mean_wait,
            100.0 * error
        );
    }
}

#[test]
fn one_worker_with_c_slots_through_a_strategy_is_erlang_c() {
    // The dispatch path: one worker with three slots is an M/M/3 queue.
    let expected = mmc_mean_wait(3, 2.1, 1.0);
    let report = sim::simulate(
        &mmc(1, 3, 0.7, 1_000_000, 9),
        Dispatch::balancer("round-robin", RoundRobin::new()),
        &ManualClock::new(),
    );
    let error = relative_error(report.mean_wait, expected);
    assert!(
        error < 0.03,
        "mean wait {:.4} s against Erlang C {expected:.4} s ({:.1}% off)",
        report.mean_wait,
        100.0 * error
    );
}

#[test]
fn runs_are_deterministic_and_every_task_is_accounted_for() {
    let scenario = Scenario::seed_mix(
        Arrivals::Poisson {
            load: 0.7,
            tasks: 3_000,
        },
        5,
    );
    let run = || {
        sim::simulate(
            &scenario,
            Dispatch::balancer("sed", ShortestExpectedDelay::new()),
            &ManualClock::new(),
        )
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert_eq!(a.completed + a.out_of_retries, 3_000);
    assert_eq!(a.attempts, a.completed + a.failed_attempts);
    assert!(a.failed_attempts > 0 && a.attempts_to_failing > 0);
}

#[test]
fn the_default_strategy_meets_the_targets_on_the_seed_profile() {
    for seed in [2026, 7] {
        for load in [0.7, 0.9] {
            let scenario = Scenario::seed_mix(
                Arrivals::Poisson {
                    load,
                    tasks: 20_000,
                },
                seed,
            );
            let default = sim::simulate(
                &scenario,
                Dispatch::balancer("default", workmill_balance::default_balancer()),
                &ManualClock::new(),
            );
            let oracle = sim::simulate(&scenario, Dispatch::Oracle, &ManualClock::new());
            let ratio = default.p99 / oracle.p99;
            assert!(
                ratio <= 1.25,
                "seed {seed}, load {load}: default p99 {:.3} s is {ratio:.2}x the oracle's {:.3} s",
                default.p99,
                oracle.p99
            );
            assert!(default.is_stable(), "seed {seed}, load {load}: {default:?}");
            if load == 0.9 {
                let round_robin = sim::simulate(
                    &scenario,
                    Dispatch::balancer("round-robin", RoundRobin::new()),
                    &ManualClock::new(),
                );
                assert!(!round_robin.is_stable(), "{round_robin:?}");
                assert!(round_robin.p99 > 10.0 * default.p99);
            }
        }
        let batch = Scenario::seed_mix(Arrivals::Batch { tasks: 4_000 }, seed);
        let bound = 4_000.0 / sim::useful_capacity(&batch.workers);
        let default = sim::simulate(
            &batch,
            Dispatch::balancer("default", workmill_balance::default_balancer()),
            &ManualClock::new(),
        );
        assert_eq!(default.completed + default.out_of_retries, 4_000);
        assert!(
            default.makespan <= 1.05 * bound,
            "seed {seed}: makespan {:.1} s against the bound {bound:.1} s",
            default.makespan
        );
    }
}

#[test]
fn settings_at_their_extremes_end_instead_of_looping_or_overflowing() {
    let mut scenario = Scenario::seed_mix(
        Arrivals::Poisson {
            load: 0.7,
            tasks: 200,
        },
        3,
    );
    // A zero interval (refused by `HealthConfig::validate`, but the field is public) and
    // ejections that never end.
    scenario.health.interval = std::time::Duration::ZERO;
    scenario.health.base_ejection = std::time::Duration::MAX;
    scenario.health.max_ejection = std::time::Duration::MAX;
    let report = sim::simulate(
        &scenario,
        Dispatch::balancer("sed", ShortestExpectedDelay::new()),
        &ManualClock::new(),
    );
    assert_eq!(report.completed + report.out_of_retries, 200, "{report:?}");
    // No load at all: the arrivals after the first never come within time.
    let idle = Scenario::seed_mix(
        Arrivals::Poisson {
            load: 0.0,
            tasks: 3,
        },
        3,
    );
    let report = sim::simulate(&idle, Dispatch::CentralQueue, &ManualClock::new());
    assert!(report.completed <= 3, "{report:?}");
}
