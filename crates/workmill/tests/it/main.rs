//! Integration tests of the workmill facade: the seed's scenarios, bad input, the lifecycle through
//! the runtime, results, map-reduce jobs, shutdown, a stress test, backend URLs, and worker
//! processes (in this process, and as real processes killed and signalled).
// The loom build (`cargo xtask loom`) checks unit tests only; these need the real backends.
#![cfg(not(workmill_loom))]

mod backend_url;
mod backend_worker;
mod bad_input;
mod flaky;
mod jobs;
mod lifecycle;
mod pool_host;
#[cfg(unix)]
mod process;
mod results;
mod scenarios;
mod shutdown;
mod stores;
mod stress;
mod support;
mod wordcount;
mod worker_process;
