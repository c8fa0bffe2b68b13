//! `MapReduce`: the configuration of a run (chunking, length bounds, pool, partitions) and its operations.

use std::panic::{AssertUnwindSafe, catch_unwind};

use workmill_executor::ThreadPool;

use crate::bridge;
use crate::chunking::Chunking;
use crate::error::MapReduceError;
use crate::source::{IntoSource, Source};

/// A map-reduce configuration: how to chunk the input and which pool runs it.
///
/// `MapReduce::new()` is what the free functions ([`map_reduce`](crate::map_reduce),
/// [`fold`](crate::fold), ...) use: [`Chunking::Adaptive`], no length bounds, and the
/// current pool (the one the caller runs on, or the global pool outside every pool).
///
/// # Examples
///
/// ```
/// use workmill_executor::ThreadPool;
/// use workmill_mapreduce::{Chunking, MapReduce};
///
/// let pool = ThreadPool::builder().num_threads(2).build()?;
/// let data: Vec<u64> = (1..=1000).collect();
/// let run = MapReduce::new().pool(&pool).chunking(Chunking::PER_WORKER).min_len(64);
/// assert_eq!(run.map_reduce(&data, |&x| x * 2, |a, b| a + b), Some(1000 * 1001));
/// assert_eq!(run.fold(0..10u32, || 0, |n, x| n + x as usize, |a, b| a + b), 45);
/// assert_eq!(run.map(&data[..3], |x| x.to_string()), ["1", "2", "3"]);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MapReduce<'pool> {
    pub(crate) chunking: Chunking,
    pub(crate) min_len: usize,
    pub(crate) max_len: usize,
    pub(crate) pool: Option<&'pool ThreadPool>,
    pub(crate) partitions: Option<usize>,
}

impl Default for MapReduce<'_> {
    fn default() -> Self {
        MapReduce::new()
    }
}

impl<'pool> MapReduce<'pool> {
    /// Adaptive chunking, no length bounds, the current pool.
    pub const fn new() -> MapReduce<'pool> {
        MapReduce {
            chunking: Chunking::Adaptive,
            min_len: 1,
            max_len: usize::MAX,
            pool: None,
            partitions: None,
        }
    }

    /// How to cut the input into chunks; see [`Chunking`].
    pub fn chunking(mut self, chunking: Chunking) -> Self {
        self.chunking = chunking;
        self
    }

    /// No chunk shorter than `len` items, except a shorter whole input and the
    /// last chunk of a fixed or per-worker chunking. Raise it when one item
    /// costs little, so that a chunk's work outweighs a split.
    pub fn min_len(mut self, len: usize) -> Self {
        self.min_len = len.max(1);
        self
    }

    /// Chunks longer than `len` items are split. Fixed and per-worker chunking cut
    /// chunks of at most `len`; adaptive chunking halves, and stops halving a piece
    /// whose halves would be shorter than [`min_len`](Self::min_len), so with both
    /// bounds set its chunks may reach twice `min_len` (the minimum wins). Lower it
    /// when a few items may cost much more than the rest.
    pub fn max_len(mut self, len: usize) -> Self {
        self.max_len = len.max(1);
        self
    }

    /// Runs on `pool` instead of the current one.
    pub fn pool(mut self, pool: &'pool ThreadPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// How many partitions [`map_reduce_by_key`](Self::map_reduce_by_key)
    /// merges in parallel; by default four per thread, at most 65,536. A
    /// [`Partitioner`](crate::Partitioner) is given this count.
    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = Some(partitions.max(1));
        self
    }

    /// Runs `op` on a worker of the chosen pool.
    pub(crate) fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match self.pool {
            Some(pool) => pool.install(op),
            None if workmill_executor::current_thread_index().is_some() => op(),
            None => workmill_executor::scope(|_| op()),
        }
    }

    /// Maps every item and reduces the results in input order; `None` for empty input.
    ///
    /// `reduce` must be associative (it need not be commutative): the result is
    /// `map(x0) ⊕ map(x1) ⊕ ...` in some grouping, the same value
    /// [`map_reduce_seq`](crate::map_reduce_seq) computes.
    ///
    /// # Panics
    ///
    /// If `map` or `reduce` panics, with that panic's payload, once every
    /// running chunk has stopped (chunks not yet started are skipped). The
    /// pool's threads survive. [`try_map_reduce`](Self::try_map_reduce)
    /// returns the panic as an error instead.
    pub fn map_reduce<I, R, M, F>(&self, input: I, map: M, reduce: F) -> Option<R>
    where
        I: IntoSource,
        R: Send,
        M: Fn(I::Item) -> R + Sync,
        F: Fn(R, R) -> R + Sync,
    {
        let source = input.into_source();
        let leaf = |chunk: I::Source| {
            let mut items = chunk.into_items();
            let first = map(items.next()?);
            Some(items.fold(first, |acc, item| reduce(acc, map(item))))
        };
        let combine = |a: Option<R>, b: Option<R>| match (a, b) {
            (Some(a), Some(b)) => Some(reduce(a, b)),
            (a, None) => a,
            (None, b) => b,
        };
        self.install(|| bridge::run(source, self, &leaf, &combine))
    }

    /// [`map_reduce`](Self::map_reduce), with a panic returned as [`MapReduceError::Panicked`].
    ///
    /// # Errors
    ///
    /// [`MapReduceError::Panicked`] when `map` or `reduce` panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_mapreduce::{MapReduce, MapReduceError};
    ///
    /// let result = MapReduce::new().try_map_reduce(0..100u32, |x| 10 / (x % 7), |a, b| a + b);
    /// assert!(matches!(result, Err(MapReduceError::Panicked { .. })));
    /// ```
    pub fn try_map_reduce<I, R, M, F>(
        &self,
        input: I,
        map: M,
        reduce: F,
    ) -> Result<Option<R>, MapReduceError>
    where
        I: IntoSource,
        R: Send,
        M: Fn(I::Item) -> R + Sync,
        F: Fn(R, R) -> R + Sync,
    {
        catching(|| self.map_reduce(input, map, reduce))
    }

    /// Folds each chunk from `identity()` with `fold`, and reduces the chunks' results in input order.
    ///
    /// `identity()` must be a neutral element of `reduce`, which must be
    /// associative, and folding must agree with reducing: `fold(a, x)` must equal
    /// `reduce(a, fold(identity(), x))`, since every chunk starts again from
    /// `identity()`. (A sum or a histogram agrees; a polynomial hash such as
    /// `h * 31 + x` reduced by addition does not, and its result then depends on
    /// the chunking.) Empty input returns `identity()`. Use it when the
    /// accumulator differs from the items (a histogram, a set) or when building
    /// one result per item would cost too much.
    ///
    /// # Panics
    ///
    /// As [`map_reduce`](Self::map_reduce).
    pub fn fold<I, A, ID, F, R>(&self, input: I, identity: ID, fold: F, reduce: R) -> A
    where
        I: IntoSource,
        A: Send,
        ID: Fn() -> A + Sync,
        F: Fn(A, I::Item) -> A + Sync,
        R: Fn(A, A) -> A + Sync,
    {
        let source = input.into_source();
        let leaf = |chunk: I::Source| chunk.into_items().fold(identity(), &fold);
        self.install(|| bridge::run(source, self, &leaf, &reduce))
    }

    /// [`fold`](Self::fold), with a panic returned as [`MapReduceError::Panicked`].
    ///
    /// # Errors
    ///
    /// [`MapReduceError::Panicked`] when `identity`, `fold` or `reduce` panicked.
    pub fn try_fold<I, A, ID, F, R>(
        &self,
        input: I,
        identity: ID,
        fold: F,
        reduce: R,
    ) -> Result<A, MapReduceError>
    where
        I: IntoSource,
        A: Send,
        ID: Fn() -> A + Sync,
        F: Fn(A, I::Item) -> A + Sync,
        R: Fn(A, A) -> A + Sync,
    {
        catching(|| self.fold(input, identity, fold, reduce))
    }

    /// Maps every item in parallel and collects the results in input order.
    ///
    /// # Panics
    ///
    /// As [`map_reduce`](Self::map_reduce).
    pub fn map<I, R, M>(&self, input: I, map: M) -> Vec<R>
    where
        I: IntoSource,
        R: Send,
        M: Fn(I::Item) -> R + Sync,
    {
        let source = input.into_source();
        let len = source.len();
        let leaf = |chunk: I::Source| vec![chunk.into_items().map(&map).collect::<Vec<R>>()];
        let mut pieces = self.install(|| bridge::run(source, self, &leaf, &bridge::concat));
        if pieces.len() == 1 {
            return pieces.pop().unwrap_or_default();
        }
        let mut out = Vec::with_capacity(len);
        for piece in pieces {
            out.extend(piece);
        }
        out
    }
}

/// Runs `op`, turning a panic into [`MapReduceError::Panicked`].
pub(crate) fn catching<R>(op: impl FnOnce() -> R) -> Result<R, MapReduceError> {
    catch_unwind(AssertUnwindSafe(op)).map_err(|payload| MapReduceError::from_panic(&*payload))
}
