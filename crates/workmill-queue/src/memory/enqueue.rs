//! The memory backend's producers: `enqueue_batch_while` and `submit_job_while`, which add all of
//! their tasks or none, waiting for room under the capacity as `OnFull` says, until the caller
//! gives up.

use std::time::Instant;

use workmill_core::{NewJob, NewTask, QueueError, TaskId};

use super::state::{self, State};
use super::{MemoryQueue, OnFull};
use crate::sync::{MutexGuard, lock};

impl MemoryQueue {
    /// [`Queue::enqueue_batch`](workmill_core::Queue::enqueue_batch) that also gives up waiting
    /// for room, returning [`QueueError::QueueFull`] as when its patience runs out, once
    /// `keep_waiting()` returns false; a batch given up on adds none of its tasks.
    ///
    /// `keep_waiting` is asked whenever the batch is found not to fit under a capacity bounded
    /// with [`OnFull::Wait`]: as the wait starts and after every wake-up (room made as waiting
    /// tasks leave, and [`interrupt_waits`](MemoryQueue::interrupt_waits)). It runs under the
    /// queue's lock, so
    /// it must be quick and must not call the queue. A caller whose reason to stop waiting lies
    /// outside the queue (a runtime shutting down, whose stopped loops will make no room)
    /// changes what `keep_waiting` reads, then calls `interrupt_waits`: a wait in progress sees
    /// the change at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// use workmill_core::{NewTask, Queue, QueueError};
    /// use workmill_queue::{MemoryConfig, MemoryQueue, OnFull};
    ///
    /// let patience = OnFull::Wait(Duration::from_secs(3_600));
    /// let queue = MemoryQueue::with_config(MemoryConfig::default().capacity(1).on_full(patience));
    /// queue.enqueue(NewTask::new("first", vec![]))?;
    /// let closed = AtomicBool::new(false);
    /// std::thread::scope(|s| {
    ///     let producer = s.spawn(|| {
    ///         let batch = vec![NewTask::new("second", vec![])];
    ///         queue.enqueue_batch_while(batch, || !closed.load(Ordering::SeqCst))
    ///     });
    ///     closed.store(true, Ordering::SeqCst);
    ///     queue.interrupt_waits();
    ///     let outcome = producer.join().unwrap();
    ///     assert!(matches!(outcome, Err(QueueError::QueueFull { capacity: 1 })));
    /// });
    /// assert_eq!(queue.stats()?.pending, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enqueue_batch_while(
        &self,
        tasks: Vec<NewTask>,
        mut keep_waiting: impl FnMut() -> bool,
    ) -> Result<Vec<TaskId>, QueueError> {
        for task in &tasks {
            self.check_new(task)?;
        }
        // The records are built before the lock is taken (see `state::prepare`),
        // so they carry the time of the call rather than of the insert.
        let now = self.clock.now();
        let ids: Vec<TaskId> = tasks.iter().map(|task| task.id.clone()).collect();
        let mut spares = self.spares.take(tasks.len());
        // Refilling a spare box drops what it held, reading its cold record: one pass first
        // brings all of them in, with their misses overlapped.
        std::hint::black_box(spares.iter().fold(0, |acc, task| acc ^ task.touch()));
        let prepared: Vec<_> = tasks
            .into_iter()
            .map(|task| state::prepare_in(spares.pop(), task, None, now, &self.hasher))
            .collect();
        let mut state = self.lock_with_room(prepared.len(), &mut keep_waiting)?;
        // A wait for room may have taken a while: schedule by the time now.
        let inserted = state.insert_prepared(prepared.into_iter(), self.clock.now());
        self.unlock(state);
        inserted.map(|()| ids)
    }

    /// [`Queue::submit_job`](workmill_core::Queue::submit_job) that also gives up waiting for
    /// room for the maps, returning [`QueueError::QueueFull`], once `keep_waiting()` returns
    /// false, asked as [`enqueue_batch_while`](MemoryQueue::enqueue_batch_while) asks its own; a
    /// job given up on is not recorded and adds none of its tasks.
    pub fn submit_job_while(
        &self,
        job: NewJob,
        mut keep_waiting: impl FnMut() -> bool,
    ) -> Result<TaskId, QueueError> {
        for task in job.maps.iter().chain(std::iter::once(&job.reduce)) {
            self.check_new(task)?;
        }
        let mut state = self.lock_with_room(job.maps.len(), &mut keep_waiting)?;
        let now = self.clock.now();
        let id = state.submit_job(job, now);
        self.unlock(state);
        id
    }

    /// Takes the lock once `count` more waiting tasks fit under the capacity, waiting for room
    /// as [`OnFull`] says while `keep_waiting` agrees.
    fn lock_with_room(
        &self,
        count: usize,
        keep_waiting: &mut dyn FnMut() -> bool,
    ) -> Result<MutexGuard<'_, State>, QueueError> {
        let start = Instant::now();
        let mut state = lock(&self.state);
        while !state.has_room(count) {
            let capacity = self.capacity.unwrap_or(usize::MAX);
            let patience = match self.on_full {
                OnFull::Wait(patience) if count <= capacity => patience,
                _ => return Err(QueueError::QueueFull { capacity }),
            };
            let waited = start.elapsed();
            if waited >= patience || !keep_waiting() {
                return Err(QueueError::QueueFull { capacity });
            }
            state.sleepers.producers += 1;
            state = self.signals.sleep_for_room(state, patience - waited);
            state.sleepers.producers -= 1;
        }
        Ok(state)
    }

    /// Checks a submission before taking the lock.
    fn check_new(&self, task: &NewTask) -> Result<(), QueueError> {
        if let Err(source) = task.retry.validate() {
            return Err(QueueError::InvalidPolicy {
                id: task.id.clone(),
                source,
            });
        }
        if let Some(limit) = self.max_payload
            && task.payload.len() > limit
        {
            return Err(QueueError::PayloadTooLarge {
                id: task.id.clone(),
                size: task.payload.len(),
                limit,
            });
        }
        Ok(())
    }
}
