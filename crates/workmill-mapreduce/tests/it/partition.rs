//! Custom partitioners: results equal the sequential reference, the partitioner sees each chunk's distinct keys once, a broken one returns a typed error; and each pair's key is hashed once.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use workmill_mapreduce::{Chunking, MapReduce, MapReduceError, map_reduce_by_key_seq};

use super::{add, pairs, pool};

/// Partitioners that keep the contract, each spreading keys differently.
fn partitioner(kind: u8) -> impl Fn(&u8, usize) -> usize + Sync + Copy {
    move |key: &u8, partitions: usize| match kind {
        // Everything in one partition: one merge task does all the work.
        0 => 0,
        // Residues.
        1 => usize::from(*key) % partitions,
        // Contiguous ranges of the key space, in order.
        _ => usize::from(*key) * partitions / 256,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn a_custom_partitioner_gives_the_sequential_result(
        data in prop::collection::vec(any::<u32>(), 0..3_000),
        fixed in prop::option::of(1usize..100),
        partitions in 1usize..9,
        kind in 0u8..3,
    ) {
        let mut run = MapReduce::new().pool(pool()).partitions(partitions);
        if let Some(n) = fixed {
            run = run.chunking(Chunking::Fixed(NonZeroUsize::new(n).unwrap()));
        }
        let run = run.partition_by(partitioner(kind));
        let expected = map_reduce_by_key_seq(&data, pairs, add);
        prop_assert_eq!(run.map_reduce_by_key(&data, pairs, add), Ok(expected.clone()));
        let sorted: BTreeMap<u8, u64> = expected.into_iter().collect();
        prop_assert_eq!(run.map_reduce_by_key_sorted(&data, pairs, add), Ok(sorted));
        // Each key's values still come out in input order.
        let positions = |x: &u32| [((x % 7) as u8, vec![*x])];
        let append = |acc: &mut Vec<u32>, more: Vec<u32>| acc.extend(more);
        prop_assert_eq!(
            run.map_reduce_by_key(&data, positions, append),
            Ok(map_reduce_by_key_seq(&data, positions, append))
        );
    }
}

#[test]
fn the_partitioner_routes_each_chunks_distinct_keys_once_among_the_configured_count() {
    let seen = Mutex::new(Vec::new());
    let run = MapReduce::new()
        .pool(pool())
        .chunking(Chunking::fixed(10).unwrap())
        .partitions(5)
        .partition_by(|key: &u32, partitions: usize| {
            seen.lock().unwrap().push((*key, partitions));
            *key as usize % partitions
        });
    let counts = run
        .map_reduce_by_key(0..1_000u32, |x| [(x % 3, 1u32)], |c, n| *c += n)
        .unwrap();
    assert_eq!(counts.len(), 3);
    let seen = seen.into_inner().unwrap();
    // 100 chunks of 10 items hold each of the 3 keys once: the combiner ran
    // first, so the partitioner saw 300 keys, not 1,000 pairs.
    assert_eq!(seen.len(), 300);
    assert!(seen.iter().all(|&(_, partitions)| partitions == 5));
    let keys: HashSet<u32> = seen.iter().map(|&(key, _)| key).collect();
    assert_eq!(keys, HashSet::from([0, 1, 2]));
}

#[test]
fn the_partition_count_is_capped_before_the_partitioner_sees_it() {
    let most = AtomicUsize::new(0);
    let run = MapReduce::new()
        .pool(pool())
        .partitions(usize::MAX)
        .partition_by(|key: &u32, partitions: usize| {
            most.fetch_max(partitions, Ordering::Relaxed);
            *key as usize % partitions
        });
    let counts = run
        .map_reduce_by_key(0..100u32, |x| [(x, 1u32)], |c, n| *c += n)
        .unwrap();
    assert_eq!(counts.len(), 100);
    assert_eq!(most.load(Ordering::Relaxed), 1 << 16);
}

#[test]
fn a_partition_out_of_range_is_a_typed_error_for_both_variants() {
    for beyond in [7usize, 8, usize::MAX] {
        let run = MapReduce::new().pool(pool()).partitions(7).partition_by(
            move |key: &u32, partitions: usize| {
                if *key == 13 {
                    beyond
                } else {
                    *key as usize % partitions
                }
            },
        );
        let error = MapReduceError::PartitionOutOfRange {
            partition: beyond,
            partitions: 7,
        };
        let expected = Some(error.clone());
        let pairs = |x: u32| [(x % 50, 1u32)];
        assert_eq!(
            run.map_reduce_by_key(0..1_000u32, pairs, |c, n| *c += n)
                .err(),
            expected
        );
        assert_eq!(
            run.map_reduce_by_key_sorted(0..1_000u32, pairs, |c, n| *c += n)
                .err(),
            expected
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("partition {beyond}")),
            "{message}"
        );
        assert!(message.contains("0..7"), "{message}");
        // Input without key 13 never asks for the bad partition.
        let fine = run.map_reduce_by_key(0..13u32, |x| [(x, 1u32)], |c, n| *c += n);
        assert_eq!(fine.map(|counts| counts.len()), Ok(13));
    }
    // The pool lives on.
    let sum = MapReduce::new()
        .pool(pool())
        .map_reduce(0..=100u32, |x| x, |a, b| a + b);
    assert_eq!(sum, Some(5_050));
}

#[test]
fn a_partitioner_that_is_not_a_function_of_the_key_is_a_typed_error() {
    // Each call goes to the next partition, so a key seen by two chunks is
    // sent to both partitions.
    let calls = AtomicUsize::new(0);
    let run = MapReduce::new()
        .pool(pool())
        .chunking(Chunking::fixed(1).unwrap())
        .partitions(2)
        .partition_by(|_: &u32, partitions: usize| {
            calls.fetch_add(1, Ordering::Relaxed) % partitions
        });
    let expected = Some(MapReduceError::KeyInTwoPartitions { partitions: 2 });
    let same_key = |_: u32| [(0u32, 1u32)];
    assert_eq!(
        run.map_reduce_by_key(0..100u32, same_key, |c, n| *c += n)
            .err(),
        expected
    );
    assert_eq!(
        run.map_reduce_by_key_sorted(0..100u32, same_key, |c, n| *c += n)
            .err(),
        expected
    );
}

#[test]
fn a_panicking_partitioner_reaches_the_caller() {
    let run = MapReduce::new()
        .pool(pool())
        .partition_by(|key: &u32, _: usize| -> usize { panic!("no partition for {key}") });
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run.map_reduce_by_key(0..10u32, |x| [(x, 1u32)], |c, n| *c += n)
    }))
    .expect_err("the partitioner's panic reaches the caller");
    let message = workmill_executor::panic_message(&*caught);
    assert!(message.starts_with("no partition for"), "{message}");
    // Empty input never calls it.
    let empty = run.map_reduce_by_key(0..0u32, |x| [(x, 1u32)], |c, n| *c += n);
    assert_eq!(empty.map(|counts| counts.len()), Ok(0));
}

/// How often `Counted` keys were hashed; only the test below makes them.
static HASHES: AtomicUsize = AtomicUsize::new(0);

/// A key that counts how often it is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Counted(u32);

impl Hash for Counted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        HASHES.fetch_add(1, Ordering::Relaxed);
        self.0.hash(state);
    }
}

#[test]
fn every_pair_is_hashed_once_and_never_again_in_partitions_or_merges() {
    let items = 20_000u32;
    let keys = 1_000u32;
    let pairs = |x: u32| [(Counted(x % keys), 1u32)];
    for chunking in [Chunking::Adaptive, Chunking::fixed(100).unwrap()] {
        let run = MapReduce::new().pool(pool()).chunking(chunking);
        HASHES.store(0, Ordering::Relaxed);
        let sorted = run.map_reduce_by_key_sorted(0..items, pairs, |c, n| *c += n);
        assert_eq!(sorted.len(), keys as usize);
        // One hash per pair, in its chunk's table; the BTreeMap hashes nothing.
        assert_eq!(
            HASHES.load(Ordering::Relaxed),
            items as usize,
            "{chunking:?}"
        );
        HASHES.store(0, Ordering::Relaxed);
        let counts = run.map_reduce_by_key(0..items, pairs, |c, n| *c += n);
        assert_eq!(counts.len(), keys as usize);
        // And one per key for the returned map's own hasher.
        assert_eq!(
            HASHES.load(Ordering::Relaxed),
            (items + keys) as usize,
            "{chunking:?}"
        );
    }
}
