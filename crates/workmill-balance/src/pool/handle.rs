//! `TaskHandle`: where a distributed task's result arrives.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::error::PoolError;

/// The result of a task given to [`Pool::distribute`](crate::Pool::distribute), when it comes.
///
/// Dropping the handle does not cancel the task; its result is discarded.
#[derive(Debug)]
pub struct TaskHandle<O> {
    id: u64,
    result: Receiver<Result<O, PoolError>>,
}

impl<O> TaskHandle<O> {
    pub(crate) fn new(id: u64, result: Receiver<Result<O, PoolError>>) -> TaskHandle<O> {
        TaskHandle { id, result }
    }

    /// The task's number in its pool, as error messages show it (`task #7`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Blocks until the task succeeds or fails for good.
    pub fn wait(self) -> Result<O, PoolError> {
        self.result
            .recv()
            .unwrap_or(Err(PoolError::Abandoned { task: self.id }))
    }

    /// Waits at most `timeout`; on [`PoolError::Timeout`] the handle can wait again.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<O, PoolError> {
        match self.result.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(PoolError::Timeout {
                task: self.id,
                waited: timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Abandoned { task: self.id }),
        }
    }

    /// The result if it is there, without waiting.
    pub fn try_result(&self) -> Option<Result<O, PoolError>> {
        match self.result.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(PoolError::Abandoned { task: self.id })),
        }
    }
}
