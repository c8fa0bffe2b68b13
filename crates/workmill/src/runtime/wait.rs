//! `Waits`: the stop-aware wait for a task's final record, which task waits and job waits
//! share, and when a wait gives up because the loops that would run its task were stopped.

use std::time::{Duration, Instant};

use workmill_core::{Queue, QueueError, TaskId, TaskRecord, TaskStatus};
use workmill_queue::MemoryQueue;

#[cfg(test)]
use super::tests::hooks;
use crate::error::RuntimeError;
use crate::worker::{Control, Mode};

/// A queue to wait on, and when waits on it give up before their timeouts.
#[derive(Clone, Copy)]
pub(crate) struct Waits<'a> {
    queue: &'a dyn Queue,
    /// The same queue when it is a memory queue. A wait there is one wait, registered with the
    /// queue throughout ([`MemoryQueue::wait_while`], [`MemoryQueue::wait_job_while`]), so a
    /// small retention bound never evicts what it waits for from under it; the stop of the
    /// loops interrupts it ([`MemoryQueue::interrupt_waits`]).
    memory: Option<&'a MemoryQueue>,
    /// The control of the runtime's loops, which run what is waited for.
    loops: &'a Control,
    /// How long a wait in slices (on another backend) waits before it looks whether the loops
    /// were stopped.
    slice: Duration,
}

impl<'a> Waits<'a> {
    /// Waits on `queue` (which is `memory`, if that is given) for what the loops under `loops`
    /// run; on another backend than the memory queue they look every `slice` whether the loops
    /// were stopped.
    pub(crate) fn for_loops(
        queue: &'a dyn Queue,
        memory: Option<&'a MemoryQueue>,
        loops: &'a Control,
        slice: Duration,
    ) -> Waits<'a> {
        Waits {
            queue,
            memory,
            loops,
            slice,
        }
    }

    /// The queue waited on.
    pub(crate) fn queue(&self) -> &'a dyn Queue {
        self.queue
    }

    /// The queue as a memory queue, when it is one.
    pub(crate) fn memory(&self) -> Option<&'a MemoryQueue> {
        self.memory
    }

    /// True once the loops were told to stop: they start no more tasks.
    pub(crate) fn loops_stopped(&self) -> bool {
        self.loops.mode() == Mode::Stop
    }

    /// True if a wait for a task in `status` ends with [`RuntimeError::ShutDown`]: the loops
    /// are stopped and the task is not running (a stopping loop still finishes a running one).
    pub(crate) fn gives_up_on(&self, status: TaskStatus) -> bool {
        status != TaskStatus::Running && self.loops_stopped()
    }

    /// The `keep_waiting` of a wait on the memory queue for a task in `status`, asked under the
    /// queue's lock, which the wait holds until it is registered and asleep.
    pub(crate) fn keeps_waiting_for(&self, status: TaskStatus) -> bool {
        #[cfg(test)]
        hooks::waiting();
        !self.gives_up_on(status)
    }

    /// Blocks until task `id` is final, then returns its record, whatever the status.
    ///
    /// [`RuntimeError::Timeout`] once `timeout` passes, and [`RuntimeError::ShutDown`] once
    /// the loops are stopped and the task is not running. On the memory queue it is one
    /// [`MemoryQueue::wait_while`], which gets the final record however small the retention
    /// bound: waiting in slices, with nobody registered between them, a task finishing
    /// between two slices could be evicted before the next one looked. Elsewhere it waits a
    /// slice at a time, looking between them whether the loops were stopped (each slice
    /// there is a new wait on the store).
    pub(crate) fn task(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, RuntimeError> {
        if let Some(memory) = self.memory {
            let outcome = memory.wait_while(id, timeout, |status| self.keeps_waiting_for(status));
            return match outcome {
                Err(QueueError::Timeout { status, .. }) if self.gives_up_on(status) => {
                    Err(RuntimeError::ShutDown)
                }
                outcome => outcome.map_err(RuntimeError::from_wait),
            };
        }
        let start = Instant::now();
        // Whether the last look found the task running: a stopping loop still finishes it.
        let mut running = false;
        loop {
            // Read before the task: a task final by then is returned as it ended.
            let stopped = self.loops_stopped();
            let wait = if stopped && !running {
                Duration::ZERO
            } else {
                timeout.saturating_sub(start.elapsed()).min(self.slice)
            };
            match self.queue.wait(id, wait) {
                Ok(record) => return Ok(record),
                Err(QueueError::Timeout { status, .. }) => {
                    running = status == TaskStatus::Running;
                    if stopped && !running {
                        return Err(RuntimeError::ShutDown);
                    }
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(RuntimeError::Timeout {
                            id: id.clone(),
                            waited,
                            status,
                        });
                    }
                    #[cfg(test)]
                    hooks::between_waits();
                }
                Err(error) => return Err(RuntimeError::from_wait(error)),
            }
        }
    }
}
