//! `Clock`: where health tracking and time-decayed strategies read the time, so tests and the simulator can drive it.

use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU64, Ordering};

/// A monotonic clock that reads as the time elapsed since its own origin.
///
/// Health tracking ([`HealthTracker`](crate::HealthTracker)), the expiry of a
/// pool's measurements ([`MetricsWindows::max_age`](crate::MetricsWindows::max_age)),
/// [`PeakEwma`](crate::PeakEwma) and [`Adaptive`](crate::Adaptive) read the
/// time only through this trait, so a test or the [simulator](crate::sim) can
/// move time by hand with a [`ManualClock`] instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time since this clock's origin; never goes backwards.
    fn now(&self) -> Duration;
}

/// The real monotonic clock, counting from its creation.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; clones share one time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_balance::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(shared.now(), Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`, stopping at the largest time it can hold rather
    /// than wrapping round (a clock never goes backwards).
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// Sets the clock to `to`, unless that would move it backwards.
    pub fn set(&self, to: Duration) {
        self.nanos.fetch_max(saturating_nanos(to), Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_backwards() {
        let clock = ManualClock::new();
        clock.set(Duration::from_secs(5));
        clock.set(Duration::from_secs(2));
        assert_eq!(clock.now(), Duration::from_secs(5));
        clock.advance(Duration::from_millis(1));
        assert_eq!(clock.now(), Duration::from_millis(5_001));
        // "Far in the future" stops at the end of the clock instead of wrapping round.
        clock.advance(Duration::MAX);
        assert!(clock.now() > Duration::from_secs(5));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }
}
