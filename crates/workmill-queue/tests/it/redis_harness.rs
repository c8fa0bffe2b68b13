//! The Redis harness: each queue under a fresh key prefix on the server named by
//! `WORKMILL_REDIS_URL`, and every key under it deleted when the test ends.

use std::sync::Mutex;

use workmill_core::{QueueError, TaskId};
use workmill_queue::redis::{RedisConfig, RedisQueue};
use workmill_queue::testkit::{CorruptStore, Harness, QueueSettings};

/// The server the Redis tests use, or `None` (with the reason printed) when it is not set.
pub(crate) fn redis_url(test: &str) -> Option<String> {
    match std::env::var("WORKMILL_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "skipped {test}: WORKMILL_REDIS_URL is not set; set it to a Redis server, e.g. \
                 redis://127.0.0.1:6379 (.ci/run does)"
            );
            None
        }
    }
}

/// A prefix no other test (or earlier run) uses.
pub(crate) fn unique_prefix(test: &str) -> String {
    format!("workmill-test:{test}:{}", TaskId::generate())
}

/// Makes each queue under its own prefix and deletes its keys when dropped.
pub(crate) struct RedisHarness {
    url: String,
    made: Mutex<Vec<RedisQueue>>,
}

impl RedisHarness {
    /// A harness on the test server, or `None` when `WORKMILL_REDIS_URL` is unset.
    pub(crate) fn from_env() -> Option<RedisHarness> {
        Some(RedisHarness {
            url: redis_url("this Redis conformance check")?,
            made: Mutex::new(Vec::new()),
        })
    }
}

impl Harness for RedisHarness {
    type Queue = RedisQueue;

    fn fresh(&self, settings: &QueueSettings) -> RedisQueue {
        let config = RedisConfig::new()
            .prefix(unique_prefix("conformance"))
            .retain_finished(settings.retain_finished);
        let queue = config.open(&self.url).expect("open a Redis queue");
        // A second handle on the same prefix, kept to clean up after the check.
        let cleaner = RedisConfig::new()
            .prefix(queue.prefix())
            .open(&self.url)
            .expect("open a second handle");
        self.made.lock().unwrap().push(cleaner);
        queue
    }

    fn corrupt_payload(&self, queue: &RedisQueue, id: &TaskId) -> Option<Result<(), QueueError>> {
        Some(queue.corrupt_payload(id))
    }
}

impl Drop for RedisHarness {
    fn drop(&mut self) {
        for queue in self
            .made
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            if let Err(err) = queue.destroy() {
                eprintln!("could not delete the keys under {}: {err}", queue.prefix());
            }
        }
    }
}
