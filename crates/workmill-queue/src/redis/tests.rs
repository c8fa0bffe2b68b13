//! Unit tests of the Redis backend against a server (`WORKMILL_REDIS_URL`; skipped, with the
//! reason printed, when unset): the scripts' score against `QueueKey::to_score`, age-based
//! retention, the blocking wake-ups of `await_work` (delayed tasks and backoff retries wake a
//! sleeper, the poll interval bounds an unannounced lapse, no deadline at all) and `wait`, a
//! batch heartbeat being one round trip, and `destroy` leaving a nested queue alone; and,
//! without a server, that the job script cancels the statuses the transition table allows,
//! that the key schema in Rust is the scripts', and that colliding prefixes are refused.

use std::time::{Duration, Instant};

use workmill_core::{
    Backoff, FailOutcome, Failure, FailureKind, Lease, NewJob, NewTask, Priority, Queue,
    QueueError, QueueKey, RetryPolicy, TaskId, TaskStatus, WorkerId,
};

use super::{RedisConfig, RedisQueue};

/// A queue under a fresh prefix, deleted when dropped.
struct Scratch(RedisQueue);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.0.destroy();
    }
}

fn scratch(test: &str, config: RedisConfig) -> Option<Scratch> {
    let Some(url) = std::env::var("WORKMILL_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!(
            "skipped {test}: WORKMILL_REDIS_URL is not set; set it to a Redis server, e.g. redis://127.0.0.1:6379"
        );
        return None;
    };
    let prefix = format!("workmill-test:{test}:{}", TaskId::generate());
    Some(Scratch(config.prefix(prefix).open(&url).expect("open")))
}

fn id(text: &str) -> TaskId {
    TaskId::new(text).unwrap()
}

/// Polls `condition` for up to 20 s.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn raw<T: redis::FromRedisValue>(queue: &RedisQueue, cmd: &redis::Cmd) -> T {
    queue.pool.run("test", |con| cmd.query(con)).unwrap()
}

#[test]
fn the_scripts_score_is_queue_key_to_score() {
    let Some(scratch) = scratch("score", RedisConfig::new()) else {
        return;
    };
    let queue = &scratch.0;
    for (name, level) in [
        ("a", 0u16),
        ("b", 1),
        ("c", 5),
        ("d", 4_096),
        ("e", u16::MAX),
    ] {
        queue
            .enqueue(
                NewTask::new("score", vec![])
                    .with_id(id(name))
                    .priority(Priority::new(level)),
            )
            .unwrap();
        let seq: u64 = raw(
            queue,
            redis::cmd("HGET").arg(queue.task_key(&id(name))).arg("seq"),
        );
        let score: f64 = raw(
            queue,
            redis::cmd("ZSCORE").arg(queue.key("ready")).arg(name),
        );
        assert_eq!(
            score,
            QueueKey::new(Priority::new(level), seq).to_score(),
            "{name}"
        );
    }
    // A huge arrival number wraps in the score exactly as in to_score.
    raw::<()>(
        queue,
        redis::cmd("HSET")
            .arg(queue.key("counters"))
            .arg("seq")
            .arg(1u64 << 40),
    );
    queue
        .enqueue(
            NewTask::new("score", vec![])
                .with_id(id("late"))
                .priority(Priority::new(9)),
        )
        .unwrap();
    let score: f64 = raw(
        queue,
        redis::cmd("ZSCORE").arg(queue.key("ready")).arg("late"),
    );
    assert_eq!(
        score,
        QueueKey::new(Priority::new(9), (1u64 << 40) + 1).to_score()
    );
}

#[test]
fn retain_for_drops_finished_records_older_than_the_age() {
    let config = RedisConfig::new().retain_for(Some(Duration::from_millis(1)));
    let Some(scratch) = scratch("retain-for", config) else {
        return;
    };
    let queue = &scratch.0;
    let worker = WorkerId::new("ager").unwrap();
    for name in ["old", "new"] {
        queue
            .enqueue(NewTask::new("age", vec![]).with_id(id(name)))
            .unwrap();
        let got = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
        queue.complete(&got[0].lease, vec![]).unwrap();
        // The next completion comes well after this one is a millisecond old.
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(matches!(
        queue.status(&id("old")),
        Err(QueueError::NotFound { .. })
    ));
    assert_eq!(
        queue.status(&id("new")).unwrap().status,
        TaskStatus::Completed
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.evicted), (2, 1));
    assert!(stats.is_consistent());
}

#[test]
fn await_work_blocks_in_blpop_until_an_enqueue_wakes_it() {
    // No poll while the test looks: the waiter must still be blocked when the task arrives.
    let config = RedisConfig::new().poll_interval(Duration::from_secs(3_600));
    let Some(scratch) = scratch("await-work", config) else {
        return;
    };
    let queue = &scratch.0;
    let name = format!("name=workmill:{}", queue.prefix());
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.await_work(Duration::from_secs(20)));
        eventually("the waiter to block in BLPOP", || {
            let clients: String = raw(queue, redis::cmd("CLIENT").arg("LIST"));
            clients
                .lines()
                .any(|line| line.contains(&name) && line.contains("cmd=blpop"))
        });
        queue.enqueue(NewTask::new("wake", vec![])).unwrap();
        waiter.join().unwrap().expect("await_work");
    });
    let left: u64 = raw(queue, redis::cmd("LLEN").arg(queue.key("wake")));
    assert_eq!(left, 0, "the waiter took the enqueue's wake-up token");
}

/// Waits until a worker of `queue` is blocked in `BLPOP`.
fn blocked_in_blpop(queue: &RedisQueue) {
    let name = format!("name=workmill:{}", queue.prefix());
    eventually("the waiter to block in BLPOP", || {
        let clients: String = raw(queue, redis::cmd("CLIENT").arg("LIST"));
        clients
            .lines()
            .any(|line| line.contains(&name) && line.contains("cmd=blpop"))
    });
}

/// A worker loop: `await_work(timeout)` then `reserve`, until it gets a task; how long it took.
fn worker_loop_until_a_task(queue: &RedisQueue, timeout: Duration) -> Duration {
    let start = Instant::now();
    let worker = WorkerId::new("sleeper").unwrap();
    loop {
        queue.await_work(timeout).expect("await_work");
        if !queue
            .reserve(&worker, 1, Duration::from_secs(60))
            .expect("reserve")
            .is_empty()
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the worker never got the task"
        );
    }
}

/// A task submitted with a delay while a worker sleeps wakes it, and the worker sleeps again
/// until the task is due, instead of its whole timeout: the poll interval is an hour here,
/// so only the wake-up can explain a prompt start.
#[test]
fn a_delayed_enqueue_wakes_a_sleeping_worker_to_wait_for_its_due_time() {
    let config = RedisConfig::new().poll_interval(Duration::from_secs(3_600));
    let Some(scratch) = scratch("delayed-wake", config) else {
        return;
    };
    let queue = &scratch.0;
    let took = std::thread::scope(|scope| {
        let sleeper = scope.spawn(|| worker_loop_until_a_task(queue, Duration::from_secs(30)));
        blocked_in_blpop(queue);
        queue
            .enqueue(NewTask::new("later", vec![]).delay(Duration::from_millis(300)))
            .unwrap();
        sleeper.join().unwrap()
    });
    assert!(
        took < Duration::from_secs(15),
        "a task delayed by 300 ms started {took:?} after the worker went to sleep"
    );
}

/// A retry in backoff wakes a sleeping worker the same way.
#[test]
fn a_retry_in_backoff_wakes_a_sleeping_worker_to_wait_for_its_due_time() {
    let config = RedisConfig::new().poll_interval(Duration::from_secs(3_600));
    let Some(scratch) = scratch("backoff-wake", config) else {
        return;
    };
    let queue = &scratch.0;
    let policy = RetryPolicy::new(3)
        .backoff(Backoff::Fixed(Duration::from_millis(300)))
        .jitter(0.0);
    queue
        .enqueue(NewTask::new("flaky", vec![]).retry(policy))
        .unwrap();
    let failing = WorkerId::new("failing").unwrap();
    let held = queue
        .reserve(&failing, 1, Duration::from_secs(600))
        .unwrap();
    let took = std::thread::scope(|scope| {
        let sleeper = scope.spawn(|| worker_loop_until_a_task(queue, Duration::from_secs(30)));
        blocked_in_blpop(queue);
        let outcome = queue
            .fail(&held[0].lease, Failure::new(FailureKind::Error, "flaky"))
            .unwrap();
        assert!(
            matches!(outcome, FailOutcome::Retrying { .. }),
            "{outcome:?}"
        );
        sleeper.join().unwrap()
    });
    assert!(
        took < Duration::from_secs(15),
        "a retry due in 300 ms started {took:?} after the worker went to sleep"
    );
}

/// A lease the sleeping worker could not see coming (here shortened by a heartbeat after it
/// went to sleep, so no wake-up is sent) is rescued within the poll interval of lapsing.
#[test]
fn a_lease_lapsing_unannounced_is_rescued_within_the_poll_interval() {
    let config = RedisConfig::new().poll_interval(Duration::from_millis(200));
    let Some(scratch) = scratch("poll-lapse", config) else {
        return;
    };
    let queue = &scratch.0;
    queue
        .enqueue(
            NewTask::new("abandoned", vec![])
                .retry(RetryPolicy::new(3).backoff(Backoff::Immediate)),
        )
        .unwrap();
    let dying = WorkerId::new("dying").unwrap();
    let held = queue.reserve(&dying, 1, Duration::from_secs(600)).unwrap();
    let took = std::thread::scope(|scope| {
        let sleeper = scope.spawn(|| worker_loop_until_a_task(queue, Duration::from_secs(30)));
        blocked_in_blpop(queue);
        queue
            .heartbeat(&held[0].lease, Duration::from_millis(100))
            .unwrap();
        sleeper.join().unwrap()
    });
    assert!(
        took < Duration::from_secs(15),
        "a lease lapsing 100 ms after the worker went to sleep was rescued after {took:?}"
    );
}

/// `await_work(Duration::MAX)` on an empty queue blocks (for at most the poll interval, here
/// raised to its cap of an hour) instead of overflowing its socket timeout, and an enqueue
/// wakes it.
#[test]
fn await_work_without_a_deadline_blocks_until_woken() {
    let config = RedisConfig::new().poll_interval(Duration::MAX);
    let Some(scratch) = scratch("await-forever", config) else {
        return;
    };
    let queue = &scratch.0;
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.await_work(Duration::MAX));
        blocked_in_blpop(queue);
        queue.enqueue(NewTask::new("wake", vec![])).unwrap();
        waiter.join().unwrap().expect("await_work");
    });
}

#[test]
fn wait_subscribes_to_the_task_and_returns_its_final_record() {
    let Some(scratch) = scratch("wait", RedisConfig::new()) else {
        return;
    };
    let queue = &scratch.0;
    queue
        .enqueue(NewTask::new("awaited", vec![]).with_id(id("awaited")))
        .unwrap();
    let channel = queue.key("done");
    let worker = WorkerId::new("finisher").unwrap();
    let record = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| queue.wait(&id("awaited"), Duration::from_secs(20)));
        eventually("the waiter to subscribe", || {
            let counts: Vec<(String, u64)> =
                raw(queue, redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel));
            counts.first().is_some_and(|(_, n)| *n == 1)
        });
        let got = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
        queue.complete(&got[0].lease, b"answer".to_vec()).unwrap();
        waiter.join().unwrap()
    })
    .expect("wait");
    assert_eq!(record.status, TaskStatus::Completed);
    assert_eq!(record.result.as_deref(), Some(&b"answer"[..]));
}

/// The commands a queue's connection sends between two markers, as `MONITOR` shows them.
///
/// `MONITOR` reports every command the server runs, from every client, so that tests sharing
/// the server do not disturb the count: the queue's connection is known by the address on
/// the `ECHO` of the first marker (sent through the queue's own pool, which hands a
/// single-threaded caller the same idle connection each time), and only its commands up to
/// the second marker are kept. Commands a script runs show as coming from `lua`, not from
/// the connection, so the list holds round trips only.
fn commands_between_markers(queue: &RedisQueue, work: impl FnOnce()) -> Vec<String> {
    let mut monitor = queue.pool.connect("watch the server").expect("connect");
    redis::cmd("MONITOR")
        .query::<()>(&mut monitor)
        .expect("MONITOR");
    let marker = TaskId::generate();
    let (start, end) = (format!("start-{marker}"), format!("end-{marker}"));
    raw::<String>(queue, redis::cmd("ECHO").arg(&start));
    work();
    raw::<String>(queue, redis::cmd("ECHO").arg(&end));

    // A line reads `1700000000.123456 [0 127.0.0.1:50000] "EVALSHA" "a1b2..." "prefix" ...`.
    let split = |line: &str| -> Option<(String, String)> {
        let (_, rest) = line.split_once('[')?;
        let (source, command) = rest.split_once(']')?;
        let name = command.trim_start().split('"').nth(1)?;
        Some((source.to_owned(), name.to_ascii_uppercase()))
    };
    let mut queue_source = None;
    let mut sent = Vec::new();
    loop {
        let line = match monitor.recv_response().expect("a MONITOR line") {
            redis::Value::SimpleString(line) => line,
            other => panic!("MONITOR sent {other:?}"),
        };
        let Some((source, name)) = split(&line) else {
            continue;
        };
        match &queue_source {
            None if line.contains(&format!("\"{start}\"")) => queue_source = Some(source),
            Some(ours) if *ours == source => {
                if line.contains(&format!("\"{end}\"")) {
                    return sent;
                }
                sent.push(name);
            }
            _ => {}
        }
    }
}

#[test]
fn heartbeat_batch_is_one_round_trip_whatever_it_holds() {
    let Some(scratch) = scratch("heartbeat-batch", RedisConfig::new().connections(1)) else {
        return;
    };
    let queue = &scratch.0;
    let worker = WorkerId::new("beater").unwrap();
    for i in 0..6 {
        queue
            .enqueue(NewTask::new("beat", vec![]).with_id(id(&format!("beat-{i}"))))
            .unwrap();
    }
    let held = queue.reserve(&worker, 6, Duration::from_secs(60)).unwrap();
    assert_eq!(held.len(), 6);
    let mut leases: Vec<_> = held.iter().map(|r| r.lease.clone()).collect();
    // One lease the batch must refuse: its task completed, so it is no longer held.
    queue.complete(&leases[5], vec![]).unwrap();
    leases.push(Lease {
        task: id("never-submitted"),
        token: 1,
        expires_at: leases[0].expires_at,
    });
    // The script is cached now, so the measured call sends no `SCRIPT LOAD`.
    queue
        .heartbeat(&leases[0], Duration::from_secs(60))
        .unwrap();

    let mut outcomes = None;
    let sent = commands_between_markers(queue, || {
        outcomes = Some(queue.heartbeat_batch(&leases, Duration::from_secs(120)));
    });
    assert_eq!(
        sent,
        ["EVALSHA"],
        "one round trip for {} leases",
        leases.len()
    );

    let outcomes = outcomes.unwrap().expect("heartbeat_batch");
    assert_eq!(outcomes.len(), leases.len());
    for (lease, outcome) in leases[..5].iter().zip(&outcomes) {
        let extended = outcome.as_ref().expect("a held lease is extended");
        assert_eq!((&extended.task, extended.token), (&lease.task, lease.token));
        assert!(extended.expires_at > lease.expires_at);
        let (in_hash, in_leases): (u64, f64) = (
            raw(
                queue,
                redis::cmd("HGET")
                    .arg(queue.task_key(&lease.task))
                    .arg("lease_expires_at"),
            ),
            raw(
                queue,
                redis::cmd("ZSCORE")
                    .arg(queue.key("leases"))
                    .arg(lease.task.as_str()),
            ),
        );
        let expected = extended.expires_at.as_micros();
        assert_eq!(
            (in_hash, in_leases),
            (expected, expected as f64),
            "{}",
            lease.task
        );
    }
    assert!(matches!(&outcomes[5], Err(QueueError::LeaseLost { id, .. }) if id == &leases[5].task));
    assert!(matches!(&outcomes[6], Err(QueueError::NotFound { id }) if id == &leases[6].task));
}

/// `jobs.lua` cancels a job's waiting tasks from the statuses it names; they must be exactly
/// the ones the transition table lets become `Cancelled`.
#[test]
fn jobs_lua_cancels_exactly_the_statuses_that_may_become_cancelled() {
    let lua = include_str!("lua/jobs.lua");
    let allowed: Vec<&str> = super::scripts::sources_of(TaskStatus::Cancelled).collect();
    assert_eq!(allowed, ["pending", "retrying"]);
    assert!(
        lua.contains("(status == 'pending' or status == 'retrying')"),
        "the test above must name the statuses jobs.lua checks"
    );
}

/// Every key the scripts build is one `destroy` knows as the queue's own: a shared structure,
/// or a kind of key made from an id (and the completion channel, which is no key).
#[test]
fn the_key_schema_in_rust_is_the_scripts_key_schema() {
    let prelude = include_str!("lua/prelude.lua");
    let (mut shared, mut by_id) = (Vec::new(), Vec::new());
    for piece in prelude.split("P .. ':").skip(1) {
        let name = piece.split('\'').next().unwrap();
        match name.strip_suffix(':') {
            Some(kind) => by_id.push(kind),
            None if name == "done" => {}
            None => shared.push(name),
        }
    }
    shared.sort_unstable();
    by_id.sort_unstable();
    let (mut known_shared, mut known_by_id) = (super::SHARED_KEYS, super::KEYS_BY_ID);
    known_shared.sort_unstable();
    known_by_id.sort_unstable();
    assert_eq!(shared, known_shared);
    assert_eq!(by_id, known_by_id);
}

/// A prefix is refused when a segment after its first names a kind of id key: its keys would
/// be another queue's. Refused before connecting, with the reason and a way out.
#[test]
fn prefixes_whose_keys_another_queue_would_share_are_refused() {
    for (prefix, outer) in [
        ("orders:task", "orders"),
        ("orders:job:eu", "orders"),
        ("a:b:held", "a:b"),
        ("a:job-maps", "a"),
        ("a:job-results:x", "a"),
        ("a:tasks:task", "a:tasks"),
    ] {
        let refused = RedisConfig::new()
            .prefix(prefix)
            .open("redis://127.0.0.1:1")
            .expect_err(prefix);
        let QueueError::InvalidUrl { reason, .. } = refused else {
            panic!("{prefix}: {refused:?}");
        };
        assert!(
            reason.contains(&format!("prefix {outer:?}")) && reason.contains("such as"),
            "{prefix}: {reason}"
        );
    }
    for prefix in [
        "workmill",
        "task",
        "task:eu",
        "orders:eu",
        "orders:tasks",
        "orders:jobs",
        "orders:ready",
        "workmill-test:job-race:0123ABC",
    ] {
        assert_eq!(super::prefix_collision(prefix), None, "{prefix}");
    }
}

/// `destroy` deletes exactly its queue's keys: those of a queue whose prefix starts with its
/// own (`P:eu` beside `P`), and a key of someone else's under the prefix, stay.
#[test]
fn destroy_leaves_a_nested_queue_and_foreign_keys_alone() {
    let Some(outer) = scratch("destroy", RedisConfig::new()) else {
        return;
    };
    let url = std::env::var("WORKMILL_REDIS_URL").unwrap();
    let inner = Scratch(
        RedisConfig::new()
            .prefix(format!("{}:eu", outer.0.prefix()))
            .open(&url)
            .unwrap(),
    );
    let (outer, inner) = (&outer.0, &inner.0);
    for queue in [outer, inner] {
        queue
            .enqueue_batch(vec![
                NewTask::new("t", vec![]).with_id(id("ready")),
                NewTask::new("t", vec![]).with_id(id("eu:task:x")),
                NewTask::new("t", vec![]).delay(Duration::from_secs(600)),
            ])
            .unwrap();
        let worker = WorkerId::new("w").unwrap();
        let held = queue.reserve(&worker, 1, Duration::from_secs(600)).unwrap();
        queue.complete(&held[0].lease, b"done".to_vec()).unwrap();
        queue
            .submit_job(
                NewJob::new(
                    vec![NewTask::new("map", vec![])],
                    NewTask::new("reduce", vec![]),
                )
                .with_id(id("job")),
            )
            .unwrap();
    }
    let foreign = outer.key("someone-elses");
    raw::<()>(outer, redis::cmd("SET").arg(&foreign).arg("kept"));

    let before = inner.stats().unwrap();
    let deleted = outer.destroy().unwrap();
    assert!(deleted >= 10, "the outer queue had its own keys: {deleted}");
    let left: Vec<String> = raw(
        outer,
        redis::cmd("KEYS").arg(format!("{}:*", super::glob_escape(outer.prefix()))),
    );
    let inner_prefix = format!("{}:", inner.prefix());
    let mut strays: Vec<&String> = left
        .iter()
        .filter(|key| !key.starts_with(&inner_prefix) && **key != foreign)
        .collect();
    strays.sort();
    assert!(
        strays.is_empty(),
        "destroy left keys of its own: {strays:?}"
    );
    assert_eq!(inner.stats().unwrap(), before, "the nested queue lost keys");
    assert_eq!(
        inner.status(&id("eu:task:x")).unwrap().status,
        TaskStatus::Pending
    );
    assert_eq!(inner.job(&id("job")).unwrap().maps_total(), 1);
    assert!(
        left.contains(&foreign),
        "a key that is not the queue's went"
    );
    raw::<()>(outer, redis::cmd("DEL").arg(&foreign));
}

/// A process whose retention bound is lower than what a queue holds drops at most 1,000
/// finished records a script, so that one completion never blocks the server for a long
/// eviction; later scripts go on until the bound holds.
#[test]
fn the_count_bound_drops_at_most_a_thousand_records_a_script() {
    let Some(scratch) = scratch("retention-cap", RedisConfig::new().retain_finished(None)) else {
        return;
    };
    let unbounded = &scratch.0;
    let worker = WorkerId::new("w").unwrap();
    let lease = Duration::from_secs(60);
    let run_all = |queue: &RedisQueue, count: usize| {
        let tasks = (0..count).map(|_| NewTask::new("t", vec![])).collect();
        queue.enqueue_batch(tasks).unwrap();
        let reserved = queue.reserve(&worker, count, lease).unwrap();
        let done = reserved
            .into_iter()
            .map(|r| (r.lease, Vec::new()))
            .collect();
        for outcome in queue.complete_batch(done).unwrap() {
            outcome.unwrap();
        }
    };
    run_all(unbounded, 2_500);
    let url = std::env::var("WORKMILL_REDIS_URL").unwrap();
    let bounded = RedisConfig::new()
        .prefix(unbounded.prefix())
        .retain_finished(Some(0))
        .open(&url)
        .unwrap();
    let evicted = |queue: &RedisQueue| queue.stats().unwrap().evicted;
    run_all(&bounded, 1);
    assert_eq!(evicted(&bounded), 1_000, "one script drops at most 1,000");
    run_all(&bounded, 1);
    run_all(&bounded, 1);
    assert_eq!(evicted(&bounded), 2_503, "later scripts reach the bound");
    let stats = bounded.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
}
