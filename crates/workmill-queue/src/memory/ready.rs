//! `ReadyQueue`: the memory backend's priority queue, one FIFO per priority level, popping in `QueueKey` order.

use std::collections::VecDeque;

use workmill_core::{Priority, QueueKey};

/// A priority queue that pops entries in [`QueueKey`] order: lower priority
/// number first, lower arrival number first within a priority.
///
/// Task queues use few distinct priorities and mostly push arrivals in
/// increasing order, so instead of a binary heap (`O(log n)` per push and
/// pop, and a sift over the whole heap) it keeps one FIFO per priority level
/// that is in use, the levels sorted with the most urgent last. Pushing a new
/// arrival is then a lookup among the few levels and a `push_back`; popping is
/// a `pop_front` on the last level. A key that arrives out of order (a task
/// handed back with [`Queue::release`](workmill_core::Queue::release) keeps its
/// old arrival number) is inserted at its sorted place, so the pop order is
/// exactly `QueueKey` order whatever the push order.
///
/// # Examples
///
/// ```
/// use workmill_core::{Priority, QueueKey};
/// use workmill_queue::ReadyQueue;
///
/// let mut ready = ReadyQueue::new();
/// ready.push(QueueKey::new(Priority::LOW, 1), "low");
/// ready.push(QueueKey::new(Priority::HIGH, 2), "high, first in");
/// ready.push(QueueKey::new(Priority::HIGH, 3), "high, second in");
/// ready.push(QueueKey::new(Priority::HIGH, 0), "high, handed back");
/// let order: Vec<&str> = std::iter::from_fn(|| ready.pop().map(|(_, v)| v)).collect();
/// assert_eq!(order, ["high, handed back", "high, first in", "high, second in", "low"]);
/// ```
#[derive(Debug)]
pub struct ReadyQueue<T> {
    /// Non-empty levels sorted by priority, least urgent first, so the next
    /// entry to pop sits at the end of the vector.
    levels: Vec<Level<T>>,
    /// Emptied FIFOs kept for reuse, so a level that empties and refills does
    /// not give its buffer back to the allocator each time.
    spare: Vec<VecDeque<(u64, T)>>,
    len: usize,
}

#[derive(Debug)]
struct Level<T> {
    priority: Priority,
    /// Entries of this priority by arrival number, ascending.
    fifo: VecDeque<(u64, T)>,
}

/// How many emptied FIFOs to keep for reuse.
const SPARE_LEVELS: usize = 8;

impl<T> ReadyQueue<T> {
    /// An empty queue.
    pub fn new() -> ReadyQueue<T> {
        ReadyQueue {
            levels: Vec::new(),
            spare: Vec::new(),
            len: 0,
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `value` under `key`.
    pub fn push(&mut self, key: QueueKey, value: T) {
        let index = self.level_index(key.priority);
        let fifo = &mut self.levels[index].fifo;
        match fifo.back() {
            Some(&(last, _)) if last > key.seq => {
                // Out of order: find the sorted place. Arrival numbers are
                // unique, so `Err` is the only answer for a fresh key.
                let at = fifo
                    .binary_search_by_key(&key.seq, |&(seq, _)| seq)
                    .unwrap_or_else(|at| at);
                fifo.insert(at, (key.seq, value));
            }
            _ => fifo.push_back((key.seq, value)),
        }
        self.len += 1;
    }

    /// The key of the entry [`pop`](ReadyQueue::pop) would return.
    pub fn peek_key(&self) -> Option<QueueKey> {
        self.peek().map(|(key, _)| key)
    }

    /// The entry [`pop`](ReadyQueue::pop) would return.
    pub fn peek(&self) -> Option<(QueueKey, &T)> {
        let level = self.levels.last()?;
        let (seq, value) = level.fifo.front()?;
        Some((QueueKey::new(level.priority, *seq), value))
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop(&mut self) -> Option<(QueueKey, T)> {
        let level = self.levels.last_mut()?;
        let (seq, value) = level.fifo.pop_front()?;
        let key = QueueKey::new(level.priority, seq);
        if level.fifo.is_empty()
            && let Some(emptied) = self.levels.pop()
            && self.spare.len() < SPARE_LEVELS
        {
            self.spare.push(emptied.fifo);
        }
        self.len -= 1;
        Some((key, value))
    }

    /// Removes every entry for which `keep` returns false.
    pub fn retain(&mut self, mut keep: impl FnMut(QueueKey, &T) -> bool) {
        for level in &mut self.levels {
            let priority = level.priority;
            level
                .fifo
                .retain(|(seq, value)| keep(QueueKey::new(priority, *seq), value));
        }
        self.levels.retain(|level| !level.fifo.is_empty());
        self.len = self.levels.iter().map(|level| level.fifo.len()).sum();
    }

    /// The index of the level for `priority`, created if missing.
    fn level_index(&mut self, priority: Priority) -> usize {
        // Most pushes go to the most urgent level or to one already in use;
        // try the last level before searching.
        if let Some(last) = self.levels.last()
            && last.priority == priority
        {
            return self.levels.len() - 1;
        }
        // Levels are sorted least urgent first, so search with the order reversed.
        match self
            .levels
            .binary_search_by(|level| priority.cmp(&level.priority))
        {
            Ok(index) => index,
            Err(index) => {
                let fifo = self.spare.pop().unwrap_or_default();
                self.levels.insert(index, Level { priority, fifo });
                index
            }
        }
    }
}

impl<T> Default for ReadyQueue<T> {
    fn default() -> ReadyQueue<T> {
        ReadyQueue::new()
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Against `BinaryHeap` as the reference: the same keys come out in the same
        /// order for any interleaving of pushes (in or out of arrival order) and pops.
        #[test]
        fn pops_in_queue_key_order_like_a_binary_heap(
            ops in prop::collection::vec((0u16..12, any::<bool>(), 0u8..4), 0..400)
        ) {
            let mut ready = ReadyQueue::new();
            let mut reference = BinaryHeap::new();
            let mut next_seq = 1_000u64;
            let mut old_seq = 999u64;
            for (priority, out_of_order, pops) in ops {
                // Fresh arrivals count up; "handed back" keys count down from
                // below every fresh one, so they are unique and out of order.
                let seq = if out_of_order {
                    old_seq -= 1;
                    old_seq
                } else {
                    next_seq += 1;
                    next_seq
                };
                let key = QueueKey::new(Priority::new(priority), seq);
                ready.push(key, seq);
                reference.push(Reverse((key, seq)));
                for _ in 0..pops {
                    let expected = reference.pop().map(|Reverse(entry)| entry);
                    prop_assert_eq!(ready.peek_key(), expected.map(|(key, _)| key));
                    prop_assert_eq!(ready.pop(), expected);
                }
                prop_assert_eq!(ready.len(), reference.len());
            }
            while let Some(Reverse(expected)) = reference.pop() {
                prop_assert_eq!(ready.pop(), Some(expected));
            }
            prop_assert!(ready.is_empty());
            prop_assert_eq!(ready.pop(), None);
        }

        #[test]
        fn retain_keeps_order_and_count(keys in prop::collection::vec((0u16..6, 0u64..10_000), 0..200)) {
            let mut ready = ReadyQueue::new();
            let mut unique = std::collections::BTreeSet::new();
            for (priority, seq) in keys {
                let key = QueueKey::new(Priority::new(priority), seq);
                if unique.insert(key) {
                    ready.push(key, seq);
                }
            }
            ready.retain(|key, _| key.seq % 3 != 0);
            let kept: Vec<QueueKey> = unique.into_iter().filter(|key| key.seq % 3 != 0).collect();
            prop_assert_eq!(ready.len(), kept.len());
            let popped: Vec<QueueKey> = std::iter::from_fn(|| ready.pop().map(|(key, _)| key)).collect();
            prop_assert_eq!(popped, kept);
        }
    }

    #[test]
    fn emptied_levels_are_reused_without_leaking_entries() {
        let mut ready = ReadyQueue::new();
        for round in 0..100u64 {
            ready.push(
                QueueKey::new(Priority::new((round % 3) as u16), round),
                round,
            );
            assert_eq!(ready.pop().map(|(_, v)| v), Some(round));
        }
        assert!(ready.is_empty());
        assert!(ready.levels.is_empty());
        assert!(ready.spare.len() <= SPARE_LEVELS);
    }
}
