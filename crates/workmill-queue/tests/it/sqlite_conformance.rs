//! The conformance suite against SQLite: on files (WAL, several connections) and in memory.

mod file {
    workmill_queue::queue_conformance_tests!(crate::harness::SqliteFileHarness::new());
}

mod memory {
    workmill_queue::queue_conformance_tests!(crate::harness::SqliteMemoryHarness);
}
