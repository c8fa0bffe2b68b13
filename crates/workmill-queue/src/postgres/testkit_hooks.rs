//! The conformance suite's hook into PostgreSQL: damaging a stored payload the way a bad disk would.

use workmill_core::{QueueError, TaskId};

use super::PostgresQueue;
use super::pool::Session;
use super::store::store_error;
use crate::testkit::CorruptStore;

/// Flips the lowest bit of the first payload byte, or writes one stray byte into an empty payload,
/// leaving the stored checksum as it was.
const CORRUPT: &str = "
UPDATE {s}.tasks
SET payload = CASE WHEN octet_length(payload) = 0 THEN '\\x00'::bytea
                   ELSE set_byte(payload, 0, get_byte(payload, 0) # 1) END
WHERE id = $1";

impl CorruptStore for PostgresQueue {
    fn corrupt_payload(&self, id: &TaskId) -> Result<(), QueueError> {
        const OP: &str = "corrupt a payload";
        let changed = self.pool.with(|session| {
            let Session {
                client,
                statements,
                settings,
            } = session;
            let update = statements
                .get(client, settings, CORRUPT)
                .map_err(store_error(OP))?;
            client
                .execute(&update, &[&id.as_str()])
                .map_err(store_error(OP))
        })?;
        if changed == 0 {
            return Err(QueueError::NotFound { id: id.clone() });
        }
        Ok(())
    }
}
