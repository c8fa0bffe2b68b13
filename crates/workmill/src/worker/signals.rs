//! `SIGTERM` and `SIGINT` for a worker process: the first stops it gracefully through its
//! `StopHandle`, a second exits at once.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use signal_hook::{SigId, flag, low_level};

use super::stop::{StopCause, StopHandle};
use crate::sync::SignalFlag;

/// True while no `worker::run` handles signals: then `SIGTERM` and `SIGINT` do what they
/// did before any ran (end the process). signal-hook never uninstalls its
/// low-level handler, so without this a program would ignore both signals once
/// its first worker returned.
static DEFAULT_ACTION: SignalFlag = SignalFlag::new(true);
/// How many `worker::run` calls handle signals now.
static HANDLING: Mutex<usize> = Mutex::new(0);

/// Installs, once per process, the handlers that act as the default when no worker runs.
fn install_default_actions() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            for signal in [SIGTERM, SIGINT] {
                flag::register_conditional_default(signal, &DEFAULT_ACTION)
                    .map_err(|error| error.to_string())?;
            }
            Ok(())
        })
        .clone()
        .map_err(io::Error::other)
}

/// Counts a worker handling signals in (`+1`) or out (`-1`), and turns the default actions off while any does.
fn count_handling(change: isize) {
    let mut handling = HANDLING.lock().unwrap_or_else(|e| e.into_inner());
    *handling = handling.saturating_add_signed(change);
    DEFAULT_ACTION.store(*handling == 0, crate::sync::Ordering::SeqCst);
}

/// The signal handlers of one `worker::run`, removed when dropped.
///
/// A signal handler may do almost nothing safely, so signal-hook's handler
/// only writes to a pipe; a thread reads it and stops the worker from
/// ordinary code. The first signal also arms a second handler that exits the
/// process at once (status 128 + the signal, as a shell reports a death by
/// signal): the way out when a task hangs. Leases of a process that exits
/// this way lapse, and their tasks run again elsewhere.
pub(crate) struct SignalGuard {
    handle: Option<Handle>,
    thread: Option<JoinHandle<()>>,
    exits: Vec<SigId>,
    /// Whether this guard turned the default actions off (and so must count itself out).
    counted: bool,
}

impl SignalGuard {
    /// Installs the handlers; a first `SIGTERM` or `SIGINT` calls `stop`.
    pub(crate) fn install(stop: StopHandle) -> io::Result<SignalGuard> {
        install_default_actions()?;
        let mut guard = SignalGuard {
            handle: None,
            thread: None,
            exits: Vec::with_capacity(4),
            counted: false,
        };
        // The stopping thread first: a signal that arrives while the rest is
        // installed stops the worker gracefully rather than not at all.
        let mut signals = Signals::new([SIGTERM, SIGINT])?;
        guard.handle = Some(signals.handle());
        // The default action goes off only once a signal would reach this worker: a
        // signal in between ends the process, as it would have a moment earlier.
        count_handling(1);
        guard.counted = true;
        guard.thread = Some(
            thread::Builder::new()
                .name("workmill-signals".to_owned())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        tracing::info!(
                            signal,
                            "stopping: finishing running tasks, handing back the rest"
                        );
                        stop.stop_because(StopCause::Signal(signal));
                    }
                })?,
        );
        let armed = Arc::new(SignalFlag::new(false));
        for signal in [SIGTERM, SIGINT] {
            // Registered first, so a signal sees the flag as it was before this signal
            // set it: only a second signal exits.
            guard.exits.push(flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(&armed),
            )?);
            guard
                .exits
                .push(flag::register(signal, Arc::clone(&armed))?);
        }
        Ok(guard)
    }
}

fn unregister(ids: &[SigId]) {
    for &id in ids {
        low_level::unregister(id);
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            // Ends the thread's wait; the `Signals` it owns unregisters itself.
            handle.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        unregister(&self.exits);
        if self.counted {
            count_handling(-1);
        }
    }
}
