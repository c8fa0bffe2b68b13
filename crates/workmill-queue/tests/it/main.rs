//! Integration tests of workmill-queue: the conformance suite against SQLite and Redis, and each backend's own guarantees.

mod harness;
mod redis_conformance;
mod redis_connection;
mod redis_harness;
mod redis_restart;
mod redis_server;
mod redis_tls;
mod sqlite_conformance;
mod sqlite_file;
mod sqlite_shared;
