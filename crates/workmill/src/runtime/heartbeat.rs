//! The heartbeat of a runtime on a durable or shared backend: the worker process's heartbeat
//! thread, over the leases of the runtime's loops, stopped once the loops have returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use workmill_core::Queue;

use crate::error::RuntimeError;
use crate::worker::{Control, HeartbeatReport, HeldLeases, Mode, beat_once};

/// A running heartbeat thread and the leases it keeps alive.
pub(crate) struct RuntimeHeartbeat {
    held: Arc<HeldLeases>,
    done: Arc<Control>,
    /// Set when a loop could not be joined (the runtime was shut down from inside one of its
    /// own tasks): the thread keeps beating until that loop has settled what it holds.
    linger: Arc<AtomicBool>,
    thread: JoinHandle<HeartbeatReport>,
}

impl RuntimeHeartbeat {
    /// Starts extending, every quarter of `lease`, the leases the loops will hold.
    pub(crate) fn start(
        queue: Arc<dyn Queue>,
        lease: Duration,
    ) -> Result<RuntimeHeartbeat, RuntimeError> {
        let held = Arc::new(HeldLeases::new());
        let done = Arc::new(Control::new(Mode::Run));
        let linger = Arc::new(AtomicBool::new(false));
        let thread = {
            let (held, done, linger) = (Arc::clone(&held), Arc::clone(&done), Arc::clone(&linger));
            thread::Builder::new()
                .name("workmill-heartbeat".to_owned())
                .spawn(move || beat(&*queue, &held, &done, &linger, lease))
                .map_err(|source| RuntimeError::Spawn {
                    name: "workmill-heartbeat".to_owned(),
                    source,
                })?
        };
        Ok(RuntimeHeartbeat {
            held,
            done,
            linger,
            thread,
        })
    }

    /// The leases the loops hold, for [`run_holding`](crate::worker::run_holding).
    pub(crate) fn held(&self) -> Arc<HeldLeases> {
        Arc::clone(&self.held)
    }

    /// Lets the thread go on until no lease is held, without waiting for it: for a shutdown
    /// that could not join one of its loops (called from inside that loop's task), whose
    /// task still runs under a lease.
    pub(crate) fn stop_when_settled(self) {
        self.linger.store(true, Ordering::SeqCst);
        self.done.set(Mode::Stop);
    }

    /// Stops the thread and waits for it; call once the loops have returned.
    pub(crate) fn stop(self) {
        self.done.set(Mode::Stop);
        match self.thread.join() {
            Ok(report) if report.errors > 0 || report.refused > 0 => {
                tracing::warn!(
                    extended = report.beats,
                    failed = report.errors,
                    refused = report.refused,
                    "the runtime's heartbeat could not extend every lease"
                );
            }
            Ok(_) => {}
            Err(_) => tracing::error!("the runtime's heartbeat thread panicked"),
        }
    }
}

/// The thread: a round every quarter lease until stopped; once stopped while lingering, on
/// until the held leases are settled.
fn beat(
    queue: &dyn Queue,
    held: &HeldLeases,
    done: &Control,
    linger: &AtomicBool,
    lease: Duration,
) -> HeartbeatReport {
    let every = lease / 4;
    let mut report = HeartbeatReport::default();
    loop {
        if done.wait_for_stop(every) {
            if !linger.load(Ordering::SeqCst) || held.len() == 0 {
                return report;
            }
            // Stopped, so the wait above no longer sleeps.
            thread::sleep(every);
        }
        beat_once(queue, held, lease, every / 2, &mut report);
    }
}
