//! The pool end to end: results, typed errors with the task handed back, retries elsewhere, ejection, stats and shutdown.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use workmill_balance::{
    BuildError, HealthConfig, HealthState, Job, ManualClock, MetricsWindows, Pool, PoolBuilder,
    PoolError, RoundRobin, ThreadWorker,
};
use workmill_core::{BalanceError, Load, RejectReason, Rejected, TaskError, Worker};

/// A worker that logs which jobs reach it, and can refuse or drop them on demand.
struct TestWorker {
    name: &'static str,
    inner: ThreadWorker,
    log: Arc<Mutex<Vec<&'static str>>>,
    refuse: Arc<Mutex<bool>>,
    drop_jobs: Arc<Mutex<bool>>,
}

impl TestWorker {
    fn new(name: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> TestWorker {
        TestWorker {
            name,
            inner: ThreadWorker::new(1, 64).unwrap(),
            log: Arc::clone(log),
            refuse: Arc::new(Mutex::new(false)),
            drop_jobs: Arc::new(Mutex::new(false)),
        }
    }
}

impl Worker for TestWorker {
    type Job = Job;

    fn submit(&self, job: Job) -> Result<(), Rejected<Job>> {
        if *self.refuse.lock().unwrap() {
            return Err(Rejected {
                job,
                reason: RejectReason::Full,
            });
        }
        if *self.drop_jobs.lock().unwrap() {
            drop(job);
            return Ok(());
        }
        let (name, log) = (self.name, Arc::clone(&self.log));
        self.inner.submit(Job::new(move || {
            log.lock().unwrap().push(name);
            job.run();
        }))
    }

    fn load(&self) -> Load {
        // Reports nothing, so the pool relies on its own counts.
        Load::default()
    }
}

fn log() -> Arc<Mutex<Vec<&'static str>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn test_pool(workers: Vec<TestWorker>) -> PoolBuilder<TestWorker> {
    workers
        .into_iter()
        .fold(PoolBuilder::new().monitor(false), |b, w| {
            b.worker(w.name, w)
        })
}

#[test]
fn results_come_back_and_stats_add_up() {
    let pool = Pool::builder()
        .worker("fast", ThreadWorker::new(2, 8).unwrap())
        .worker("medium", ThreadWorker::new(1, 5).unwrap())
        .worker("slow", ThreadWorker::new(1, 3).unwrap())
        .build()
        .unwrap();
    let mut handles = Vec::new();
    let mut expected = 0u64;
    for n in 0..200u64 {
        expected += n * n;
        let mut task = move || Ok::<_, TaskError>(n * n);
        loop {
            match pool.distribute(task) {
                Ok(handle) => break handles.push(handle),
                // Full for now: the task comes back and is offered again.
                Err(refused) => {
                    assert!(matches!(
                        refused.error,
                        PoolError::Balance(BalanceError::AllAtCapacity { .. })
                    ));
                    task = refused.task;
                    std::thread::yield_now();
                }
            }
        }
    }
    let sum: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(sum, expected);
    let stats = pool.stats();
    assert_eq!(stats.iter().map(|s| s.processed).sum::<u64>(), 200);
    assert_eq!(
        stats.iter().map(|s| s.capacity).collect::<Vec<_>>(),
        [8, 5, 3]
    );
    for s in &stats {
        assert!(s.healthy && s.failed == 0 && s.error_rate == 0.0);
        assert!(s.health_score > 0.4 && s.health_score <= 1.0, "{s:?}");
        assert_eq!(s.state, HealthState::Healthy);
    }
    pool.shutdown();
}

#[test]
fn a_full_pool_hands_the_task_back_with_all_at_capacity() {
    let pool = Pool::builder()
        .worker("only", ThreadWorker::new(1, 1).unwrap())
        .build()
        .unwrap();
    let (release, blocked) = mpsc::channel::<()>();
    let blocker = pool
        .distribute(move || blocked.recv().map_err(TaskError::from))
        .unwrap();
    let refused = pool.distribute(|| Ok::<_, TaskError>(7)).unwrap_err();
    assert!(matches!(
        refused.error,
        PoolError::Balance(BalanceError::AllAtCapacity { healthy: 1 })
    ));
    assert!(refused.to_string().contains("at capacity"), "{refused}");
    // Nothing was lost: the refused task is whole and runs later.
    let task = refused.task;
    release.send(()).unwrap();
    blocker.wait().unwrap();
    assert_eq!(task().unwrap(), 7);
    pool.shutdown();
}

#[test]
fn a_failed_task_is_retried_on_another_worker() {
    let log = log();
    // Round-robin puts every first attempt on `a`, so its failures would eject
    // it (and then the retry rightly falls back to `b` itself): no ejection here.
    let pool = test_pool(vec![TestWorker::new("a", &log), TestWorker::new("b", &log)])
        .balancer(RoundRobin::new())
        .health(HealthConfig::never_eject())
        .build()
        .unwrap();
    for _ in 0..20 {
        log.lock().unwrap().clear();
        let mut calls = 0;
        let handle = pool
            .distribute(move || {
                calls += 1;
                if calls == 1 {
                    Err(TaskError::retryable("flaky"))
                } else {
                    Ok(calls)
                }
            })
            .unwrap();
        assert_eq!(handle.wait().unwrap(), 2);
        let ran_on = log.lock().unwrap().clone();
        assert_eq!(ran_on.len(), 2);
        assert_ne!(
            ran_on[0], ran_on[1],
            "the retry ran where the task failed: {ran_on:?}"
        );
    }
    pool.shutdown();
}

#[test]
fn with_one_worker_the_retry_runs_on_it_and_attempts_are_capped() {
    let log = log();
    let pool = test_pool(vec![TestWorker::new("solo", &log)])
        .max_attempts(3)
        .build()
        .unwrap();
    let runs = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&runs);
    let err = pool
        .distribute(move || {
            *counted.lock().unwrap() += 1;
            Err::<(), _>(TaskError::retryable("always down"))
        })
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(*runs.lock().unwrap(), 3);
    let PoolError::Failed {
        attempts, worker, ..
    } = &err
    else {
        panic!("expected Failed, got {err:?}");
    };
    assert_eq!((*attempts, worker.as_str()), (3, "solo"));
    assert!(
        err.to_string().contains("after 3 attempt(s)") && err.to_string().contains("always down")
    );

    // A permanent error is not retried.
    let runs = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&runs);
    let err = pool
        .distribute(move || {
            *counted.lock().unwrap() += 1;
            Err::<(), _>(TaskError::permanent("bad input"))
        })
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(*runs.lock().unwrap(), 1);
    assert!(matches!(err, PoolError::Failed { attempts: 1, .. }));
    pool.shutdown();
}

#[test]
fn a_retry_on_a_full_worker_runs_once_its_failed_attempt_makes_room() {
    // Room for one job: the retry can only go where the failed attempt still holds the place
    // while it reports. Without the monitor, nothing but that attempt's own end can place it.
    let pool = Pool::builder()
        .worker("solo", ThreadWorker::new(1, 1).unwrap())
        .monitor(false)
        .max_attempts(3)
        .build()
        .unwrap();
    for _ in 0..20 {
        let runs = Arc::new(Mutex::new(0u32));
        let counted = Arc::clone(&runs);
        let handle = pool
            .distribute(move || {
                let mut runs = counted.lock().unwrap();
                *runs += 1;
                match *runs {
                    1 => Err(TaskError::retryable("the first attempt fails")),
                    n => Ok(n),
                }
            })
            .unwrap();
        assert_eq!(handle.wait_timeout(Duration::from_secs(10)).unwrap(), 2);
    }
    pool.shutdown();
}

#[test]
fn a_job_run_in_one_call_leaves_nothing_deferred() {
    let (tx, rx) = mpsc::channel();
    let deferred = Job::new(move || tx.send(7).unwrap()).run_deferred();
    assert_eq!(rx.recv().unwrap(), 7);
    assert!(deferred.is_empty());
    deferred.run();
}

/// Runs each job with `run_deferred` and drops what is left unrun.
struct DropsDeferred(ThreadWorker);

impl Worker for DropsDeferred {
    type Job = Job;

    fn submit(&self, job: Job) -> Result<(), Rejected<Job>> {
        self.0.submit(Job::new(move || drop(job.run_deferred())))
    }

    fn load(&self) -> Load {
        self.0.load()
    }
}

#[test]
fn a_result_reaches_its_caller_even_if_the_worker_drops_what_was_deferred() {
    let pool = PoolBuilder::new()
        .worker("dropper", DropsDeferred(ThreadWorker::new(1, 4).unwrap()))
        .build()
        .unwrap();
    let ok = pool.distribute(|| Ok::<_, TaskError>(5)).unwrap();
    assert_eq!(ok.wait_timeout(Duration::from_secs(10)).unwrap(), 5);
    let failed = pool
        .distribute(|| Err::<u32, _>(TaskError::permanent("no")))
        .unwrap();
    assert!(matches!(
        failed.wait_timeout(Duration::from_secs(10)),
        Err(PoolError::Failed { .. })
    ));
    pool.shutdown();
}

#[test]
fn a_panicking_task_is_a_failed_attempt_and_the_worker_lives_on() {
    let pool = Pool::builder()
        .worker("w", ThreadWorker::new(1, 4).unwrap())
        .max_attempts(1)
        .build()
        .unwrap();
    let err = pool
        .distribute(|| -> Result<(), TaskError> { panic!("boom") })
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(err.to_string().contains("task panicked: boom"), "{err}");
    assert_eq!(
        pool.distribute(|| Ok::<_, TaskError>(1))
            .unwrap()
            .wait()
            .unwrap(),
        1
    );
    assert_eq!(pool.stats()[0].failed, 1);
    pool.shutdown();
}

#[test]
fn a_refusing_worker_is_skipped_and_a_dropped_job_is_reported() {
    let log = log();
    let refusing = TestWorker::new("refusing", &log);
    *refusing.refuse.lock().unwrap() = true;
    let pool = test_pool(vec![refusing, TestWorker::new("open", &log)])
        .balancer(RoundRobin::new())
        .build()
        .unwrap();
    for n in 0..6 {
        assert_eq!(
            pool.distribute(move || Ok::<_, TaskError>(n))
                .unwrap()
                .wait()
                .unwrap(),
            n
        );
    }
    assert!(log.lock().unwrap().iter().all(|&w| w == "open"));
    pool.shutdown();

    let dropping = TestWorker::new("dropping", &log);
    *dropping.drop_jobs.lock().unwrap() = true;
    let pool = test_pool(vec![dropping]).build().unwrap();
    let err = pool
        .distribute(|| Ok::<_, TaskError>(()))
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(
        matches!(&err, PoolError::NotRun { worker, .. } if worker == "dropping"),
        "{err:?}"
    );
    assert_eq!(pool.outstanding(), 0);
    pool.shutdown();
}

#[test]
fn full_workers_are_reported_full_not_unhealthy_and_a_retry_waits_for_room() {
    let log = log();
    let (a, b) = (TestWorker::new("a", &log), TestWorker::new("b", &log));
    *a.refuse.lock().unwrap() = true;
    *b.refuse.lock().unwrap() = true;
    let pool = test_pool(vec![a, b]).build().unwrap();
    let refused = pool.distribute(|| Ok::<_, TaskError>(())).unwrap_err();
    assert!(
        matches!(
            refused.error,
            PoolError::Balance(BalanceError::AllAtCapacity { healthy: 2 })
        ),
        "{:?}",
        refused.error
    );
    pool.shutdown();

    // A task fails on "a"; "b", the only other worker, is full: the retry waits for room
    // instead of going straight back to "a".
    let (a, b) = (TestWorker::new("a", &log), TestWorker::new("b", &log));
    *b.refuse.lock().unwrap() = true;
    log.lock().unwrap().clear();
    let pool = test_pool(vec![a, b])
        .balancer(RoundRobin::new())
        .max_attempts(2)
        .build()
        .unwrap();
    let runs = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&runs);
    let handle = pool
        .distribute(move || {
            *counted.lock().unwrap() += 1;
            Err::<(), _>(TaskError::retryable("down"))
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        *runs.lock().unwrap(),
        1,
        "the retry did not go back to the worker that failed it"
    );
    assert_eq!(pool.outstanding(), 1);
    pool.check_health();
    assert_eq!(*runs.lock().unwrap(), 1, "still waiting for room on \"b\"");
    // Dropping the pool gives up on the waiting retry and says so.
    drop(pool);
    let err = handle.wait().unwrap_err();
    assert!(matches!(err, PoolError::Abandoned { .. }), "{err:?}");
}

#[test]
fn a_slow_starting_worker_takes_work_when_no_other_can() {
    let clock = ManualClock::new();
    let health = HealthConfig {
        consecutive_failures: 1,
        max_ejected_share: 1.0,
        slow_start: Some(Duration::from_secs(600)),
        ..HealthConfig::default()
    };
    let log = log();
    let pool = test_pool(vec![TestWorker::new("solo", &log)])
        .health(health)
        .clock(clock.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    let _ = pool
        .distribute(|| Err::<(), _>(TaskError::retryable("down")))
        .unwrap()
        .wait();
    clock.advance(Duration::from_secs(30));
    // The probe succeeds: the only worker ramps up over ten minutes.
    pool.distribute(|| Ok::<_, TaskError>(()))
        .unwrap()
        .wait()
        .unwrap();
    assert!(matches!(
        pool.stats()[0].state,
        HealthState::SlowStart { .. }
    ));
    // At the start of its ramp it would be offered about one pick in ten; alone, it takes all.
    for n in 0..50 {
        let handle = pool.distribute(move || Ok::<_, TaskError>(n)).unwrap();
        assert_eq!(handle.wait().unwrap(), n);
    }
    pool.shutdown();
}

/// The worker the test says, when it can take a job: a strategy that, like one ranking
/// workers by the measurements that ejected one, would not choose a returning worker.
struct Preferred(Arc<std::sync::atomic::AtomicUsize>);

impl workmill_core::Balancer for Preferred {
    fn pick(
        &mut self,
        candidates: &[workmill_core::Candidate],
        _request: &workmill_core::Request,
    ) -> Result<usize, BalanceError> {
        let preferred = self.0.load(std::sync::atomic::Ordering::SeqCst);
        candidates
            .iter()
            .find(|c| c.index == preferred && c.is_available())
            .or_else(|| candidates.iter().find(|c| c.is_available()))
            .map(|c| c.index)
            .ok_or(BalanceError::NoWorkers)
    }
}

#[test]
fn a_returning_worker_gets_its_probe_whatever_the_strategy_prefers() {
    let clock = ManualClock::new();
    let health = HealthConfig {
        consecutive_failures: 1,
        max_ejected_share: 1.0,
        ..HealthConfig::default()
    };
    let log = log();
    let preferred = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pool = test_pool(vec![TestWorker::new("a", &log), TestWorker::new("b", &log)])
        .balancer(Preferred(Arc::clone(&preferred)))
        .health(health)
        .clock(clock.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    // "a" fails once and is ejected; from now on the strategy prefers "b".
    let _ = pool
        .distribute(|| Err::<(), _>(TaskError::retryable("down")))
        .unwrap()
        .wait();
    assert!(!pool.stats()[0].healthy);
    preferred.store(1, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    log.lock().unwrap().clear();
    // Back as a probe candidate: the next job goes to "a", though the strategy picks "b".
    pool.distribute(|| Ok::<_, TaskError>(()))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(*log.lock().unwrap(), ["a"]);
    assert_eq!(pool.stats()[0].state, HealthState::Healthy);
    pool.shutdown();
}

#[test]
fn failing_workers_are_ejected_probed_and_returned_by_the_clock() {
    let clock = ManualClock::new();
    let health = HealthConfig {
        consecutive_failures: 3,
        max_ejected_share: 1.0,
        ..HealthConfig::default()
    };
    let log = log();
    let pool = test_pool(vec![TestWorker::new("a", &log), TestWorker::new("b", &log)])
        .balancer(RoundRobin::new())
        .health(health)
        .clock(clock.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    let fail = || Err::<(), _>(TaskError::retryable("down"));
    // Round-robin alternates, so six failures are three on each worker.
    for _ in 0..6 {
        let _ = pool.distribute(fail).unwrap().wait();
    }
    let stats = pool.stats();
    assert!(
        stats.iter().all(|s| !s.healthy && s.ejections == 1),
        "{stats:?}"
    );
    let refused = pool.distribute(|| Ok::<_, TaskError>(())).unwrap_err();
    assert!(matches!(
        refused.error,
        PoolError::Balance(BalanceError::NoHealthyWorkers { total: 2 })
    ));

    // After 30 s each worker may take one probe; a good probe returns it.
    clock.advance(Duration::from_secs(29));
    assert!(pool.distribute(|| Ok::<_, TaskError>(())).is_err());
    clock.advance(Duration::from_secs(1));
    pool.distribute(|| Ok::<_, TaskError>(()))
        .unwrap()
        .wait()
        .unwrap();
    let states: Vec<HealthState> = pool.stats().iter().map(|s| s.state).collect();
    assert!(states.contains(&HealthState::Healthy), "{states:?}");
    // The other worker's probe fails: ejected again, for 60 s.
    let _ = pool.distribute(fail).unwrap().wait();
    let stats = pool.stats();
    let ejected: Vec<_> = stats.iter().filter(|s| !s.healthy).collect();
    assert_eq!(ejected.len(), 1, "{stats:?}");
    assert_eq!(ejected[0].ejections, 2);
    assert_eq!(
        ejected[0].state,
        HealthState::Ejected {
            until: Duration::from_secs(90)
        }
    );
    pool.shutdown();
}

#[test]
fn a_worker_measured_slow_is_tried_again_once_its_measurements_age_out() {
    let clock = ManualClock::new();
    let log = log();
    // The default strategy, shortest expected delay, and the default windows (a minute).
    let pool = test_pool(vec![TestWorker::new("a", &log), TestWorker::new("b", &log)])
        .clock(clock.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    // "a" takes the first job, which holds it until released and then runs 50 ms;
    // meanwhile "b", less loaded, takes a quick one.
    let (release, released) = mpsc::channel::<()>();
    let slow = pool
        .distribute(move || {
            released.recv().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            Ok::<_, TaskError>(())
        })
        .unwrap();
    pool.distribute(|| Ok::<_, TaskError>(()))
        .unwrap()
        .wait()
        .unwrap();
    release.send(()).unwrap();
    slow.wait().unwrap();
    let processed = |pool: &Pool<TestWorker>| -> Vec<u64> {
        pool.stats().iter().map(|s| s.processed).collect()
    };
    assert_eq!(processed(&pool), [1, 1]);
    // Measured at 50 ms against microseconds, "a" gets nothing while both are idle.
    for _ in 0..5 {
        pool.distribute(|| Ok::<_, TaskError>(()))
            .unwrap()
            .wait()
            .unwrap();
    }
    assert_eq!(processed(&pool), [1, 6]);
    assert!(pool.stats()[0].mean_response_time >= Some(Duration::from_millis(50)));
    // A minute later nothing of either counts: both are unmeasured again. Of two
    // jobs sent together, the first goes to either and the second to the other.
    clock.advance(Duration::from_secs(61));
    assert_eq!(pool.stats()[0].mean_response_time, None);
    let (release, released) = mpsc::channel::<()>();
    let held = pool
        .distribute(move || {
            released.recv().unwrap();
            Ok::<_, TaskError>(())
        })
        .unwrap();
    let quick = pool.distribute(|| Ok::<_, TaskError>(())).unwrap();
    release.send(()).unwrap();
    held.wait().unwrap();
    quick.wait().unwrap();
    assert_eq!(processed(&pool), [2, 7]);
    pool.shutdown();
}

#[test]
fn a_worker_busy_with_jobs_longer_than_the_maximum_age_stays_measured() {
    let clock = ManualClock::new();
    let log = log();
    // The default windows: forgotten after a minute idle.
    let pool = test_pool(vec![TestWorker::new("a", &log)])
        .clock(clock.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    // Each job runs 90 s of the pool's clock, and the next one is sent as it
    // ends: the worker always has a job, and the first of every four fails.
    for n in 0..8u32 {
        let (release, released) = mpsc::channel::<()>();
        let job = pool
            .distribute(move || {
                released.recv().unwrap();
                if n % 4 == 0 {
                    Err(TaskError::permanent("fails"))
                } else {
                    Ok(())
                }
            })
            .unwrap();
        clock.advance(Duration::from_secs(89));
        if n > 0 {
            // 89 s into a job, every job so far still counts.
            let stats = &pool.stats()[0];
            let failed = f64::from(n.div_ceil(4));
            assert!(stats.mean_response_time.is_some(), "job {n}: {stats:?}");
            assert!(
                (stats.error_rate - failed / f64::from(n)).abs() < 1e-12,
                "job {n}: {stats:?}"
            );
        }
        clock.advance(Duration::from_secs(1));
        release.send(()).unwrap();
        assert_eq!(job.wait().is_ok(), n % 4 != 0);
    }
    // All 8 outcomes are in the window, not just the last one.
    let stats = &pool.stats()[0];
    assert!(stats.mean_response_time.is_some(), "{stats:?}");
    assert!((stats.error_rate - 0.25).abs() < 1e-12, "{stats:?}");
    // Idle for a minute, it still counts; idle for longer, it is unmeasured again.
    clock.advance(Duration::from_secs(60));
    assert!((pool.stats()[0].error_rate - 0.25).abs() < 1e-12);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(pool.stats()[0].mean_response_time, None);
    assert_eq!(pool.stats()[0].error_rate, 0.0);
    pool.shutdown();
}

#[test]
fn a_job_that_never_runs_leaves_its_worker_idle_again() {
    let clock = ManualClock::new();
    let log = log();
    let worker = TestWorker::new("a", &log);
    let (refuse, drop_jobs) = (Arc::clone(&worker.refuse), Arc::clone(&worker.drop_jobs));
    let pool = test_pool(vec![worker])
        .clock(clock.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    pool.distribute(|| Err::<(), _>(TaskError::permanent("fails")))
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(pool.stats()[0].error_rate, 1.0);
    // A job the worker refuses, and 30 s later one it drops unrun: each is in
    // flight only until the pool takes it back.
    *refuse.lock().unwrap() = true;
    assert!(pool.distribute(|| Ok::<_, TaskError>(())).is_err());
    *refuse.lock().unwrap() = false;
    clock.advance(Duration::from_secs(30));
    *drop_jobs.lock().unwrap() = true;
    let err = pool
        .distribute(|| Ok::<_, TaskError>(()))
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(matches!(err, PoolError::NotRun { .. }), "{err:?}");
    // Idle since then, it keeps its measurements a minute, and no longer.
    clock.advance(Duration::from_secs(60));
    assert_eq!(pool.stats()[0].error_rate, 1.0);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(pool.stats()[0].error_rate, 0.0);
    assert_eq!(pool.stats()[0].mean_response_time, None);
    pool.shutdown();
}

#[test]
fn shutdown_waits_for_every_accepted_task() {
    let pool = Pool::builder()
        .worker("a", ThreadWorker::new(2, 64).unwrap())
        .worker("b", ThreadWorker::new(1, 64).unwrap())
        .build()
        .unwrap();
    let done = Arc::new(Mutex::new(0usize));
    let handles: Vec<_> = (0..60)
        .map(|i| {
            let done = Arc::clone(&done);
            pool.distribute(move || {
                std::thread::sleep(Duration::from_millis(1));
                *done.lock().unwrap() += 1;
                if i % 7 == 0 {
                    Err(TaskError::retryable("retry me"))
                } else {
                    Ok(i)
                }
            })
            .unwrap()
        })
        .collect();
    pool.shutdown();
    // Every handle has its final answer: success, or failure after its attempts.
    let results: Vec<_> = handles.into_iter().map(|h| h.try_result()).collect();
    assert!(results.iter().all(Option::is_some));
    let failed = results
        .into_iter()
        .flatten()
        .filter(|r| matches!(r, Err(PoolError::Failed { attempts: 3, .. })))
        .count();
    assert_eq!(failed, 9);
    assert_eq!(*done.lock().unwrap(), 51 + 9 * 3);
}

#[test]
fn bad_configurations_are_refused() {
    assert!(matches!(
        Pool::builder().build().map(drop),
        Err(BuildError::NoWorkers)
    ));
    let err = Pool::builder()
        .worker("w", ThreadWorker::new(1, 1).unwrap())
        .health(HealthConfig {
            max_ejected_share: 2.0,
            ..HealthConfig::default()
        })
        .build()
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("max_ejected_share"), "{err}");
    let err = Pool::builder()
        .worker("w", ThreadWorker::new(1, 1).unwrap())
        .windows(MetricsWindows {
            max_age: Some(Duration::ZERO),
            ..MetricsWindows::default()
        })
        .build()
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, BuildError::Windows(_)), "{err}");
    assert!(err.to_string().contains("max_age"), "{err}");
}
