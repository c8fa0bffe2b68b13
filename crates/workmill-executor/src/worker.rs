//! A worker thread: its deque and join frames, where it looks for work, and how it waits by working.

use std::cell::Cell;
use std::ptr;
use std::time::{Duration, Instant};

use crate::block::JobBlocks;
use crate::deque::{Steal, Worker};
use crate::frames::{LocalFrames, SharedFrames};
use crate::job::JobRef;
use crate::latch::CoreLatch;
use crate::registry::{Registry, ThreadInfo};
use crate::sleep::{IdleState, bump};
use crate::spawn::Lane;
use crate::sync::{Arc, Ordering};

#[cfg(not(workmill_loom))]
std::thread_local! {
    static WORKER_THREAD: Cell<*const WorkerThread> = const { Cell::new(ptr::null()) };
}
#[cfg(workmill_loom)]
loom::thread_local! {
    static WORKER_THREAD: Cell<*const WorkerThread> = Cell::new(ptr::null());
}

/// The state of one worker, living on its thread's stack for the thread's whole life.
pub(crate) struct WorkerThread {
    deque: Worker<JobRef>,
    frames: LocalFrames,
    index: usize,
    rng: Cell<u64>,
    /// The heartbeat tick at which this worker last started a job from a
    /// queue, or last woke a sleeper for a fresh join frame.
    wake_tick: Cell<usize>,
    /// The offers of join frames this worker watches (see [`WorkerThread::frames_ripe`]).
    sightings: Sightings,
    /// Where this worker places the scope jobs it spawns.
    blocks: JobBlocks,
    registry: Arc<Registry>,
}

/// How a search treats join frames that other workers offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Search {
    /// Claims an offer only once it has stood for [`FRAME_PATIENCE`].
    Patient,
    /// The last search before sleeping: an offer seen for the first time is
    /// watched until it ripens (then claimed) or its owner takes it back.
    /// Refusing it outright could leave it waiting while this worker sleeps:
    /// it may have been announced before this worker said it was sleepy.
    LastBeforeSleep,
    /// Claims any offer at once: the caller wants work now (`yield_now`, or
    /// a worker about to block on a `JoinHandle`).
    Now,
}

/// Spins until the oldest frame `frames` offers right now has stood for
/// [`FRAME_PATIENCE`] (true) or has gone, taken back or claimed (false).
///
/// A frame its owner takes back needs nobody; frames shared after this look
/// were shared after the caller announced it was sleepy, and the sleep
/// protocol covers them.
pub(crate) fn ripens_or_goes(frames: &SharedFrames) -> bool {
    let Some((slot, header)) = frames.oldest_live() else {
        return false;
    };
    let deadline = Instant::now() + FRAME_PATIENCE;
    loop {
        if !frames.holds(slot, header) {
            return false;
        }
        if Instant::now() >= deadline {
            return true;
        }
        std::hint::spin_loop();
    }
}

/// A victim's offer of join frames as a thief first saw it: the victim, its share count
/// then, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sighting {
    victim: usize,
    shares: usize,
    since: Instant,
}

/// The offers a thief watches, in a window of at most [`SIGHTING_SLOTS`] victims: victim `v`
/// in slot `v % slots`. In a pool of up to that many workers every victim has a slot of its
/// own; a slot per victim in any pool would cost each worker memory in proportion to the
/// pool, and the pool memory in its square (over 100 GB at `MAX_THREADS`).
///
/// Two victims that share a slot take turns: a sighting stays until it has stood for
/// [`FRAME_PATIENCE`] (then its offer is ripe and is claimed, or is gone), and only then may
/// the other victim's offer replace it. Until its turn, an offer counts as unripe, as a
/// first sighting does; the last search before sleeping waits for any offer anyway.
struct Sightings {
    slots: Box<[Cell<Option<Sighting>>]>,
}

/// The most victims a thief watches at once: 64 slots of 32 bytes, 2 KiB per worker.
const SIGHTING_SLOTS: usize = 64;

impl Sightings {
    /// The window of a worker in a pool of `num_threads`.
    fn new(num_threads: usize) -> Sightings {
        Sightings {
            slots: (0..num_threads.clamp(1, SIGHTING_SLOTS))
                .map(|_| Cell::new(None))
                .collect(),
        }
    }

    /// Whether `victim`'s offer, at share count `shares`, has stood for [`FRAME_PATIENCE`]
    /// since this thief first saw it; a first sighting is kept if its slot is free.
    fn ripe(&self, victim: usize, shares: usize, now: Instant) -> bool {
        let slot = &self.slots[victim % self.slots.len()];
        let (ripe, kept) = ripen(slot.get(), victim, shares, now);
        slot.set(Some(kept));
        ripe
    }
}

/// How long a thief watches join frames newly offered by a victim before it
/// claims one. A frame its owner takes back within this time was too small to
/// move to another core: the claim, the cold cache and the latch cost more than
/// the work (a 1023-node tree sum ran 1.5x slower with eager claims than on
/// one thread). For work worth a second core, the wait is noise.
pub(crate) const FRAME_PATIENCE: Duration = Duration::from_micros(2);

impl WorkerThread {
    /// The worker running on this thread, or null outside every pool.
    #[inline]
    pub(crate) fn current() -> *const WorkerThread {
        WORKER_THREAD.with(Cell::get)
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn belongs_to(&self, registry: &Registry) -> bool {
        ptr::eq(&*self.registry, registry)
    }

    #[inline]
    fn info(&self) -> &ThreadInfo {
        &self.registry.thread_infos[self.index]
    }

    /// Where this worker places the scope jobs it spawns.
    #[inline]
    pub(crate) fn blocks(&self) -> &JobBlocks {
        &self.blocks
    }

    #[inline]
    pub(crate) fn local_frames(&self) -> &LocalFrames {
        &self.frames
    }

    /// Pushes a spawned job on this worker's own deque.
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
    }

    /// Runs a job taken from a queue.
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        bump(&self.info().tasks_run);
        self.wake_tick.set(self.registry.sleep.ticks());
        // SAFETY: every queued job is live and runs exactly once: whoever
        // popped, stole or claimed it is the only one holding it.
        unsafe { job.execute() }
    }

    /// A join shared the first frame of a computation: wakes a sleeper for it
    /// if a whole heartbeat interval passed since the current job began or last
    /// shared a first frame (at least two ticks apart). Such a job is long and
    /// has just begun a computation, likely worth a second thread. A job that
    /// runs a stream of short computations (a loop of small joins) shares first
    /// frames more often than that and wakes nobody: woken once per tick, the
    /// other worker would take a half of some of them and make those wait for
    /// it across cores. The heartbeat still wakes a sleeper for any frame left
    /// untaken for a tick, so such a frame rouses it if it naps long (see
    /// `heartbeat.rs`). Without a heartbeat the ticks are the clock's (see
    /// [`Sleep::ticks`]).
    ///
    /// [`Sleep::ticks`]: crate::sleep::Sleep::ticks
    #[inline]
    pub(crate) fn fresh_frame_shared(&self) {
        let sleep = &self.registry.sleep;
        let now = sleep.ticks();
        if now.wrapping_sub(self.wake_tick.replace(now)) >= 2 {
            sleep.new_jobs();
        } else {
            sleep.rouse_heartbeat();
        }
    }

    /// Waits until `latch` is set, running other work meanwhile.
    #[inline]
    pub(crate) fn wait_until(&self, latch: &CoreLatch) {
        if !latch.probe() {
            self.wait_until_cold(latch, false);
        }
    }

    #[cold]
    fn wait_until_cold(&self, latch: &CoreLatch, main_loop: bool) {
        let sleep = &self.registry.sleep;
        let mut idle: Option<IdleState> = None;
        while !latch.probe() {
            let search = match &idle {
                Some(state) if state.is_sleepy() => Search::LastBeforeSleep,
                _ => Search::Patient,
            };
            if let Some(job) = self.find_work(search) {
                if idle.take().is_some() && main_loop {
                    self.info().idle.store(false, Ordering::Relaxed);
                }
                self.execute(job);
                continue;
            }
            match &mut idle {
                None => {
                    if main_loop {
                        self.info().idle.store(true, Ordering::Relaxed);
                    }
                    idle = Some(sleep.start_looking(self.index));
                }
                Some(state) => sleep.no_work_found(state, latch),
            }
        }
    }

    /// Looks for one job: the broadcast inbox, the high lane, the own deque,
    /// the own join frames, a random victim's frames and deque, then the
    /// normal and low lanes. How it treats other workers' join frames is
    /// [`Search`]'s business.
    pub(crate) fn find_work(&self, search: Search) -> Option<JobRef> {
        let info = self.info();
        let registry = &*self.registry;
        if let Some(job) = take(|| info.inbox.steal()) {
            return Some(job);
        }
        // The high lane comes before the own deque so that a high-priority
        // task overtakes normal work already queued on this worker.
        let high = registry.lane(Lane::High);
        if !high.is_empty()
            && let Some(job) = take(|| high.steal())
        {
            bump(&info.injected);
            return Some(job);
        }
        if let Some(job) = self.deque.pop() {
            return Some(job);
        }
        if self.frames.depth() > 0 {
            // We are waiting inside a join or scope: our own pending joins are
            // work too. Sharing them first makes them claimable by anyone.
            self.frames.share_all();
            if let Some(job) = info.frames.steal() {
                return Some(job);
            }
        }
        if let Some(job) = self.steal(search) {
            bump(&info.steals);
            return Some(job);
        }
        for lane in [Lane::Normal, Lane::Low] {
            let injector = registry.lane(lane);
            // Low tasks one at a time: a batch in this worker's deque would run before
            // normal tasks that arrive after it, and low tasks wait for those.
            let stolen = match lane {
                Lane::Low => take(|| injector.steal()),
                _ => take(|| injector.steal_batch_and_pop(&self.deque))
                    .inspect(|_| self.announce_moved_jobs()),
            };
            if let Some(job) = stolen {
                bump(&info.injected);
                // Work from outside often opens a computation that forks soon
                // (an `install`): if every other worker sleeps, wake one now,
                // so that it is running, on a CPU the scheduler found idle,
                // when the first join is shared. Woken later by this busy
                // worker, it may be queued behind it on the same CPU until the
                // kernel rebalances (a scheduler tick, milliseconds). It spins
                // briefly and sleeps again if no work comes; that spin is the
                // price of each small `install` into a sleeping pool.
                let others = registry.num_threads() - 1;
                if others > 0 && registry.sleep.sleeping_threads() == others {
                    registry.sleep.wake_any();
                }
                return Some(job);
            }
        }
        None
    }

    /// After a batch steal moved jobs into this worker's deque: the jobs were published
    /// where a worker falling asleep may already have looked, and a sleeper's last search
    /// may have missed them in transit, so they are published again (see
    /// `sleep/README.md`). Nothing is done when the batch was the one job returned.
    #[inline]
    fn announce_moved_jobs(&self) {
        if !self.deque.is_empty() {
            self.registry.sleep.new_jobs();
        }
    }

    /// Steals from the other workers, starting at a random one: shared join
    /// frames first (the oldest, largest work), then a batch from the deque.
    /// Retries while some deque answered `Steal::Retry`.
    fn steal(&self, search: Search) -> Option<JobRef> {
        let infos = &self.registry.thread_infos;
        let count = infos.len();
        if count <= 1 {
            return None;
        }
        let start = self.next_random() % count;
        // Read the clock at most once per search.
        let mut now = None;
        loop {
            let mut retry = false;
            for offset in 0..count {
                let victim = (start + offset) % count;
                if victim == self.index {
                    continue;
                }
                let info = &infos[victim];
                let ripe = match search {
                    Search::Now => true,
                    Search::Patient => self.frames_ripe(victim, info, &mut now),
                    Search::LastBeforeSleep => {
                        self.frames_ripe(victim, info, &mut now) || ripens_or_goes(&info.frames)
                    }
                };
                if ripe && let Some(job) = info.frames.steal() {
                    return Some(job);
                }
                // Half of the victim's deque at once: one contended CAS
                // moves many spawned jobs, which then run from our own deque.
                match info.stealer.steal_batch_and_pop(&self.deque) {
                    Steal::Success(job) => {
                        self.announce_moved_jobs();
                        return Some(job);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether `victim` has offered join frames for at least [`FRAME_PATIENCE`]:
    /// the first look at a new offer (a changed share count) starts the clock.
    fn frames_ripe(&self, victim: usize, info: &ThreadInfo, now: &mut Option<Instant>) -> bool {
        if cfg!(workmill_loom) {
            // Loom has no clock; its models check the claims, not the timing.
            return true;
        }
        // The slots are read with `Acquire` and the owner counts a share
        // before it fills the slot, so a frame seen here is counted in
        // `shares`: a new offer is never mistaken for an old, ripe one.
        if info.frames.oldest_live().is_none() {
            return false;
        }
        let shares = info.frames.shared_count.load(Ordering::Relaxed);
        let now = *now.get_or_insert_with(Instant::now);
        self.sightings.ripe(victim, shares, now)
    }

    /// xorshift64*: a fast private random number, to pick victims.
    fn next_random(&self) -> usize {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize
    }
}

/// Whether `victim`'s offer is ripe now that its share count is `shares`, given the sighting
/// in its slot, and the sighting to keep there: a new share count is a new offer, seen now,
/// unless the slot watches another victim's offer that has not stood for [`FRAME_PATIENCE`] yet.
fn ripen(
    sighting: Option<Sighting>,
    victim: usize,
    shares: usize,
    now: Instant,
) -> (bool, Sighting) {
    let stood = |since: Instant| now.saturating_duration_since(since) >= FRAME_PATIENCE;
    match sighting {
        Some(seen) if seen.victim == victim && seen.shares == shares => (stood(seen.since), seen),
        Some(seen) if seen.victim != victim && !stood(seen.since) => (false, seen),
        _ => (
            false,
            Sighting {
                victim,
                shares,
                since: now,
            },
        ),
    }
}

/// Retries a steal until it succeeds or finds the queue empty.
#[inline]
fn take(mut steal: impl FnMut() -> Steal<JobRef>) -> Option<JobRef> {
    loop {
        match steal() {
            Steal::Success(job) => return Some(job),
            Steal::Empty => return None,
            Steal::Retry => crate::sync::spin(),
        }
    }
}

/// Clears the thread-local pointer when the worker's stack frame ends, even by unwinding.
struct CurrentGuard;

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        WORKER_THREAD.with(|current| current.set(ptr::null()));
    }
}

/// The body of a worker thread: runs jobs until the pool terminates.
pub(crate) fn main_loop(registry: Arc<Registry>, index: usize, deque: Worker<JobRef>) {
    let shared_frames: *const _ = &registry.thread_infos[index].frames;
    let worker = WorkerThread {
        deque,
        // SAFETY: the registry, which holds the shared frames, outlives the
        // worker: the worker holds an `Arc` to it.
        frames: unsafe { LocalFrames::new(shared_frames) },
        index,
        rng: Cell::new(0x9e37_79b9_7f4a_7c15 ^ ((index as u64 + 1) << 17)),
        wake_tick: Cell::new(registry.sleep.ticks()),
        sightings: Sightings::new(registry.num_threads()),
        blocks: JobBlocks::new(),
        registry,
    };
    WORKER_THREAD.with(|current| current.set(&worker));
    let _guard = CurrentGuard;
    let registry = &worker.registry;
    if let Some(start) = &registry.hooks.start_handler {
        // A panicking hook must not take the worker down, nor its payload.
        crate::unwind::run_quietly(|| start(index));
    }
    let terminate = &registry.thread_infos[index].terminate;
    worker.wait_until_cold(terminate, true);
    if let Some(exit) = &registry.hooks.exit_handler {
        crate::unwind::run_quietly(|| exit(index));
    }
    // Tasks spawned once the pool was terminating went to this worker's deque
    // or to a lane, where no worker may look again: run them here rather than
    // drop them. The exit hook spawns them, and so does the start hook of a
    // worker that started after the pool was dropped (`build` does not wait
    // for its threads). Each such task counts as outstanding while queued, and
    // finishing it terminates the pool again, which changes nothing.
    while let Some(job) = worker.find_work(Search::Now) {
        worker.execute(job);
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::ThreadPool;
    use std::sync::mpsc;

    /// `build` does not wait for its workers: a pool dropped at once may terminate before a
    /// worker's start hook runs. A task that hook spawns still runs before the worker exits,
    /// without an exit hook too (which once was the only case that looked for such tasks).
    #[test]
    fn a_task_the_start_hook_spawns_while_the_pool_terminates_still_runs() {
        let (tx, rx) = mpsc::channel();
        let pool = ThreadPool::builder()
            .num_threads(2)
            .start_handler(move |index| {
                // SAFETY: the hook runs on a worker, whose pointer is set and alive.
                let worker = unsafe { &*WorkerThread::current() };
                let terminate = &worker.registry().thread_infos[index].terminate;
                let deadline = Instant::now() + Duration::from_secs(30);
                while !terminate.probe() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let tx = tx.clone();
                drop(crate::spawn(move || tx.send(index)));
            })
            .build()
            .expect("the pool starts");
        // Terminates the pool, then waits for the workers, whose hooks then spawn.
        drop(pool);
        let mut ran: Vec<usize> = (0..2)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(10))
                    .expect("a task spawned by a start hook never ran")
            })
            .collect();
        ran.sort_unstable();
        assert_eq!(ran, [0, 1]);
    }

    fn seen(victim: usize, shares: usize, since: Instant) -> Sighting {
        Sighting {
            victim,
            shares,
            since,
        }
    }

    #[test]
    fn an_offer_ripens_after_the_patience_and_a_new_offer_starts_over() {
        let start = Instant::now();
        let (ripe, first) = ripen(None, 3, 7, start);
        assert!(!ripe, "a first sighting is never ripe");
        assert_eq!(first, seen(3, 7, start));
        let soon = start + FRAME_PATIENCE / 2;
        assert_eq!(ripen(Some(first), 3, 7, soon), (false, first), "not yet");
        let later = start + FRAME_PATIENCE;
        assert_eq!(
            ripen(Some(first), 3, 7, later),
            (true, first),
            "watched long enough"
        );
        // The owner shared again (it took the old frames back, or a thief did):
        // a new offer, watched from now.
        assert_eq!(ripen(Some(first), 3, 8, later), (false, seen(3, 8, later)));
    }

    /// A huge pool gives each worker a window of sightings, not a slot per victim: memory in
    /// proportion to the pool, not to its square.
    #[test]
    fn a_thief_watches_a_bounded_window_of_victims() {
        assert_eq!(Sightings::new(1).slots.len(), 1);
        assert_eq!(Sightings::new(8).slots.len(), 8, "a slot per victim");
        let huge = Sightings::new(crate::ThreadPoolBuilder::MAX_THREADS);
        assert_eq!(huge.slots.len(), SIGHTING_SLOTS);
        // Victims beyond the window have slots too.
        let start = Instant::now();
        let victim = crate::ThreadPoolBuilder::MAX_THREADS - 1;
        assert!(!huge.ripe(victim, 1, start));
        assert!(huge.ripe(victim, 1, start + FRAME_PATIENCE));
    }

    /// Two victims sharing a slot take turns; one never passes for the other.
    #[test]
    fn victims_sharing_a_slot_take_turns() {
        let start = Instant::now();
        let sightings = Sightings::new(SIGHTING_SLOTS * 2);
        let (a, b) = (1, 1 + SIGHTING_SLOTS);
        assert!(!sightings.ripe(a, 5, start), "a first sighting");
        // B's offer, with the same share count, is not A's: unripe, and A keeps the slot.
        assert!(!sightings.ripe(b, 5, start + FRAME_PATIENCE / 2));
        let ripe = start + FRAME_PATIENCE;
        assert!(sightings.ripe(a, 5, ripe), "A's offer ripened undisturbed");
        // A had its turn: B's offer takes the slot, and ripens in turn.
        let later = ripe + FRAME_PATIENCE;
        assert!(!sightings.ripe(b, 5, later), "B is seen for the first time");
        assert!(!sightings.ripe(a, 5, later), "A waits for its next turn");
        assert!(sightings.ripe(b, 5, later + FRAME_PATIENCE));
    }
}
