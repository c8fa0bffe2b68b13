//! Unit tests of the Redis backend against a server (`WORKMILL_REDIS_URL`; skipped, with the
//! reason printed, when unset): the scripts' score against `QueueKey::to_score`, age-based
//! retention, and the blocking wake-ups of `await_work` and `wait`; and, without a server, that
//! the job script cancels the statuses the transition table allows.

use std::time::{Duration, Instant};

use workmill_core::{NewTask, Priority, Queue, QueueError, QueueKey, TaskId, TaskStatus, WorkerId};

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
    let Some(scratch) = scratch("await-work", RedisConfig::new()) else {
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
