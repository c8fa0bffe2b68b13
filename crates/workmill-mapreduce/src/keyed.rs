//! Keyed map-reduce: each item maps to `(key, value)` pairs, combined per key on each chunk first (a map-side combiner), then merged by hash partition in parallel.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;

use workmill_executor::current_num_threads;

use crate::bridge;
use crate::chunking::Chunking;
use crate::config::MapReduce;
use crate::hash::FoldState;
use crate::source::{IntoSource, Source};

/// More partitions than this would cost more in empty buckets than they balance.
pub(crate) const MAX_PARTITIONS: usize = 1 << 16;

/// One chunk's pairs after its combiner ran, one bucket per partition.
type Buckets<K, V> = Vec<Vec<(K, V)>>;

impl MapReduce<'_> {
    /// Maps each item to zero or more `(key, value)` pairs and combines the
    /// values of each key with `combine`, into one map.
    ///
    /// Each chunk first combines its own pairs in a hash table (a map-side
    /// combiner, so a key seen a million times in a chunk leaves it once);
    /// the chunks' tables are then cut into hash partitions
    /// ([`partitions`](Self::partitions)) that are merged in parallel, and
    /// the partitions, which share no key, are gathered into the result.
    ///
    /// `combine(&mut acc, value)` must be associative; it need not be
    /// commutative. A key's values are combined in input order: within a
    /// chunk as they come, then chunk after chunk in each partition.
    ///
    /// # Panics
    ///
    /// As [`map_reduce`](Self::map_reduce), if `map` or `combine` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_mapreduce::MapReduce;
    ///
    /// let lines = ["the cat", "the dog", "a cat"];
    /// let counts = MapReduce::new().map_reduce_by_key(
    ///     &lines,
    ///     |line| line.split_whitespace().map(|word| (word, 1u32)),
    ///     |count, one| *count += one,
    /// );
    /// assert_eq!((counts["the"], counts["cat"], counts["a"]), (2, 2, 1));
    /// ```
    pub fn map_reduce_by_key<I, K, V, P, M, C>(&self, input: I, map: M, combine: C) -> HashMap<K, V>
    where
        I: IntoSource,
        K: Hash + Eq + Send,
        V: Send,
        P: IntoIterator<Item = (K, V)>,
        M: Fn(I::Item) -> P + Sync,
        C: Fn(&mut V, V) + Sync,
    {
        let hasher = FoldState::random();
        let source = input.into_source();
        let partitions = self.install(|| {
            let partitions = self.partitioned(source, &hasher, &map, &combine);
            self.merge_partitions(partitions, &hasher, &combine, |table| table)
        });
        // Hand out a map with the standard, DoS-resistant hasher. Partitions
        // share no key, so moving them over needs no combining.
        let mut result = HashMap::with_capacity(partitions.iter().map(HashMap::len).sum());
        for partition in partitions {
            result.extend(partition);
        }
        result
    }

    /// [`map_reduce_by_key`](Self::map_reduce_by_key), with the keys in order.
    ///
    /// Each partition is sorted in parallel; the sorted runs are then merged
    /// into the `BTreeMap`.
    ///
    /// # Panics
    ///
    /// As [`map_reduce`](Self::map_reduce), if `map` or `combine` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// let counts = workmill_mapreduce::map_reduce_by_key_sorted(
    ///     0..1000u32,
    ///     |x| [(x % 3, 1u32), (x % 3, x)],
    ///     |acc, v| *acc += v,
    /// );
    /// let keys: Vec<u32> = counts.keys().copied().collect();
    /// assert_eq!(keys, [0, 1, 2]);
    /// assert_eq!(counts.values().sum::<u32>(), 1000 + 999 * 1000 / 2);
    /// ```
    pub fn map_reduce_by_key_sorted<I, K, V, P, M, C>(
        &self,
        input: I,
        map: M,
        combine: C,
    ) -> BTreeMap<K, V>
    where
        I: IntoSource,
        K: Hash + Ord + Send,
        V: Send,
        P: IntoIterator<Item = (K, V)>,
        M: Fn(I::Item) -> P + Sync,
        C: Fn(&mut V, V) + Sync,
    {
        let hasher = FoldState::random();
        let source = input.into_source();
        let runs = self.install(|| {
            let partitions = self.partitioned(source, &hasher, &map, &combine);
            self.merge_partitions(partitions, &hasher, &combine, |table| {
                let mut run: Vec<(K, V)> = table.into_iter().collect();
                run.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                run
            })
        });
        // The collecting sort finds the sorted runs and merges them.
        runs.into_iter().flatten().collect()
    }

    /// The map phase: every chunk combines its pairs and cuts them into
    /// partitions. Returns, for each partition, the buckets of all chunks.
    fn partitioned<S, K, V, P, M, C>(
        &self,
        source: S,
        hasher: &FoldState,
        map: &M,
        combine: &C,
    ) -> Vec<Buckets<K, V>>
    where
        S: Source,
        K: Hash + Eq + Send,
        V: Send,
        P: IntoIterator<Item = (K, V)>,
        M: Fn(S::Item) -> P + Sync,
        C: Fn(&mut V, V) + Sync,
    {
        let count = self
            .partitions
            .unwrap_or_else(|| current_num_threads().saturating_mul(4))
            .min(MAX_PARTITIONS);
        let leaf = |chunk: S| {
            let mut table = HashMap::with_hasher(*hasher);
            for item in chunk.into_items() {
                for (key, value) in map(item) {
                    insert(&mut table, key, value, combine);
                }
            }
            let mut buckets: Buckets<K, V> = (0..count).map(|_| Vec::new()).collect();
            for (key, value) in table {
                buckets[partition_of(hasher, &key, count)].push((key, value));
            }
            vec![buckets]
        };
        let chunks = bridge::run(source, self, &leaf, &bridge::concat);
        let mut partitions: Vec<Buckets<K, V>> = (0..count)
            .map(|_| Vec::with_capacity(chunks.len()))
            .collect();
        for chunk in chunks {
            for (partition, bucket) in partitions.iter_mut().zip(chunk) {
                partition.push(bucket);
            }
        }
        partitions
    }

    /// The reduce phase: merges each partition's buckets into one table, a
    /// partition per chunk, and hands the table to `finish`.
    fn merge_partitions<K, V, C, T>(
        &self,
        partitions: Vec<Buckets<K, V>>,
        hasher: &FoldState,
        combine: &C,
        finish: impl Fn(HashMap<K, V, FoldState>) -> T + Sync,
    ) -> Vec<T>
    where
        K: Hash + Eq + Send,
        V: Send,
        C: Fn(&mut V, V) + Sync,
        T: Send,
    {
        let one_each = MapReduce::new().chunking(Chunking::Fixed(NonZeroUsize::MIN));
        one_each.map(partitions, |buckets| {
            let largest = buckets.iter().map(Vec::len).max().unwrap_or(0);
            let mut table = HashMap::with_capacity_and_hasher(largest, *hasher);
            for bucket in buckets {
                for (key, value) in bucket {
                    insert(&mut table, key, value, combine);
                }
            }
            finish(table)
        })
    }
}

/// Puts `value` under `key`, combining it into the value already there.
#[inline]
pub(crate) fn insert<K: Hash + Eq, V, S: BuildHasher>(
    table: &mut HashMap<K, V, S>,
    key: K,
    value: V,
    combine: &impl Fn(&mut V, V),
) {
    match table.entry(key) {
        Entry::Occupied(mut entry) => combine(entry.get_mut(), value),
        Entry::Vacant(entry) => {
            entry.insert(value);
        }
    }
}

/// The partition of `key`: its hash, reduced to `0..count` by a multiply-shift.
#[inline]
fn partition_of<K: Hash>(hasher: &FoldState, key: &K, count: usize) -> usize {
    // The high bits of (hash * count) spread keys evenly without a division.
    ((u128::from(hasher.hash_one(key)) * count as u128) >> 64) as usize
}
