//! Who sleeps on the memory backend, and the wake-ups an operation owes them once the lock is released.
//!
//! See `README.md` in this folder for the protocol and why it cannot lose a wake-up.

use std::time::Duration;

use crate::sync::{Condvar, MutexGuard};

use super::state::State;

/// How many condition variables `wait` callers are spread over: a finished
/// task wakes only the waiters on its stripe. Loom gets two, to keep its
/// search small while still covering a wake-up on a shared stripe.
#[cfg(not(workmill_loom))]
pub(crate) const RESULT_STRIPES: usize = 16;
#[cfg(workmill_loom)]
pub(crate) const RESULT_STRIPES: usize = 2;

/// The stripe of the task in `slot`.
pub(crate) fn stripe(slot: u32) -> usize {
    slot as usize % RESULT_STRIPES
}

/// The stripe of the job numbered `uid`: job waiters share the result stripes (a task's
/// waiters woken for a job see a spurious wake-up, and look again).
pub(crate) fn job_stripe(uid: u64) -> usize {
    // The remainder is below `RESULT_STRIPES`, so it fits.
    usize::try_from(uid % RESULT_STRIPES as u64).unwrap_or(0)
}

/// Threads blocked on the queue, counted under its lock so that an operation
/// notifies only when someone sleeps.
#[derive(Debug, Default)]
pub(crate) struct Sleepers {
    /// Workers in `await_work`.
    pub(crate) workers: u64,
    /// Producers in a bounded `enqueue` waiting for room.
    pub(crate) producers: u64,
    /// Callers of `wait_idle`.
    pub(crate) idle: u64,
}

/// Wake-ups owed by the operations done under the current lock.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    /// A task became available to workers (see [`Notices::take`] for whom that wakes).
    pub(crate) work: bool,
    /// A delayed task became the earliest due, or a lease the earliest to lapse: a sleeping
    /// worker may have to shorten its sleep. A worker sleeps no later than the earliest due
    /// time and lease expiry it saw, so only a new earliest one can fall before every
    /// sleeper's deadline. A reason of its own, so that it wakes a worker besides the one
    /// woken for work (which may be busy with that work when the time comes).
    pub(crate) earlier_due: bool,
    /// True if waiting tasks left, making room under a capacity bound.
    pub(crate) room: bool,
    /// Result stripes with a waiter whose task finished or went away, or whose job ended or
    /// went away.
    results: u64,
}

impl Wakes {
    /// Marks the waiters on the task in `slot` for a wake-up.
    pub(crate) fn wake_waiters_of(&mut self, slot: u32) {
        self.results |= 1 << stripe(slot);
    }

    /// Marks the waiters on the job numbered `uid` for a wake-up.
    pub(crate) fn wake_job_waiters(&mut self, uid: u64) {
        self.results |= 1 << job_stripe(uid);
    }
}

/// The notifications to send after unlocking, taken from the state by [`Notices::take`].
#[derive(Debug, Default)]
#[must_use = "notices must be sent once the lock is released"]
pub(crate) struct Notices {
    /// How many workers to wake: one for work, one for an earlier due time.
    work: u64,
    all_workers: bool,
    room: bool,
    idle: bool,
    results: u64,
}

impl Notices {
    /// Takes the wake-ups owed by `state`, keeping only those someone waits for.
    ///
    /// Work wakes one sleeping worker per operation, however many tasks it made available
    /// (and a delayed task that became the earliest due wakes one more, to shorten its sleep):
    /// a worker that reserves and leaves ready tasks behind passes the wake-up on to the
    /// next sleeper (`State::reserve`), so every task still reaches an idle worker, one
    /// wake-up latency after the other. Waking one per task instead woke both workers of a
    /// two-core machine for every submitted batch; once they drained it faster than the
    /// producer refilled it, their wake-ups kept preempting the producer, and a fifth of the
    /// end-to-end bench's rounds took twice as long.
    pub(crate) fn take(state: &mut State) -> Notices {
        let wakes = std::mem::take(&mut state.wakes);
        let sleepers = &state.sleepers;
        let idle = sleepers.idle > 0 && state.active() == 0;
        Notices {
            work: (u64::from(wakes.work) + u64::from(wakes.earlier_due)).min(sleepers.workers),
            all_workers: false,
            room: wakes.room && sleepers.producers > 0,
            idle,
            results: wakes.results,
        }
    }

    /// Wakes every worker, whatever the state.
    pub(crate) fn all_workers() -> Notices {
        Notices {
            all_workers: true,
            ..Notices::default()
        }
    }
}

/// The condition variables of one memory queue.
#[derive(Debug)]
pub(crate) struct Signals {
    /// Workers in `await_work`.
    work: Condvar,
    /// Producers waiting for room.
    room: Condvar,
    /// Callers of `wait_idle`.
    idle: Condvar,
    /// Callers of `wait` by the slot of their task, and of `wait_job_while` by their job's uid.
    results: [Condvar; RESULT_STRIPES],
}

impl Signals {
    pub(crate) fn new() -> Signals {
        Signals {
            work: Condvar::new(),
            room: Condvar::new(),
            idle: Condvar::new(),
            results: std::array::from_fn(|_| Condvar::new()),
        }
    }

    /// Sends `notices`. Called after the lock is released, which is safe: a
    /// sleeper registered itself and started waiting under the lock, before
    /// the state change that owes it a wake-up.
    pub(crate) fn send(&self, notices: Notices) {
        if notices.all_workers {
            self.work.notify_all();
        } else {
            for _ in 0..notices.work {
                self.work.notify_one();
            }
        }
        if notices.room {
            self.room.notify_all();
        }
        if notices.idle {
            self.idle.notify_all();
        }
        let mut stripes = notices.results;
        while stripes != 0 {
            let stripe = stripes.trailing_zeros() as usize;
            self.results[stripe].notify_all();
            stripes &= stripes - 1;
        }
    }

    /// Wakes every thread waiting for a result or a job, on every stripe, and every producer
    /// waiting for room.
    pub(crate) fn wake_all_waiters(&self) {
        for stripe in &self.results {
            stripe.notify_all();
        }
        self.room.notify_all();
    }

    /// Sleeps on the work signal for at most `timeout`.
    pub(crate) fn sleep_for_work<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        wait(&self.work, guard, timeout)
    }

    /// Sleeps on the room signal for at most `timeout`.
    pub(crate) fn sleep_for_room<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        wait(&self.room, guard, timeout)
    }

    /// Sleeps on the idle signal for at most `timeout`.
    pub(crate) fn sleep_for_idle<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        wait(&self.idle, guard, timeout)
    }

    /// Sleeps on result stripe `stripe` (a task's [`stripe`], a job's [`job_stripe`]) for at
    /// most `timeout`.
    pub(crate) fn sleep_on_stripe<'a>(
        &self,
        stripe: usize,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        wait(&self.results[stripe], guard, timeout)
    }
}

fn wait<'a>(
    condvar: &Condvar,
    guard: MutexGuard<'a, State>,
    timeout: Duration,
) -> MutexGuard<'a, State> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}
