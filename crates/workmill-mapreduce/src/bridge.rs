//! The engine every operation runs on: split a source recursively with `join_context`, fold the chunks, combine the results, and stop early on a panic.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use workmill_executor::{current_num_threads, join_context};

use crate::chunking::Splitter;
use crate::config::MapReduce;
use crate::source::Source;

/// What the chunks of one run share: the closures, and the first panic.
struct Run<'a, L, C> {
    leaf: &'a L,
    combine: &'a C,
    /// Set by the first panic: chunks not yet started are skipped.
    stopped: AtomicBool,
    first_panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// The payload a chunk unwinds with when it stops because another one panicked.
struct Stopped;

impl<L, C> Run<'_, L, C> {
    /// Runs `f`; if it panics, keeps the first payload, tells the other chunks to stop, and unwinds.
    #[inline]
    fn guarded<R>(&self, f: impl FnOnce() -> R) -> R {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => value,
            Err(payload) => self.stop(payload),
        }
    }

    #[cold]
    fn stop(&self, payload: Box<dyn Any + Send>) -> ! {
        if !payload.is::<Stopped>() {
            let mut first = self.first_panic.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(payload);
        }
        self.stopped.store(true, Ordering::Relaxed);
        // `resume_unwind` skips the panic hook: only the original panic is reported.
        resume_unwind(Box::new(Stopped))
    }
}

/// Folds `source` in chunks on the current pool (the caller must be on a
/// worker), cut as `config` chooses (its pool is not used): `leaf` turns one chunk into a `T`, `combine` joins the `T`s of
/// neighbouring chunks in input order.
///
/// A panic in `leaf`, in `combine`, or in the source's `len` or `split_at`
/// skips every chunk not yet started, waits for those running (the
/// executor's `join` waits for stolen halves), and is re-raised here with
/// its original payload.
pub(crate) fn run<S, T, L, C>(source: S, config: &MapReduce<'_>, leaf: &L, combine: &C) -> T
where
    S: Source,
    T: Send,
    L: Fn(S) -> T + Sync,
    C: Fn(T, T) -> T + Sync,
{
    let splitter = Splitter::new(
        config.chunking,
        source.len(),
        current_num_threads(),
        config.min_len,
        config.max_len,
    );
    let run = Run {
        leaf,
        combine,
        stopped: AtomicBool::new(false),
        first_panic: Mutex::new(None),
    };
    match catch_unwind(AssertUnwindSafe(|| bridge(source, splitter, false, &run))) {
        Ok(value) => value,
        Err(payload) => {
            let first = run
                .first_panic
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            resume_unwind(first.unwrap_or(payload))
        }
    }
}

/// The `combine` of runs whose chunks each yield a one-element list: the
/// left piece's list, then the right one's, so the lists stay in input order.
pub(crate) fn concat<T>(mut left: Vec<T>, mut right: Vec<T>) -> Vec<T> {
    left.append(&mut right);
    left
}

fn bridge<S, T, L, C>(source: S, mut splitter: Splitter, migrated: bool, run: &Run<'_, L, C>) -> T
where
    S: Source,
    T: Send,
    L: Fn(S) -> T + Sync,
    C: Fn(T, T) -> T + Sync,
{
    if run.stopped.load(Ordering::Relaxed) {
        run.stop(Box::new(Stopped));
    }
    // The source's `len` and `split_at` may panic too, and stop the run as a
    // `leaf` that panics does.
    let pieces = run.guarded(|| match splitter.split(source.len(), migrated) {
        Some(mid) => Ok(source.split_at(mid)),
        None => Err(source),
    });
    match pieces {
        Ok((left, right)) => {
            let (a, b) = join_context(
                |ctx| bridge(left, splitter, ctx.migrated(), run),
                |ctx| bridge(right, splitter, ctx.migrated(), run),
            );
            run.guarded(|| (run.combine)(a, b))
        }
        Err(source) => run.guarded(|| (run.leaf)(source)),
    }
}
