//! `PoolBuilder`: workers, strategy, health, retries and clock for a `Pool`.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use workmill_core::{Backoff, Balancer, RetryPolicy, Worker};

use super::counters::Counters;
use super::drain::Drain;
use super::error::BuildError;
use super::shared::{Dispatcher, Slot};
use super::{Job, Pool, Shared};
use crate::clock::{Clock, SystemClock};
use crate::health::{HealthConfig, HealthMonitor, HealthTracker};
use crate::metrics::{MetricsWindows, WorkerMetrics};
use crate::sync::{AtomicBool, AtomicU64, Mutex};

/// Configures a [`Pool`].
pub struct PoolBuilder<W> {
    workers: Vec<(String, W, u32)>,
    balancer: Option<Box<dyn Balancer>>,
    health: HealthConfig,
    retry: RetryPolicy,
    windows: MetricsWindows,
    clock: Option<Arc<dyn Clock>>,
    monitor: bool,
}

impl<W: Worker + 'static> Default for PoolBuilder<W>
where
    W::Job: From<Job>,
{
    fn default() -> PoolBuilder<W> {
        PoolBuilder::new()
    }
}

impl<W: Worker + 'static> PoolBuilder<W>
where
    W::Job: From<Job>,
{
    /// A builder with no workers, the default strategy and health tracking,
    /// three attempts per task, and the system clock.
    pub fn new() -> PoolBuilder<W> {
        PoolBuilder {
            workers: Vec::new(),
            balancer: None,
            health: HealthConfig::default(),
            retry: RetryPolicy::new(3).backoff(Backoff::Immediate).jitter(0.0),
            windows: MetricsWindows::default(),
            clock: None,
            monitor: true,
        }
    }

    /// Adds a worker of weight 1. Workers keep the order they are added in:
    /// that is their index in stats and in the balancer's candidates.
    #[must_use]
    pub fn worker(self, name: impl Into<String>, worker: W) -> PoolBuilder<W> {
        self.weighted_worker(name, worker, 1)
    }

    /// Adds a worker with a weight, for weighted strategies.
    #[must_use]
    pub fn weighted_worker(
        mut self,
        name: impl Into<String>,
        worker: W,
        weight: u32,
    ) -> PoolBuilder<W> {
        self.workers.push((name.into(), worker, weight));
        self
    }

    /// The strategy; [`default_balancer`](crate::default_balancer) if not set.
    #[must_use]
    pub fn balancer(mut self, balancer: impl Balancer + 'static) -> PoolBuilder<W> {
        self.balancer = Some(Box::new(balancer));
        self
    }

    /// The health tracking; [`HealthConfig::default`] if not set.
    #[must_use]
    pub fn health(mut self, health: HealthConfig) -> PoolBuilder<W> {
        self.health = health;
        self
    }

    /// Attempts per task, the first included (3 by default). Retries go out at
    /// once, to another worker; permanent errors are not retried.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> PoolBuilder<W> {
        self.retry = RetryPolicy::new(attempts)
            .backoff(Backoff::Immediate)
            .jitter(0.0);
        self
    }

    /// How many recent jobs the per-worker measures cover, and how long they
    /// last once the worker is idle ([`MetricsWindows::default`] if not set: 32
    /// service times and 64 outcomes, forgotten after a minute idle).
    /// A zero `max_age` makes [`build`](Self::build) fail with
    /// [`BuildError::Windows`].
    #[must_use]
    pub fn windows(mut self, windows: MetricsWindows) -> PoolBuilder<W> {
        self.windows = windows;
        self
    }

    /// The clock health tracking and the expiry of measurements read; a
    /// [`ManualClock`](crate::ManualClock) lets tests move time.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> PoolBuilder<W> {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Whether a [`HealthMonitor`] thread runs the health check every
    /// `HealthConfig::interval` (on by default). Without it, ejected workers
    /// still return when next considered, and [`Pool::check_health`] runs a
    /// check by hand.
    #[must_use]
    pub fn monitor(mut self, on: bool) -> PoolBuilder<W> {
        self.monitor = on;
        self
    }

    /// Builds the pool and starts its monitor.
    pub fn build(self) -> Result<Pool<W>, BuildError> {
        if self.workers.is_empty() {
            return Err(BuildError::NoWorkers);
        }
        self.health.validate()?;
        self.windows.validate()?;
        self.retry.validate()?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let balancer = self
            .balancer
            .unwrap_or_else(|| Box::new(crate::default_balancer()));
        let interval = self.health.interval;
        let health = HealthTracker::new(self.health, self.workers.len());
        let candidates = Vec::with_capacity(self.workers.len());
        let windows = self.windows;
        let shared = Arc::new(Shared {
            slots: self
                .workers
                .into_iter()
                .map(|(name, worker, weight)| Slot {
                    name,
                    worker,
                    weight,
                    counters: Counters::default(),
                    metrics: Mutex::new(WorkerMetrics::new(windows)),
                })
                .collect(),
            dispatcher: Mutex::new(Dispatcher {
                balancer,
                health,
                candidates,
            }),
            clock,
            retry: self.retry,
            outstanding: Drain::new(),
            shut_down: AtomicBool::new(false),
            backlog: Mutex::new(VecDeque::new()),
            next_task: AtomicU64::new(1),
        });
        let monitor = if self.monitor {
            let weak: Weak<Shared<W>> = Arc::downgrade(&shared);
            Some(HealthMonitor::spawn(interval, move || {
                if let Some(shared) = weak.upgrade() {
                    shared.check_health();
                }
            })?)
        } else {
            None
        };
        Ok(Pool { shared, monitor })
    }
}
