//! `StopHandle`: how a worker process is told to stop, by SIGTERM or SIGINT or by a call, and why it stopped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::control::{Control, Mode};
use crate::sync::{Mutex, lock};

/// What stopped a worker process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// A signal (`SIGTERM` or `SIGINT`), by number.
    Signal(i32),
    /// A call of [`StopHandle::stop`].
    Handle,
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopCause::Signal(number) => write!(f, "signal {number}"),
            StopCause::Handle => f.write_str("a stop handle"),
        }
    }
}

/// Stops a running [`worker::run`](crate::worker::run) from another thread: the
/// programmatic twin of `SIGTERM`.
///
/// A stop is final and idempotent; the first cause is the one reported.
/// Clones share one stop. A worker stopping finishes the tasks it is running,
/// hands back the ones it reserved but did not start, records every outcome,
/// and returns its report.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill::worker::{StopCause, StopHandle};
///
/// let stop = StopHandle::new();
/// let waiter = {
///     let stop = stop.clone();
///     std::thread::spawn(move || stop.wait(Duration::from_secs(60)))
/// };
/// stop.stop();
/// assert!(waiter.join().unwrap(), "the waiter woke for the stop");
/// assert_eq!(stop.cause(), Some(StopCause::Handle));
/// ```
#[derive(Clone)]
pub struct StopHandle {
    inner: Arc<StopState>,
}

struct StopState {
    /// The loops' control: stopping is setting it to `Mode::Stop`.
    control: Control,
    cause: Mutex<Option<StopCause>>,
}

impl StopHandle {
    /// A handle that has not stopped.
    pub fn new() -> StopHandle {
        StopHandle {
            inner: Arc::new(StopState {
                control: Control::new(Mode::Run),
                cause: Mutex::new(None),
            }),
        }
    }

    /// Asks the worker to stop.
    pub fn stop(&self) {
        self.stop_because(StopCause::Handle);
    }

    /// Stops, recording `cause` unless an earlier stop was recorded.
    pub(crate) fn stop_because(&self, cause: StopCause) {
        {
            let mut recorded = lock(&self.inner.cause);
            if recorded.is_none() {
                *recorded = Some(cause);
            }
        }
        self.inner.control.set(Mode::Stop);
    }

    /// True once a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.inner.control.mode() == Mode::Stop
    }

    /// Blocks until a stop is asked for or `timeout` passes; true if stopped.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.inner.control.wait_for_stop(timeout)
    }

    /// Why the worker stopped, if it did.
    pub fn cause(&self) -> Option<StopCause> {
        *lock(&self.inner.cause)
    }

    /// The control the worker's loops read.
    pub(crate) fn control(&self) -> &Control {
        &self.inner.control
    }
}

impl Default for StopHandle {
    fn default() -> StopHandle {
        StopHandle::new()
    }
}

impl fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.is_stopped())
            .field("cause", &self.cause())
            .finish()
    }
}
