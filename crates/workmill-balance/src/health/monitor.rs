//! `HealthMonitor`: a thread that runs a health check at a fixed interval until it is stopped (the seed's monitor thread).

use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

/// Runs `check` every `interval` on its own thread, until stopped or dropped.
///
/// Stopping is prompt: the thread waits on a channel with a timeout rather
/// than sleeping, so [`stop`](HealthMonitor::stop) returns as soon as a check
/// in progress finishes. A check that panics stops the monitor; the panic is
/// reported by `stop`.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use workmill_balance::HealthMonitor;
///
/// let (tick, ticks) = mpsc::channel();
/// let monitor = HealthMonitor::spawn(Duration::from_millis(1), move || {
///     let _ = tick.send(());
/// })?;
/// for _ in 0..3 {
///     ticks.recv().unwrap();
/// }
/// assert!(monitor.stop());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct HealthMonitor {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HealthMonitor {
    /// Starts the monitor thread; fails only if the OS cannot start a thread.
    pub fn spawn(
        interval: Duration,
        mut check: impl FnMut() + Send + 'static,
    ) -> std::io::Result<HealthMonitor> {
        let (stop, stopped) = bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("workmill-health".to_owned())
            .spawn(move || {
                // The sender is never used to send: dropping it disconnects the
                // channel, which ends the wait at once.
                while stopped
                    .recv_timeout(interval)
                    .is_err_and(|e| e.is_timeout())
                {
                    check();
                }
            })?;
        Ok(HealthMonitor {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the monitor and waits for its thread to end.
    ///
    /// Returns false if a check had panicked.
    pub fn stop(mut self) -> bool {
        self.shut()
    }

    fn shut(&mut self) -> bool {
        drop(self.stop.take());
        self.thread.take().is_none_or(|t| t.join().is_ok())
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.shut();
    }
}
