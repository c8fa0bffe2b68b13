//! Inputs a map-reduce can split: slices, owned `Vec`s, integer ranges (half-open and inclusive) and exact-size iterators.

use std::ops::{Range, RangeInclusive};

/// An input of known length that can be cut in two at any position and then read in order.
///
/// Splitting is what lets map-reduce hand halves to other workers; reading
/// happens on one worker, so items need not be `Send` (the map's results do).
/// Implemented for slices (items `&T`), `Vec<T>` (items `T`) and integer
/// ranges, `a..b` and `a..=b`; [`IntoSource`] turns the usual inputs into one.
/// A panic in `len` or `split_at` of a source of your own stops the run as
/// a panic in the map does.
///
/// One input has more items than a `usize` counts: the whole inclusive range
/// of a type as wide as `usize`, such as `0..=u64::MAX` on a 64-bit target
/// (2^64 items). Its `len()` saturates at `usize::MAX`. Ranges split and read
/// by their ends, not their length, so every item is still mapped exactly
/// once; only the piece holding the range's top is one item longer than its
/// `len()` says. Every other range, `x..=MAX` included, has its exact length.
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

/// Anything map-reduce accepts as input: `&[T]`, `&Vec<T>`, `Vec<T>`, `Range` or
/// `RangeInclusive` of an integer type, or an exact-size iterator wrapped in [`ExactSize`].
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

// `a..=b` for the integer types `a..b` supports; an empty piece is `1..=0`,
// built with `RangeInclusive::new` (clippy reads a literal one as a mistake).
// Why the length may saturate is in the `Source` docs.
macro_rules! range_inclusive_source {
    ($($t:ty),* $(,)?) => {$(
        impl Source for RangeInclusive<$t> {
            type Item = $t;
            type IntoIter = RangeInclusive<$t>;

            #[inline]
            fn len(&self) -> usize {
                // `is_empty` also sees a range that was iterated to its end.
                if self.is_empty() {
                    return 0;
                }
                // As for `Range`, the distance fits a usize; one more may not.
                (self.end().abs_diff(*self.start()) as usize).saturating_add(1)
            }

            #[inline]
            fn split_at(self, index: usize) -> (Self, Self) {
                debug_assert!(index <= Source::len(&self));
                if index == 0 {
                    return (RangeInclusive::new(1, 0), self);
                }
                let (start, end) = self.into_inner();
                // Compare distances, not lengths: the whole range's length may
                // have saturated, its distance never does.
                if index > end.abs_diff(start) as usize {
                    return (start..=end, RangeInclusive::new(1, 0));
                }
                // `0 < index <= end - start`, so `start + index` lies within
                // `start + 1..=end`; the wrapping arithmetic is exact there.
                let mid = start.wrapping_add(index as $t);
                (start..=mid.wrapping_sub(1), mid..=end)
            }

            #[inline]
            fn into_items(self) -> Self::IntoIter {
                self
            }
        }
    )*};
}

range_inclusive_source!(u8, u16, u32, usize, i8, i16, i32, isize);
#[cfg(target_pointer_width = "64")]
range_inclusive_source!(u64, i64);

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

    /// Every split of `source` keeps every item, in order, with exact lengths.
    fn check_every_split<S>(source: S)
    where
        S: Source + Clone,
        S::Item: PartialEq + std::fmt::Debug,
    {
        let all: Vec<S::Item> = source.clone().into_items().collect();
        assert_eq!(source.len(), all.len());
        for index in 0..=all.len() {
            let (a, b) = source.clone().split_at(index);
            assert_eq!((a.len(), b.len()), (index, all.len() - index));
            let items: Vec<S::Item> = a.into_items().chain(b.into_items()).collect();
            assert_eq!(items, all, "split at {index}");
        }
    }

    #[test]
    fn inclusive_ranges_split_at_every_position_up_to_the_ends_of_their_type() {
        let signed = [i8::MIN, i8::MIN + 1, -1, 0, 1, i8::MAX - 1, i8::MAX];
        for &start in &signed {
            for &end in &signed {
                check_every_split(start..=end);
            }
        }
        let unsigned = [0u8, 1, 2, 127, 128, u8::MAX - 1, u8::MAX];
        for &start in &unsigned {
            for &end in &unsigned {
                check_every_split(start..=end);
            }
        }
        check_every_split(usize::MAX - 5..=usize::MAX);
        check_every_split(isize::MAX - 5..=isize::MAX);
        check_every_split(isize::MIN..=isize::MIN + 5);
        assert_eq!(Source::len(&(0u32..=u32::MAX)), 1 << 32);
        assert_eq!(Source::len(&(i16::MIN..=i16::MAX)), 1 << 16);
    }

    #[test]
    fn empty_and_exhausted_inclusive_ranges_have_no_items() {
        let (start, end) = (std::hint::black_box(5u8), 3);
        assert_eq!(Source::len(&(start..=end)), 0);
        check_every_split(start..=end);
        let mut last = u16::MAX..=u16::MAX;
        assert_eq!(last.next(), Some(u16::MAX));
        // Iterated to its end, it still has its last item as both ends.
        assert_eq!(Source::len(&last), 0);
        check_every_split(last);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn the_whole_range_of_a_usize_wide_type_saturates_its_length_but_keeps_every_item() {
        let whole = 0u64..=u64::MAX;
        assert_eq!(Source::len(&whole), usize::MAX);
        let (a, b) = Source::split_at(whole.clone(), usize::MAX);
        assert_eq!((a, b), (0..=u64::MAX - 1, u64::MAX..=u64::MAX));
        let (a, b) = Source::split_at(whole.clone(), 1);
        assert_eq!((a, b.clone()), (0..=0, 1..=u64::MAX));
        assert_eq!(Source::len(&b), usize::MAX, "2^64 - 1 items is exact");
        let (a, b) = Source::split_at(i64::MIN..=i64::MAX, 1 << 63);
        assert_eq!((a, b), (i64::MIN..=-1, 0..=i64::MAX));
        // Halving the whole range as the splitter does covers it without a gap.
        let mid = Source::len(&whole) / 2;
        let (a, b) = Source::split_at(whole, mid);
        assert_eq!(a.end().wrapping_add(1), *b.start());
        assert_eq!((*a.start(), *b.end()), (0, u64::MAX));
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
