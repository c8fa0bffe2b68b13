//! Integration tests of the workmill runtime: the seed's scenarios, bad input, the lifecycle through
//! the runtime, results, shutdown, and a stress test.

mod bad_input;
mod lifecycle;
mod results;
mod scenarios;
mod shutdown;
mod stress;
mod support;
