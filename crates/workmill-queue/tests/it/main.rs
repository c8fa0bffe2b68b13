//! Integration tests of workmill-queue: the conformance suite against SQLite, and SQLite's own guarantees.

mod harness;
mod sqlite_conformance;
mod sqlite_file;
mod sqlite_shared;
