//! Worker processes for real: the test binary starts copies of itself running `worker::run` on
//! one SQLite file, and kills, stops and signals them.
//!
//! `child.rs` holds the body of those processes (entered through one test, filtered by exact
//! name), `parent.rs` the test's handle on them; `crash.rs` kills one with SIGKILL mid-run;
//! `signals.rs` stops them with SIGTERM and SIGINT.

mod child;
mod crash;
mod parent;
mod signals;
