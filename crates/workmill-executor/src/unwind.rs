//! Catching panics at the boundaries where work changes threads, and aborting where unwinding would be unsound.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// A caught panic's payload.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Runs `f`, turning a panic into `Err(payload)`.
///
/// Unwind safety is asserted because every caller either re-raises the panic
/// on the thread that owns the data, or only stores the payload.
#[inline]
pub(crate) fn halt_unwinding<F, R>(f: F) -> Result<R, Panic>
where
    F: FnOnce() -> R,
{
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Re-raises a caught panic on this thread.
pub(crate) fn resume_unwinding(payload: Panic) -> ! {
    panic::resume_unwind(payload)
}

/// Aborts the process if dropped while panicking: guards code that must not
/// unwind because another thread may still be using this stack frame.
pub(crate) struct AbortIfPanic;

impl Drop for AbortIfPanic {
    fn drop(&mut self) {
        eprintln!("workmill-executor: a panic escaped code that must not unwind; aborting");
        std::process::abort();
    }
}

/// The panic message, when the payload is a string (as `panic!` makes it).
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
