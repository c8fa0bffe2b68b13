//! The conformance harnesses for SQLite: a fresh database file per queue, or a private in-memory one.

use tempfile::TempDir;
use workmill_core::{QueueError, TaskId};
use workmill_queue::sqlite::{SqliteConfig, SqliteQueue};
use workmill_queue::testkit::{CorruptStore, Harness, QueueSettings};

/// Makes each queue in its own file inside a temporary directory removed after the test.
pub(crate) struct SqliteFileHarness {
    dir: TempDir,
}

impl SqliteFileHarness {
    pub(crate) fn new() -> SqliteFileHarness {
        SqliteFileHarness {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

fn config(settings: &QueueSettings) -> SqliteConfig {
    SqliteConfig::new().retain_finished(settings.retain_finished)
}

impl Harness for SqliteFileHarness {
    type Queue = SqliteQueue;

    fn fresh(&self, settings: &QueueSettings) -> SqliteQueue {
        let path = self.dir.path().join(format!("{}.db", TaskId::generate()));
        SqliteQueue::open_path(path, config(settings)).expect("open a fresh SQLite file")
    }

    fn corrupt_payload(&self, queue: &SqliteQueue, id: &TaskId) -> Option<Result<(), QueueError>> {
        Some(queue.corrupt_payload(id))
    }
}

/// Makes each queue a private in-memory database (one connection).
pub(crate) struct SqliteMemoryHarness;

impl Harness for SqliteMemoryHarness {
    type Queue = SqliteQueue;

    fn fresh(&self, settings: &QueueSettings) -> SqliteQueue {
        config(settings)
            .open("sqlite::memory:")
            .expect("open an in-memory SQLite queue")
    }

    fn corrupt_payload(&self, queue: &SqliteQueue, id: &TaskId) -> Option<Result<(), QueueError>> {
        Some(queue.corrupt_payload(id))
    }
}
