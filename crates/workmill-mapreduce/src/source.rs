//! Inputs a map-reduce can split: slices, owned `Vec`s, integer ranges and exact-size iterators.

use std::ops::Range;

/// An input of known length that can be cut in two at any position and then read in order.
///
/// Splitting is what lets map-reduce hand halves to other workers; reading
/// happens on one worker, so items need not be `Send` (the map's results do).
/// Implemented for slices (items `&T`), `Vec<T>` (items `T`) and integer
/// ranges; [`IntoSource`] turns the usual inputs into one.
pub trait Source: Send + Sized {
    /// What the map receives.
    type Item;
    /// The items of one piece, in input order.
    type IntoIter: Iterator<Item = Self::Item>;

    /// The number of items.
    fn len(&self) -> usize;

    /// True when there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `index` items and the rest; `index <= len()`.
    fn split_at(self, index: usize) -> (Self, Self);

    /// The items, in order.
    fn into_items(self) -> Self::IntoIter;
}

/// Anything map-reduce accepts as input: `&[T]`, `&Vec<T>`, `Vec<T>`, `Range` of an
/// integer type, or an exact-size iterator wrapped in [`ExactSize`].
pub trait IntoSource {
    /// The source it becomes.
    type Source: Source<Item = Self::Item>;
    /// What the map receives.
    type Item;

    /// Converts into a splittable source.
    fn into_source(self) -> Self::Source;
}

impl<S: Source> IntoSource for S {
    type Source = S;
    type Item = S::Item;

    fn into_source(self) -> S {
        self
    }
}

impl<'a, T: Sync> Source for &'a [T] {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn len(&self) -> usize {
        <[T]>::len(self)
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        <[T]>::split_at(self, index)
    }

    fn into_items(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: Sync> IntoSource for &'a Vec<T> {
    type Source = &'a [T];
    type Item = &'a T;

    fn into_source(self) -> &'a [T] {
        self.as_slice()
    }
}

impl<'a, T: Sync, const N: usize> IntoSource for &'a [T; N] {
    type Source = &'a [T];
    type Item = &'a T;

    fn into_source(self) -> &'a [T] {
        self.as_slice()
    }
}

/// An owned `Vec` hands its items to the map by value. Each split moves the
/// second half into a new allocation, so an item is moved about once per
/// level of splitting (a few times); map over `&vec` when borrowing will do.
impl<T: Send> Source for Vec<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn split_at(mut self, index: usize) -> (Self, Self) {
        let tail = self.split_off(index);
        (self, tail)
    }

    fn into_items(self) -> Self::IntoIter {
        IntoIterator::into_iter(self)
    }
}

macro_rules! range_source {
    ($($t:ty),* $(,)?) => {$(
        impl Source for Range<$t> {
            type Item = $t;
            type IntoIter = Range<$t>;

            #[inline]
            fn len(&self) -> usize {
                if self.end <= self.start {
                    return 0;
                }
                // The distance fits the unsigned type of the same width, and
                // only types no wider than usize get this impl.
                self.end.abs_diff(self.start) as usize
            }

            #[inline]
            fn split_at(self, index: usize) -> (Self, Self) {
                debug_assert!(index <= Source::len(&self));
                let offset = index.min(Source::len(&self));
                // `start + offset` lies within `start..=end`, so it does not overflow.
                let mid = self.start.wrapping_add(offset as $t);
                (self.start..mid, mid..self.end)
            }

            #[inline]
            fn into_items(self) -> Self::IntoIter {
                self
            }
        }
    )*};
}

range_source!(u8, u16, u32, usize, i8, i16, i32, isize);
#[cfg(target_pointer_width = "64")]
range_source!(u64, i64);

/// An exact-size iterator as map-reduce input: its items are collected into a
/// `Vec` of the reported length first (one sequential pass), then split like
/// any `Vec`. Worth it when the map costs more than producing an item.
///
/// # Examples
///
/// ```
/// use workmill_mapreduce::{ExactSize, map};
///
/// let lengths = map(ExactSize("a bb ccc".split(' ').collect::<Vec<_>>().into_iter()), |w| w.len());
/// assert_eq!(lengths, [1, 2, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct ExactSize<I>(pub I);

impl<I> IntoSource for ExactSize<I>
where
    I: ExactSizeIterator,
    I::Item: Send,
{
    type Source = Vec<I::Item>;
    type Item = I::Item;

    fn into_source(self) -> Vec<I::Item> {
        let mut items = Vec::with_capacity(self.0.len());
        items.extend(self.0);
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_at_every_position() {
        for end in [0i32, 1, 7] {
            for index in 0..=end as usize {
                let (a, b) = Source::split_at(-3..end, index);
                let items: Vec<i32> = a.chain(b).collect();
                assert_eq!(items, (-3..end).collect::<Vec<_>>());
            }
        }
        let (start, end) = (std::hint::black_box(5u8), 3);
        assert_eq!(Source::len(&(start..end)), 0);
        assert_eq!(Source::len(&(i8::MIN..i8::MAX)), 255);
        assert_eq!(Source::len(&(0usize..usize::MAX)), usize::MAX);
    }

    #[test]
    fn vecs_and_slices_split_in_order() {
        let (a, b) = Source::split_at(vec![1, 2, 3, 4], 1);
        assert_eq!((a, b), (vec![1], vec![2, 3, 4]));
        let data = [1, 2, 3];
        let (a, b) = Source::split_at(data.into_source(), 3);
        assert_eq!((a, b.len()), (&[1, 2, 3][..], 0));
    }
}
