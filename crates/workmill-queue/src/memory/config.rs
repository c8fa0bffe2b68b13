//! `MemoryConfig`: the memory backend's bounds (capacity, retention, payload size) and its clock.

use std::sync::Arc;
use std::time::Duration;

use super::clock::{Clock, SystemClock};

/// What a bounded memory queue does with a task that does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnFull {
    /// Refuse it at once with [`QueueError::QueueFull`](workmill_core::QueueError::QueueFull).
    #[default]
    Refuse,
    /// Wait up to this long for room, then refuse it.
    Wait(Duration),
}

/// How a [`MemoryQueue`](super::MemoryQueue) is bounded.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_queue::{MemoryConfig, MemoryQueue, OnFull};
///
/// let queue = MemoryQueue::with_config(
///     MemoryConfig::default()
///         .capacity(10_000)
///         .on_full(OnFull::Wait(Duration::from_millis(50)))
///         .retention(Some(1_000))
///         .max_payload(Some(64 * 1024)),
/// );
/// # let _ = queue;
/// ```
#[derive(Clone, Debug)]
pub struct MemoryConfig {
    pub(crate) capacity: Option<usize>,
    pub(crate) on_full: OnFull,
    pub(crate) retention: Option<usize>,
    pub(crate) max_payload: Option<usize>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Finished records kept by default.
pub const DEFAULT_RETENTION: usize = 100_000;

/// The default payload limit: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 * 1024 * 1024;

impl Default for MemoryConfig {
    /// Unbounded, refusing when full (if a capacity is set later), keeping the
    /// latest [`DEFAULT_RETENTION`] finished records, payloads up to
    /// [`DEFAULT_MAX_PAYLOAD`] bytes, on the system clock.
    fn default() -> MemoryConfig {
        MemoryConfig {
            capacity: None,
            on_full: OnFull::Refuse,
            retention: Some(DEFAULT_RETENTION),
            max_payload: Some(DEFAULT_MAX_PAYLOAD),
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryConfig {
    /// Bounds the tasks waiting to start (pending, delayed and retrying) at `tasks`.
    ///
    /// Only new submissions are refused: a retry, a released task, a requeued
    /// dead task and a job's reduce always find their way back, even into a full
    /// queue, which may then hold more waiting tasks than `tasks` (their records
    /// are held already: a requeue, an operator's call made under the lock,
    /// neither waits for room nor fails for it). An empty batch needs no room.
    #[must_use]
    pub fn capacity(mut self, tasks: usize) -> MemoryConfig {
        self.capacity = Some(tasks);
        self
    }

    /// What to do with a submission that does not fit under the capacity.
    #[must_use]
    pub fn on_full(mut self, on_full: OnFull) -> MemoryConfig {
        self.on_full = on_full;
        self
    }

    /// Keeps at most `records` finished records, dropping the oldest finished
    /// first; `None` keeps them all.
    #[must_use]
    pub fn retention(mut self, records: Option<usize>) -> MemoryConfig {
        self.retention = records;
        self
    }

    /// Refuses payloads longer than `bytes`; `None` accepts any size.
    #[must_use]
    pub fn max_payload(mut self, bytes: Option<usize>) -> MemoryConfig {
        self.max_payload = bytes;
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> MemoryConfig {
        self.clock = clock;
        self
    }
}
