//! The conformance suite's hook into Redis: damaging a stored payload the way a bad write would.

use workmill_core::{QueueError, TaskId};

use super::RedisQueue;
use crate::testkit::CorruptStore;

impl CorruptStore for RedisQueue {
    /// Flips the lowest bit of the first payload byte (or writes one stray byte into an
    /// empty payload) behind the queue's back, leaving the stored checksum as it was.
    fn corrupt_payload(&self, id: &TaskId) -> Result<(), QueueError> {
        const OP: &str = "corrupt a payload";
        let key = self.task_key(id);
        let payload: Option<Vec<u8>> = self.pool.run(OP, |con| {
            redis::cmd("HGET").arg(&key).arg("payload").query(con)
        })?;
        let Some(mut payload) = payload else {
            return Err(QueueError::NotFound { id: id.clone() });
        };
        match payload.first_mut() {
            Some(byte) => *byte ^= 1,
            None => payload.push(0),
        }
        self.pool.run(OP, |con| {
            redis::cmd("HSET")
                .arg(&key)
                .arg("payload")
                .arg(payload)
                .query::<i64>(con)
        })?;
        Ok(())
    }
}
