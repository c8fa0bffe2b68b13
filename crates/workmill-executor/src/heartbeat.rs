//! The heartbeat thread: every tick, if a shared join frame has waited a whole tick while some
//! workers sleep, it wakes one.
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

use std::time::Duration;

use crate::registry::Registry;
use crate::sync::{Arc, Ordering};

/// The default interval between heartbeats.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_micros(100);

/// The heartbeat thread's body.
pub(crate) fn run(registry: Arc<Registry>, interval: Duration) {
    let sleep = &registry.sleep;
    // Per worker: its share count at the last tick, if it had a live shared frame then.
    let mut last_seen: Vec<Option<usize>> = vec![None; registry.num_threads()];
    while sleep.heartbeat_wait_until_useful() {
        // Wall-clock time: the heartbeat never runs under loom.
        std::thread::sleep(interval);
        if sleep.heartbeat_terminated() {
            break;
        }
        sleep.tick();
        let mut stale = false;
        for (info, last) in registry.thread_infos.iter().zip(&mut last_seen) {
            let shares = info.frames.shared_count.load(Ordering::Relaxed);
            let live = info.frames.live() > 0;
            stale |= live && *last == Some(shares);
            *last = live.then_some(shares);
        }
        if stale && sleep.sleeping_threads() > 0 {
            sleep.wake_any();
        }
    }
}
