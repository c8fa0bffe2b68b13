//! `State`: everything the memory backend guards with its one lock, and the operations that add and hand out tasks.
//!
//! The operations that finish, fail, hand back and remove tasks are in
//! `transitions.rs`. Every status change goes through [`set_status`],
//! which asks [`TaskStatus::transition`] and keeps the gauges of
//! [`QueueStats`] in step, so the stats add up after every operation.

use std::collections::VecDeque;
use std::time::Duration;

use workmill_core::{
    Failure, FailureKind, IllegalTransition, Lease, NewTask, QueueError, QueueKey, QueueStats,
    Reservation, TaskRecord, TaskStatus, Timestamp, Transition, WorkerId,
};

use super::config::MemoryConfig;
use super::jobs::{JobLink, Jobs};
use super::ready::ReadyQueue;
use super::slots::{HashId, NOT_FINISHED, Slots, Task};
use super::timers::{Due, Expiry, Timers};
use super::wake::{Sleepers, Wakes};
use crate::sync::{Mutex, lock};

/// The memory backend's tasks, queues, timers and counters.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) slots: Slots,
    pub(crate) ready: ReadyQueue<u32>,
    pub(crate) timers: Timers,
    /// Finished tasks in the order they finished: their finish numbers, slots, and whether
    /// they held nothing elsewhere as they finished ([`Task::holds_nothing_elsewhere`]).
    pub(crate) finished: VecDeque<Finished>,
    /// Finished records still held (not evicted or purged).
    pub(crate) retained_finished: usize,
    pub(crate) stats: QueueStats,
    pub(crate) next_seq: u64,
    next_uid: u64,
    pub(crate) next_finish: u64,
    pub(crate) config: MemoryConfig,
    /// Threads sleeping on the queue's signals.
    pub(crate) sleepers: Sleepers,
    /// Wake-ups owed once the lock is released.
    pub(crate) wakes: Wakes,
    /// Map-reduce jobs and the reduce ids they hold back.
    pub(crate) jobs: Jobs,
    /// Evicted records, and whether they hold nothing elsewhere, dealt with by whoever
    /// releases the lock, after releasing it.
    pub(crate) graveyard: Vec<Evicted>,
    /// Scratch space of [`State::evict_excess`], kept to reuse its allocation: the finished
    /// entries due to go.
    pub(crate) doomed: Vec<Finished>,
    /// Scratch space of [`State::evict_excess`]: the finished entries due to go whose waiters
    /// have not read them yet, put back at the front of the finished list.
    pub(crate) awaited: Vec<Finished>,
}

/// An entry of the finished list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finished {
    pub(crate) seq: u64,
    pub(crate) slot: u32,
    /// [`Task::holds_nothing_elsewhere`] as the task finished.
    pub(crate) clean: bool,
    /// True if threads waited on the task (or, for a reduce, on its job) as it finished: woken
    /// then, they read the record when they next hold the lock, so [`State::evict_excess`]
    /// keeps it until they have.
    pub(crate) awaited: bool,
}

/// An evicted record on its way out (see [`State::graveyard`]).
#[derive(Debug)]
pub(crate) struct Evicted {
    pub(crate) task: Box<Task>,
    /// [`Task::holds_nothing_elsewhere`] as the task finished: if true, it needs no emptying.
    pub(crate) clean: bool,
}

impl State {
    pub(crate) fn new(config: MemoryConfig) -> State {
        State {
            slots: Slots::default(),
            ready: ReadyQueue::new(),
            timers: Timers::default(),
            finished: VecDeque::new(),
            retained_finished: 0,
            stats: QueueStats::default(),
            next_seq: 0,
            next_uid: 0,
            next_finish: NOT_FINISHED + 1,
            config,
            sleepers: Sleepers::default(),
            wakes: Wakes::default(),
            jobs: Jobs::default(),
            graveyard: Vec::new(),
            doomed: Vec::new(),
            awaited: Vec::new(),
        }
    }

    /// Tasks not yet started: pending (delayed ones included) and retrying.
    pub(crate) fn waiting(&self) -> u64 {
        self.stats.pending + self.stats.retrying
    }

    /// Tasks not yet in a final status.
    pub(crate) fn active(&self) -> u64 {
        self.waiting() + self.stats.running
    }

    /// Whether `count` more waiting tasks fit under the capacity bound. No tasks always fit,
    /// even when retries, releases, requeues and reduces (which the bound does not refuse)
    /// have left more waiting than the capacity.
    pub(crate) fn has_room(&self, count: usize) -> bool {
        match self.config.capacity {
            Some(capacity) => {
                count == 0 || self.waiting().saturating_add(count as u64) <= capacity as u64
            }
            None => true,
        }
    }

    /// Accepts `tasks`, each with the job it belongs to if any, all together or none of them.
    ///
    /// Refuses an id that is stored, or held back as the reduce of a job still mapping.
    pub(crate) fn insert_tasks(
        &mut self,
        tasks: impl ExactSizeIterator<Item = (NewTask, Option<JobLink>)>,
        now: Timestamp,
    ) -> Result<(), QueueError> {
        let hasher = self.slots.hasher().clone();
        let prepared = tasks.map(|(new, job)| prepare(new, job, now, &hasher));
        self.insert_prepared(prepared, now)
    }

    /// [`State::insert_tasks`] for records built by [`prepare`], perhaps before the lock was taken.
    ///
    /// The caller has checked each task's policy and payload, and the capacity
    /// bound with [`State::has_room`]; what is left to refuse is a taken id. It returns
    /// nothing: a caller that wants the ids takes them before the lock (an id read from
    /// a record just built can still cost a cache miss, here paid under the lock).
    pub(crate) fn insert_prepared(
        &mut self,
        tasks: impl ExactSizeIterator<Item = Box<Task>>,
        now: Timestamp,
    ) -> Result<(), QueueError> {
        let mut slots = Vec::with_capacity(tasks.len());
        for mut task in tasks {
            if self.jobs.holds(&task.record.id) {
                for slot in slots {
                    self.slots.remove(slot);
                }
                return Err(QueueError::DuplicateTask { id: task.record.id });
            }
            task.seq = self.next_seq;
            self.next_seq += 1;
            self.next_uid += 1;
            task.uid = self.next_uid;
            match self.slots.insert(task) {
                Ok(slot) => slots.push(slot),
                Err(id) => {
                    // Undo this batch: nothing was queued or counted yet.
                    for slot in slots {
                        self.slots.remove(slot);
                    }
                    return Err(QueueError::DuplicateTask { id });
                }
            }
        }
        self.stats.submitted += slots.len() as u64;
        self.stats.pending += slots.len() as u64;
        for slot in slots {
            self.schedule(slot, now);
        }
        Ok(())
    }

    /// Puts a waiting task where workers will find it: the ready queue if it is
    /// due, the delayed set otherwise.
    pub(crate) fn schedule(&mut self, slot: u32, now: Timestamp) {
        let Some(task) = self.slots.get(slot) else {
            return;
        };
        let (key, run_at) = (
            QueueKey::new(task.record.priority, task.seq),
            task.record.run_at,
        );
        if run_at <= now {
            self.ready.push(key, slot);
            self.wakes.work = true;
        } else {
            let earliest = self.timers.next_due().is_none_or(|next| run_at < next);
            let waiting = self.waiting();
            let slots = &self.slots;
            self.timers.delay(
                Due {
                    at: run_at,
                    seq: key.seq,
                    slot,
                },
                waiting,
                |due| due_is_live(slots, due),
            );
            // An idle worker may be sleeping past this task's time; let one recompute.
            if earliest {
                self.wakes.earlier_due = true;
            }
        }
    }

    /// Moves delayed tasks that are due by `now` to the ready queue.
    pub(crate) fn promote_due(&mut self, now: Timestamp) {
        while let Some(due) = self.timers.pop_due(now) {
            if let Some(task) = self.slots.get(due.slot)
                && task.seq == due.seq
                && task.record.status.is_waiting()
            {
                self.ready
                    .push(QueueKey::new(task.record.priority, task.seq), due.slot);
            }
        }
    }

    /// The slot of the next valid ready entry, dropping stale entries on the way.
    pub(crate) fn peek_ready(&mut self) -> Option<u32> {
        while let Some((key, &slot)) = self.ready.peek() {
            if self.is_ready(slot, key) {
                return Some(slot);
            }
            self.ready.pop();
        }
        None
    }

    /// True if the ready entry `(key, slot)` still stands for a waiting task.
    fn is_ready(&self, slot: u32, key: QueueKey) -> bool {
        self.slots.get(slot).is_some_and(|task| {
            task.seq == key.seq
                && task.record.priority == key.priority
                && task.record.status.is_waiting()
        })
    }

    /// Leases up to `max` due tasks to `worker`, in `QueueKey` order.
    pub(crate) fn reserve(
        &mut self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
        now: Timestamp,
    ) -> Vec<Reservation> {
        self.rescue_expired(now);
        self.promote_due(now);
        let mut out = Vec::with_capacity(max.min(self.ready.len()));
        let expires_at = now.saturating_add(lease);
        // A sleeping worker sleeps no later than the earliest expiry it saw; a lease that
        // lapses before every one in the heap may lapse before it wakes (see `Wakes`).
        let earliest = self.sleepers.workers > 0
            && self
                .timers
                .next_expiry()
                .is_none_or(|next| expires_at < next);
        while out.len() < max {
            let Some((key, slot)) = self.ready.pop() else {
                break;
            };
            if !self.is_ready(slot, key) {
                continue;
            }
            let token = self.slots.next_token(slot);
            let Some(task) = self.slots.get_mut(slot) else {
                continue;
            };
            if set_status(&mut self.stats, task, TaskStatus::Running).is_err() {
                continue;
            }
            let record = &mut task.record;
            record.attempts += 1;
            task.before_reserve = (
                record.started_at.replace(now),
                record.worker.replace(worker.clone()),
            );
            task.lease_expires = expires_at;
            out.push(Reservation {
                lease: Lease {
                    task: record.id.clone(),
                    token,
                    expires_at,
                },
                name: record.name.clone(),
                payload: record.payload.clone(),
                priority: record.priority,
                attempt: record.attempts,
                retry: record.retry.clone(),
            });
            let slots = &self.slots;
            self.timers.lease(
                Expiry {
                    at: expires_at,
                    token,
                },
                self.stats.running,
                |expiry| lease_is_live(slots, expiry),
            );
        }
        if !out.is_empty() {
            self.wakes.room = true;
            self.wakes.earlier_due |= earliest;
        }
        // Ready tasks left behind: pass the wake-up on to one more sleeping worker (see
        // `Notices::take`).
        if self.sleepers.workers > 0 && !self.ready.is_empty() {
            self.wakes.work = true;
        }
        out
    }

    /// The slot of the task `lease` holds, if the lease is still held.
    pub(crate) fn held(&self, lease: &Lease) -> Result<u32, QueueError> {
        let (slot, latest) = self.slots.token_slot(lease.token);
        match self.slots.get(slot) {
            Some(task) if task.record.id == lease.task => {
                if latest && task.record.status == TaskStatus::Running {
                    Ok(slot)
                } else {
                    Err(lease_lost(lease))
                }
            }
            _ if self.slots.find(&lease.task).is_some() => Err(lease_lost(lease)),
            _ => Err(QueueError::NotFound {
                id: lease.task.clone(),
            }),
        }
    }

    /// Treats every lease that lapsed by `now` as a failed attempt; returns how many.
    pub(crate) fn rescue_expired(&mut self, now: Timestamp) -> u64 {
        let mut rescued = 0;
        while let Some(expiry) = self.timers.pop_expired(now) {
            let (slot, latest) = self.slots.token_slot(expiry.token);
            let Some(task) = self.slots.get(slot) else {
                continue;
            };
            // A heartbeat moved the expiry later and left a later entry of its own.
            if !latest || task.record.status != TaskStatus::Running || task.lease_expires > now {
                continue;
            }
            let message = format!(
                "lease {} held by worker {} lapsed at {} without a heartbeat",
                expiry.token,
                task.record
                    .worker
                    .as_ref()
                    .map_or("(unknown)", WorkerId::as_str),
                task.lease_expires,
            );
            self.stats.expired_leases += 1;
            rescued += 1;
            // The task is running under this token, so the failure is recorded.
            let id = task.record.id.clone();
            let _ = self.fail_slot(
                slot,
                &id,
                Failure::new(FailureKind::LeaseExpired, message),
                now,
            );
        }
        rescued
    }
}

/// Moves `task` to `to` if the lifecycle allows it, keeping the gauges in step.
pub(crate) fn set_status(
    stats: &mut QueueStats,
    task: &mut Task,
    to: TaskStatus,
) -> Result<Transition, QueueError> {
    let from = task.record.status;
    let transition =
        from.transition(to)
            .map_err(|source: IllegalTransition| QueueError::IllegalTransition {
                id: task.record.id.clone(),
                source,
            })?;
    *gauge(stats, from) -= 1;
    *gauge(stats, to) += 1;
    task.record.status = to;
    Ok(transition)
}

/// The stats gauge that counts tasks in `status`.
pub(crate) fn gauge(stats: &mut QueueStats, status: TaskStatus) -> &mut u64 {
    match status {
        TaskStatus::Pending => &mut stats.pending,
        TaskStatus::Running => &mut stats.running,
        TaskStatus::Retrying => &mut stats.retrying,
        TaskStatus::Completed => &mut stats.completed,
        TaskStatus::Dead => &mut stats.dead,
        TaskStatus::Cancelled => &mut stats.cancelled,
    }
}

/// True if `due` still stands for a waiting task: one cancelled, purged, or moved on since
/// (a retry or a requeue gives it a new arrival number) left a stale entry.
pub(crate) fn due_is_live(slots: &Slots, due: &Due) -> bool {
    waiting_is_live(slots, due.slot, due.seq)
}

/// True if the task in `slot` still waits under arrival number `seq`: an entry of the ready
/// or the delayed index that names it is not stale.
pub(crate) fn waiting_is_live(slots: &Slots, slot: u32, seq: u64) -> bool {
    slots
        .get(slot)
        .is_some_and(|task| task.seq == seq && task.record.status.is_waiting())
}

/// True if `expiry` is the current lease of a running task.
pub(crate) fn lease_is_live(slots: &Slots, expiry: &Expiry) -> bool {
    let (slot, latest) = slots.token_slot(expiry.token);
    latest
        && slots.get(slot).is_some_and(|task| {
            task.record.status == TaskStatus::Running && task.lease_expires == expiry.at
        })
}

fn lease_lost(lease: &Lease) -> QueueError {
    QueueError::LeaseLost {
        id: lease.task.clone(),
        token: lease.token,
    }
}

/// The stored form of a new task, built before the lock is taken where it can be: writing a
/// record of some 350 bytes into memory that is rarely in cache is the slowest part of a submit,
/// and nobody needs to wait for it; so is hashing its id with `hasher` (the slots' own). The
/// sequence and unique numbers come under the lock.
pub(crate) fn prepare<S: HashId>(
    new: NewTask,
    job: Option<JobLink>,
    now: Timestamp,
    hasher: &S,
) -> Box<Task> {
    prepare_in(None, new, job, now, hasher)
}

/// [`prepare`] into `spare`, the box of a record evicted earlier (see [`Spares`]), if there is
/// one: reusing it spares a `malloc` here and a `free` on the worker that evicted it, which
/// for records made on one thread and freed on another also contend on the allocator's lock.
pub(crate) fn prepare_in<S: HashId>(
    spare: Option<Box<Task>>,
    new: NewTask,
    job: Option<JobLink>,
    now: Timestamp,
    hasher: &S,
) -> Box<Task> {
    let task = build(new, job, now, hasher);
    match spare {
        Some(mut boxed) => {
            *boxed = task;
            boxed
        }
        None => Box::new(task),
    }
}

fn build<S: HashId>(new: NewTask, job: Option<JobLink>, now: Timestamp, hasher: &S) -> Task {
    let key = hasher.key(&new.id);
    Task {
        record: TaskRecord {
            id: new.id,
            name: new.name,
            payload: new.payload,
            status: TaskStatus::Pending,
            priority: new.priority,
            attempts: 0,
            retry: new.retry,
            created_at: now,
            run_at: new.run_at.unwrap_or(now),
            started_at: None,
            finished_at: None,
            last_error: None,
            worker: None,
            result: None,
        },
        uid: 0,
        key,
        seq: 0,
        lease_expires: Timestamp::EPOCH,
        before_reserve: (None, None),
        waiters: 0,
        job: job.map(Box::new),
    }
}

/// Boxes of evicted records kept for new ones, at most [`Spares::LIMIT`]: `MemoryQueue::unlock`
/// empties them of everything that owns memory elsewhere and puts them here, after releasing
/// the state's lock; `enqueue_batch` takes them before taking it. Behind a lock of its own,
/// taken once per batch on each side.
#[derive(Debug, Default)]
#[expect(clippy::vec_box, reason = "the boxes are what is kept")]
pub(crate) struct Spares(pub(crate) Mutex<Vec<Box<Task>>>);

impl Spares {
    /// The most boxes kept: two submit chunks' worth, some 350 KB.
    pub(crate) const LIMIT: usize = 1024;

    /// Keeps what fits of `evicted`, emptied unless they hold nothing elsewhere (see
    /// [`Task::holds_nothing_elsewhere`]); the rest are dropped here, outside the lock.
    pub(crate) fn keep(&self, mut evicted: Vec<Evicted>) {
        if evicted.is_empty() {
            return;
        }
        for gone in evicted.iter_mut().filter(|gone| !gone.clean) {
            gone.task.empty();
        }
        let mut spares = lock(&self.0);
        let room = Self::LIMIT.saturating_sub(spares.len());
        let extra = evicted.split_off(room.min(evicted.len()));
        spares.extend(evicted.into_iter().map(|gone| gone.task));
        drop(spares);
        drop(extra);
    }

    /// Up to `count` boxes to fill.
    #[expect(clippy::vec_box, reason = "the boxes are what is kept")]
    pub(crate) fn take(&self, count: usize) -> Vec<Box<Task>> {
        let mut spares = lock(&self.0);
        let from = spares.len().saturating_sub(count);
        spares.split_off(from)
    }
}
