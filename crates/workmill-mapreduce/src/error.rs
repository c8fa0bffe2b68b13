//! `MapReduceError`: what the `try_` functions return when a map or reduce panicked, and what keyed map-reduce returns when a custom partitioner broke its contract.

use std::any::Any;

/// Why a map-reduce returned no result: a panic (from the `try_` methods) or
/// a custom partitioner that broke its contract (from [`PartitionedBy`](crate::PartitionedBy)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapReduceError {
    /// A map, fold or reduce closure panicked. Chunks not yet started were
    /// skipped, and every chunk had stopped before this was returned.
    #[error(
        "a map or reduce closure panicked: {message}; the chunks still running were finished and the rest skipped"
    )]
    Panicked {
        /// The panic's message, or a placeholder when its payload was not a string.
        message: String,
    },
    /// A custom [`Partitioner`](crate::Partitioner) returned a partition
    /// outside `0..partitions`. The map phase finished; nothing was merged.
    #[error(
        "the partitioner put a key in partition {partition}, but partitions are numbered 0..{partitions}; return a number below the count the partitioner is given (for example `index % partitions`)"
    )]
    PartitionOutOfRange {
        /// What the partitioner returned (one such result, when there were several).
        partition: usize,
        /// The number of partitions it was given.
        partitions: usize,
    },
    /// A custom [`Partitioner`](crate::Partitioner) put equal keys in
    /// different partitions, so their values could not be combined in one.
    #[error(
        "the partitioner put equal keys in different partitions (of {partitions}); it must return the same partition for equal keys, computed from the key and the partition count alone"
    )]
    KeyInTwoPartitions {
        /// The number of partitions it was given.
        partitions: usize,
    },
}

impl MapReduceError {
    /// The error for a caught panic, worded as the executor words it.
    pub(crate) fn from_panic(payload: &(dyn Any + Send)) -> MapReduceError {
        MapReduceError::Panicked {
            message: workmill_executor::panic_message(payload),
        }
    }
}
