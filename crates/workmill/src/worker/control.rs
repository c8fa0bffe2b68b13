//! `Control`: how a runtime tells its worker loops to run, pause or stop, read with one atomic load per task.

use std::fmt;
use std::time::Duration;

use crate::sync::{AtomicU8, Condvar, Mutex, Ordering};

/// What worker loops should be doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reserve and run tasks.
    Run,
    /// Reserve nothing; finish the task in hand, then sleep until resumed or stopped.
    Pause,
    /// Finish the task in hand, hand back the unstarted rest of the batch, and return.
    Stop,
}

impl Mode {
    fn from_u8(raw: u8) -> Mode {
        match raw {
            0 => Mode::Run,
            1 => Mode::Pause,
            _ => Mode::Stop,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Mode::Run => 0,
            Mode::Pause => 1,
            Mode::Stop => 2,
        }
    }
}

/// A mode shared by a runtime and its worker loops.
///
/// Loops read it between tasks with a single atomic load. A paused loop
/// sleeps on a condition variable; the mode changes under the same mutex and
/// notifies, so a resume or stop cannot slip between a loop's check and its
/// sleep (`cargo xtask loom` checks this).
pub struct Control {
    mode: AtomicU8,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Control {
    /// A control starting in `mode`.
    pub fn new(mode: Mode) -> Control {
        Control {
            mode: AtomicU8::new(mode.as_u8()),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Acquire))
    }

    /// Changes the mode and wakes paused loops. `Stop` is final: a stopped control stays stopped.
    pub fn set(&self, mode: Mode) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.mode() != Mode::Stop {
            self.mode.store(mode.as_u8(), Ordering::Release);
        }
        self.changed.notify_all();
    }

    /// Returns at once unless paused; otherwise sleeps until the mode changes, and returns the new mode.
    pub fn wait_while_paused(&self) -> Mode {
        if self.mode() != Mode::Pause {
            return self.mode();
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.mode() == Mode::Pause {
            guard = self.changed.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.mode()
    }
}

impl Control {
    /// Sleeps until the mode is `Stop` or `timeout` passes; true if stopped.
    ///
    /// Used for every timed sleep of a worker process (the heartbeat interval, the
    /// backoff after a store error), so that a stop ends them at once instead of
    /// after their timeout. A stop sets the mode under the lock this sleep
    /// checks it under, so it cannot be missed (`cargo xtask loom` checks this).
    pub fn wait_for_stop(&self, timeout: Duration) -> bool {
        if self.mode() == Mode::Stop {
            return true;
        }
        let deadline = std::time::Instant::now().checked_add(timeout);
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.mode() != Mode::Stop {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(std::time::Instant::now()),
                // A timeout too long to represent: wait as long as it takes.
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            guard = self
                .changed
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("mode", &self.mode())
            .finish()
    }
}
