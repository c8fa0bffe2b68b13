//! Integration tests of workmill-queue: the conformance suite against SQLite and PostgreSQL, and
//! each backend's own guarantees.

mod harness;
mod postgres_conformance;
mod postgres_open;
mod postgres_restart;
mod postgres_support;
mod sqlite_conformance;
mod sqlite_file;
mod sqlite_shared;
