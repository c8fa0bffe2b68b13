//! `Slots`: the memory backend's task table, a slab of records indexed by id, whose positions lease tokens encode.

use std::collections::HashMap;

use workmill_core::{QueueError, TaskId, TaskRecord, Timestamp, WorkerId};

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
}

#[derive(Debug, Default)]
struct Cell {
    /// Counts the reservations made in this slot, by any occupant; the low
    /// half of a lease token. It never resets, so a token is never reused.
    reservations: u32,
    task: Option<Task>,
}

/// A slab of tasks with an index by id.
///
/// A lease token is `slot << 32 | reservation count`, so completing or
/// failing a task finds it without hashing its id, and a stale token (an
/// older reservation of the same slot) never matches.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    cells: Vec<Cell>,
    free: Vec<u32>,
    index: HashMap<TaskId, u32>,
}

impl Slots {
    /// How many tasks it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The slot of task `id`.
    pub(crate) fn find(&self, id: &TaskId) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The slot of task `id`, or `NotFound`.
    pub(crate) fn slot_of(&self, id: &TaskId) -> Result<u32, QueueError> {
        self.find(id)
            .ok_or_else(|| QueueError::NotFound { id: id.clone() })
    }

    /// Adds `task`, or refuses it with its id if the id is taken.
    pub(crate) fn insert(&mut self, task: Task) -> Result<u32, TaskId> {
        use std::collections::hash_map::Entry;
        let slot = match self.free.last() {
            Some(&slot) => slot,
            None => u32::try_from(self.cells.len()).unwrap_or(u32::MAX),
        };
        match self.index.entry(task.record.id.clone()) {
            Entry::Occupied(_) => return Err(task.record.id),
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
            }
        }
        if self.free.pop().is_none() {
            self.cells.push(Cell::default());
        }
        self.cells[slot as usize].task = Some(task);
        Ok(slot)
    }

    /// Removes the task in `slot`.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Task> {
        let task = self.cells.get_mut(slot as usize)?.task.take()?;
        self.index.remove(&task.record.id);
        self.free.push(slot);
        Some(task)
    }

    /// The task in `slot`.
    pub(crate) fn get(&self, slot: u32) -> Option<&Task> {
        self.cells.get(slot as usize)?.task.as_ref()
    }

    /// The task in `slot`, to change.
    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Task> {
        self.cells.get_mut(slot as usize)?.task.as_mut()
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
            .filter_map(|(slot, cell)| Some((slot as u32, cell.task.as_ref()?)))
    }
}
