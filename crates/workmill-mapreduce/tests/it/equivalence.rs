//! Property tests: for random inputs and every chunking mode, the parallel operations equal their sequential references.

use std::num::NonZeroUsize;

use proptest::prelude::*;
use workmill_mapreduce::{Chunking, MapReduce, fold_seq, map_reduce_seq};

use super::pool;

/// Every chunking mode, with random parameters.
fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        Just(Chunking::Adaptive),
        (1usize..64).prop_map(|n| Chunking::Fixed(NonZeroUsize::new(n).unwrap())),
        (1usize..8).prop_map(|k| Chunking::PerWorker(NonZeroUsize::new(k).unwrap())),
    ]
}

/// A configuration on the test pool or the global one, with random length bounds.
fn config() -> impl Strategy<Value = MapReduce<'static>> {
    (
        chunking(),
        0usize..40,
        prop::option::of(1usize..300),
        any::<bool>(),
    )
        .prop_map(|(chunking, min, max, global)| {
            let mut run = MapReduce::new().chunking(chunking).min_len(min);
            if let Some(max) = max {
                run = run.max_len(max);
            }
            if !global {
                run = run.pool(pool());
            }
            run
        })
}

/// 2x2 matrices with wrapping products: associative, not commutative, so a
/// result combined out of order would differ.
type Matrix = [u32; 4];

fn mat(x: u32) -> Matrix {
    [x, 1, 1, 0]
}

fn mul(a: Matrix, b: Matrix) -> Matrix {
    let m = |x: u32, y: u32| x.wrapping_mul(y);
    [
        m(a[0], b[0]).wrapping_add(m(a[1], b[2])),
        m(a[0], b[1]).wrapping_add(m(a[1], b[3])),
        m(a[2], b[0]).wrapping_add(m(a[3], b[2])),
        m(a[2], b[1]).wrapping_add(m(a[3], b[3])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn map_reduce_equals_the_sequential_reference(
        data in prop::collection::vec(any::<u32>(), 0..3_000),
        run in config(),
    ) {
        let expected = map_reduce_seq(&data, |&x| mat(x), mul);
        prop_assert_eq!(run.map_reduce(&data, |&x| mat(x), mul), expected);
        prop_assert_eq!(run.map_reduce(data.clone(), mat, mul), expected);
        prop_assert_eq!(run.try_map_reduce(&data, |&x| mat(x), mul), Ok(expected));
    }

    #[test]
    fn map_reduce_over_ranges_equals_the_sequential_reference(
        start in -5_000i64..5_000,
        len in 0i64..20_000,
        run in config(),
    ) {
        let range = start..start + len;
        let expected = map_reduce_seq(range.clone(), |x| mat(x as u32), mul);
        prop_assert_eq!(run.map_reduce(range, |x| mat(x as u32), mul), expected);
    }

    #[test]
    fn map_reduce_over_inclusive_ranges_equals_the_sequential_reference(
        start in -5_000i64..5_000,
        // From two below empty (`start..=start - 2`) to 20,000 items.
        len in -1i64..20_000,
        run in config(),
    ) {
        let range = start..=start + len - 1;
        let expected = map_reduce_seq(range.clone(), |x| mat(x as u32), mul);
        prop_assert_eq!(run.map_reduce(range.clone(), |x| mat(x as u32), mul), expected);
        let collected: Vec<i64> = range.clone().collect();
        prop_assert_eq!(run.map(range, |x| x), collected);
    }

    #[test]
    fn inclusive_ranges_reach_the_top_of_their_type(
        distance in 0u16..10_000,
        run in config(),
    ) {
        let distance = usize::from(distance);
        let top = usize::MAX - distance..=usize::MAX;
        let expected = map_reduce_seq(top.clone(), |x| mat(x as u32), mul);
        prop_assert_eq!(run.map_reduce(top.clone(), |x| mat(x as u32), mul), expected);
        prop_assert_eq!(run.map(top, |x| x).last().copied(), Some(usize::MAX));
        let top = isize::MAX - distance as isize..=isize::MAX;
        let expected = map_reduce_seq(top.clone(), |x| mat(x as u32), mul);
        prop_assert_eq!(run.map_reduce(top, |x| mat(x as u32), mul), expected);
        let bottom = i32::MIN..=i32::MIN + distance as i32;
        let expected = map_reduce_seq(bottom.clone(), |x| mat(x as u32), mul);
        prop_assert_eq!(run.map_reduce(bottom, |x| mat(x as u32), mul), expected);
        let push = |mut acc: Vec<u16>, x: u16| { acc.push(x); acc };
        let concat = |mut a: Vec<u16>, mut b: Vec<u16>| { a.append(&mut b); a };
        let top = u16::MAX - distance as u16..=u16::MAX;
        let folded = run.fold(top.clone(), Vec::new, push, concat);
        prop_assert_eq!(folded, top.collect::<Vec<u16>>());
    }

    #[test]
    fn whole_inclusive_ranges_of_small_types_equal_the_sequential_reference(run in config()) {
        let expected = map_reduce_seq(u8::MIN..=u8::MAX, |x| mat(u32::from(x)), mul);
        prop_assert_eq!(run.map_reduce(u8::MIN..=u8::MAX, |x| mat(u32::from(x)), mul), expected);
        let expected = map_reduce_seq(i16::MIN..=i16::MAX, |x| mat(x as u32), mul);
        prop_assert_eq!(run.map_reduce(i16::MIN..=i16::MAX, |x| mat(x as u32), mul), expected);
        prop_assert_eq!(run.map(i8::MIN..=i8::MAX, |x| x), (i8::MIN..=i8::MAX).collect::<Vec<_>>());
    }

    #[test]
    fn fold_keeps_input_order(
        data in prop::collection::vec(any::<u16>(), 0..3_000),
        run in config(),
    ) {
        let push = |mut acc: Vec<u16>, &x: &u16| { acc.push(x); acc };
        let concat = |mut a: Vec<u16>, mut b: Vec<u16>| { a.append(&mut b); a };
        let folded = run.fold(&data, Vec::new, push, concat);
        prop_assert_eq!(&folded, &fold_seq(&data, Vec::new, push, concat));
        prop_assert_eq!(folded, data);
    }

    #[test]
    fn map_preserves_order(
        data in prop::collection::vec(any::<u64>(), 0..3_000),
        run in config(),
    ) {
        let expected: Vec<String> = data.iter().map(|x| format!("{x:x}")).collect();
        prop_assert_eq!(&run.map(&data, |x| format!("{x:x}")), &expected);
        prop_assert_eq!(run.map(data, |x| format!("{x:x}")), expected);
    }
}
