//! Tests of the ejection state machine: triggers, durations, the share limit, probing, slow start and forgiveness.

use std::time::Duration;

use super::*;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The defaults with Envoy's streak of five, which keeps the tests short.
fn config() -> HealthConfig {
    HealthConfig {
        consecutive_failures: 5,
        error_window: 20,
        min_requests: 10,
        ..HealthConfig::default()
    }
}

fn fail_times(health: &mut HealthTracker, worker: usize, n: usize, now: Duration) -> bool {
    let mut ejected = false;
    for _ in 0..n {
        ejected |= health.record(worker, Dispatch::Normal, false, now);
    }
    ejected
}

/// Brings an ejected worker back through a failed probe at its return time.
fn fail_probe(health: &mut HealthTracker, worker: usize) -> Duration {
    let HealthState::Ejected { until } = health.state(worker) else {
        panic!("worker {worker} is not ejected: {:?}", health.state(worker));
    };
    assert!(health.admits(worker, until));
    assert_eq!(health.on_dispatch(worker), Dispatch::Probe);
    assert!(health.record(worker, Dispatch::Probe, false, until));
    until
}

#[test]
fn consecutive_failures_eject_for_30s_times_ejections_capped_at_300s() {
    let mut health = HealthTracker::new(config(), 10);
    assert!(!fail_times(&mut health, 0, 4, secs(10)));
    assert_eq!(health.state(0), HealthState::Healthy);
    assert!(fail_times(&mut health, 0, 1, secs(10)));
    assert_eq!(health.state(0), HealthState::Ejected { until: secs(40) });
    assert_eq!(health.ejections(0), 1);

    // Each failed probe ejects again for one more base period: 60, 90, ... 300, 300.
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    for n in 2..=12u64 {
        let at = fail_probe(&mut health, 0);
        let HealthState::Ejected { until } = health.state(0) else {
            panic!("probe failure must eject");
        };
        seen.push(until - at);
        expected.push(secs((30 * n).min(300)));
    }
    assert_eq!(seen, expected);
}

#[test]
fn a_success_breaks_the_streak() {
    // Only the streak rule: 8 failures in 9 outcomes would trip the error rate.
    let custom = HealthConfig {
        max_error_rate: 1.0,
        ..config()
    };
    let mut health = HealthTracker::new(custom, 10);
    for _ in 0..10 {
        fail_times(&mut health, 0, 4, secs(1));
        health.record(0, Dispatch::Normal, true, secs(1));
        fail_times(&mut health, 0, 4, secs(1));
        for _ in 0..10 {
            health.record(0, Dispatch::Normal, true, secs(1));
        }
    }
    assert_eq!(health.state(0), HealthState::Healthy);
}

#[test]
fn the_windowed_error_rate_ejects_once_the_window_has_enough_outcomes() {
    let custom = HealthConfig {
        consecutive_failures: 0,
        ..config()
    };
    let mut health = HealthTracker::new(custom, 10);
    // Alternating failures: 50% errors, never two in a row.
    let mut ejected_after = None;
    for i in 0..20 {
        let success = i % 2 == 0;
        if health.record(1, Dispatch::Normal, success, secs(5)) {
            ejected_after = Some(i + 1);
            break;
        }
    }
    // The tenth outcome fills min_requests with a 50% rate.
    assert_eq!(ejected_after, Some(10));
}

#[test]
fn no_more_than_the_configured_share_is_ejected_at_once() {
    let custom = HealthConfig {
        max_ejected_share: 0.25,
        ..config()
    };
    let mut health = HealthTracker::new(custom, 8);
    let ejected: Vec<bool> = (0..4)
        .map(|w| fail_times(&mut health, w, 5, secs(1)))
        .collect();
    assert_eq!(ejected, [true, true, false, false]);
    assert_eq!(health.out_of_rotation(), 2);
    // Worker 0 returns through a good probe; the next failure of worker 2 may now eject it.
    assert!(health.admits(0, secs(31)));
    assert_eq!(health.on_dispatch(0), Dispatch::Probe);
    health.record(0, Dispatch::Probe, true, secs(31));
    assert!(health.record(2, Dispatch::Normal, false, secs(32)));
    assert_eq!(health.out_of_rotation(), 2);
    // A share of zero turns ejection off; a tiny share still allows one.
    let mut off = HealthTracker::new(HealthConfig::never_eject(), 8);
    assert!(!fail_times(&mut off, 0, 50, secs(1)));
    let tiny = HealthConfig {
        max_ejected_share: 0.01,
        ..config()
    };
    assert_eq!(tiny.max_ejected(8), 1);
}

#[test]
fn a_returning_worker_gets_exactly_one_probe_and_stale_outcomes_do_not_count() {
    let mut health = HealthTracker::new(config(), 3);
    fail_times(&mut health, 2, 5, secs(0));
    // Jobs queued before the ejection fail while it is out: ignored.
    assert!(!fail_times(&mut health, 2, 20, secs(10)));
    assert!(!health.admits(2, secs(29)));
    assert!(health.admits(2, secs(30)));
    assert_eq!(health.on_dispatch(2), Dispatch::Probe);
    assert!(
        !health.admits(2, secs(30)),
        "a second job before the probe's outcome"
    );
    // A stale job's outcome arrives while the probe is out: ignored too.
    assert!(!health.record(2, Dispatch::Normal, false, secs(31)));
    assert_eq!(
        health.state(2),
        HealthState::Probing {
            probe_in_flight: true
        }
    );
    health.record(2, Dispatch::Probe, true, secs(32));
    assert_eq!(health.state(2), HealthState::Healthy);
    assert!(health.admits(2, secs(32)));
    assert_eq!(health.on_dispatch(2), Dispatch::Normal);
    assert_eq!(health.out_of_rotation(), 0);
}

#[test]
fn slow_start_ramps_the_share_of_picks() {
    let custom = HealthConfig {
        slow_start: Some(secs(100)),
        ..config()
    };
    let mut health = HealthTracker::new(custom, 2).seed(3);
    fail_times(&mut health, 0, 5, secs(0));
    assert!(health.admits(0, secs(30)));
    health.on_dispatch(0);
    health.record(0, Dispatch::Probe, true, secs(30));
    assert_eq!(health.state(0), HealthState::SlowStart { since: secs(30) });
    let share = |health: &mut HealthTracker, at: Duration| {
        (0..10_000).filter(|_| health.admits(0, at)).count() as f64 / 10_000.0
    };
    assert!((share(&mut health, secs(30)) - 0.1).abs() < 0.02);
    assert!((share(&mut health, secs(80)) - 0.5).abs() < 0.02);
    assert!((share(&mut health, secs(120)) - 0.9).abs() < 0.02);
    assert_eq!(share(&mut health, secs(130)), 1.0);
    assert_eq!(health.state(0), HealthState::Healthy);
}

#[test]
fn time_in_rotation_forgives_past_ejections() {
    let mut health = HealthTracker::new(config(), 2);
    fail_times(&mut health, 0, 5, secs(0));
    fail_probe(&mut health, 0);
    assert_eq!(health.ejections(0), 2);
    let HealthState::Ejected { until } = health.state(0) else {
        panic!("ejected");
    };
    health.admits(0, until);
    health.on_dispatch(0);
    health.record(0, Dispatch::Probe, true, until);
    health.tick(until + secs(29));
    assert_eq!(health.ejections(0), 2);
    health.tick(until + secs(30));
    assert_eq!(health.ejections(0), 1);
    health.tick(until + secs(65));
    assert_eq!(health.ejections(0), 0);
    // A new ejection now lasts the base time again.
    fail_times(&mut health, 0, 5, until + secs(70));
    assert_eq!(
        health.state(0),
        HealthState::Ejected {
            until: until + secs(100)
        }
    );
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    assert_eq!(HealthConfig::default().validate(), Ok(()));
    assert_eq!(config().validate(), Ok(()));
    let bad = [
        HealthConfig {
            max_error_rate: 1.5,
            ..config()
        },
        HealthConfig {
            min_requests: 50,
            ..config()
        },
        HealthConfig {
            base_ejection: secs(600),
            ..config()
        },
        HealthConfig {
            slow_start: Some(Duration::ZERO),
            ..config()
        },
    ];
    for config in bad {
        let err = config.validate().unwrap_err();
        assert!(err.to_string().starts_with("invalid health config: "));
    }
}

#[test]
fn an_ejection_that_never_ends_does_not_overflow() {
    // `validate` accepts it: "eject for good".
    let forever = HealthConfig {
        base_ejection: Duration::MAX,
        max_ejection: Duration::MAX,
        ..config()
    };
    assert!(forever.validate().is_ok());
    let mut health = HealthTracker::new(forever, 10);
    assert!(fail_times(&mut health, 0, 5, secs(10)));
    assert_eq!(
        health.state(0),
        HealthState::Ejected {
            until: Duration::MAX
        }
    );
    assert!(!health.admits(0, secs(1_000_000_000)));
}
