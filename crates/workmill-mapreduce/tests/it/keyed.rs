//! Keyed map-reduce against a sequential `HashMap`, sorted output, and a word count over a generated corpus.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use proptest::prelude::*;
use workmill_mapreduce::corpus::ZipfCorpus;
use workmill_mapreduce::{Chunking, MapReduce, map_reduce_by_key, map_reduce_by_key_seq};

use super::{add, pairs, pool};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn by_key_equals_a_sequential_hashmap(
        data in prop::collection::vec(any::<u32>(), 0..3_000),
        fixed in prop::option::of(1usize..100),
        partitions in 1usize..9,
    ) {
        let mut run = MapReduce::new().pool(pool()).partitions(partitions);
        if let Some(n) = fixed {
            run = run.chunking(Chunking::Fixed(NonZeroUsize::new(n).unwrap()));
        }
        let expected = map_reduce_by_key_seq(&data, pairs, add);
        prop_assert_eq!(run.map_reduce_by_key(&data, pairs, add), expected.clone());
        let sorted: BTreeMap<u8, u64> = expected.into_iter().collect();
        prop_assert_eq!(run.map_reduce_by_key_sorted(&data, pairs, add), sorted);
        // Appending is associative but not commutative: each key's values
        // must come out in input order.
        let positions = |x: &u32| [(x % 7, vec![*x])];
        let append = |acc: &mut Vec<u32>, more: Vec<u32>| acc.extend(more);
        prop_assert_eq!(
            run.map_reduce_by_key(&data, positions, append),
            map_reduce_by_key_seq(&data, positions, append)
        );
    }
}

#[test]
fn word_count_over_a_zipf_corpus_matches_the_sequential_count() {
    let corpus = ZipfCorpus {
        vocabulary: 5_000,
        ..ZipfCorpus::default()
    };
    let text = corpus.generate(2_000_000);
    let lines: Vec<&str> = text.lines().collect();
    fn words<'a>(line: &&'a str) -> impl Iterator<Item = (&'a str, u64)> + use<'a> {
        line.split_whitespace().map(|w| (w, 1))
    }
    let counts = map_reduce_by_key(&lines, words, |c, n| *c += n);
    assert_eq!(counts, map_reduce_by_key_seq(&lines, words, |c, n| *c += n));
    let total: u64 = counts.values().sum();
    assert_eq!(total, text.split_whitespace().count() as u64);
    // Zipf: the top word is about twice as frequent as the second.
    let mut frequencies: Vec<u64> = counts.values().copied().collect();
    frequencies.sort_unstable_by(|a, b| b.cmp(a));
    let ratio = frequencies[0] as f64 / frequencies[1] as f64;
    assert!((1.7..2.3).contains(&ratio), "rank 1 / rank 2 = {ratio}");
}

#[test]
fn keys_may_borrow_from_the_input_and_values_may_be_collections() {
    let lines = ["b a", "c b a", "a"];
    let positions = MapReduce::new().pool(pool()).map_reduce_by_key_sorted(
        &lines,
        |line| line.split(' ').map(move |w| (w, vec![line.len()])),
        |acc: &mut Vec<usize>, more| acc.extend(more),
    );
    let keys: Vec<&str> = positions.keys().copied().collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(positions["a"].len(), 3);
}

#[test]
fn many_partitions_over_small_chunks_with_few_keys() {
    // Each chunk of one item fills one of 65,536 partitions; the rest stay
    // empty and cost nothing per chunk.
    let run = MapReduce::new()
        .pool(pool())
        .chunking(Chunking::fixed(1).unwrap())
        .partitions(65_536);
    let counts = run.map_reduce_by_key(0..300u32, |x| [(x % 3, 1u32)], |c, n| *c += n);
    assert_eq!(counts, [(0, 100), (1, 100), (2, 100)].into());
    let sorted = run
        .partition_by(|key: &u32, partitions: usize| *key as usize * (partitions - 1) / 2)
        .map_reduce_by_key_sorted(0..300u32, |x| [(x % 3, 1u32)], |c, n| *c += n);
    assert_eq!(sorted, Ok([(0, 100), (1, 100), (2, 100)].into()));
}
