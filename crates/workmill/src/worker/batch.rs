//! `BatchSize`: how many tasks a worker loop reserves at once, grown while batches run fast and shrunk when they do not.

use std::time::Duration;

/// The reservation size of one worker loop.
///
/// Reserving many tasks at once amortizes the backend's lock or round trip,
/// which is what makes short tasks fast; but a worker holding a batch delays
/// every task in it behind the one it runs, and keeps other workers from them.
/// So a loop starts with its smallest batch (one task by default), doubles
/// the batch while batches come back full and their tasks finish within the
/// target (a batch that runs longer is too large: the tasks at its end wait
/// behind the ones at its start while other workers may be idle), halves it
/// when they take longer, and starts over from the smallest after it finds
/// the queue empty.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchSize {
    current: usize,
    min: usize,
    max: usize,
    target: Duration,
}

impl BatchSize {
    /// Between `min` and `max` tasks, both at least one (`min` is capped at `max`),
    /// aiming for batches whose tasks run within `target`.
    pub(crate) fn new(min: usize, max: usize, target: Duration) -> BatchSize {
        let max = max.max(1);
        let min = min.clamp(1, max);
        BatchSize {
            current: min,
            min,
            max,
            target,
        }
    }

    /// How many tasks to reserve next.
    pub(crate) fn get(&self) -> usize {
        self.current
    }

    /// Adjusts after a batch of `reserved` tasks that took `elapsed` to run.
    pub(crate) fn record(&mut self, reserved: usize, elapsed: Duration) {
        if elapsed > self.target {
            self.current = (self.current / 2).max(self.min);
        } else if reserved >= self.current {
            self.current = (self.current * 2).min(self.max);
        }
    }

    /// Starts over after the queue was found empty.
    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_micros(500);

    #[test]
    fn grows_while_fast_and_full_shrinks_when_slow_and_resets_when_idle() {
        let mut size = BatchSize::new(1, 256, TARGET);
        let fast = Duration::from_micros(10);
        let mut seen = vec![size.get()];
        for _ in 0..10 {
            size.record(size.get(), fast);
            seen.push(size.get());
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
        size.record(100, fast);
        assert_eq!(size.get(), 256, "a batch that was not full keeps the size");
        size.record(256, Duration::from_millis(5));
        assert_eq!(size.get(), 128);
        size.reset();
        assert_eq!(size.get(), 1);
        size.record(1, Duration::from_secs(1));
        assert_eq!(size.get(), 1, "never below one");
        assert_eq!(BatchSize::new(0, 0, TARGET).get(), 1);
    }

    #[test]
    fn a_floor_holds_through_slow_batches_and_resets() {
        let mut size = BatchSize::new(4, 16, TARGET);
        assert_eq!(size.get(), 4);
        size.record(4, Duration::from_secs(1));
        assert_eq!(size.get(), 4, "never below the floor");
        size.record(4, Duration::from_micros(1));
        assert_eq!(size.get(), 8);
        size.reset();
        assert_eq!(size.get(), 4);
        assert_eq!(BatchSize::new(8, 8, TARGET).get(), 8, "a fixed size");
        assert_eq!(
            BatchSize::new(9, 4, TARGET).get(),
            4,
            "the floor is capped at the ceiling"
        );
    }
}
