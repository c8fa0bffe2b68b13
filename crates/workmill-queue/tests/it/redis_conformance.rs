//! The conformance suite against Redis, each check under its own key prefix; skipped, with
//! the reason printed, when `WORKMILL_REDIS_URL` is not set.

workmill_queue::queue_conformance_tests!(match crate::redis_harness::RedisHarness::from_env() {
    Some(harness) => harness,
    None => return,
});
