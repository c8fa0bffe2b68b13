//! Keyed map-reduce: each item maps to `(key, value)` pairs, combined per key on each chunk first (a map-side combiner), then merged by partition in parallel.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::hash::{BuildHasher, Hash};
use std::num::NonZeroUsize;

use workmill_executor::current_num_threads;

use crate::bridge;
use crate::chunking::Chunking;
use crate::config::MapReduce;
use crate::hash::{FoldState, Hashed, PassThrough};
use crate::source::{IntoSource, Source};

/// More partitions than this would cost more, in empty partitions to merge, than they balance.
pub(crate) const MAX_PARTITIONS: usize = 1 << 16;

/// A table of keys that carry their hash, so it is never taken again.
pub(crate) type Table<K, V> = HashMap<Hashed<K>, V, PassThrough>;

/// The pairs of one chunk that go to one partition.
type Bucket<K, V> = Vec<(Hashed<K>, V)>;

/// One chunk's pairs after its combiner ran, by partition: the non-empty
/// buckets only, with their partitions, in partition order.
type Buckets<K, V> = Vec<(usize, Bucket<K, V>)>;

impl MapReduce<'_> {
    /// Maps each item to zero or more `(key, value)` pairs and combines the
    /// values of each key with `combine`, into one map.
    ///
    /// Each chunk first combines its own pairs in a hash table (a map-side
    /// combiner, so a key seen a million times in a chunk leaves it once);
    /// the chunks' tables are then cut into hash partitions
    /// ([`partitions`](Self::partitions)) that are merged in parallel, and
    /// the partitions, which share no key, are gathered into the result.
    /// Each pair's key is hashed once, for its chunk's table, and that hash
    /// also picks its partition and places it in the merge.
    /// [`partition_by`](Self::partition_by) chooses the partitions instead.
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
        let Ok(tables) = self.keyed(input, &map, &combine, &by_hash, |table| table);
        let (result, shared_keys) = gather(tables);
        // Hash partitions share no key: a key's one hash picks its one partition.
        debug_assert!(!shared_keys);
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
        let Ok(runs) = self.keyed(input, &map, &combine, &by_hash, sorted_run);
        let (result, shared_keys) = gather_sorted(runs);
        debug_assert!(!shared_keys);
        result
    }

    /// The number of partitions of a keyed run on the current pool.
    pub(crate) fn partition_count(&self) -> usize {
        self.partitions
            .unwrap_or_else(|| current_num_threads().saturating_mul(4))
            .min(MAX_PARTITIONS)
    }

    /// A whole keyed run on the chosen pool: the map phase, routing each
    /// chunk's keys with `route` (given the partition count), then the merge
    /// phase, which hands each partition's table to `finish`.
    ///
    /// The first error of `route`, in input order, ends the run once the
    /// map phase is over, before any merging.
    pub(crate) fn keyed<I, K, V, P, M, C, R, E, T>(
        &self,
        input: I,
        map: &M,
        combine: &C,
        route: &R,
        finish: impl Fn(Table<K, V>) -> T + Sync,
    ) -> Result<Vec<T>, E>
    where
        I: IntoSource,
        K: Hash + Eq + Send,
        V: Send,
        P: IntoIterator<Item = (K, V)>,
        M: Fn(I::Item) -> P + Sync,
        C: Fn(&mut V, V) + Sync,
        R: Fn(&Hashed<K>, usize) -> Result<usize, E> + Sync,
        E: Send,
        T: Send,
    {
        let hasher = FoldState::random();
        let source = input.into_source();
        self.install(|| {
            let count = self.partition_count();
            let partitions = self.partitioned(source, &hasher, count, map, combine, route)?;
            Ok(merge_partitions(partitions, combine, &finish))
        })
    }

    /// The map phase: every chunk combines its pairs and cuts them into
    /// `count` partitions. Returns, for each partition, the non-empty buckets
    /// of the chunks, in input order.
    fn partitioned<S, K, V, P, M, C, R, E>(
        &self,
        source: S,
        hasher: &FoldState,
        count: usize,
        map: &M,
        combine: &C,
        route: &R,
    ) -> Result<Vec<Vec<Bucket<K, V>>>, E>
    where
        S: Source,
        K: Hash + Eq + Send,
        V: Send,
        P: IntoIterator<Item = (K, V)>,
        M: Fn(S::Item) -> P + Sync,
        C: Fn(&mut V, V) + Sync,
        R: Fn(&Hashed<K>, usize) -> Result<usize, E> + Sync,
        E: Send,
    {
        let leaf = |chunk: S| {
            let mut table: Table<K, V> = HashMap::with_hasher(PassThrough);
            for item in chunk.into_items() {
                for (key, value) in map(item) {
                    insert(&mut table, Hashed::new(hasher, key), value, combine);
                }
            }
            Ok(vec![buckets(table, count, route)?])
        };
        let concat = |left: Result<_, E>, right: Result<_, E>| Ok(bridge::concat(left?, right?));
        let chunks = bridge::run(source, self, &leaf, &concat)?;
        Ok(by_partition(chunks, count))
    }
}

/// Cuts one chunk's table into the buckets of the partitions `route` picks
/// among `count`, keeping only the non-empty ones.
///
/// A chunk with fewer keys than partitions leaves buckets empty, and a
/// bucket for every partition would cost each chunk time and memory in
/// proportion to the partitions, whatever its keys: ten million items in
/// chunks of 100, over 65,536 partitions, would hold some 150 GB of empty
/// buckets. Such a chunk sorts its pairs by partition instead; a chunk with
/// as many keys as partitions, or more, puts each pair straight into its
/// partition's bucket.
fn buckets<K, V, R, E>(table: Table<K, V>, count: usize, route: &R) -> Result<Buckets<K, V>, E>
where
    R: Fn(&Hashed<K>, usize) -> Result<usize, E>,
{
    if table.len() < count {
        let mut routed = Vec::with_capacity(table.len());
        for (key, value) in table {
            routed.push((route(&key, count)?, (key, value)));
        }
        // Keys are distinct within a chunk: their order in a bucket does not matter.
        routed.sort_unstable_by_key(|&(partition, _)| partition);
        let mut buckets: Buckets<K, V> = Vec::new();
        for (partition, pair) in routed {
            match buckets.last_mut() {
                Some((last, bucket)) if *last == partition => bucket.push(pair),
                _ => buckets.push((partition, vec![pair])),
            }
        }
        return Ok(buckets);
    }
    let mut all: Vec<Bucket<K, V>> = (0..count).map(|_| Vec::new()).collect();
    for (key, value) in table {
        let partition = route(&key, count)?;
        all[partition].push((key, value));
    }
    Ok(all
        .into_iter()
        .enumerate()
        .filter(|(_, bucket)| !bucket.is_empty())
        .collect())
}

/// The chunks' buckets gathered by partition, each partition's in chunk
/// order; `count` partitions, holding only the buckets the chunks filled.
fn by_partition<K, V>(chunks: Vec<Buckets<K, V>>, count: usize) -> Vec<Vec<Bucket<K, V>>> {
    let mut sizes = vec![0; count];
    for &(partition, _) in chunks.iter().flatten() {
        sizes[partition] += 1;
    }
    let mut partitions: Vec<Vec<Bucket<K, V>>> =
        sizes.into_iter().map(Vec::with_capacity).collect();
    for (partition, bucket) in chunks.into_iter().flatten() {
        partitions[partition].push(bucket);
    }
    partitions
}

/// The default route: the partition the key's hash picks, always in range.
fn by_hash<K>(key: &Hashed<K>, count: usize) -> Result<usize, Infallible> {
    Ok(key.partition(count))
}

/// The reduce phase: merges each partition's buckets into one table, a
/// partition per chunk, and hands the table to `finish`.
fn merge_partitions<K, V, C, T>(
    partitions: Vec<Vec<Bucket<K, V>>>,
    combine: &C,
    finish: impl Fn(Table<K, V>) -> T + Sync,
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
        let mut table = HashMap::with_capacity_and_hasher(largest, PassThrough);
        for bucket in buckets {
            for (key, value) in bucket {
                insert(&mut table, key, value, combine);
            }
        }
        finish(table)
    })
}

/// One partition's pairs, sorted by key (run in parallel, one task per partition).
pub(crate) fn sorted_run<K: Ord, V>(table: Table<K, V>) -> Vec<(K, V)> {
    let mut run: Vec<(K, V)> = table.into_iter().map(|(k, v)| (k.key, v)).collect();
    run.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    run
}

/// The partitions' tables in one map with the standard, DoS-resistant
/// hasher, and whether a key was found in two partitions (which a
/// partitioner that is not a function of the key alone causes).
pub(crate) fn gather<K: Hash + Eq, V>(tables: Vec<Table<K, V>>) -> (HashMap<K, V>, bool) {
    let mut result = HashMap::with_capacity(tables.iter().map(HashMap::len).sum());
    let mut shared_keys = false;
    for table in tables {
        for (key, value) in table {
            shared_keys |= result.insert(key.key, value).is_some();
        }
    }
    (result, shared_keys)
}

/// The partitions' sorted runs in one `BTreeMap`, and whether a key was
/// found in two of them.
pub(crate) fn gather_sorted<K: Ord, V>(runs: Vec<Vec<(K, V)>>) -> (BTreeMap<K, V>, bool) {
    let pairs = runs.iter().map(Vec::len).sum::<usize>();
    // The collecting sort finds the sorted runs and merges them; a key in
    // two runs would leave one entry for two pairs.
    let result: BTreeMap<K, V> = runs.into_iter().flatten().collect();
    let shared_keys = result.len() != pairs;
    (result, shared_keys)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn add(count: &mut u64, n: u64) {
        *count += n;
    }

    /// One chunk's table: a pair for each of `keys`.
    fn table(state: &FoldState, keys: std::ops::Range<u32>) -> Table<u32, u64> {
        let mut table = HashMap::with_hasher(PassThrough);
        for key in keys {
            insert(&mut table, Hashed::new(state, key), 1, &add);
        }
        table
    }

    #[test]
    fn chunks_and_partitions_hold_only_the_buckets_the_keys_fill() {
        // Before, each chunk held a bucket for every partition, and each
        // partition room for a bucket from every chunk: 2 x 200 x 65,536.
        let state = FoldState::random();
        let count = MAX_PARTITIONS;
        let chunks: Vec<Buckets<u32, u64>> = (0..200)
            .map(|_| {
                let Ok(buckets) = buckets(table(&state, 0..3), count, &by_hash);
                buckets
            })
            .collect();
        for chunk in &chunks {
            assert!(chunk.len() <= 3, "{} buckets", chunk.len());
            assert!(chunk.is_sorted_by_key(|&(partition, _)| partition));
        }
        let partitions = by_partition(chunks, count);
        assert_eq!(partitions.len(), count);
        let held: usize = partitions.iter().map(Vec::capacity).sum();
        assert!(held <= 3 * 200, "room for {held} buckets");
        let (counts, shared_keys) = gather(merge_partitions(partitions, &add, |table| table));
        assert!(!shared_keys);
        assert_eq!(counts, HashMap::from([(0, 200), (1, 200), (2, 200)]));
    }

    #[test]
    fn a_chunk_with_more_keys_than_partitions_fills_each_bucket_in_order() {
        let state = FoldState::random();
        let Ok(buckets) = buckets(table(&state, 0..1_000), 4, &by_hash);
        assert_eq!(buckets.len(), 4);
        for (index, (partition, bucket)) in buckets.iter().enumerate() {
            assert_eq!(*partition, index);
            assert!(bucket.iter().all(|(key, _)| key.partition(4) == index));
        }
        assert_eq!(buckets.iter().map(|(_, b)| b.len()).sum::<usize>(), 1_000);
    }
}
