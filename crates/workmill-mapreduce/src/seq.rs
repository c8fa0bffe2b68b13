//! Sequential references with the same signatures as the parallel operations: what they must equal.

use std::collections::HashMap;
use std::hash::Hash;

use crate::keyed::insert;
use crate::source::{IntoSource, Source};

/// [`map_reduce`](crate::map_reduce) on the calling thread, item by item: the reference it must equal.
///
/// # Examples
///
/// ```
/// use workmill_mapreduce::{map_reduce, map_reduce_seq};
///
/// let concat = |a: String, b: String| a + &b;
/// let parallel = map_reduce(0..500u32, |x| x.to_string(), concat);
/// assert_eq!(parallel, map_reduce_seq(0..500u32, |x| x.to_string(), concat));
/// assert_eq!(map_reduce_seq(0..0u32, |x| x, |a, b| a + b), None);
/// ```
pub fn map_reduce_seq<I, R, M, F>(input: I, map: M, reduce: F) -> Option<R>
where
    I: IntoSource,
    M: Fn(I::Item) -> R,
    F: Fn(R, R) -> R,
{
    input.into_source().into_items().map(map).reduce(reduce)
}

/// [`fold`](crate::fold) on the calling thread: one fold from `identity()` over every item.
pub fn fold_seq<I, A, ID, F, R>(input: I, identity: ID, fold: F, _reduce: R) -> A
where
    I: IntoSource,
    ID: Fn() -> A,
    F: Fn(A, I::Item) -> A,
    R: Fn(A, A) -> A,
{
    input.into_source().into_items().fold(identity(), fold)
}

/// [`map_reduce_by_key`](crate::map_reduce_by_key) on the calling thread, into one `HashMap`.
pub fn map_reduce_by_key_seq<I, K, V, P, M, C>(input: I, map: M, combine: C) -> HashMap<K, V>
where
    I: IntoSource,
    K: Hash + Eq,
    P: IntoIterator<Item = (K, V)>,
    M: Fn(I::Item) -> P,
    C: Fn(&mut V, V),
{
    let mut table = HashMap::new();
    for item in input.into_source().into_items() {
        for (key, value) in map(item) {
            insert(&mut table, key, value, &combine);
        }
    }
    table
}
