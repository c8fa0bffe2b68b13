//! The heartbeat thread: every tick, if shared join frames wait while some workers sleep, it wakes one.
//!
//! Sharing a join frame wakes nobody (see `frames.rs`): waking a sleeper costs
//! microseconds, more than a small computation is worth. The heartbeat
//! bounds how long shared work can wait for a sleeping worker to one tick,
//! so a long computation gets every worker within a tick, while a tiny one
//! finishes before anyone is disturbed. The thread itself parks whenever no
//! worker sleeps (nobody to wake) or every worker does (nothing shared), so
//! an idle pool stays idle.

use std::time::Duration;

use crate::registry::Registry;
use crate::sync::{Arc, thread};

/// The default interval between heartbeats.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_micros(100);

/// The heartbeat thread's body.
pub(crate) fn run(registry: Arc<Registry>, interval: Duration) {
    let sleep = &registry.sleep;
    while sleep.heartbeat_wait_until_useful() {
        thread::sleep(interval);
        if sleep.heartbeat_terminated() {
            break;
        }
        if sleep.sleeping_threads() > 0 && registry.has_shared_frames() {
            sleep.wake_any();
        }
    }
}
