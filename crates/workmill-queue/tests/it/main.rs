//! Integration tests of workmill-queue: the conformance suite against every backend, and each backend's own guarantees.

mod bounds;
mod harness;
mod jobs;
mod leases;
mod lifecycle;
mod memory_conformance;
mod model;
mod ordering;
mod sqlite_conformance;
mod sqlite_file;
mod sqlite_shared;
mod support;
mod waiting;
