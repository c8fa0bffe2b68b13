//! The conformance suite's hook into SQLite: damaging a stored payload the way a bad disk would.

use rusqlite::{OptionalExtension, params};
use workmill_core::{QueueError, TaskId};

use super::SqliteQueue;
use super::store::store_error;
use crate::testkit::CorruptStore;

impl CorruptStore for SqliteQueue {
    /// Flips the lowest bit of the first payload byte (or writes one stray byte into an
    /// empty payload) behind the queue's back, leaving the stored checksum as it was.
    fn corrupt_payload(&self, id: &TaskId) -> Result<(), QueueError> {
        const OP: &str = "corrupt a payload";
        let conn = self.connections.get();
        let payload: Option<Vec<u8>> = conn
            .query_row(
                "SELECT payload FROM tasks WHERE id = ?1",
                [id.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(store_error(OP))?;
        let Some(mut payload) = payload else {
            return Err(QueueError::NotFound { id: id.clone() });
        };
        match payload.first_mut() {
            Some(byte) => *byte ^= 1,
            None => payload.push(0),
        }
        conn.execute(
            "UPDATE tasks SET payload = ?1 WHERE id = ?2",
            params![payload, id.as_str()],
        )
        .map_err(store_error(OP))?;
        Ok(())
    }
}
