//! Panics in map and reduce reach the caller (as a panic or a `MapReduceError`), stop the remaining chunks, and never hang; empty inputs give the identity.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use workmill_executor::ThreadPool;
use workmill_mapreduce::{Chunking, MapReduce, MapReduceError, Source};

use super::pool;

fn modes() -> [Chunking; 3] {
    [
        Chunking::Adaptive,
        Chunking::fixed(7).unwrap(),
        Chunking::PER_WORKER,
    ]
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn a_panicking_map_reaches_the_caller_with_its_payload() {
    for chunking in modes() {
        let run = MapReduce::new().pool(pool()).chunking(chunking);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            run.map_reduce(
                0..10_000u32,
                |x| {
                    if x == 6_543 {
                        panic!("map failed on {x}");
                    }
                    u64::from(x)
                },
                |a, b| a + b,
            )
        }))
        .expect_err("the panic reaches the caller");
        assert_eq!(message(&*caught), "map failed on 6543", "{chunking:?}");
        // The pool's workers survived and still compute correct results.
        assert_eq!(
            run.map_reduce(0..10_000u64, |x| x, |a, b| a + b),
            Some(49_995_000)
        );
    }
}

#[test]
fn a_panicking_reduce_reaches_the_caller() {
    for chunking in modes() {
        let run = MapReduce::new().pool(pool()).chunking(chunking);
        // Every mode cuts 1,000 items into at least two chunks on three
        // threads, so the last reduce sees the whole sum, 499,500.
        let caught = catch_unwind(AssertUnwindSafe(|| {
            run.fold(
                0..1_000u32,
                || 0u32,
                |a, x| a + x,
                |a, b| {
                    assert!(a + b < 100_000, "reduce overflowed its budget");
                    a + b
                },
            )
        }))
        .expect_err("the reduce's panic reaches the caller");
        assert_eq!(
            message(&*caught),
            "reduce overflowed its budget",
            "{chunking:?}"
        );
        let result = run.try_map_reduce(0..1_000u32, |x| x, |_, _| -> u32 { panic!("no reduce") });
        assert_eq!(
            result,
            Err(MapReduceError::Panicked {
                message: "no reduce".to_owned()
            }),
            "{chunking:?}: 1,000 items make at least two chunks on three threads"
        );
    }
}

#[test]
fn try_variants_return_a_typed_error() {
    let run = MapReduce::new()
        .pool(pool())
        .chunking(Chunking::fixed(16).unwrap());
    let error = run
        .try_map_reduce(&[1u32, 2, 0, 4][..], |&x| 12 / x, |a, b| a + b)
        .unwrap_err();
    let MapReduceError::Panicked { message } = &error else {
        panic!("not a panic: {error:?}");
    };
    assert!(message.contains("divide by zero"), "{message}");
    assert!(error.to_string().contains("divide by zero"));
    // Checked explicitly, so that the fold panics in release builds too (where `+` wraps).
    let add = |a: u8, x: u8| a.checked_add(x).expect("u8 overflow");
    let error = run.try_fold(0..100u8, || 0u8, add, add).unwrap_err();
    assert!(error.to_string().contains("overflow"), "{error}");
    assert_eq!(run.try_fold(0..10u8, || 0u8, add, add), Ok(45));
}

#[test]
fn a_non_string_panic_is_worded_as_the_executor_words_it() {
    let run = MapReduce::new().pool(pool());
    let error = run
        .try_map_reduce(
            0..100u32,
            |x| {
                if x == 42 {
                    std::panic::panic_any(x);
                }
                x
            },
            |a, b| a + b,
        )
        .unwrap_err();
    // One wording across the layers: the executor's `TaskPanicked` says the same.
    let spawned = workmill_executor::spawn(|| std::panic::panic_any(42u32))
        .join()
        .unwrap_err();
    assert_eq!(
        error,
        MapReduceError::Panicked {
            message: spawned.message().to_owned()
        }
    );
    assert_eq!(spawned.message(), "a panic with a non-string payload");
}

#[test]
fn a_panic_skips_the_chunks_not_yet_started() {
    // Item 0 panics once another worker has started on the right half; every
    // other item takes a millisecond, so without stopping the run would take
    // seconds and map every item.
    let pool = ThreadPool::builder().num_threads(2).build().unwrap();
    let run = MapReduce::new()
        .pool(&pool)
        .chunking(Chunking::fixed(1).unwrap());
    let mapped = AtomicUsize::new(0);
    let right_started = AtomicBool::new(false);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run.map(0..2_000u32, |x| {
            if x == 0 {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !right_started.load(Ordering::SeqCst) && Instant::now() < deadline {
                    thread::yield_now();
                }
                panic!("first item failed");
            }
            right_started.store(true, Ordering::SeqCst);
            mapped.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            x
        })
    }));
    assert_eq!(message(&*caught.unwrap_err()), "first item failed");
    let mapped = mapped.load(Ordering::SeqCst);
    assert!(
        mapped < 1_000,
        "{mapped} of 1,999 items were mapped after the panic"
    );
}

/// A range whose first items panic on being split, once another worker has
/// mapped an item of its right half.
struct FragileSource<'a> {
    items: std::ops::Range<u32>,
    right_started: &'a AtomicBool,
}

impl Source for FragileSource<'_> {
    type Item = u32;
    type IntoIter = std::ops::Range<u32>;

    fn len(&self) -> usize {
        ExactSizeIterator::len(&self.items)
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        if self.items.start == 0 && ExactSizeIterator::len(&self.items) < 16 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.right_started.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::yield_now();
            }
            panic!("split failed");
        }
        let mid = self.items.start + index as u32;
        let left = FragileSource {
            items: self.items.start..mid,
            ..self
        };
        let right = FragileSource {
            items: mid..self.items.end,
            ..self
        };
        (left, right)
    }

    fn into_items(self) -> Self::IntoIter {
        self.items
    }
}

#[test]
fn a_panicking_source_skips_the_chunks_not_yet_started() {
    // As above, but the panic comes from the input's own `split_at`, on the
    // left, while the other worker maps the right half item by item.
    let pool = ThreadPool::builder().num_threads(2).build().unwrap();
    let run = MapReduce::new()
        .pool(&pool)
        .chunking(Chunking::fixed(1).unwrap());
    let mapped = AtomicUsize::new(0);
    let right_started = AtomicBool::new(false);
    let source = FragileSource {
        items: 0..2_000,
        right_started: &right_started,
    };
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run.map(source, |x| {
            right_started.store(true, Ordering::SeqCst);
            mapped.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            x
        })
    }));
    assert_eq!(message(&*caught.unwrap_err()), "split failed");
    let mapped = mapped.load(Ordering::SeqCst);
    assert!(
        mapped < 500,
        "{mapped} of the right half's 1,000 items were mapped after the panic"
    );
}

#[test]
fn empty_inputs_give_the_identity_or_none() {
    for chunking in modes() {
        let run = MapReduce::new().pool(pool()).chunking(chunking);
        let empty: &[u32] = &[];
        assert_eq!(run.map_reduce(empty, |&x| x, |a, b| a + b), None);
        assert_eq!(run.try_map_reduce(0..0u64, |x| x, |a, b| a + b), Ok(None));
        assert_eq!(
            run.fold(Vec::<u8>::new(), || 7u8, |a, x| a + x, |a, b| a + b),
            7
        );
        assert!(run.map(empty, |&x| x).is_empty());
        let counts = run.map_reduce_by_key(empty, |&x| [(x, 1)], |c: &mut u32, n| *c += n);
        assert_eq!(counts, HashMap::new());
        assert!(
            run.map_reduce_by_key_sorted(empty, |&x| [(x, 1)], |c: &mut u32, n| *c += n)
                .is_empty()
        );
    }
    assert_eq!(
        workmill_mapreduce::map_reduce(5..5u8, |x| x, |a, b| a + b),
        None
    );
}
