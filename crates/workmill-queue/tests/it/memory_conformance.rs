//! The conformance suite against the in-memory backend.

use workmill_core::{QueueError, TaskId};
use workmill_queue::testkit::{Harness, QueueSettings};
use workmill_queue::{MemoryConfig, MemoryQueue};

/// Makes each queue a new `MemoryQueue`; there are no stored bytes to corrupt.
pub(crate) struct MemoryHarness;

impl Harness for MemoryHarness {
    type Queue = MemoryQueue;

    fn fresh(&self, settings: &QueueSettings) -> MemoryQueue {
        let retention = settings
            .retain_finished
            .map(|keep| usize::try_from(keep).unwrap_or(usize::MAX));
        MemoryQueue::with_config(MemoryConfig::default().retention(retention))
    }

    fn corrupt_payload(
        &self,
        _queue: &MemoryQueue,
        _id: &TaskId,
    ) -> Option<Result<(), QueueError>> {
        None
    }
}

workmill_queue::queue_conformance_tests!(MemoryHarness);
