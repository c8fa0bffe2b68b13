//! `Slots`: the memory backend's task table, a slab of records indexed by id, whose positions lease tokens encode.

use std::collections::HashSet;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use workmill_core::{Payload, QueueError, TaskId, TaskRecord, Timestamp, WorkerId};

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
    /// How the index finds its id ([`HashId::key`]), computed once while the id is in cache.
    pub(crate) key: IdKey,
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
    /// True if the task owns nothing outside its box and nobody waits on it: its id, name,
    /// payload, result and worker ids inline or static, no error, no job link, no waiters.
    /// [`State::finish`](super::state::State) notes this as the task finishes (its record is
    /// in cache then, and after that only its waiters change, and only downwards), so that
    /// evicting it later needs neither a check for waiters nor [`Task::empty`]: its box goes
    /// to the spares untouched, and whoever refills it overwrites values that own nothing.
    pub(crate) fn holds_nothing_elsewhere(&self) -> bool {
        let record = &self.record;
        self.waiters == 0
            && self.job.is_none()
            && record.last_error.is_none()
            && record.id.is_inline()
            && record.name.is_static()
            && record.payload.is_inline()
            && record.result.as_ref().is_none_or(Payload::is_inline)
            && record.worker.as_ref().is_none_or(WorkerId::is_inline)
            && self
                .before_reserve
                .1
                .as_ref()
                .is_none_or(WorkerId::is_inline)
    }

    /// Reads the parts of the record that [`Task::empty`] reads, and nothing else, so that a
    /// pass over many evicted records brings them into cache with their misses overlapped
    /// (each record's reads are independent of the others') before a pass that works through
    /// them. The value means nothing.
    pub(crate) fn touch(&self) -> usize {
        let record = &self.record;
        usize::from(record.id.is_inline())
            ^ record.name.len()
            ^ record.payload.len()
            ^ usize::from(record.result.is_some())
            ^ usize::from(record.last_error.is_some())
            ^ usize::from(record.worker.is_some())
            ^ usize::from(self.before_reserve.1.is_some())
            ^ usize::from(self.job.is_some())
    }

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
    /// Where the task's index entry is, to remove it: its id's sequence number if the
    /// entry is in the ring, its keyed hash if it is in the hash index (see [`Slots`]).
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

/// Where the index keeps a task's id: its [`IdKey`].
pub(crate) trait HashId {
    /// How `id` is indexed: by its sequence number if it has the shape of a generated id,
    /// by [`HashId::hashed`] otherwise.
    fn key(&self, id: &TaskId) -> IdKey;

    /// 32 bits of the keyed hash of `id`'s text, for the hash index.
    fn hashed(&self, id: &TaskId) -> u32;
}

/// How the index finds a task's id, computed once per task (see [`HashId::key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKey {
    /// A generated id ([`TaskId::generated_parts`]): the low 32 bits of its sequence number,
    /// which place it in the sequence ring (see [`Slots`]).
    Sequence(u32),
    /// Any other id: its keyed hash, which places it in the hash index.
    Hashed(u32),
}

/// The keyed hash of task ids, built on foldhash's quality variant seeded at random per queue
/// (several times faster than std's SipHash on a 26-byte id), and the sequence numbers of
/// generated ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdHasher(foldhash::quality::RandomState);

impl HashId for IdHasher {
    fn key(&self, id: &TaskId) -> IdKey {
        match id.generated_parts() {
            Some(parts) => IdKey::Sequence(parts.count as u32),
            None => IdKey::Hashed(self.hashed(id)),
        }
    }

    fn hashed(&self, id: &TaskId) -> u32 {
        (self.0.hash_one(id) >> 32) as u32
    }
}

/// A hash-index entry: the slot of a task and 32 bits of its id's keyed hash, enough to
/// place the entry when the table grows and to skip almost every other id without reading
/// its record. Eight bytes, so that more of the index stays in cache.
#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    tag: u32,
    slot: u32,
}

/// Where the hash index places an entry with `tag`: the table picks the bucket from the low
/// bits and keeps the top seven in its control bytes, so both come from the tag, mixed.
fn placement(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The smallest sequence ring, in positions.
const MIN_RING: usize = 1 << 10;

/// A slab of tasks with an index by id.
///
/// A lease token is `slot << 32 | reservation count`, so completing or failing a task finds
/// it without looking up its id, and a stale token (an older reservation of the same slot)
/// never matches.
///
/// The index has two parts:
///
/// - **The sequence ring**, for generated ids ([`IdKey::Sequence`]): a power-of-two array
///   of slots (stored plus one; 0 is empty), where an id's position is its sequence number
///   modulo the length. Generated ids count up, and the tasks held are mostly the latest
///   ones (finished records drop oldest first), so a batch's ids take neighbouring
///   positions, and two live ones share a position only if their numbers are a whole ring
///   apart; the ring grows to stay at least twice as long as the slab (the process's
///   other queues draw numbers from the same counter). Inserting, finding and removing one is one array
///   access, on cache lines the batch before and after share. A keyed hash placed the
///   batches of each millisecond at random offsets instead, and where a new batch landed
///   on live ones it probed far for room: the ring took the end-to-end queue bench from
///   218-236 to 188 ns per task.
/// - **The hash index** (a `hashbrown` table of [`IndexEntry`]) for every other id, and
///   for a generated id whose ring position is taken by another live one (an id that
///   lingers while a whole ring of later ones pass, or a caller's id with a generated
///   id's shape and a number already in use). Those spill here under their keyed hash, so
///   ids forged to share a sequence number cost one table entry each, not a probe past all
///   the others; their slots are listed in `spilled`, and lookups try the table after the
///   ring only while that list is not empty.
///
/// Ids whose hash tags are equal (about one pair in 4 billion, and the per-queue random seed
/// keeps anyone from aiming for it) are told apart by their records.
#[derive(Debug)]
pub(crate) struct Slots<S = IdHasher> {
    cells: Vec<Cell>,
    free: Vec<u32>,
    hasher: S,
    ring: Vec<u32>,
    index: HashTable<IndexEntry>,
    /// Slots of tasks with generated ids that are in the hash index rather than the ring.
    spilled: HashSet<u32>,
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
            ring: vec![0; MIN_RING],
            index: HashTable::new(),
            spilled: HashSet::new(),
        }
    }

    /// How many tasks it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cells.len() - self.free.len()
    }

    /// How many generated ids are in the hash index rather than the ring.
    #[cfg(test)]
    pub(crate) fn spilled(&self) -> usize {
        self.spilled.len()
    }

    /// The slot of task `id`.
    pub(crate) fn find(&self, id: &TaskId) -> Option<u32> {
        match self.hasher.key(id) {
            IdKey::Sequence(seq) => {
                let entry = self.ring[self.ring_position(seq)];
                if entry != 0 && holds(&self.cells, entry - 1, id) {
                    return Some(entry - 1);
                }
                if self.spilled.is_empty() {
                    return None;
                }
                self.find_hashed(self.hasher.hashed(id), id)
            }
            IdKey::Hashed(tag) => self.find_hashed(tag, id),
        }
    }

    fn find_hashed(&self, tag: u32, id: &TaskId) -> Option<u32> {
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

    /// The hasher of ids, so that a task's key can be computed before the lock is taken.
    pub(crate) fn hasher(&self) -> &S {
        &self.hasher
    }

    fn ring_position(&self, seq: u32) -> usize {
        seq as usize & (self.ring.len() - 1)
    }

    /// Adds `task`, whose `key` must be its id's under [`Slots::hasher`], or refuses it with
    /// its id if the id is taken.
    pub(crate) fn insert(&mut self, task: Box<Task>) -> Result<u32, TaskId> {
        debug_assert_eq!(task.key, self.hasher.key(&task.record.id));
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.cells.len()).unwrap_or(u32::MAX),
        };
        if self.free.is_empty() && self.cells.len() >= self.ring.len() / 2 {
            self.grow_ring();
        }
        let tag = match task.key {
            IdKey::Sequence(seq) => {
                let position = self.ring_position(seq);
                let occupant = self.ring[position];
                if occupant != 0 && holds(&self.cells, occupant - 1, &task.record.id) {
                    return Err(task.record.id);
                }
                let spill = occupant != 0;
                if spill || !self.spilled.is_empty() {
                    // It may be in the hash index, put there while its position was taken.
                    let tag = self.hasher.hashed(&task.record.id);
                    if self.find_hashed(tag, &task.record.id).is_some() {
                        return Err(task.record.id);
                    }
                    if spill {
                        self.insert_hashed(tag, slot);
                        self.spilled.insert(slot);
                        tag
                    } else {
                        self.ring[position] = slot + 1;
                        seq
                    }
                } else {
                    self.ring[position] = slot + 1;
                    seq
                }
            }
            IdKey::Hashed(tag) => {
                if self.find_hashed(tag, &task.record.id).is_some() {
                    return Err(task.record.id);
                }
                self.insert_hashed(tag, slot);
                tag
            }
        };
        if self.free.pop().is_none() {
            self.cells.push(Cell::default());
        }
        let cell = &mut self.cells[slot as usize];
        cell.tag = tag;
        cell.finish_seq = NOT_FINISHED;
        cell.task = Some(task);
        Ok(slot)
    }

    fn insert_hashed(&mut self, tag: u32, slot: u32) {
        self.index
            .insert_unique(placement(tag), IndexEntry { tag, slot }, |entry| {
                placement(entry.tag)
            });
    }

    /// Doubles the ring, which moves every id to its position under the new length. Ids
    /// whose positions differ under the old length differ under the new one, so none is
    /// displaced.
    fn grow_ring(&mut self) {
        let mut ring = vec![0; (self.ring.len() * 2).max(MIN_RING)];
        let mask = ring.len() - 1;
        for &entry in self.ring.iter().filter(|&&entry| entry != 0) {
            if let Some(cell) = self.cells.get(entry as usize - 1) {
                ring[cell.tag as usize & mask] = entry;
            }
        }
        self.ring = ring;
    }

    /// Removes the task in `slot`, without reading it.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Box<Task>> {
        let cell = self.cells.get_mut(slot as usize)?;
        let task = cell.task.take()?;
        cell.finish_seq = NOT_FINISHED;
        let tag = cell.tag;
        // The ring holds a slot only for the task in it, so this is its position if it is there.
        let position = tag as usize & (self.ring.len() - 1);
        if self.ring[position] == slot + 1 {
            self.ring[position] = 0;
        } else {
            if let Ok(entry) = self
                .index
                .find_entry(placement(tag), |entry| entry.slot == slot)
            {
                entry.remove();
            }
            if !self.spilled.is_empty() {
                self.spilled.remove(&slot);
            }
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
    pub(crate) fn warm_index(&self, slots: impl Iterator<Item = u32>) -> usize {
        let mask = self.ring.len() - 1;
        slots
            .filter(|&slot| {
                self.cells
                    .get(slot as usize)
                    .filter(|cell| cell.task.is_some())
                    .is_some_and(|cell| {
                        self.ring[cell.tag as usize & mask] == slot + 1
                            || self
                                .index
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
    use workmill_core::{GeneratedParts, NewTask};

    use crate::memory::state::prepare;

    use super::*;

    /// Hashes every id alike, so every insert after the first collides.
    #[derive(Clone, Copy, Default)]
    struct Collide;

    impl HashId for Collide {
        fn key(&self, _id: &TaskId) -> IdKey {
            IdKey::Hashed(42)
        }

        fn hashed(&self, _id: &TaskId) -> u32 {
            42
        }
    }

    #[test]
    fn generated_ids_are_keyed_by_their_sequence_numbers_and_others_by_a_keyed_hash() {
        let hasher = IdHasher::default();
        let at = Timestamp::from_micros(1_700_000_000_000_000);
        let ids: Vec<TaskId> = (0..512).map(|_| TaskId::generate_at(at)).collect();
        for id in &ids {
            let count = id.generated_parts().unwrap().count;
            assert_eq!(hasher.key(id), IdKey::Sequence(count as u32));
        }
        // Ids of another shape hash their text, keyed: equal ids alike, others apart, and
        // two queues apart.
        let custom = TaskId::new("order-42").unwrap();
        let tag = hasher.hashed(&custom);
        assert_eq!(hasher.key(&custom), IdKey::Hashed(tag));
        assert_eq!(tag, hasher.hashed(&TaskId::new("order-42").unwrap()));
        assert_ne!(tag, hasher.hashed(&TaskId::new("order-43").unwrap()));
        assert_ne!(tag, IdHasher::default().hashed(&custom));
    }

    #[test]
    fn consecutive_sequence_numbers_take_neighbouring_ring_positions() {
        let mut slots = Slots::default();
        // The ids of one batch from one process: one millisecond, numbers that count up
        // (made here rather than drawn from the process counter, which other tests share).
        let start = 1_000_000_u64;
        for n in 0..3_000 {
            let slot = put(&mut slots, &forged(1_700_000_000_000, start + n)).unwrap();
            let position = slots.ring_position((start + n) as u32);
            assert_eq!(slots.ring[position], slot + 1);
            if n > 0 {
                // Neighbours, modulo the ring's length (which grew meanwhile).
                let before = slots.ring_position((start + n - 1) as u32);
                assert_eq!(position, (before + 1) % slots.ring.len(), "number {n}");
            }
        }
        assert!(slots.ring.len() >= 6_000);
        assert_eq!((slots.spilled(), slots.index.len()), (0, 0));
    }

    /// An id with a generated id's shape and the given parts.
    fn forged(millis: u64, count: u64) -> TaskId {
        GeneratedParts {
            millis,
            nonce: 0xABCD,
            count,
        }
        .to_id()
    }

    /// Inserts a task with id `id`, keyed by the table's own hasher.
    fn put(slots: &mut Slots, id: &TaskId) -> Result<u32, TaskId> {
        let new = NewTask::new("t", Vec::new()).with_id(id.clone());
        let task = prepare(new, None, Timestamp::EPOCH, slots.hasher());
        slots.insert(task)
    }

    #[test]
    fn ids_forged_to_share_a_sequence_number_spill_into_the_hash_index_apart() {
        let mut slots = Slots::default();
        // Ids with one sequence number and different millisecond stamps: one takes the ring
        // position, the others go to the hash index under their keyed hashes, which differ.
        let ids: Vec<TaskId> = (0..2_000).map(|n| forged(n, 7)).collect();
        let inserted: Vec<u32> = ids.iter().map(|id| put(&mut slots, id).unwrap()).collect();
        assert_eq!(slots.spilled(), 1_999);
        let tags: HashSet<u32> = ids.iter().map(|id| slots.hasher().hashed(id)).collect();
        assert!(tags.len() >= 1_990, "{} distinct tags of 2000", tags.len());
        for (id, &slot) in ids.iter().zip(&inserted) {
            assert_eq!(slots.find(id), Some(slot));
        }
        // A duplicate is refused whether its original is in the ring or spilled.
        for id in [&ids[0], &ids[1], &ids[1_999]] {
            assert_eq!(put(&mut slots, id), Err(id.clone()));
        }
        // With the ring's holder gone, a spilled id is still found, and refused again.
        assert!(slots.remove(inserted[0]).is_some());
        assert_eq!(slots.find(&ids[0]), None);
        assert_eq!(slots.find(&ids[5]), Some(inserted[5]));
        assert!(put(&mut slots, &ids[5]).is_err());
        // Removing the spilled ones empties the list; the ring takes the next one.
        for &slot in &inserted[1..] {
            assert!(slots.remove(slot).is_some());
        }
        assert_eq!((slots.spilled(), slots.len(), slots.index.len()), (0, 0, 0));
        let slot = put(&mut slots, &forged(9_999, 7)).unwrap();
        assert_eq!(slots.ring[slots.ring_position(7)], slot + 1);
    }

    #[test]
    fn a_lingering_id_makes_a_later_one_spill_and_growth_keeps_both() {
        let mut slots = Slots::default();
        let ring = slots.ring.len() as u64;
        // Sequence numbers one ring apart share a position.
        let old = forged(1, 5);
        let new = forged(2, 5 + ring);
        let a = put(&mut slots, &old).unwrap();
        let b = put(&mut slots, &new).unwrap();
        assert_eq!(slots.spilled(), 1);
        // Enough more tasks to grow the ring several times over.
        let more: Vec<(TaskId, u32)> = (0..(4 * ring))
            .map(|n| {
                let id = forged(3, 6 + ring + n);
                let slot = put(&mut slots, &id).unwrap();
                (id, slot)
            })
            .collect();
        assert!(slots.ring.len() as u64 >= 8 * ring);
        assert_eq!(slots.spilled(), 1, "a grown ring displaces nobody");
        assert_eq!((slots.find(&old), slots.find(&new)), (Some(a), Some(b)));
        for (id, slot) in &more {
            assert_eq!(slots.find(id), Some(*slot));
        }
        assert_eq!(slots.warm_index([a, b, more[7].1].into_iter()), 3);
        assert!(slots.remove(b).is_some());
        assert_eq!((slots.spilled(), slots.find(&new)), (0, None));
        assert_eq!(slots.find(&old), Some(a));
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
        assert_eq!(slots.warm_index([a, b, 999].into_iter()), 1);
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
