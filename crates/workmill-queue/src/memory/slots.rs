//! `Slots`: the memory backend's task table, a slab of records indexed by id, whose positions lease tokens encode.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

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
    /// The keyed hash of its id, computed once while the id is in cache.
    pub(crate) hash: u64,
    /// The arrival number of its current place in the ready queue.
    pub(crate) seq: u64,
    /// When the current lease lapses; meaningful while `Running`.
    pub(crate) lease_expires: Timestamp,
    /// `started_at` and `worker` before the current reservation, restored by a release.
    pub(crate) before_reserve: (Option<Timestamp>, Option<WorkerId>),
    /// Threads blocked in `wait` on this task.
    pub(crate) waiters: u32,
    /// Its place in the finished list while final (the retention order).
    pub(crate) finish_seq: u64,
    /// The job it is a map or the reduce of, if any (boxed: most tasks have
    /// none, and every byte of a record counts when 100,000 are retained).
    pub(crate) job: Option<Box<JobLink>>,
}

impl Task {
    /// Drops what the task owns apart from its box (shared names and payloads, results,
    /// errors, worker ids, job link), so that the box can wait for a new record without
    /// holding memory or counts elsewhere. Only an id of more than 22 bytes (a shared
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
    /// Boxed: the table itself stays small and cached, and a record is
    /// built before the lock is taken and dropped after it is released (see
    /// `state::prepare` and `State::graveyard`).
    task: Option<Box<Task>>,
}

/// The keyed hash of task ids: foldhash's quality variant, seeded at random per queue. It is
/// several times faster than std's SipHash on a 26-byte id, and an id whose hash collides in
/// full with another's still works (see `overflow` on [`Slots`]).
pub(crate) type IdHasher = foldhash::quality::RandomState;

/// A hasher for keys that are hashes already: it passes them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A slab of tasks with an index by id.
///
/// A lease token is `slot << 32 | reservation count`, so completing or
/// failing a task finds it without hashing its id, and a stale token (an
/// older reservation of the same slot) never matches.
///
/// The index maps the keyed hash of an id (computed once, kept in the task)
/// to its slot, so its entries are small and dropping a finished task does
/// not read its id again. An id whose hash another id holds already goes to
/// `overflow`, keyed by the id itself; with a keyed 64-bit hash that happens
/// about once in 10^10 pairs, and the per-queue random seed keeps anyone from aiming for it.
#[derive(Debug)]
pub(crate) struct Slots<S = IdHasher> {
    cells: Vec<Cell>,
    free: Vec<u32>,
    hasher: S,
    index: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    overflow: HashMap<TaskId, u32>,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::with_hasher(IdHasher::default())
    }
}

impl<S: BuildHasher> Slots<S> {
    /// An empty table hashing ids with `hasher`.
    pub(crate) fn with_hasher(hasher: S) -> Slots<S> {
        Slots {
            cells: Vec::new(),
            free: Vec::new(),
            hasher,
            index: HashMap::default(),
            overflow: HashMap::new(),
        }
    }

    /// How many tasks it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len() + self.overflow.len()
    }

    /// The slot of task `id`.
    pub(crate) fn find(&self, id: &TaskId) -> Option<u32> {
        let slot = *self.index.get(&self.hasher.hash_one(id))?;
        if self.get(slot).is_some_and(|task| task.record.id == *id) {
            Some(slot)
        } else {
            self.overflow.get(id).copied()
        }
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
        debug_assert_eq!(task.hash, self.hasher.hash_one(&task.record.id));
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.cells.len()).unwrap_or(u32::MAX),
        };
        match self.index.entry(task.hash) {
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
            }
            Entry::Occupied(holder) => {
                let holder = *holder.get();
                let taken = self.cells[holder as usize]
                    .task
                    .as_ref()
                    .is_some_and(|other| other.record.id == task.record.id);
                if taken || self.overflow.contains_key(&task.record.id) {
                    return Err(task.record.id);
                }
                self.overflow.insert(task.record.id.clone(), slot);
            }
        }
        if self.free.pop().is_none() {
            self.cells.push(Cell::default());
        }
        self.cells[slot as usize].task = Some(task);
        Ok(slot)
    }

    /// Removes the task in `slot`.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Box<Task>> {
        let task = self.cells.get_mut(slot as usize)?.task.take()?;
        unindex(
            &mut self.index,
            &mut self.overflow,
            &self.hasher,
            slot,
            task.hash,
            &task.record.id,
        );
        self.free.push(slot);
        Some(task)
    }

    /// Reads the index entries of the tasks in `slots` without changing anything, so that
    /// removing them next finds them in cache: the lookups are independent of each other,
    /// so the processor waits for their cache misses together rather than one at a time.
    /// Returns how many it found (to keep the reads from being optimized away).
    pub(crate) fn warm_index(&self, slots: &[u32]) -> usize {
        slots
            .iter()
            .filter_map(|&slot| self.get(slot))
            .filter(|task| self.index.contains_key(&task.hash))
            .count()
    }

    /// [`Slots::remove`] for the retention bound, with how many threads wait on the task; the
    /// caller drops the record once the lock is released (an evicted record is rarely still in
    /// cache, and freeing it touches it).
    pub(crate) fn evict(&mut self, slot: u32) -> Option<(u32, Box<Task>)> {
        let task = self.remove(slot)?;
        Some((task.waiters, task))
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

/// Takes `id`, the task in `slot` whose hash is `hash`, out of the index with one probe (a
/// removed id's entry is rarely in cache); an id that collided with it takes over the hash.
fn unindex<S: BuildHasher>(
    index: &mut HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    overflow: &mut HashMap<TaskId, u32>,
    hasher: &S,
    slot: u32,
    hash: u64,
    id: &TaskId,
) {
    match index.entry(hash) {
        Entry::Occupied(entry) if *entry.get() == slot => {
            entry.remove();
            if !overflow.is_empty() {
                let heir = overflow
                    .keys()
                    .find(|other| hasher.hash_one(*other) == hash)
                    .cloned();
                if let Some(heir) = heir
                    && let Some(heir_slot) = overflow.remove(&heir)
                {
                    index.insert(hash, heir_slot);
                }
            }
        }
        _ => {
            overflow.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hasher};

    use workmill_core::NewTask;

    use crate::memory::state::prepare;

    use super::*;

    /// Hashes every id alike, so every insert after the first collides.
    #[derive(Clone, Copy, Default)]
    struct Collide;

    impl Hasher for Collide {
        fn finish(&self) -> u64 {
            42
        }
        fn write(&mut self, _bytes: &[u8]) {}
    }

    impl BuildHasher for Collide {
        type Hasher = Collide;
        fn build_hasher(&self) -> Collide {
            Collide
        }
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
            "a taken id in overflow"
        );
        assert_eq!(
            slots.insert(task("a")),
            Err(id("a")),
            "a taken id in the index"
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

        // Removing the index holder hands the hash to a colliding id.
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
    fn evicting_an_index_holder_or_an_overflowed_id_keeps_the_others_findable() {
        let mut slots = Slots::with_hasher(Collide);
        let a = slots.insert(task("a")).unwrap();
        let b = slots.insert(task("b")).unwrap();
        let c = slots.insert(task("c")).unwrap();
        // `b` sits in overflow: evicting it leaves the index to `a`.
        assert_eq!(slots.evict(b).map(|(waiters, _)| waiters), Some(0));
        assert_eq!(
            [
                slots.find(&id("a")),
                slots.find(&id("b")),
                slots.find(&id("c"))
            ],
            [Some(a), None, Some(c)]
        );
        // `a` holds the index entry: evicting it hands the hash to `c`.
        assert_eq!(slots.evict(a).map(|(waiters, _)| waiters), Some(0));
        assert_eq!(
            [
                slots.find(&id("a")),
                slots.find(&id("b")),
                slots.find(&id("c"))
            ],
            [None, None, Some(c)]
        );
        assert_eq!(slots.evict(c).map(|(waiters, _)| waiters), Some(0));
        assert_eq!(slots.len(), 0);
        assert!(
            slots.evict(c).is_none(),
            "an empty slot has nothing to evict"
        );
    }
}
