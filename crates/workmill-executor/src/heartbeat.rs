//! The heartbeat thread: every tick, if a shared join frame has waited a whole tick while some
//! workers sleep, it wakes one; while nothing is shared it ticks less and less often.
//!
//! Sharing a join frame wakes nobody (see `frames.rs`): waking a sleeper costs
//! microseconds, more than a small computation is worth. A frame is *stale*
//! when its worker shared it before the previous tick and nobody has taken
//! it since: the worker is in a computation longer than a tick, worth a
//! second thread. The heartbeat wakes one sleeper per tick while some frame is
//! stale, so a long computation gets every worker within a few ticks, while a
//! stream of short ones (each sharing and taking back its own frame) never
//! disturbs the sleepers. The thread itself parks whenever no
//! worker sleeps (nobody to wake) or every worker does (nothing shared), so
//! an idle pool stays idle.
//!
//! A pool with one worker in a long stretch of plain code (no joins) and the
//! others asleep is neither: there the heartbeat would find nothing to do,
//! every 100 µs, for as long as the stretch lasts (about 5% of a core, in
//! 6,000 context switches a second). So after [`QUIET_TICKS`] ticks in a row
//! that found no shared frame, it doubles its nap, up to [`MAX_STRETCH`]
//! intervals, and returns to its interval at the first tick that finds one.
//! A worker that shares a first frame which only the heartbeat would wake a
//! sleeper for rouses it from a long nap ([`Sleep::rouse_heartbeat`]), so
//! such a frame still waits a tick or two and not a whole long nap; the
//! heartbeat then keeps its interval for [`QUIET_TICKS`] ticks or more, so a
//! stream of short joins rouses it at most about once a millisecond. It also
//! starts again at its interval whenever it comes back from a park: a
//! computation that begins in an idle pool may share its first frame before
//! the heartbeat's first nap, too early to rouse it. A long
//! nap counts as one tick, and a nap that a rouse cut to less than an interval
//! as none, so two ticks always span at least an interval: the ticks mark out
//! the time between a job's first frames, and a job that begins during long
//! naps is judged long a little later (see `WorkerThread::fresh_frame_shared`).
//!
//! [`Sleep::rouse_heartbeat`]: crate::sleep::Sleep::rouse_heartbeat

use std::time::{Duration, Instant};

use crate::registry::Registry;
use crate::sync::{Arc, Ordering};

/// The default interval between heartbeats.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_micros(100);

/// The shortest interval a pool accepts (`ThreadPoolBuilder::MIN_HEARTBEAT_INTERVAL`): waking a
/// sleeping worker takes some microseconds, and ticks faster than that would make every
/// computation look long at its first join (see `WorkerThread::fresh_frame_shared`) while the
/// heartbeat thread kept a core busy; a zero interval never naps at all.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_micros(10);

/// Ticks in a row that find no shared frame before the heartbeat naps longer than its interval.
pub(crate) const QUIET_TICKS: u32 = 8;

/// The longest nap, in intervals (3.2 ms at the default interval).
pub(crate) const MAX_STRETCH: u32 = 32;

/// The heartbeat thread's body.
pub(crate) fn run(registry: Arc<Registry>, interval: Duration) {
    let sleep = &registry.sleep;
    // Per worker: its share count at the last tick, if it had a live shared frame then.
    let mut last_seen: Vec<Option<usize>> = vec![None; registry.num_threads()];
    let mut quiet = 0;
    let mut stretch = 1;
    while let Some(blocked) = sleep.heartbeat_wait_until_useful() {
        if blocked {
            // Back from a park: the pool was idle or wholly busy, and the work
            // now starting may have shared its first frame already, before any
            // nap it could rouse us from. Start again at the interval, as after a shared frame.
            (quiet, stretch) = next_stretch(quiet, stretch, true);
        }
        let started = Instant::now();
        let roused = sleep.heartbeat_nap(interval.saturating_mul(stretch), stretch > 1);
        if sleep.heartbeat_terminated() {
            break;
        }
        // Ticks stay at least an interval apart, even when a rouse cut the nap short: two
        // ticks must mean that a whole interval passed (see `fresh_frame_shared`).
        if started.elapsed() >= interval {
            sleep.tick();
        }
        let mut stale = false;
        let mut shared = false;
        for (info, last) in registry.thread_infos.iter().zip(&mut last_seen) {
            let shares = info.frames.shared_count.load(Ordering::Relaxed);
            let live = info.frames.live() > 0;
            shared |= live;
            stale |= live && *last == Some(shares);
            *last = live.then_some(shares);
        }
        // A rouse counts as a shared frame, even if the frame was gone by this look: the
        // heartbeat then keeps its interval for a while, instead of napping long again at
        // once and being roused by every first frame of a stream of short joins.
        (quiet, stretch) = next_stretch(quiet, stretch, shared || roused);
        if stale && sleep.sleeping_threads() > 0 {
            sleep.wake_any();
        }
    }
}

/// After a tick that found a shared frame (`shared`) or not: the quiet ticks in a row, and the
/// next nap in intervals.
fn next_stretch(quiet: u32, stretch: u32, shared: bool) -> (u32, u32) {
    if shared {
        return (0, 1);
    }
    let quiet = quiet.saturating_add(1);
    if quiet < QUIET_TICKS {
        (quiet, stretch)
    } else {
        (quiet, stretch.saturating_mul(2).min(MAX_STRETCH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThreadPool;
    use crate::worker::WorkerThread;

    /// A stream of short joins (a first frame every 50 µs or so, each gone before the
    /// heartbeat looks) rouses a napping heartbeat, which then keeps its interval for 8 ticks
    /// or more: about one rouse per 10 ms at a 1 ms interval. If it napped long again at once,
    /// every join would rouse it (thousands here), each costing a futex wake.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "counts rouses in 300 ms of the wall clock, which Miri's interpreter stretches"
    )]
    fn a_stream_of_short_joins_rouses_the_heartbeat_rarely() {
        use std::time::Instant;
        let pool = ThreadPool::builder()
            .num_threads(2)
            .heartbeat_interval(Some(Duration::from_millis(1)))
            .build()
            .expect("the pool starts");
        let rouses = pool.install(|| {
            // SAFETY: `install` runs this on a worker, whose pointer is set and alive.
            let sleep = &unsafe { &*WorkerThread::current() }.registry().sleep;
            let deadline = Instant::now() + Duration::from_secs(30);
            while pool.metrics().parked_threads() != 1 {
                assert!(Instant::now() < deadline, "the other worker never parked");
                std::thread::sleep(Duration::from_millis(1));
            }
            let before = sleep.rouses();
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(300) {
                crate::join(|| (), || ());
                let gap = Instant::now();
                while gap.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
            }
            sleep.rouses() - before
        });
        assert!(rouses < 100, "{rouses} rouses in 300 ms of short joins");
    }

    #[test]
    fn naps_double_after_quiet_ticks_up_to_the_cap_and_reset_on_a_shared_frame() {
        let mut state = (0, 1);
        let mut naps = Vec::new();
        for _ in 0..QUIET_TICKS + 6 {
            state = next_stretch(state.0, state.1, false);
            naps.push(state.1);
        }
        let quiet = QUIET_TICKS as usize - 1;
        assert_eq!(naps[..quiet], vec![1; quiet]);
        assert_eq!(naps[quiet..], [2, 4, 8, 16, 32, 32, 32]);
        assert_eq!(next_stretch(state.0, state.1, true), (0, 1));
    }
}
