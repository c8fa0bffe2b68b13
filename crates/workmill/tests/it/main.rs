//! Integration tests of the workmill runtime: the seed's scenarios, bad input, the lifecycle through
//! the runtime, results, shutdown, and a stress test.

mod backend_url;
mod bad_input;
mod flaky;
mod lifecycle;
mod results;
mod scenarios;
mod shutdown;
mod stress;
mod support;
mod worker_process;
