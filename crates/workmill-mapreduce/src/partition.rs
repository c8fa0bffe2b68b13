//! Custom partitioners for keyed map-reduce: the `Partitioner` trait, and `PartitionedBy`, a run whose keyed operations use one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;

use crate::config::MapReduce;
use crate::error::MapReduceError;
use crate::hash::Hashed;
use crate::keyed::{gather, gather_sorted, sorted_run};
use crate::source::IntoSource;

/// Chooses the partition that merges a key in a keyed map-reduce, as Hadoop's
/// `Partitioner.getPartition(key, value, numPartitions)` and Spark's
/// `Partitioner.getPartition(key)` do.
///
/// `partition(key, partitions)` must return a number in `0..partitions`, and
/// the same number for equal keys: a function of the key and the count
/// alone. It is called once per distinct key in each chunk (after the
/// chunk's combiner ran, not once per pair), from several threads at once.
/// A result out of range, or equal keys sent to two partitions, fails the
/// run with a [`MapReduceError`] instead of being clamped or wrapped, since
/// either is a bug in the partitioner that a silent fix would hide.
///
/// Any `Fn(&K, usize) -> usize + Sync` is a partitioner; implement the trait
/// for a type of your own to give one a name and state (split points, say).
///
/// # Examples
///
/// Range partitioning, so each partition's merge holds a contiguous block of
/// keys. Every partitioner that keeps the contract gives the same result; it
/// changes only which keys are merged together, and so how evenly the merge
/// work is spread:
///
/// ```
/// use workmill_mapreduce::{MapReduce, Partitioner};
///
/// struct Ranges { top: u32 }
///
/// impl Partitioner<u32> for Ranges {
///     fn partition(&self, key: &u32, partitions: usize) -> usize {
///         (*key as usize * partitions / (self.top as usize + 1)).min(partitions - 1)
///     }
/// }
///
/// let run = MapReduce::new().partitions(4);
/// let counts = run
///     .partition_by(Ranges { top: 99 })
///     .map_reduce_by_key_sorted(0..10_000u32, |x| [(x % 100, 1u32)], |c, n| *c += n)?;
/// assert_eq!(counts.len(), 100);
/// assert!(counts.values().all(|&n| n == 100));
/// # Ok::<(), workmill_mapreduce::MapReduceError>(())
/// ```
pub trait Partitioner<K>: Sync {
    /// The partition of `key` among `partitions` (at least 1): a number in `0..partitions`.
    fn partition(&self, key: &K, partitions: usize) -> usize;
}

impl<K, F> Partitioner<K> for F
where
    F: Fn(&K, usize) -> usize + Sync,
{
    #[inline]
    fn partition(&self, key: &K, partitions: usize) -> usize {
        self(key, partitions)
    }
}

/// A [`MapReduce`] whose keyed operations merge by a chosen [`Partitioner`];
/// made by [`MapReduce::partition_by`].
///
/// Its operations return a `Result`: a partitioner can break its contract,
/// which the hash partitioning of [`MapReduce::map_reduce_by_key`] cannot.
#[derive(Clone, Copy)]
pub struct PartitionedBy<'pool, P> {
    config: MapReduce<'pool>,
    partitioner: P,
}

impl<P> fmt::Debug for PartitionedBy<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionedBy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'pool> MapReduce<'pool> {
    /// Keyed map-reduce that merges by `partitioner` instead of by hash.
    ///
    /// The partitioner is given the number of partitions
    /// ([`partitions`](Self::partitions)): set it, the chunking and the pool
    /// first. See [`Partitioner`] for the contract and what breaking it returns.
    ///
    /// # Examples
    ///
    /// Integer keys that are spread already need no hashing to pick a partition:
    ///
    /// ```
    /// use workmill_mapreduce::MapReduce;
    ///
    /// let by_residue = MapReduce::new()
    ///     .partitions(8)
    ///     .partition_by(|key: &u64, partitions: usize| *key as usize % partitions);
    /// let sums = by_residue.map_reduce_by_key(0..=999u64, |x| [(x % 10, x)], |a, x| *a += x)?;
    /// assert_eq!(sums[&0], (0..1000).step_by(10).sum::<u64>());
    /// # Ok::<(), workmill_mapreduce::MapReduceError>(())
    /// ```
    pub fn partition_by<P>(self, partitioner: P) -> PartitionedBy<'pool, P> {
        PartitionedBy {
            config: self,
            partitioner,
        }
    }
}

impl<P> PartitionedBy<'_, P> {
    /// [`MapReduce::map_reduce_by_key`], merging by the partitioner.
    ///
    /// # Errors
    ///
    /// [`MapReduceError::PartitionOutOfRange`] when the partitioner returned a
    /// partition outside `0..partitions`, and [`MapReduceError::KeyInTwoPartitions`]
    /// when it sent equal keys to different partitions. Either is reported once
    /// the map phase is over, and no result is returned.
    ///
    /// # Panics
    ///
    /// As [`MapReduce::map_reduce`], if `map`, `combine` or the partitioner panics.
    pub fn map_reduce_by_key<I, K, V, Pairs, M, C>(
        &self,
        input: I,
        map: M,
        combine: C,
    ) -> Result<HashMap<K, V>, MapReduceError>
    where
        I: IntoSource,
        K: Hash + Eq + Send,
        V: Send,
        Pairs: IntoIterator<Item = (K, V)>,
        M: Fn(I::Item) -> Pairs + Sync,
        C: Fn(&mut V, V) + Sync,
        P: Partitioner<K>,
    {
        let route = |key: &Hashed<K>, count| self.route(key, count);
        let tables = self
            .config
            .keyed(input, &map, &combine, &route, |table| table)?;
        unshared(tables.len(), gather(tables))
    }

    /// [`MapReduce::map_reduce_by_key_sorted`], merging by the partitioner.
    ///
    /// # Errors
    ///
    /// As [`map_reduce_by_key`](Self::map_reduce_by_key).
    ///
    /// # Panics
    ///
    /// As [`MapReduce::map_reduce`], if `map`, `combine` or the partitioner panics.
    pub fn map_reduce_by_key_sorted<I, K, V, Pairs, M, C>(
        &self,
        input: I,
        map: M,
        combine: C,
    ) -> Result<BTreeMap<K, V>, MapReduceError>
    where
        I: IntoSource,
        K: Hash + Ord + Send,
        V: Send,
        Pairs: IntoIterator<Item = (K, V)>,
        M: Fn(I::Item) -> Pairs + Sync,
        C: Fn(&mut V, V) + Sync,
        P: Partitioner<K>,
    {
        let route = |key: &Hashed<K>, count| self.route(key, count);
        let runs = self
            .config
            .keyed(input, &map, &combine, &route, sorted_run)?;
        unshared(runs.len(), gather_sorted(runs))
    }

    /// The partitioner's choice for `key`, checked against the count.
    fn route<K>(&self, key: &Hashed<K>, count: usize) -> Result<usize, MapReduceError>
    where
        P: Partitioner<K>,
    {
        let partition = self.partitioner.partition(&key.key, count);
        if partition < count {
            Ok(partition)
        } else {
            Err(MapReduceError::PartitionOutOfRange {
                partition,
                partitions: count,
            })
        }
    }
}

/// A gathered result of `partitions` partitions, refused if some key was in more than one.
fn unshared<T>(partitions: usize, (result, shared_keys): (T, bool)) -> Result<T, MapReduceError> {
    if shared_keys {
        Err(MapReduceError::KeyInTwoPartitions { partitions })
    } else {
        Ok(result)
    }
}
