//! `Clock`: where the memory backend reads the time, so tests can move it by hand.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use workmill_core::Timestamp;

/// A source of wall-clock time for a queue backend.
///
/// [`SystemClock`] is the default; [`ManualClock`] lets a test make backoffs
/// elapse and leases lapse without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_core::Timestamp;
/// use workmill_queue::{Clock, ManualClock};
///
/// let clock = ManualClock::new(Timestamp::from_micros(1_000));
/// clock.advance(Duration::from_millis(2));
/// assert_eq!(clock.now(), Timestamp::from_micros(3_000));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    // Not a synchronization protocol, only a shared value: a std mutex on purpose,
    // also under loom, which need not explore a test's clock.
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// A clock standing at the current system time.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(Timestamp::now())
    }

    /// Moves the clock `by` later.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.saturating_add(by);
    }

    /// Sets the clock to `to` (which may be earlier).
    pub fn set(&self, to: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
