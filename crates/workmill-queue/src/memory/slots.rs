//! `Slots`: the memory backend's task table, a slab of records indexed by id, whose positions lease tokens encode.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use workmill_core::{QueueError, TaskId, TaskRecord, Timestamp, WorkerId};

use super::jobs::JobLink;

/// The `finish_seq` of a task that is not finished; real ones count up from 1.
pub(crate) const NOT_FINISHED: u64 = 0;

/// One task as the memory backend keeps it: the public record and the
/// bookkeeping that never leaves the backend.
#[derive(Debug)]
pub(crate) struct Task {
    /// What [`Queue::status`](workmill_core::Queue::status) returns, kept current.
    pub(crate) record: TaskRecord,
    /// Unique per table entry, so a waiter can tell its task from a later
    /// occupant of the same slot.
    pub(crate) uid: u64,
    /// Its id's index tag ([`HashId::tag`]), computed once while the id is in cache.
    pub(crate) tag: u32,
    /// The arrival number of its current place in the ready queue.
    pub(crate) seq: u64,
    /// When the current lease lapses; meaningful while `Running`.
    pub(crate) lease_expires: Timestamp,
    /// `started_at` and `worker` before the current reservation, restored by a release.
    pub(crate) before_reserve: (Option<Timestamp>, Option<WorkerId>),
    /// Threads blocked in `wait` on this task.
    pub(crate) waiters: u32,
    /// The job it is a map or the reduce of, if any (boxed: most tasks have
    /// none, and every byte of a record counts when 100,000 are retained).
    pub(crate) job: Option<Box<JobLink>>,
}

impl Task {
    /// Drops what the task owns apart from its box (shared names and payloads, results,
    /// errors, worker ids, job link), so that the box can wait for a new record without
    /// holding memory or counts elsewhere. Only an id of more than 30 bytes (a shared
    /// string) stays until the box is refilled.
    pub(crate) fn empty(&mut self) {
        let record = &mut self.record;
        record.name = workmill_core::TaskName::from_static("");
        record.payload = workmill_core::Payload::EMPTY;
        record.result = None;
        record.last_error = None;
        record.worker = None;
        self.before_reserve = (None, None);
        self.job = None;
    }
}

#[derive(Debug, Default)]
struct Cell {
    /// Counts the reservations made in this slot, by any occupant; the low
    /// half of a lease token. It never resets, so a token is never reused.
    reservations: u32,
    /// The index tag of the task's id (see [`IndexEntry`]), to find its entry on removal.
    tag: u32,
    /// The task's place in the finished list while it is final (the retention order),
    /// [`NOT_FINISHED`] otherwise. Kept here rather than in the record so that eviction
    /// picks and removes old records without reading them (they are rarely in cache).
    finish_seq: u64,
    /// Boxed: the table itself stays small and cached, and a record is
    /// built before the lock is taken and dropped after it is released (see
    /// `state::prepare` and `State::graveyard`).
    task: Option<Box<Task>>,
}

/// How the index tags an id: [`IdHasher`], or a test's own.
pub(crate) trait HashId {
    /// The id's index tag: 32 bits of its keyed hash (see [`IndexEntry`]).
    fn tag(&self, id: &TaskId) -> u32;
}

/// The keyed hash of task ids, built on foldhash's quality variant seeded at random per queue
/// (several times faster than std's SipHash on a 26-byte id).
///
/// An id with the shape of a generated one ([`TaskId::generated_parts`]) gets as its tag its
/// sequence number plus a keyed hash of everything else it encodes (its millisecond, its
/// process, the top of its sequence number). The ids of one submitted batch share all of
/// that, so their tags count up and their index entries sit side by side: inserting a batch
/// writes a few cache lines instead of missing once per id, and evicting it later (finished
/// tasks go in roughly the order they came) reads them back together. That took the
/// end-to-end queue bench from 705 to 488 ns per task. Any other id gets the keyed hash of
/// its text.
///
/// A caller choosing its own ids cannot crowd them onto one tag: ids that differ only in
/// their sequence numbers get distinct tags, and ids that differ elsewhere get unrelated
/// offsets, which without the queue's seed cannot be aimed. Ids whose tags are equal anyway
/// still work (see [`Slots`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct IdHasher(foldhash::quality::RandomState);

impl HashId for IdHasher {
    fn tag(&self, id: &TaskId) -> u32 {
        match id.generated_parts() {
            Some(parts) => {
                let rest = self
                    .0
                    .hash_one((parts.millis, parts.nonce, parts.count >> 32));
                (parts.count as u32).wrapping_add((rest >> 32) as u32)
            }
            None => (self.0.hash_one(id) >> 32) as u32,
        }
    }
}

/// An id-index entry: the slot of a task and 32 bits of its id's hash, enough to place the
/// entry when the table grows and to skip almost every other id without reading its record.
/// Eight bytes, so that the index of 100,000 retained records is half the size it would be
/// keyed by the whole hash, and more of it stays in cache.
#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    tag: u32,
    slot: u32,
}

/// Where the table places an entry with `tag`: the table picks the bucket from the low bits,
/// which are the tag itself, so that tags that count up take neighbouring buckets (see
/// [`IdHasher`]); it keeps the top seven bits in its control bytes to tell entries apart
/// without reading them, so those are the tag's bits mixed.
fn placement(tag: u32) -> u64 {
    u64::from(tag) | (u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15) & (0x7F << 57))
}

/// A slab of tasks with an index by id.
///
/// A lease token is `slot << 32 | reservation count`, so completing or
/// failing a task finds it without hashing its id, and a stale token (an
/// older reservation of the same slot) never matches.
///
/// The index holds, for each task, its slot and 32 bits of the keyed hash of its id
/// (computed once, kept in the task), so an entry is small and dropping a finished task does
/// not read its id again. Ids whose tags are equal (about one pair in 4 billion, and the
/// per-queue random seed keeps anyone from aiming for it) are told apart by their records.
#[derive(Debug)]
pub(crate) struct Slots<S = IdHasher> {
    cells: Vec<Cell>,
    free: Vec<u32>,
    hasher: S,
    index: HashTable<IndexEntry>,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::with_hasher(IdHasher::default())
    }
}

impl<S: HashId> Slots<S> {
    /// An empty table hashing ids with `hasher`.
    pub(crate) fn with_hasher(hasher: S) -> Slots<S> {
        Slots {
            cells: Vec::new(),
            free: Vec::new(),
            hasher,
            index: HashTable::new(),
        }
    }

    /// How many tasks it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The slot of task `id`.
    pub(crate) fn find(&self, id: &TaskId) -> Option<u32> {
        let tag = self.hasher.tag(id);
        self.index
            .find(placement(tag), |entry| {
                entry.tag == tag && holds(&self.cells, entry.slot, id)
            })
            .map(|entry| entry.slot)
    }

    /// The slot of task `id`, or `NotFound`.
    pub(crate) fn slot_of(&self, id: &TaskId) -> Result<u32, QueueError> {
        self.find(id)
            .ok_or_else(|| QueueError::NotFound { id: id.clone() })
    }

    /// The hasher of ids, so that a task's `hash` can be computed before the lock is taken.
    pub(crate) fn hasher(&self) -> &S {
        &self.hasher
    }

    /// Adds `task`, whose `hash` must be its id's under [`Slots::hasher`], or refuses it with its
    /// id if the id is taken.
    pub(crate) fn insert(&mut self, task: Box<Task>) -> Result<u32, TaskId> {
        debug_assert_eq!(task.tag, self.hasher.tag(&task.record.id));
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.cells.len()).unwrap_or(u32::MAX),
        };
        let tag = task.tag;
        let cells = &self.cells;
        match self.index.entry(
            placement(tag),
            |entry| entry.tag == tag && holds(cells, entry.slot, &task.record.id),
            |entry| placement(entry.tag),
        ) {
            Entry::Occupied(_) => return Err(task.record.id),
            Entry::Vacant(vacant) => {
                vacant.insert(IndexEntry { tag, slot });
            }
        }
        if self.free.pop().is_none() {
            self.cells.push(Cell::default());
        }
        let cell = &mut self.cells[slot as usize];
        cell.tag = tag;
        cell.finish_seq = NOT_FINISHED;
        cell.task = Some(task);
        Ok(slot)
    }

    /// Removes the task in `slot`, without reading it.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Box<Task>> {
        let cell = self.cells.get_mut(slot as usize)?;
        let task = cell.task.take()?;
        cell.finish_seq = NOT_FINISHED;
        if let Ok(entry) = self
            .index
            .find_entry(placement(cell.tag), |entry| entry.slot == slot)
        {
            entry.remove();
        }
        self.free.push(slot);
        Some(task)
    }

    /// The finish number of the task in `slot` ([`NOT_FINISHED`] for a task not final, or an
    /// empty slot).
    pub(crate) fn finish_seq(&self, slot: u32) -> u64 {
        self.cells
            .get(slot as usize)
            .map_or(NOT_FINISHED, |cell| cell.finish_seq)
    }

    /// Sets the finish number of the task in `slot`, if there is one.
    pub(crate) fn set_finish_seq(&mut self, slot: u32, finish_seq: u64) {
        if let Some(cell) = self.cells.get_mut(slot as usize)
            && cell.task.is_some()
        {
            cell.finish_seq = finish_seq;
        }
    }

    /// Reads the index entries of the tasks in `slots` without changing anything, so that
    /// removing them next finds them in cache: the lookups are independent of each other,
    /// so the processor waits for their cache misses together rather than one at a time.
    /// Returns how many it found (to keep the reads from being optimized away).
    pub(crate) fn warm_index(&self, slots: &[u32]) -> usize {
        slots
            .iter()
            .filter(|&&slot| {
                self.cells
                    .get(slot as usize)
                    .filter(|cell| cell.task.is_some())
                    .is_some_and(|cell| {
                        self.index
                            .find(placement(cell.tag), |entry| entry.slot == slot)
                            .is_some()
                    })
            })
            .count()
    }

    /// The task in `slot`.
    pub(crate) fn get(&self, slot: u32) -> Option<&Task> {
        self.cells.get(slot as usize)?.task.as_deref()
    }

    /// The task in `slot`, to change.
    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Task> {
        self.cells.get_mut(slot as usize)?.task.as_deref_mut()
    }

    /// A fresh lease token for a new reservation of `slot`.
    pub(crate) fn next_token(&mut self, slot: u32) -> u64 {
        let cell = &mut self.cells[slot as usize];
        cell.reservations = cell.reservations.wrapping_add(1);
        (u64::from(slot) << 32) | u64::from(cell.reservations)
    }

    /// The slot a token was issued for, and whether that token is the slot's latest.
    pub(crate) fn token_slot(&self, token: u64) -> (u32, bool) {
        let slot = (token >> 32) as u32;
        let latest = self
            .cells
            .get(slot as usize)
            .is_some_and(|cell| cell.reservations == token as u32);
        (slot, latest)
    }

    /// Every task, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Task)> {
        self.cells
            .iter()
            .enumerate()
            .filter_map(|(slot, cell)| Some((slot as u32, cell.task.as_deref()?)))
    }
}

/// True if `slot` holds the task `id`.
fn holds(cells: &[Cell], slot: u32, id: &TaskId) -> bool {
    cells
        .get(slot as usize)
        .and_then(|cell| cell.task.as_ref())
        .is_some_and(|task| task.record.id == *id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use workmill_core::{GeneratedParts, NewTask};

    use crate::memory::state::prepare;

    use super::*;

    /// Hashes every id alike, so every insert after the first collides.
    #[derive(Clone, Copy, Default)]
    struct Collide;

    impl HashId for Collide {
        fn tag(&self, _id: &TaskId) -> u32 {
            42
        }
    }

    #[test]
    fn the_ids_of_one_batch_get_tags_that_count_up() {
        let hasher = IdHasher::default();
        let at = Timestamp::from_micros(1_700_000_000_000_000);
        let ids: Vec<TaskId> = (0..512).map(|_| TaskId::generate_at(at)).collect();
        let tags: Vec<u32> = ids.iter().map(|id| hasher.tag(id)).collect();
        for ((a, b), (x, y)) in ids.iter().zip(&ids[1..]).zip(tags.iter().zip(&tags[1..])) {
            let step = b.generated_parts().unwrap().count - a.generated_parts().unwrap().count;
            // Other tests draw from the same process counter meanwhile.
            assert_eq!(y.wrapping_sub(*x), step as u32, "{a} then {b}");
        }
        // The table picks buckets by the low bits, which are the tag: neighbouring tags take
        // neighbouring buckets.
        assert!(tags.iter().all(|&t| placement(t) as u32 == t));
    }

    #[test]
    fn ids_that_differ_outside_the_sequence_number_get_unrelated_tags() {
        let hasher = IdHasher::default();
        // Forged ids with one sequence number and different millisecond stamps: were the tag
        // the sequence number alone, they would all share one bucket.
        let tags: HashSet<u32> = (0..2_000u64)
            .map(|n| {
                let id = GeneratedParts {
                    millis: n,
                    nonce: 0xABCD,
                    count: 7,
                }
                .to_id();
                assert_eq!(id.generated_parts().unwrap().count, 7);
                hasher.tag(&id)
            })
            .collect();
        assert!(tags.len() >= 1_990, "{} distinct tags of 2000", tags.len());
        // Two queues place the same id differently: the offset is keyed.
        let id = TaskId::generate();
        let other = IdHasher::default();
        assert_ne!(hasher.tag(&id), other.tag(&id));
        // Ids of another shape hash their text, keyed: equal ids alike, others apart.
        let custom = TaskId::new("order-42").unwrap();
        assert_eq!(
            hasher.tag(&custom),
            hasher.tag(&TaskId::new("order-42").unwrap())
        );
        assert_ne!(
            hasher.tag(&custom),
            hasher.tag(&TaskId::new("order-43").unwrap())
        );
    }

    #[test]
    fn many_batches_insert_look_up_and_remove_through_the_real_hasher() {
        let mut slots = Slots::default();
        let mut kept = Vec::new();
        for batch in 0..40u64 {
            let at = Timestamp::from_micros(batch * 1_000);
            for _ in 0..500 {
                let new = NewTask::new("t", Vec::new()).with_id(TaskId::generate_at(at));
                let id = new.id.clone();
                let slot = slots
                    .insert(prepare(new, None, Timestamp::EPOCH, slots.hasher()))
                    .unwrap();
                kept.push((id, slot));
            }
            // Drop the oldest batches, as retention does.
            if kept.len() > 6_000 {
                for (id, slot) in kept.drain(..500) {
                    assert_eq!(slots.find(&id), Some(slot));
                    assert!(slots.remove(slot).is_some());
                    assert_eq!(slots.find(&id), None);
                }
            }
        }
        for (id, slot) in &kept {
            assert_eq!(slots.find(id), Some(*slot));
        }
        let custom = NewTask::new("t", Vec::new()).with_id(TaskId::new("mine").unwrap());
        assert!(
            slots
                .insert(prepare(custom, None, Timestamp::EPOCH, slots.hasher()))
                .is_ok()
        );
        let again = NewTask::new("t", Vec::new()).with_id(kept[0].0.clone());
        assert!(
            slots
                .insert(prepare(again, None, Timestamp::EPOCH, slots.hasher()))
                .is_err(),
            "a duplicate is refused"
        );
    }

    /// A task with id `id`, hashed as the `Collide` tables hash.
    fn task(id: &str) -> Box<Task> {
        let new = NewTask::new("t", Vec::new()).with_id(TaskId::new(id).unwrap());
        prepare(new, None, Timestamp::EPOCH, &Collide)
    }

    fn id(text: &str) -> TaskId {
        TaskId::new(text).unwrap()
    }

    #[test]
    fn warming_the_index_finds_the_held_tasks_and_changes_nothing() {
        let mut slots = Slots::with_hasher(Collide);
        let a = slots.insert(task("a")).unwrap();
        let b = slots.insert(task("b")).unwrap();
        slots.remove(b);
        assert_eq!(slots.warm_index(&[a, b, 999]), 1);
        assert_eq!(
            (slots.find(&id("a")), slots.find(&id("b"))),
            (Some(a), None)
        );
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn colliding_ids_are_told_apart_and_survive_each_others_removal() {
        let mut slots = Slots::with_hasher(Collide);
        let a = slots.insert(task("a")).unwrap();
        let b = slots.insert(task("b")).unwrap();
        let c = slots.insert(task("c")).unwrap();
        assert_eq!(
            slots.insert(task("b")),
            Err(id("b")),
            "a taken id among colliding ones"
        );
        assert_eq!(
            slots.insert(task("a")),
            Err(id("a")),
            "the first of the colliding ids"
        );
        assert_eq!(
            [
                slots.find(&id("a")),
                slots.find(&id("b")),
                slots.find(&id("c"))
            ],
            [Some(a), Some(b), Some(c)]
        );
        assert_eq!(slots.find(&id("d")), None);

        // Removing one of the colliding ids leaves the others findable.
        assert_eq!(slots.remove(a).unwrap().record.id, id("a"));
        assert_eq!(slots.find(&id("a")), None);
        assert_eq!(
            (slots.find(&id("b")), slots.find(&id("c"))),
            (Some(b), Some(c))
        );
        assert_eq!(slots.remove(c).unwrap().record.id, id("c"));
        assert_eq!(
            (slots.find(&id("b")), slots.find(&id("c"))),
            (Some(b), None)
        );
        assert_eq!(slots.remove(b).unwrap().record.id, id("b"));
        assert_eq!(slots.len(), 0);
        // The freed slots and the hash are reusable.
        let again = slots.insert(task("a")).unwrap();
        assert_eq!(slots.find(&id("a")), Some(again));
    }

    #[test]
    fn removing_one_of_colliding_ids_keeps_the_others_findable() {
        let mut slots = Slots::with_hasher(Collide);
        let a = slots.insert(task("a")).unwrap();
        let b = slots.insert(task("b")).unwrap();
        let c = slots.insert(task("c")).unwrap();
        assert_eq!(slots.remove(b).map(|task| task.record.id), Some(id("b")));
        assert_eq!(
            [
                slots.find(&id("a")),
                slots.find(&id("b")),
                slots.find(&id("c"))
            ],
            [Some(a), None, Some(c)]
        );
        assert_eq!(slots.remove(a).map(|task| task.record.id), Some(id("a")));
        assert_eq!(
            [
                slots.find(&id("a")),
                slots.find(&id("b")),
                slots.find(&id("c"))
            ],
            [None, None, Some(c)]
        );
        assert_eq!(slots.remove(c).map(|task| task.record.id), Some(id("c")));
        assert_eq!(slots.len(), 0);
        assert!(
            slots.remove(c).is_none(),
            "an empty slot has nothing to remove"
        );
    }
}
