//! How idle workers fall asleep and how publishers wake them without losing a wake-up; the protocol is in `README.md` here.

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::heartbeat::DEFAULT_INTERVAL;
use crate::latch::CoreLatch;
use crate::sync::{
    AtomicBool, AtomicUsize, Condvar, Mutex, Ordering, fence, lock, thread, wait, wait_timeout,
};

/// The longest heartbeat nap that is a plain sleep rather than a condvar wait that shutdown ends.
const PLAIN_SLEEP_MAX: Duration = Duration::from_millis(1);

/// Searches for work (each a `thread::yield_now`) before a worker announces it is sleepy.
#[cfg(not(workmill_loom))]
const ROUNDS_UNTIL_SLEEPY: u32 = 32;
/// Under loom, no spinning: loom treats a yield as "cannot progress until
/// another thread does", which would hide the races the model must explore.
#[cfg(workmill_loom)]
const ROUNDS_UNTIL_SLEEPY: u32 = 0;

/// `counters` packs two numbers: the sleeping threads in the low bits and the
/// jobs event counter (JEC) above them. An odd JEC means "someone is sleepy".
const SLEEPING_BITS: u32 = 16;
const ONE_SLEEPING: usize = 1;
const SLEEPING_MASK: usize = (1 << SLEEPING_BITS) - 1;
/// The most workers a pool may have: every one of them asleep must fit the count.
pub(crate) const MAX_THREADS: usize = SLEEPING_MASK;
const ONE_JOB_EVENT: usize = 1 << SLEEPING_BITS;

fn jec(counters: usize) -> usize {
    counters >> SLEEPING_BITS
}

fn sleeping(counters: usize) -> usize {
    counters & SLEEPING_MASK
}

/// The sleep state of the whole pool.
pub(crate) struct Sleep {
    counters: CachePadded<AtomicUsize>,
    workers: Box<[CachePadded<WorkerSleepState>]>,
    heartbeat: HeartbeatGate,
    /// The heartbeat's tick count and whether it naps long; read on every first join frame.
    beat: CachePadded<Beat>,
    /// True when the pool runs without a heartbeat: [`Sleep::ticks`] then
    /// counts intervals of the clock since `started` instead.
    clock_ticks: bool,
    /// When the pool was built, for the clock's ticks.
    started: Instant,
}

struct WorkerSleepState {
    /// True while the worker is blocked on `condvar`; cleared by whoever wakes it.
    is_blocked: Mutex<bool>,
    condvar: Condvar,
    /// Times this worker parked and was woken; written by the worker only.
    parks: AtomicUsize,
    wake_ups: AtomicUsize,
}

/// What a worker sharing a first join frame reads of the heartbeat.
struct Beat {
    /// Heartbeat ticks so far; advances only while the heartbeat runs (some
    /// workers busy and some asleep). Written by the heartbeat thread only.
    ticks: AtomicUsize,
    /// True while the heartbeat naps longer than its interval because no
    /// frame was shared for a while; a worker sharing a frame a tick should
    /// watch clears it and rouses the heartbeat ([`Sleep::rouse_heartbeat`]).
    stretched: AtomicBool,
    /// Rouses so far, for the tests.
    rouses: AtomicUsize,
}

/// Where the heartbeat thread parks while waking sleepers cannot help (nobody sleeps, or everybody does).
struct HeartbeatGate {
    parked: AtomicBool,
    terminated: AtomicBool,
    mutex: Mutex<()>,
    condvar: Condvar,
}

/// A worker's progress towards sleep while it finds no work.
#[derive(Debug)]
pub(crate) struct IdleState {
    worker: usize,
    rounds: u32,
    /// The JEC value this worker saw when it announced it was sleepy.
    sleepy_jec: usize,
}

impl IdleState {
    /// Whether the worker has announced that it is sleepy: its next search
    /// is the last before it sleeps.
    pub(crate) fn is_sleepy(&self) -> bool {
        self.rounds > ROUNDS_UNTIL_SLEEPY
    }

    /// Back to searching from the start.
    fn wake_fully(&mut self) {
        self.rounds = 0;
    }

    /// New work appeared while we were sleepy: search once more, then announce again.
    fn wake_partly(&mut self) {
        self.rounds = ROUNDS_UNTIL_SLEEPY;
    }
}

impl Sleep {
    /// The sleep state of `num_threads` workers. `clock_ticks` is for a pool with no
    /// heartbeat thread: no ticks would ever be counted and no job would ever look long, so
    /// [`Sleep::ticks`] reads the clock instead.
    pub(crate) fn new(num_threads: usize, clock_ticks: bool) -> Sleep {
        Sleep {
            counters: CachePadded::new(AtomicUsize::new(0)),
            workers: (0..num_threads)
                .map(|_| {
                    CachePadded::new(WorkerSleepState {
                        is_blocked: Mutex::new(false),
                        condvar: Condvar::new(),
                        parks: AtomicUsize::new(0),
                        wake_ups: AtomicUsize::new(0),
                    })
                })
                .collect(),
            heartbeat: HeartbeatGate {
                parked: AtomicBool::new(false),
                terminated: AtomicBool::new(false),
                mutex: Mutex::new(()),
                condvar: Condvar::new(),
            },
            beat: CachePadded::new(Beat {
                ticks: AtomicUsize::new(0),
                stretched: AtomicBool::new(false),
                rouses: AtomicUsize::new(0),
            }),
            clock_ticks,
            started: Instant::now(),
        }
    }

    /// The heartbeat ticks so far; without a heartbeat, the default heartbeat
    /// intervals since the pool was built.
    #[inline]
    pub(crate) fn ticks(&self) -> usize {
        if self.clock_ticks {
            let elapsed = self.started.elapsed().as_nanos() / DEFAULT_INTERVAL.as_nanos();
            elapsed as usize
        } else {
            self.heartbeats()
        }
    }

    /// The heartbeat's own ticks so far (zero without a heartbeat), for the metrics.
    pub(crate) fn heartbeats(&self) -> usize {
        self.beat.ticks.load(Ordering::Relaxed)
    }

    /// For the heartbeat thread: one more tick.
    pub(crate) fn tick(&self) {
        bump(&self.beat.ticks);
    }

    /// For the heartbeat thread: waits `length` before the next tick. The nap is a timed
    /// wait on the heartbeat's condvar, which ends early when the pool terminates, or, for a
    /// `stretched` nap (longer than the heartbeat's interval, taken while no frame was
    /// shared), when a worker rouses it ([`Sleep::rouse_heartbeat`]); returns true if a
    /// rouse ended it. A short plain nap (up to [`PLAIN_SLEEP_MAX`]) is a plain sleep, as the
    /// heartbeat always took: made a timed condvar wait too, it left a 50M-element
    /// memory-bound sum 5-10% slower against a two-thread `std` sum in the same run (a cause
    /// we did not find); shutdown then waits for it, which is at most that long.
    pub(crate) fn heartbeat_nap(&self, length: Duration, stretched: bool) -> bool {
        if !stretched && length <= PLAIN_SLEEP_MAX {
            // `std`'s sleep, not `sync`'s: loom has none, and the heartbeat never runs under
            // loom (the builder starts none there).
            std::thread::sleep(length);
            return false;
        }
        let gate = &self.heartbeat;
        let mut guard = lock(&gate.mutex);
        // Set under the mutex: a worker that sees it true notifies under the
        // mutex too, so its notification cannot fall before our wait below.
        self.beat.stretched.store(stretched, Ordering::Relaxed);
        // A nap too long for the clock to represent ends only when notified.
        let deadline = Instant::now().checked_add(length);
        let roused = loop {
            if gate.terminated.load(Ordering::SeqCst) {
                break false;
            }
            if stretched && !self.beat.stretched.load(Ordering::Relaxed) {
                break true;
            }
            guard = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break false;
                    }
                    wait_timeout(&gate.condvar, guard, deadline - now)
                }
                None => wait(&gate.condvar, guard),
            };
        };
        self.beat.stretched.store(false, Ordering::Relaxed);
        drop(guard);
        roused
    }

    /// A worker shared a first frame that only the heartbeat will wake a sleeper for: if the
    /// heartbeat naps long, end the nap, so that the frame waits at most a tick or two.
    #[inline]
    pub(crate) fn rouse_heartbeat(&self) {
        if self.beat.stretched.load(Ordering::Relaxed) {
            self.rouse_heartbeat_cold();
        }
    }

    #[cold]
    #[inline(never)]
    fn rouse_heartbeat_cold(&self) {
        // Only the worker that clears the flag notifies.
        if self.beat.stretched.swap(false, Ordering::Relaxed) {
            self.beat.rouses.fetch_add(1, Ordering::Relaxed);
            let _guard = lock(&self.heartbeat.mutex);
            self.heartbeat.condvar.notify_one();
        }
    }

    /// Times a worker cut a long nap of the heartbeat short.
    #[cfg(test)]
    pub(crate) fn rouses(&self) -> usize {
        self.beat.rouses.load(Ordering::Relaxed)
    }

    /// A worker found no work and starts counting rounds.
    #[inline]
    pub(crate) fn start_looking(&self, worker: usize) -> IdleState {
        IdleState {
            worker,
            rounds: 0,
            sleepy_jec: 0,
        }
    }

    /// One more search found nothing: spin, announce sleepiness, or sleep.
    ///
    /// The caller searches again after every call, and stops calling once
    /// `latch` is set or it found work.
    pub(crate) fn no_work_found(&self, idle: &mut IdleState, latch: &CoreLatch) {
        if idle.rounds < ROUNDS_UNTIL_SLEEPY {
            thread::yield_now();
            idle.rounds += 1;
        } else if idle.rounds == ROUNDS_UNTIL_SLEEPY {
            idle.sleepy_jec = self.announce_sleepy();
            idle.rounds += 1;
        } else {
            self.sleep(idle, latch);
        }
    }

    /// Makes the JEC odd ("someone is sleepy") and returns the value seen.
    fn announce_sleepy(&self) -> usize {
        let sleepy = loop {
            let counters = self.counters.load(Ordering::SeqCst);
            if !jec(counters).is_multiple_of(2) {
                break jec(counters);
            }
            if self
                .counters
                .compare_exchange_weak(
                    counters,
                    counters + ONE_JOB_EVENT,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                break jec(counters) + 1;
            }
        };
        // Pairs with the fence in `new_jobs`: either the publisher sees this
        // announcement, or the search that follows sees the published job.
        fence(Ordering::SeqCst);
        sleepy
    }

    fn sleep(&self, idle: &mut IdleState, latch: &CoreLatch) {
        if !latch.get_sleepy() {
            return;
        }
        let state = &self.workers[idle.worker];
        let mut is_blocked = lock(&state.is_blocked);
        if !latch.fall_asleep() {
            idle.wake_fully();
            return;
        }
        loop {
            let counters = self.counters.load(Ordering::SeqCst);
            if jec(counters) != idle.sleepy_jec {
                // A job was published since we announced sleepiness.
                drop(is_blocked);
                idle.wake_partly();
                latch.wake_up();
                return;
            }
            if self
                .counters
                .compare_exchange(
                    counters,
                    counters + ONE_SLEEPING,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                break;
            }
        }
        *is_blocked = true;
        bump(&state.parks);
        self.poke_heartbeat();
        while *is_blocked {
            is_blocked = wait(&state.condvar, is_blocked);
        }
        drop(is_blocked);
        bump(&state.wake_ups);
        idle.wake_fully();
        latch.wake_up();
    }

    /// Jobs were pushed where workers look for them: wake one sleeper if any.
    ///
    /// Call after the push; the fence orders the push before the read of the counters.
    #[inline]
    pub(crate) fn new_jobs(&self) {
        if self.publish() > 0 {
            self.wake_any();
        }
    }

    /// Jobs were pushed for every worker (a broadcast): wake every sleeper.
    pub(crate) fn new_jobs_for_all(&self) {
        if self.publish() > 0 {
            for index in 0..self.workers.len() {
                self.wake_specific(index);
            }
        }
    }

    /// Bumps the JEC if someone is sleepy; returns the number of sleepers.
    #[inline]
    fn publish(&self) -> usize {
        fence(Ordering::SeqCst);
        loop {
            let counters = self.counters.load(Ordering::SeqCst);
            if jec(counters).is_multiple_of(2) {
                return sleeping(counters);
            }
            if self
                .counters
                .compare_exchange_weak(
                    counters,
                    counters + ONE_JOB_EVENT,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return sleeping(counters);
            }
        }
    }

    /// Wakes one sleeping worker, if there is one.
    pub(crate) fn wake_any(&self) -> bool {
        (0..self.workers.len()).any(|index| self.wake_specific(index))
    }

    /// Wakes worker `index` if it is blocked; true if it was.
    pub(crate) fn wake_specific(&self, index: usize) -> bool {
        let state = &self.workers[index];
        let mut is_blocked = lock(&state.is_blocked);
        if !*is_blocked {
            return false;
        }
        *is_blocked = false;
        state.condvar.notify_one();
        // Decremented here, under the lock, so that no other publisher counts
        // this worker as asleep and tries to wake it again.
        self.counters.fetch_sub(ONE_SLEEPING, Ordering::SeqCst);
        drop(is_blocked);
        self.poke_heartbeat();
        true
    }

    /// Workers blocked right now.
    pub(crate) fn sleeping_threads(&self) -> usize {
        sleeping(self.counters.load(Ordering::SeqCst))
    }

    /// Whether worker `index` is blocked right now.
    pub(crate) fn is_parked(&self, index: usize) -> bool {
        *lock(&self.workers[index].is_blocked)
    }

    /// (parks, wake-ups) of worker `index`.
    pub(crate) fn park_counts(&self, index: usize) -> (usize, usize) {
        let state = &self.workers[index];
        (
            state.parks.load(Ordering::Relaxed),
            state.wake_ups.load(Ordering::Relaxed),
        )
    }

    /// True while waking sleepers can put shared work to use: some sleep, some work.
    fn heartbeat_useful(&self) -> bool {
        let asleep = self.sleeping_threads();
        asleep > 0 && asleep < self.workers.len()
    }

    fn poke_heartbeat(&self) {
        if self.heartbeat.parked.load(Ordering::SeqCst) {
            let _guard = lock(&self.heartbeat.mutex);
            self.heartbeat.condvar.notify_one();
        }
    }

    /// For the heartbeat thread: blocks while a tick could do nothing useful.
    /// Returns `None` once the pool terminated, and otherwise whether it had
    /// to block first.
    pub(crate) fn heartbeat_wait_until_useful(&self) -> Option<bool> {
        let gate = &self.heartbeat;
        let mut guard = lock(&gate.mutex);
        let mut blocked = false;
        loop {
            if gate.terminated.load(Ordering::SeqCst) {
                return None;
            }
            gate.parked.store(true, Ordering::SeqCst);
            // Pairs with `poke_heartbeat`: a sleeper count that changes after
            // this read is followed by a poke that sees `parked` and notifies
            // under the mutex, which we hold until `wait` releases it.
            if self.heartbeat_useful() {
                gate.parked.store(false, Ordering::SeqCst);
                return Some(blocked);
            }
            guard = wait(&gate.condvar, guard);
            gate.parked.store(false, Ordering::SeqCst);
            blocked = true;
        }
    }

    /// Tells the heartbeat thread to exit.
    pub(crate) fn terminate_heartbeat(&self) {
        let gate = &self.heartbeat;
        gate.terminated.store(true, Ordering::SeqCst);
        let _guard = lock(&gate.mutex);
        gate.condvar.notify_all();
    }

    pub(crate) fn heartbeat_terminated(&self) -> bool {
        self.heartbeat.terminated.load(Ordering::SeqCst)
    }
}

/// Adds one to a counter that only its owner writes (a plain load and store, no read-modify-write).
#[inline]
pub(crate) fn bump(counter: &AtomicUsize) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests;
