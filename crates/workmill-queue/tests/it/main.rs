//! Integration tests of workmill-queue: the conformance suite against every backend (memory,
//! SQLite, PostgreSQL, Redis), and each backend's own guarantees.
// The loom build (`cargo xtask loom`) checks unit tests only; these need the real backends.
#![cfg(not(workmill_loom))]

mod bounds;
mod harness;
mod jobs;
mod leases;
mod lifecycle;
mod memory_conformance;
mod model;
mod ordering;
mod postgres_conformance;
mod postgres_jobs;
mod postgres_open;
mod postgres_restart;
mod postgres_support;
mod redis_conformance;
mod redis_connection;
mod redis_harness;
mod redis_jobs;
mod redis_restart;
mod redis_server;
mod redis_tls;
mod sqlite_conformance;
mod sqlite_file;
mod sqlite_shared;
mod support;
mod waiting;
