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

/// Drops `value` where a panic must not escape: a value whose `Drop` panics (a panic
/// payload made with `panic_any`, a task's result) is dropped inside a catch, and the panic
/// is shown to `report`; so is the payload of that panic, and of the next. A payload still
/// panicking on drop after [`NESTED_DROPS`] rounds is leaked rather than dropped.
pub(crate) fn drop_quietly<T>(value: T, report: impl FnOnce(&(dyn Any + Send))) {
    let Err(mut payload) = halt_unwinding(move || drop(value)) else {
        return;
    };
    report(&*payload);
    for _ in 0..NESTED_DROPS {
        match halt_unwinding(move || drop(payload)) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}

/// Runs `f` where a panic must not escape (a hook, the panic handler): its panic is caught,
/// and its payload dropped with [`drop_quietly`], since that `Drop` may panic too.
pub(crate) fn run_quietly(f: impl FnOnce()) {
    if let Err(payload) = halt_unwinding(f) {
        drop_quietly(payload, |_| {});
    }
}

/// How many payloads in a row [`drop_quietly`] drops, each raised by dropping the one
/// before: one is the usual case (a `panic!` message drops cleanly).
const NESTED_DROPS: usize = 4;

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

/// The message of a caught panic: the text `panic!` or `assert!` gave it, or
/// a placeholder when the payload is not a string (`std::panic::panic_any`).
///
/// [`TaskPanicked::message`](crate::TaskPanicked::message) is made with it, and
/// crates built on the executor use it to put a panic into their own errors, so
/// every layer words a panic the same way.
///
/// # Examples
///
/// ```
/// use std::panic::catch_unwind;
/// use workmill_executor::panic_message;
///
/// let formatted = catch_unwind(|| panic!("item {} failed", 7)).unwrap_err();
/// assert_eq!(panic_message(&*formatted), "item 7 failed");
/// let literal = catch_unwind(|| panic!("no input")).unwrap_err();
/// assert_eq!(panic_message(&*literal), "no input");
/// let other = catch_unwind(|| std::panic::panic_any(42u8)).unwrap_err();
/// assert_eq!(panic_message(&*other), "a panic with a non-string payload");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
