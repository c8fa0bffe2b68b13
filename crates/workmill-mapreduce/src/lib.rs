//! In-process parallel map-reduce on the workmill executor: `map_reduce`, `fold`, ordered `map`,
//! and keyed map-reduce with a map-side combiner, over slices, `Vec`s, ranges (`a..b`, `a..=b`) and exact-size iterators.
//!
//! The input is split recursively with the executor's
//! [`join_context`](workmill_executor::join_context), and each chunk is folded
//! sequentially on one worker. By default the splitting is adaptive
//! ([`Chunking::Adaptive`]): a few halvings, and more only where an idle worker
//! actually stole a half, so even work costs about two chunks per thread and
//! uneven work is balanced where it is uneven. [`Chunking::Fixed`] and
//! [`Chunking::PerWorker`] chunk up front instead, and
//! [`MapReduce::min_len`]/[`MapReduce::max_len`] bound chunk lengths in every mode.
//!
//! Keyed map-reduce ([`map_reduce_by_key`]) merges by hash partitions, or by
//! a [`Partitioner`] of your own ([`MapReduce::partition_by`]).
//!
//! Reductions need an associative `reduce`, not a commutative one (and a
//! `fold` that agrees with it, see [`MapReduce::fold`]): results
//! are combined in input order, so they equal the sequential references
//! ([`map_reduce_seq`], [`fold_seq`], [`map_reduce_by_key_seq`]).
//!
//! The free functions run on the current pool (or the global one outside every
//! pool) with the default configuration; [`MapReduce`] chooses the chunking and
//! the pool. A panic in a closure skips the chunks not yet started and reaches
//! the caller once every running chunk has stopped, as a panic, or as a
//! [`MapReduceError`] from the `try_` methods.
//!
//! This crate knows nothing of queues, backends or codecs: distributed
//! map-reduce jobs across worker processes live in the `workmill` facade.
//!
//! # Examples
//!
//! ```
//! use workmill_executor::ThreadPool;
//! use workmill_mapreduce::{Chunking, MapReduce, map, map_reduce, map_reduce_by_key};
//!
//! // Sum of squares, checked against the closed form.
//! let n = 1_000_000u64;
//! let sum = map_reduce(0..=n, |x| u128::from(x) * u128::from(x), |a, b| a + b);
//! let n = u128::from(n);
//! assert_eq!(sum, Some(n * (n + 1) * (2 * n + 1) / 6));
//!
//! // Order-preserving map.
//! assert_eq!(map(&[3, 1, 2], |x| x * 10), [30, 10, 20]);
//!
//! // Word count with a map-side combiner.
//! let text = "a rose is a rose is a rose";
//! let lines: Vec<&str> = text.split(" is ").collect();
//! let counts = map_reduce_by_key(&lines, |l| l.split(' ').map(|w| (w, 1)), |c, one| *c += one);
//! assert_eq!((counts["a"], counts["rose"]), (3, 3));
//!
//! // A chosen pool and chunking.
//! let pool = ThreadPool::builder().num_threads(2).build()?;
//! let data: Vec<u32> = (0..10_000).collect();
//! let max = MapReduce::new()
//!     .pool(&pool)
//!     .chunking(Chunking::fixed(1_000).unwrap())
//!     .map_reduce(&data, |&x| x ^ 0x55, u32::max);
//! assert_eq!(max, data.iter().map(|&x| x ^ 0x55).max());
//! # Ok::<(), workmill_executor::BuildError>(())
//! ```
//!
//! A panicking map reaches the caller, and the pool lives on:
//!
//! ```
//! use workmill_mapreduce::MapReduce;
//!
//! let result = MapReduce::new().try_map_reduce(0..1_000u32, |x| {
//!     assert!(x != 500, "bad item {x}");
//!     x
//! }, |a, b| a + b);
//! assert_eq!(result.unwrap_err().to_string().contains("bad item 500"), true);
//! ```
#![forbid(unsafe_code)]

mod bridge;
mod chunking;
mod config;
pub mod corpus;
mod error;
mod hash;
mod keyed;
mod partition;
mod seq;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub use chunking::Chunking;
pub use config::MapReduce;
pub use error::MapReduceError;
pub use partition::{PartitionedBy, Partitioner};
pub use seq::{fold_seq, map_reduce_by_key_seq, map_reduce_seq};
pub use source::{ExactSize, IntoSource, Source};

/// Maps every item and reduces the results in input order, on the current pool; `None` for empty input.
///
/// [`MapReduce::map_reduce`] with the default configuration; see there.
///
/// # Examples
///
/// ```
/// let words = ["map", "reduce", "fold"];
/// let longest = workmill_mapreduce::map_reduce(&words, |w| w.len(), usize::max);
/// assert_eq!(longest, Some(6));
/// ```
pub fn map_reduce<I, R, M, F>(input: I, map: M, reduce: F) -> Option<R>
where
    I: IntoSource,
    R: Send,
    M: Fn(I::Item) -> R + Sync,
    F: Fn(R, R) -> R + Sync,
{
    MapReduce::new().map_reduce(input, map, reduce)
}

/// Folds each chunk from `identity()` and reduces the chunks' results in input order, on the current pool.
///
/// [`MapReduce::fold`] with the default configuration; see there.
///
/// # Examples
///
/// ```
/// // A histogram of last digits: one array per chunk instead of one per item.
/// let histogram = workmill_mapreduce::fold(
///     0..1_000u32,
///     || [0u32; 10],
///     |mut h, x| { h[(x % 10) as usize] += 1; h },
///     |mut a, b| { a.iter_mut().zip(b).for_each(|(a, b)| *a += b); a },
/// );
/// assert_eq!(histogram, [100; 10]);
/// ```
pub fn fold<I, A, ID, F, R>(input: I, identity: ID, fold: F, reduce: R) -> A
where
    I: IntoSource,
    A: Send,
    ID: Fn() -> A + Sync,
    F: Fn(A, I::Item) -> A + Sync,
    R: Fn(A, A) -> A + Sync,
{
    MapReduce::new().fold(input, identity, fold, reduce)
}

/// Maps every item in parallel on the current pool and collects the results in input order.
///
/// # Examples
///
/// ```
/// let squares = workmill_mapreduce::map(vec![1u64, 2, 3], |x| x * x);
/// assert_eq!(squares, [1, 4, 9]);
/// ```
pub fn map<I, R, M>(input: I, map: M) -> Vec<R>
where
    I: IntoSource,
    R: Send,
    M: Fn(I::Item) -> R + Sync,
{
    MapReduce::new().map(input, map)
}

/// Keyed map-reduce into a `HashMap`, on the current pool; see [`MapReduce::map_reduce_by_key`].
pub fn map_reduce_by_key<I, K, V, P, M, C>(input: I, map: M, combine: C) -> HashMap<K, V>
where
    I: IntoSource,
    K: Hash + Eq + Send,
    V: Send,
    P: IntoIterator<Item = (K, V)>,
    M: Fn(I::Item) -> P + Sync,
    C: Fn(&mut V, V) + Sync,
{
    MapReduce::new().map_reduce_by_key(input, map, combine)
}

/// Keyed map-reduce into a `BTreeMap`, on the current pool; see [`MapReduce::map_reduce_by_key_sorted`].
pub fn map_reduce_by_key_sorted<I, K, V, P, M, C>(input: I, map: M, combine: C) -> BTreeMap<K, V>
where
    I: IntoSource,
    K: Hash + Ord + Send,
    V: Send,
    P: IntoIterator<Item = (K, V)>,
    M: Fn(I::Item) -> P + Sync,
    C: Fn(&mut V, V) + Sync,
{
    MapReduce::new().map_reduce_by_key_sorted(input, map, combine)
}
