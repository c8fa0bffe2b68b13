//! Every kind of input, the choice of pool, and nesting map-reduce inside map-reduce.

use std::collections::HashSet;
use std::sync::Mutex;

use workmill_executor::ThreadPool;
use workmill_mapreduce::{Chunking, ExactSize, MapReduce, fold, map, map_reduce};

use super::pool;

#[test]
fn slices_vecs_arrays_and_iterators_are_inputs() {
    let data: Vec<u64> = (1..=1_000).collect();
    let expected = Some(500_500);
    assert_eq!(map_reduce(&data, |&x| x, |a, b| a + b), expected);
    assert_eq!(map_reduce(&data[..], |&x| x, |a, b| a + b), expected);
    assert_eq!(map_reduce(data.clone(), |x| x, |a, b| a + b), expected);
    assert_eq!(map_reduce(&[1u64, 2, 3], |&x| x, |a, b| a + b), Some(6));
    assert_eq!(
        map_reduce(ExactSize(data.iter().copied()), |x| x, |a, b| a + b),
        expected
    );
    assert_eq!(map_reduce(1..1_001u64, |x| x, |a, b| a + b), expected);
}

#[test]
fn owned_items_move_into_the_map() {
    let words: Vec<String> = (0..5_000).map(|i| format!("w{i}")).collect();
    let run = MapReduce::new()
        .pool(pool())
        .chunking(Chunking::fixed(3).unwrap());
    let lengths = run.map(words.clone(), |word: String| word.into_bytes().len());
    assert_eq!(lengths, words.iter().map(String::len).collect::<Vec<_>>());
}

#[test]
fn ranges_of_every_width() {
    assert_eq!(
        map_reduce(i8::MIN..i8::MAX, i64::from, |a, b| a + b),
        Some(-255)
    );
    assert_eq!(
        map_reduce(0..256u16, u32::from, |a, b| a + b),
        Some(255 * 256 / 2)
    );
    assert_eq!(
        fold(
            -1_000i32..1_000,
            || 0i64,
            |a, x| a + i64::from(x),
            |a, b| a + b
        ),
        -1_000
    );
    assert_eq!(map(10usize..13, |x| x * 2), [20, 22, 24]);
}

#[test]
fn inclusive_ranges_of_every_width() {
    assert_eq!(
        map_reduce(i8::MIN..=i8::MAX, i64::from, |a, b| a + b),
        Some(-128)
    );
    assert_eq!(
        map_reduce(0..=u8::MAX, u32::from, |a, b| a + b),
        Some(255 * 256 / 2)
    );
    assert_eq!(
        map_reduce(1..=1_000u16, u32::from, |a, b| a + b),
        Some(500_500)
    );
    assert_eq!(
        map_reduce(-1_000..=1_000i32, i64::from, |a, b| a + b),
        Some(0)
    );
    assert_eq!(
        map_reduce(u32::MAX - 2..=u32::MAX, u64::from, |a, b| a + b),
        Some(3 * u64::from(u32::MAX) - 3)
    );
    assert_eq!(map(usize::MAX - 1..=usize::MAX, |x| usize::MAX - x), [1, 0]);
    assert_eq!(
        map(isize::MIN..=isize::MIN + 1, |x| x == isize::MIN),
        [true, false]
    );
    assert_eq!(
        fold(7..=7u8, || 0u32, |a, x| a + u32::from(x), |a, b| a + b),
        7
    );
    let (start, end) = (std::hint::black_box(7u8), 6);
    assert_eq!(map_reduce(start..=end, u32::from, |a, b| a + b), None);
    #[cfg(target_pointer_width = "64")]
    {
        assert_eq!(
            map_reduce(u64::MAX - 1..=u64::MAX, |x| x % 10, |a, b| a + b),
            Some(5 + 4)
        );
        assert_eq!(
            map_reduce(i64::MIN..=i64::MIN + 2, |x| x == i64::MIN, |a, b| a || b),
            Some(true)
        );
    }
}

#[test]
fn the_chosen_pool_runs_every_chunk() {
    let mine = ThreadPool::builder().num_threads(2).build().unwrap();
    let seen = Mutex::new(HashSet::new());
    MapReduce::new()
        .pool(&mine)
        .chunking(Chunking::fixed(10).unwrap())
        .map(0..10_000u32, |_| {
            let index = mine.current_thread_index();
            assert!(index.is_some(), "a chunk ran outside the chosen pool");
            seen.lock().unwrap().insert(index);
        });
    assert!(!seen.lock().unwrap().is_empty());
}

#[test]
fn map_reduce_nests_inside_map_reduce_and_across_pools() {
    let outer = MapReduce::new()
        .pool(pool())
        .chunking(Chunking::fixed(5).unwrap());
    let other = ThreadPool::builder().num_threads(2).build().unwrap();
    let sums = outer.map(0..40u64, |row| {
        let inner = MapReduce::new().pool(&other);
        let across = inner.map_reduce(0..row, |x| x, |a, b| a + b).unwrap_or(0);
        let nested = map_reduce(0..row, |x| x, |a, b| a + b).unwrap_or(0);
        assert_eq!(across, nested);
        nested
    });
    assert_eq!(
        sums,
        (0..40u64)
            .map(|r| r * r.saturating_sub(1) / 2)
            .collect::<Vec<_>>()
    );
}
