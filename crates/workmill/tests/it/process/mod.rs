//! Worker processes for real: the test binary starts copies of itself running `worker::run` on
//! one store (a SQLite file, a Redis prefix, a PostgreSQL schema), and kills, stops and signals
//! them, or takes their server away.
//!
//! `child.rs` holds the body of those processes (entered through one test, filtered by exact
//! name), `parent.rs` the test's handle on them; `crash.rs` kills one with SIGKILL mid-run on
//! each backend; `jobs.rs` has them run a map-reduce job on each backend; `signals.rs` stops them
//! with SIGTERM and SIGINT; `redis_restart.rs` restarts
//! their Redis server (a private one, `private_redis.rs`) and `postgres_terminate.rs` terminates
//! their PostgreSQL connections, with the checks both share in `outage.rs`.

mod child;
mod crash;
mod jobs;
mod outage;
mod parent;
mod postgres_terminate;
mod private_redis;
mod redis_restart;
mod signals;
