//! `Priority`: a small integer where lower runs first, and the ordering key that keeps FIFO within one priority.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How urgent a task is: **lower runs first**, as in the seed and in Unix `nice`.
///
/// Tasks of equal priority run in submission order (FIFO); every backend keeps
/// that by ordering on [`QueueKey`], the pair of priority and a sequence number.
/// A retry may demote a task by a configured step (see
/// [`RetryPolicy::demote_by`](crate::RetryPolicy::demote_by)), saturating at
/// [`Priority::LOWEST`].
///
/// # Examples
///
/// ```
/// use workmill_core::Priority;
///
/// assert!(Priority::HIGH < Priority::NORMAL);
/// assert_eq!(Priority::new(5), Priority::NORMAL);
/// assert_eq!(Priority::new(1).demoted(10), Priority::new(11));
/// assert_eq!(Priority::LOWEST.demoted(10), Priority::LOWEST);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(u16);

impl Priority {
    /// The most urgent priority, 0.
    pub const HIGHEST: Priority = Priority(0);
    /// 1, the seed's "high priority".
    pub const HIGH: Priority = Priority(1);
    /// 5, the default, as in the seed's framework.
    pub const NORMAL: Priority = Priority(5);
    /// 10, the seed's "low priority".
    pub const LOW: Priority = Priority(10);
    /// The least urgent priority, `u16::MAX`; demotion stops here.
    pub const LOWEST: Priority = Priority(u16::MAX);

    /// A priority from its number; lower runs first.
    pub const fn new(level: u16) -> Priority {
        Priority(level)
    }

    /// The number; lower runs first.
    pub const fn level(self) -> u16 {
        self.0
    }

    /// This priority made `step` levels less urgent, saturating at [`Priority::LOWEST`].
    #[must_use]
    pub const fn demoted(self, step: u16) -> Priority {
        Priority(self.0.saturating_add(step))
    }
}

impl Default for Priority {
    fn default() -> Priority {
        Priority::NORMAL
    }
}

impl From<u16> for Priority {
    fn from(level: u16) -> Priority {
        Priority(level)
    }
}

impl fmt::Debug for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Priority({})", self.0)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The order in which ready tasks leave a queue: by priority, then by arrival.
///
/// `seq` is a number the backend assigns, increasing with each enqueue (or
/// re-enqueue after a retry), so that tasks of one priority come out in the
/// order they went in. Deriving `Ord` on the pair gives exactly that order.
///
/// # Examples
///
/// ```
/// use workmill_core::{Priority, QueueKey};
///
/// let mut keys = vec![
///     QueueKey::new(Priority::LOW, 1),
///     QueueKey::new(Priority::HIGH, 3),
///     QueueKey::new(Priority::HIGH, 2),
/// ];
/// keys.sort();
/// assert_eq!(keys[0], QueueKey::new(Priority::HIGH, 2));
/// assert_eq!(keys[2], QueueKey::new(Priority::LOW, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    /// The task's current priority.
    pub priority: Priority,
    /// The backend's arrival counter at enqueue time.
    pub seq: u64,
}

impl QueueKey {
    /// The key of a task with `priority` that arrived as number `seq`.
    pub const fn new(priority: Priority, seq: u64) -> QueueKey {
        QueueKey { priority, seq }
    }

    /// Packs the key into an `f64` that orders the same way, for stores whose sort key is a
    /// double (Redis sorted-set scores). Exact while `seq < 2^36` (68 billion enqueues).
    pub fn to_score(self) -> f64 {
        let seq = self.seq & ((1 << 36) - 1);
        ((u64::from(self.priority.0) << 36) | seq) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn queue_key_orders_by_priority_then_fifo(
            mut items in prop::collection::vec((0u16..20, 0u64..1_000_000), 0..200)
        ) {
            // Give each item a unique arrival number in list order.
            for (i, item) in items.iter_mut().enumerate() {
                item.1 = i as u64;
            }
            let mut keys: Vec<QueueKey> =
                items.iter().map(|&(p, s)| QueueKey::new(Priority::new(p), s)).collect();
            keys.sort();
            for w in keys.windows(2) {
                prop_assert!(w[0].priority <= w[1].priority, "lower priority number first");
                if w[0].priority == w[1].priority {
                    prop_assert!(w[0].seq < w[1].seq, "FIFO within a priority");
                }
            }
        }

        #[test]
        fn score_orders_like_the_key(a in (any::<u16>(), 0u64..(1 << 36)), b in (any::<u16>(), 0u64..(1 << 36))) {
            let ka = QueueKey::new(Priority::new(a.0), a.1);
            let kb = QueueKey::new(Priority::new(b.0), b.1);
            prop_assert_eq!(ka.cmp(&kb), ka.to_score().partial_cmp(&kb.to_score()).unwrap());
        }
    }

    #[test]
    fn demotion_saturates() {
        assert_eq!(Priority::new(u16::MAX - 3).demoted(10), Priority::LOWEST);
        assert_eq!(Priority::default(), Priority::NORMAL);
    }
}
