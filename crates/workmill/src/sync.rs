//! The synchronization types of the facade's own primitives: std's normally, loom's under `--cfg workmill_loom`.

#[cfg(workmill_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(workmill_loom)]
pub(crate) use loom::sync::{Condvar, Mutex};

#[cfg(not(workmill_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(workmill_loom))]
pub(crate) use std::sync::{Condvar, Mutex};
