//! Integration tests of workmill-executor: every public API item, its panic and shutdown behaviour.
#![cfg(not(workmill_loom))]

mod join;
