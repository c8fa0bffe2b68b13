//! Jobs on Redis beyond the conformance suite: separate queue values racing on the last maps of
//! shared jobs, and the job keys as a person reads them with `redis-cli`, until a purge removes
//! every one of them. Skipped, saying why, without a server.

use std::collections::HashMap;

use workmill_core::{Failure, FailureKind, Queue, TaskStatus, WorkerId};
use workmill_queue::redis::{RedisConfig, RedisQueue};

use crate::jobs::{job, race_on_last_maps};
use crate::redis_harness::{redis_url, unique_prefix};
use crate::support::{LEASE, id};

/// Deletes a prefix's keys when dropped, even if the test fails.
struct Cleanup(RedisQueue);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(err) = self.0.destroy() {
            eprintln!("could not delete the keys under {}: {err}", self.0.prefix());
        }
    }
}

fn open(url: &str, prefix: &str) -> RedisQueue {
    RedisConfig::new().prefix(prefix).open(url).unwrap()
}

#[test]
fn queue_values_on_one_prefix_racing_on_last_maps_enqueue_each_reduce_once() {
    let Some(url) = redis_url("the Redis job race") else {
        return;
    };
    let prefix = unique_prefix("job-race");
    let _cleanup = Cleanup(open(&url, &prefix));
    let handles: Vec<RedisQueue> = (0..4).map(|_| open(&url, &prefix)).collect();
    let handles: Vec<&dyn Queue> = handles.iter().map(|h| h as &dyn Queue).collect();
    race_on_last_maps(&handles);
}

/// Every key under `prefix`, without the prefix, sorted.
fn keys(con: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(con)
        .unwrap();
    let mut keys: Vec<String> = keys
        .into_iter()
        .filter_map(|key| key.strip_prefix(&format!("{prefix}:")).map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

#[test]
fn the_job_keys_explain_themselves_to_a_person_at_redis_cli_and_go_with_a_purge() {
    let Some(url) = redis_url("the Redis job keys") else {
        return;
    };
    let prefix = unique_prefix("job-keys");
    let queue = open(&url, &prefix);
    let _cleanup = Cleanup(open(&url, &prefix));
    queue
        .submit_job(job("good", &["g-0", "g-1"], "g-reduce"))
        .unwrap();
    queue.submit_job(job("bad", &["x-0"], "x-reduce")).unwrap();
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let held: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(format!("{prefix}:held:g-reduce"))
        .query(&mut con)
        .unwrap();
    assert_eq!(held.get("job").map(Vec::as_slice), Some(&b"good"[..]));
    assert_eq!(
        held.get("payload").map(Vec::as_slice),
        Some(&b"g-reduce"[..])
    );

    let me = WorkerId::new("reader").unwrap();
    for reservation in queue.reserve(&me, 10, LEASE).unwrap() {
        if reservation.id() == &id("x-0") {
            let failure = Failure::new(FailureKind::Permanent, "unreadable input");
            queue.fail(&reservation.lease, failure).unwrap();
        } else {
            let result = format!("words in {}", reservation.id()).into_bytes();
            queue.complete(&reservation.lease, result).unwrap();
        }
    }
    let good: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}:job:good"))
        .query(&mut con)
        .unwrap();
    let field = |name: &str| good.get(name).map(String::as_str);
    assert_eq!(
        (
            field("status"),
            field("maps_done"),
            field("maps_total"),
            field("reduce")
        ),
        (Some("reducing"), Some("2"), Some("2"), Some("g-reduce"))
    );
    let bad: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}:job:bad"))
        .query(&mut con)
        .unwrap();
    assert_eq!(bad.get("failed_task").map(String::as_str), Some("x-0"));
    assert_eq!(
        bad.get("failure_message").map(String::as_str),
        Some("unreadable input")
    );
    let maps: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{prefix}:job-maps:good"))
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(maps, ["g-0", "g-1"]);
    let result: Option<String> = redis::cmd("HGET")
        .arg(format!("{prefix}:job-results:good"))
        .arg("g-1")
        .query(&mut con)
        .unwrap();
    assert_eq!(result.as_deref(), Some("words in g-1"));
    let reduce_job: Option<String> = redis::cmd("HGET")
        .arg(format!("{prefix}:task:g-reduce"))
        .arg("job")
        .query(&mut con)
        .unwrap();
    assert_eq!(reduce_job.as_deref(), Some("good"));
    let job_keys: Vec<String> = keys(&mut con, &prefix)
        .into_iter()
        .filter(|key| key.starts_with("job") || key.starts_with("held:"))
        .collect();
    assert_eq!(
        job_keys,
        [
            "job-maps:bad",
            "job-maps:good",
            "job-results:good",
            "job:bad",
            "job:good",
            "jobs"
        ],
        "the held reduces are gone: one was enqueued, the other dropped"
    );

    // The good job completes; purging completed and dead tasks then removes both jobs.
    let reduce = queue.reserve(&me, 10, LEASE).unwrap();
    queue
        .complete(&reduce[0].lease, b"4 words".to_vec())
        .unwrap();
    queue
        .purge(&[TaskStatus::Completed, TaskStatus::Dead])
        .unwrap();
    let left = keys(&mut con, &prefix);
    assert!(
        left.iter()
            .all(|key| !key.starts_with("job") && !key.starts_with("task:")),
        "{left:?}"
    );
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent() && stats.submitted == 0, "{stats:?}");
}
