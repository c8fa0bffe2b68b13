//! Helpers shared by the runtime's integration tests.

use std::time::Duration;

use workmill::{Backoff, RetryPolicy, TaskId};

/// Long enough never to be reached by a working runtime; a test that hits it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// `attempts` attempts with a 1 ms backoff and no jitter, so tests are quick and exact.
pub(crate) fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts)
        .backoff(Backoff::Fixed(Duration::from_millis(1)))
        .jitter(0.0)
}

pub(crate) fn id(text: &str) -> TaskId {
    TaskId::new(text).expect("a valid task id")
}
