//! Per-worker counters: tasks run, steals, parks and wake-ups, read without stopping the workers.

use crate::registry::Registry;
use crate::sync::Ordering;

/// What one worker has done since the pool started. Every count only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Jobs it took from a queue and ran: spawned tasks, scope jobs, stolen
    /// join halves, broadcast copies and injected `install` calls. A join's
    /// second closure that its own worker runs inline is not a task.
    pub tasks_run: u64,
    /// Steals from other workers: each took one join half from a worker's join
    /// frames, or a batch from its deque (about half of it: one job to run at
    /// once, the rest moved to this worker's own deque). One steal may move
    /// many jobs, so this counts steals, not jobs; [`tasks_run`](Self::tasks_run)
    /// counts the jobs.
    pub steals: u64,
    /// Takes from the pool's lanes: each took one job from the high or low
    /// lane, or a batch from the normal lane (one job to run at once, the rest
    /// moved to this worker's own deque). The lanes hold the work that
    /// enters the pool from other threads (`install`, `join`, `scope` and
    /// `broadcast` called from outside, tasks and scope jobs spawned there) and
    /// every high- and low-lane task, spawned by the pool's own workers too.
    /// Like [`steals`](Self::steals), this counts takes, not jobs.
    pub injected: u64,
    /// Join halves it offered to thieves (see [`join`](crate::join)).
    pub shared_joins: u64,
    /// Times it parked (blocked, using no CPU) after finding no work.
    pub parks: u64,
    /// Times it was woken from a park.
    pub wake_ups: u64,
    /// Whether it is parked right now.
    pub parked: bool,
}

/// A snapshot of every worker's [`WorkerMetrics`], by worker index.
///
/// # Examples
///
/// ```
/// use workmill_executor::ThreadPool;
///
/// let pool = ThreadPool::builder().num_threads(2).build()?;
/// pool.scope(|s| {
///     for _ in 0..100 {
///         s.spawn(|_| ());
///     }
/// });
/// let metrics = pool.metrics();
/// assert_eq!(metrics.workers.len(), 2);
/// // 100 scope jobs plus the injected scope body itself.
/// assert_eq!(metrics.total().tasks_run, 101);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// One entry per worker, by index.
    pub workers: Vec<WorkerMetrics>,
    /// Ticks of the heartbeat thread, each a look for shared join work at
    /// least an interval after the one before (see
    /// [`heartbeat_interval`](crate::ThreadPoolBuilder::heartbeat_interval));
    /// zero in a pool without one.
    pub heartbeats: u64,
}

impl PoolMetrics {
    pub(crate) fn read(registry: &Registry) -> PoolMetrics {
        let workers = registry
            .thread_infos
            .iter()
            .enumerate()
            .map(|(index, info)| {
                let (parks, wake_ups) = registry.sleep.park_counts(index);
                WorkerMetrics {
                    tasks_run: info.tasks_run.load(Ordering::Relaxed) as u64,
                    steals: info.steals.load(Ordering::Relaxed) as u64,
                    injected: info.injected.load(Ordering::Relaxed) as u64,
                    shared_joins: info.frames.shared_count.load(Ordering::Relaxed) as u64,
                    parks: parks as u64,
                    wake_ups: wake_ups as u64,
                    parked: registry.sleep.is_parked(index),
                }
            })
            .collect();
        PoolMetrics {
            workers,
            heartbeats: registry.sleep.heartbeats() as u64,
        }
    }

    /// The counts summed over all workers; `parked` is true if every worker is parked.
    pub fn total(&self) -> WorkerMetrics {
        let mut total = WorkerMetrics {
            parked: !self.workers.is_empty(),
            ..WorkerMetrics::default()
        };
        for worker in &self.workers {
            total.tasks_run += worker.tasks_run;
            total.steals += worker.steals;
            total.injected += worker.injected;
            total.shared_joins += worker.shared_joins;
            total.parks += worker.parks;
            total.wake_ups += worker.wake_ups;
            total.parked &= worker.parked;
        }
        total
    }

    /// How many workers are parked right now.
    pub fn parked_threads(&self) -> usize {
        self.workers.iter().filter(|w| w.parked).count()
    }
}
