//! The simulator checked against Erlang C, for determinism, and the default strategy against the targets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use workmill_balance::sim::{
    self, Arrivals, Dispatch, Scenario, ServiceShape, Slowdown, WorkerProfile, mmc_mean_wait,
};
use workmill_balance::{
    Adaptive, Clock, HealthConfig, ManualClock, RoundRobin, ShortestExpectedDelay,
};
use workmill_core::{BalanceError, Balancer, Candidate, Load, Outcome, Request};

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
    // A zero interval (refused by `HealthConfig::validate`, but the field is public),
    // ejections that never end, and measurements forgotten as soon as time moves
    // (refused by `MetricsWindows::validate`).
    scenario.windows.max_age = Some(Duration::ZERO);
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

/// A strategy that notes, at the run's virtual time, which worker it picked.
struct Counting<B> {
    inner: B,
    clock: ManualClock,
    picks: Arc<Mutex<Vec<(Duration, usize)>>>,
}

impl<B: Balancer> Balancer for Counting<B> {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        let picked = self.inner.pick(candidates, request);
        if let Ok(worker) = picked {
            self.picks.lock().unwrap().push((self.clock.now(), worker));
        }
        picked
    }

    fn observe(&mut self, outcome: &Outcome) {
        self.inner.observe(outcome);
    }
}

#[test]
fn a_worker_that_was_slow_gets_jobs_again_once_it_recovered() {
    // At moderate load, fast-1 runs 10x slower for the first 100 s. SED and the
    // adaptive score then rank it last and give it no job; a minute after its
    // last job ended its measurements are forgotten, it is unmeasured, is tried, and
    // is found fast again. (With measurements that never aged it
    // got no job at all in the remaining ~1 900 s.)
    type Factory = fn(&ManualClock) -> Box<dyn Balancer>;
    let strategies: [(&str, Factory); 2] = [
        (
            "default",
            |_| Box::new(workmill_balance::default_balancer()),
        ),
        ("adaptive", |clock| {
            Box::new(Adaptive::with_clock(clock.clone()))
        }),
    ];
    for load in [0.3, 0.5] {
        let mut scenario = Scenario::seed_mix(
            Arrivals::Poisson {
                load,
                tasks: 12_000,
            },
            3,
        );
        scenario.slowdown = Some(Slowdown {
            worker: 0,
            factor: 10.0,
            from: 0.0,
            until: 100.0,
        });
        for (name, factory) in strategies {
            let clock = ManualClock::new();
            let picks = Arc::new(Mutex::new(Vec::new()));
            let counting = Counting {
                inner: factory(&clock),
                clock: clock.clone(),
                picks: Arc::clone(&picks),
            };
            let report = sim::simulate(&scenario, Dispatch::balancer(name, counting), &clock);
            assert!(report.is_stable(), "{name}, load {load}: {report:?}");
            let picks = picks.lock().unwrap();
            // From 300 s on, fast-1 does about the work of its twin fast-2.
            let count = |worker| {
                picks
                    .iter()
                    .filter(|&&(at, w)| at >= Duration::from_secs(300) && w == worker)
                    .count()
            };
            let (fast_1, fast_2) = (count(0), count(1));
            assert!(
                fast_2 > 1_000 && fast_1 * 3 > fast_2 * 2,
                "{name}, load {load}: after recovering fast-1 got {fast_1} jobs, fast-2 {fast_2}"
            );
        }
    }
}

/// In virtual time, the load of worker 0 at each pick, or `None` for an outcome observed.
type Seen = Arc<Mutex<Vec<(Duration, Option<Load>)>>>;

/// A strategy that notes what it sees.
struct Watching<B> {
    inner: B,
    clock: ManualClock,
    seen: Seen,
}

impl<B: Balancer> Balancer for Watching<B> {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        let load = candidates[0].load;
        self.seen
            .lock()
            .unwrap()
            .push((self.clock.now(), Some(load)));
        self.inner.pick(candidates, request)
    }

    fn observe(&mut self, outcome: &Outcome) {
        self.seen.lock().unwrap().push((self.clock.now(), None));
        self.inner.observe(outcome);
    }
}

#[test]
fn a_worker_busy_with_jobs_longer_than_the_maximum_age_stays_measured() {
    // One single-slot worker whose jobs average 90 s, beyond the default maximum
    // age of a minute, kept busy by a batch: it always has a job in flight, so
    // its measurements never lapse and its window holds every job so far.
    let mut scenario = Scenario::seed_mix(Arrivals::Batch { tasks: 12 }, 11);
    scenario.workers = vec![WorkerProfile::new("long", 90.0)];
    scenario.max_attempts = 1;
    scenario.health = HealthConfig::never_eject();
    assert_eq!(scenario.windows.max_age, Some(Duration::from_secs(60)));
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watching = Watching {
        inner: workmill_balance::default_balancer(),
        clock: clock.clone(),
        seen: Arc::clone(&seen),
    };
    let report = sim::simulate(&scenario, Dispatch::balancer("sed", watching), &clock);
    assert_eq!(report.completed, 12, "{report:?}");
    let (mut finished, mut last_finish, mut longest, mut checked) =
        (0u32, Duration::ZERO, Duration::ZERO, 0);
    for &(at, load) in seen.lock().unwrap().iter() {
        let Some(load) = load else {
            longest = longest.max(at - last_finish);
            (finished, last_finish) = (finished + 1, at);
            continue;
        };
        if finished == 0 {
            continue;
        }
        // Picked while tasks wait: it holds its capacity.
        assert!(load.in_flight() >= 3, "at {at:?}: {load:?}");
        // Busy since time zero, its finished jobs took `last_finish` between
        // them: the mean of all of them, not of the last one, nor none at all.
        let mean = load
            .mean_latency
            .unwrap_or_else(|| panic!("at {at:?}: a busy worker shown as unmeasured"));
        let expected = last_finish / finished;
        assert!(
            mean.abs_diff(expected) < Duration::from_micros(1),
            "at {at:?}: mean {mean:?}, expected {expected:?} over {finished} jobs"
        );
        checked += 1;
    }
    assert_eq!(finished, 12);
    assert!(checked >= 8, "{checked}");
    // The case this covers: some job ran longer than the maximum age.
    assert!(longest > Duration::from_secs(60), "{longest:?}");
}
