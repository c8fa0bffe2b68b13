//! Helpers shared by the runtime's integration tests.

use std::time::{Duration, Instant};

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

/// Polls `done` every few milliseconds until it holds; fails the test after [`WAIT`].
///
/// For conditions no notification reaches (another process's progress, a backend
/// without wake-ups). The deadline only bounds a broken run; nothing asserts on time.
pub(crate) fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "the condition did not hold within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
