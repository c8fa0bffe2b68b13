//! The heartbeat of a runtime on a durable or shared backend: the worker process's heartbeat
//! thread, over the leases of the runtime's loops, stopped once the loops have returned.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use workmill_core::Queue;

use crate::error::RuntimeError;
use crate::worker::{Control, HeartbeatReport, HeldLeases, Mode, beat_until_done};

/// A running heartbeat thread and the leases it keeps alive.
pub(crate) struct RuntimeHeartbeat {
    held: Arc<HeldLeases>,
    done: Arc<Control>,
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
        let thread = {
            let (held, done) = (Arc::clone(&held), Arc::clone(&done));
            thread::Builder::new()
                .name("workmill-heartbeat".to_owned())
                .spawn(move || beat_until_done(&*queue, &held, &done, lease, lease / 4))
                .map_err(|source| RuntimeError::Spawn {
                    name: "workmill-heartbeat".to_owned(),
                    source,
                })?
        };
        Ok(RuntimeHeartbeat { held, done, thread })
    }

    /// The leases the loops hold, for [`run_holding`](crate::worker::run_holding).
    pub(crate) fn held(&self) -> Arc<HeldLeases> {
        Arc::clone(&self.held)
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
