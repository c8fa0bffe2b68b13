//! `Worker`: anything that executes jobs and reports its `Load` (a thread, a pool, a process, a remote endpoint).

use std::fmt;
use std::time::Duration;

/// A snapshot of how busy a worker is, for balancers and for operators.
///
/// Fields a worker cannot measure stay at their defaults (`None`, 0.0).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_core::Load;
///
/// let load = Load { running: 3, queued: 2, capacity: 4, ..Load::default() }
///     .with_latency(Duration::from_millis(20));
/// assert_eq!(load.in_flight(), 5);
/// assert!(load.is_saturated());
/// assert!((load.utilization() - 0.75).abs() < 1e-9);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Load {
    /// Jobs executing now.
    pub running: usize,
    /// Jobs accepted and waiting to start.
    pub queued: usize,
    /// How many jobs it can run at once (threads, or a configured limit); 0 if unknown.
    pub capacity: usize,
    /// Recent mean time from start to finish of a job, if measured.
    pub mean_latency: Option<Duration>,
    /// Recent share of failed jobs, from 0.0 to 1.0.
    pub error_rate: f64,
}

impl Load {
    /// Adds a measured mean latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Load {
        self.mean_latency = Some(latency);
        self
    }

    /// Jobs it holds, running or waiting.
    pub fn in_flight(&self) -> usize {
        self.running + self.queued
    }

    /// Running jobs over capacity; 0.0 when the capacity is unknown.
    pub fn utilization(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            self.running as f64 / self.capacity as f64
        }
    }

    /// True when it holds at least as many jobs as it can run at once (and the capacity is known).
    pub fn is_saturated(&self) -> bool {
        self.capacity != 0 && self.in_flight() >= self.capacity
    }
}

/// A job handed back because the worker would not take it (full, or shutting down).
///
/// The job is returned so that nothing is lost: the caller can offer it to another worker.
pub struct Rejected<J> {
    /// The job, untouched.
    pub job: J,
    /// Why it was refused.
    pub reason: RejectReason,
}

/// Why a worker refused a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Its queue is at its bound.
    Full,
    /// It is shutting down.
    ShutDown,
}

impl<J> fmt::Debug for Rejected<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<J> fmt::Display for Rejected<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            RejectReason::Full => f.write_str("worker refused the job: its queue is full"),
            RejectReason::ShutDown => f.write_str("worker refused the job: it is shutting down"),
        }
    }
}

impl<J> std::error::Error for Rejected<J> {}

/// Something that executes jobs and reports its load: a thread, a pool, a process, a remote endpoint.
///
/// The job type is the worker's own: a boxed closure for threads and thread
/// pools, a serialized request for a remote endpoint. `submit` must not block
/// for long; a worker that cannot take a job hands it back in [`Rejected`].
///
/// # Examples
///
/// A worker that runs jobs on the caller's thread and counts them:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use workmill_core::{Load, Rejected, Worker};
///
/// struct Inline { done: AtomicUsize }
///
/// impl Worker for Inline {
///     type Job = Box<dyn FnOnce() + Send>;
///     fn submit(&self, job: Self::Job) -> Result<(), Rejected<Self::Job>> {
///         job();
///         self.done.fetch_add(1, Ordering::Relaxed);
///         Ok(())
///     }
///     fn load(&self) -> Load {
///         Load { capacity: 1, ..Load::default() }
///     }
/// }
///
/// let worker = Inline { done: AtomicUsize::new(0) };
/// worker.submit(Box::new(|| ())).unwrap();
/// assert_eq!(worker.done.load(Ordering::Relaxed), 1);
/// ```
pub trait Worker: Send + Sync {
    /// What the worker executes.
    type Job: Send;

    /// Hands a job to the worker, or returns it if the worker will not take it.
    fn submit(&self, job: Self::Job) -> Result<(), Rejected<Self::Job>>;

    /// A snapshot of the worker's current load.
    fn load(&self) -> Load;
}
