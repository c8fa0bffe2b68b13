//! `Payload`: the encoded bytes of a task's input or result, small ones inline and large ones shared.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most bytes a [`Payload`] keeps inline, without a heap allocation.
pub const INLINE_PAYLOAD: usize = 22;

/// The encoded bytes of a task's input or result: immutable, cheap to clone.
///
/// Payloads of up to [`INLINE_PAYLOAD`] bytes (most encoded numbers, ids and
/// small structs) live inside the value itself: building one from a slice or an
/// array, cloning it and dropping it never touches the allocator. Larger ones
/// are kept once behind an [`Arc`], so handing a queued task's input to a
/// worker clones a pointer, not a megabyte. Building a large payload costs one
/// allocation and one copy of the bytes, also from a `Vec<u8>`: an `Arc` keeps
/// its counts in front of the bytes, so it cannot adopt a vector's buffer
/// (a payload made from an `Arc<[u8]>` does keep that `Arc`, with no copy).
/// Either way a `Payload` is 24 bytes, the size of a `Vec<u8>`.
///
/// It dereferences to `[u8]`, compares and orders by content (with `[u8]`,
/// arrays and `Vec<u8>` too, on either side), and serializes as a byte string,
/// which postcard writes exactly as it writes a `Vec<u8>`.
///
/// # Examples
///
/// ```
/// use workmill_core::Payload;
///
/// let small = Payload::from(vec![1, 2, 3]);
/// assert_eq!(small, [1, 2, 3]);
/// assert_eq!([1, 2, 3], small);
/// assert!(small.is_inline());
///
/// let large = Payload::from(vec![7; 1 << 20]);
/// let shared = large.clone(); // a reference count, not a copy
/// assert_eq!(shared.len(), 1 << 20);
/// assert!(!shared.is_inline());
/// assert_eq!(large.into_vec(), vec![7; 1 << 20]);
/// ```
///
/// # Comparing an `Option<Payload>`
///
/// A payload compares with a `Vec<u8>`, but an `Option<Payload>` (such as
/// [`TaskRecord::result`](crate::TaskRecord::result)) does not compare with an
/// `Option<Vec<u8>>`: `Option` only compares with an `Option` of the same type,
/// and the orphan rule forbids adding that impl here. Compare the bytes, or
/// turn the expected value into a payload:
///
/// ```
/// use workmill_core::Payload;
///
/// let result: Option<Payload> = Some(Payload::from(vec![4, 2]));
/// assert!(result.as_deref() == Some(&[4, 2][..]));
/// assert_eq!(result, Some(vec![4, 2].into()));
/// ```
///
/// ```compile_fail,E0308
/// use workmill_core::Payload;
///
/// let result: Option<Payload> = Some(Payload::from(vec![4, 2]));
/// assert!(result == Some(vec![4, 2])); // no `PartialEq<Option<Vec<u8>>>` for `Option<Payload>`
/// ```
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_PAYLOAD],
    },
    Shared(Arc<[u8]>),
}

impl Payload {
    /// The empty payload.
    pub const EMPTY: Payload = Payload(Repr::Inline {
        len: 0,
        bytes: [0; INLINE_PAYLOAD],
    });

    /// A payload holding a copy of `bytes`: inline if they fit in
    /// [`INLINE_PAYLOAD`], otherwise in one new shared allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::{INLINE_PAYLOAD, Payload};
    ///
    /// let header = [0xCA, 0xFE, 0x00, 0x01, 0x02];
    /// let payload = Payload::copy_from_slice(&header[..2]);
    /// assert_eq!(payload, [0xCA, 0xFE]);
    /// assert!(payload.is_inline());
    /// assert!(!Payload::copy_from_slice(&[0; INLINE_PAYLOAD + 1]).is_inline());
    /// ```
    pub fn copy_from_slice(bytes: &[u8]) -> Payload {
        if bytes.len() <= INLINE_PAYLOAD {
            let mut inline = [0; INLINE_PAYLOAD];
            inline[..bytes.len()].copy_from_slice(bytes);
            Payload::inline(inline, bytes.len())
        } else {
            Payload(Repr::Shared(Arc::from(bytes)))
        }
    }

    /// The first `len` of `bytes`, kept inline as they are (the caller wrote them in place).
    /// `len` must be at most [`INLINE_PAYLOAD`]; a larger one is clamped.
    pub(crate) fn inline(bytes: [u8; INLINE_PAYLOAD], len: usize) -> Payload {
        Payload(Repr::Inline {
            // At most INLINE_PAYLOAD, which is below u8::MAX.
            len: len.min(INLINE_PAYLOAD) as u8,
            bytes,
        })
    }

    /// The bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::{Codec, Payload, Postcard};
    ///
    /// let payload = Payload::from(Postcard.encode(&300u32)?);
    /// let value: u32 = Postcard.decode(payload.as_slice())?;
    /// assert_eq!(value, 300);
    /// # Ok::<(), workmill_core::CodecError>(())
    /// ```
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(bytes) => bytes,
        }
    }

    /// Whether the bytes live inside the value (no heap allocation), which is
    /// the case exactly when there are at most [`INLINE_PAYLOAD`] of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::{INLINE_PAYLOAD, Payload};
    ///
    /// assert!(Payload::from(vec![1; INLINE_PAYLOAD]).is_inline());
    /// assert!(!Payload::from(vec![1; INLINE_PAYLOAD + 1]).is_inline());
    /// ```
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// The bytes as a `Vec<u8>`: always a copy, since neither the inline bytes
    /// nor a shared `Arc<[u8]>` can become a vector's buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::Payload;
    ///
    /// let payload = Payload::from(&b"abc"[..]);
    /// let mut bytes = payload.into_vec();
    /// bytes.push(b'd');
    /// assert_eq!(bytes, b"abcd");
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl Default for Payload {
    fn default() -> Payload {
        Payload::EMPTY
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Payload {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for Payload {
    /// Copies small vectors inline; copies large ones into one new `Arc<[u8]>`
    /// (an `Arc` cannot take over a vector's buffer). Either way the vector is freed.
    fn from(bytes: Vec<u8>) -> Payload {
        if bytes.len() <= INLINE_PAYLOAD {
            Payload::copy_from_slice(&bytes)
        } else {
            Payload(Repr::Shared(Arc::from(bytes)))
        }
    }
}

impl From<Arc<[u8]>> for Payload {
    /// Keeps a large `Arc` as it is, with no copy; copies small ones inline, so
    /// that every payload of up to [`INLINE_PAYLOAD`] bytes is inline.
    fn from(bytes: Arc<[u8]>) -> Payload {
        if bytes.len() <= INLINE_PAYLOAD {
            Payload::copy_from_slice(&bytes)
        } else {
            Payload(Repr::Shared(bytes))
        }
    }
}

impl From<&str> for Payload {
    /// The text's UTF-8 bytes.
    fn from(text: &str) -> Payload {
        Payload::copy_from_slice(text.as_bytes())
    }
}

impl From<String> for Payload {
    /// The text's UTF-8 bytes.
    fn from(text: String) -> Payload {
        Payload::from(text.into_bytes())
    }
}

impl From<&[u8]> for Payload {
    fn from(bytes: &[u8]) -> Payload {
        Payload::copy_from_slice(bytes)
    }
}

impl<const N: usize> From<[u8; N]> for Payload {
    fn from(bytes: [u8; N]) -> Payload {
        Payload::copy_from_slice(&bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Payload {
    fn from(bytes: &[u8; N]) -> Payload {
        Payload::copy_from_slice(bytes)
    }
}

impl FromIterator<u8> for Payload {
    fn from_iter<I: IntoIterator<Item = u8>>(bytes: I) -> Payload {
        Payload::from(bytes.into_iter().collect::<Vec<u8>>())
    }
}

impl From<Payload> for Vec<u8> {
    fn from(payload: Payload) -> Vec<u8> {
        payload.into_vec()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Payload {}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Payload {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Payload {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Payload {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for Payload {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Payload> for Vec<u8> {
    fn eq(&self, other: &Payload) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Payload> for [u8] {
    fn eq(&self, other: &Payload) -> bool {
        self == other.as_slice()
    }
}

impl PartialEq<Payload> for &[u8] {
    fn eq(&self, other: &Payload) -> bool {
        *self == other.as_slice()
    }
}

impl<const N: usize> PartialEq<Payload> for [u8; N] {
    fn eq(&self, other: &Payload) -> bool {
        self[..] == *other.as_slice()
    }
}

impl<const N: usize> PartialEq<Payload> for &[u8; N] {
    fn eq(&self, other: &Payload) -> bool {
        self[..] == *other.as_slice()
    }
}

impl PartialOrd for Payload {
    fn partial_cmp(&self, other: &Payload) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Payload {
    /// Orders by the bytes, as `[u8]` does.
    fn cmp(&self, other: &Payload) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Payload {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        deserializer.deserialize_bytes(PayloadVisitor)
    }
}

/// Accepts a byte string, or a sequence of bytes (how self-describing formats
/// such as JSON write a `Vec<u8>`).
struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
        Ok(Payload::copy_from_slice(bytes))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload::from(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Payload::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codec, Postcard};
    use proptest::prelude::*;

    #[test]
    fn is_as_large_as_a_vec() {
        assert_eq!(
            std::mem::size_of::<Payload>(),
            std::mem::size_of::<Vec<u8>>()
        );
    }

    #[test]
    fn small_payloads_are_inline_and_large_ones_shared() {
        let limit = vec![9; INLINE_PAYLOAD];
        assert!(Payload::from(limit.clone()).is_inline());
        assert!(Payload::from(&limit[..]).is_inline());
        let over = vec![9; INLINE_PAYLOAD + 1];
        let shared = Payload::from(over.clone());
        assert!(!shared.is_inline());
        assert_eq!(shared, over);
        assert!(Payload::default().is_empty());
        assert_eq!(Payload::EMPTY, Payload::from(Vec::new()));
    }

    #[test]
    fn clones_of_a_large_payload_share_one_buffer() {
        let payload = Payload::from(vec![1; 1000]);
        let clone = payload.clone();
        assert!(std::ptr::eq(payload.as_slice(), clone.as_slice()));
    }

    /// Whether `payload` and `other` are equal, asked from both sides; panics if the two
    /// sides disagree.
    fn equal_both_ways<T>(payload: &Payload, other: &T) -> bool
    where
        T: PartialEq<Payload> + ?Sized,
        Payload: PartialEq<T>,
    {
        let (forward, backward) = (*payload == *other, *other == *payload);
        assert_eq!(forward, backward, "the two sides disagree");
        forward
    }

    #[test]
    fn compares_with_slices_arrays_and_vectors_on_either_side() {
        for payload in [Payload::from(vec![5; 3]), Payload::from(vec![5; 40])] {
            let bytes = payload.to_vec();
            assert!(equal_both_ways(&payload, &bytes));
            assert!(equal_both_ways(&payload, &bytes[..]));
            assert!(equal_both_ways::<&[u8]>(&payload, &&bytes[..]));
            let other = [6; 3];
            assert!(!equal_both_ways(&payload, &other));
            assert!(!equal_both_ways::<&[u8; 3]>(&payload, &&other));
            assert!(!equal_both_ways::<&[u8]>(&payload, &&other[..]));
            assert!(!equal_both_ways(&payload, &other.to_vec()));
        }
        let three = Payload::from([5, 5, 5]);
        assert!(equal_both_ways(&three, &[5, 5, 5]));
        assert!(equal_both_ways::<&[u8; 3]>(&three, &&[5, 5, 5]));
        assert!(!equal_both_ways(&three, &[5, 5]));
        assert!(!equal_both_ways::<&[u8; 4]>(&three, &&[5, 5, 5, 5]));
    }

    #[test]
    fn an_arc_is_kept_when_large_and_inlined_when_small() {
        let large: Arc<[u8]> = Arc::from(vec![8; INLINE_PAYLOAD + 1]);
        let payload = Payload::from(Arc::clone(&large));
        assert!(!payload.is_inline());
        assert!(std::ptr::eq(payload.as_slice(), &*large));
        let small: Arc<[u8]> = Arc::from(vec![8; INLINE_PAYLOAD]);
        let payload = Payload::from(Arc::clone(&small));
        assert!(payload.is_inline());
        assert_eq!(payload, *small);
        assert_eq!(Arc::strong_count(&small), 1, "the small Arc is not kept");
    }

    #[test]
    fn text_becomes_its_utf8_bytes() {
        assert_eq!(Payload::from("héllo"), "héllo".as_bytes());
        assert!(Payload::from("héllo").is_inline());
        let long = "é".repeat(INLINE_PAYLOAD);
        let payload = Payload::from(long.clone());
        assert!(!payload.is_inline());
        assert_eq!(payload, long.as_bytes());
        assert_eq!(Payload::from(long.as_str()), payload);
    }

    proptest! {
        #[test]
        fn orders_as_its_bytes_do(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let (pa, pb) = (Payload::from(a.clone()), Payload::from(b.clone()));
            prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            prop_assert_eq!(pa.partial_cmp(&pb), Some(a.cmp(&b)));
            let mut sorted = vec![pb, pa];
            sorted.sort();
            let mut expected = vec![b, a];
            expected.sort();
            prop_assert_eq!(sorted, expected);
        }

        #[test]
        fn keeps_its_bytes_and_compares_by_content(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let payload = Payload::from(bytes.clone());
            prop_assert_eq!(payload.as_slice(), &bytes[..]);
            prop_assert_eq!(&payload, &bytes);
            prop_assert_eq!(&payload, &Payload::copy_from_slice(&bytes));
            prop_assert_eq!(payload.clone().into_vec(), bytes.clone());
            prop_assert_eq!(bytes.iter().copied().collect::<Payload>(), payload);
        }

        #[test]
        fn postcard_writes_it_as_a_vec(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let as_vec = Postcard.encode(&bytes).unwrap();
            let as_payload = Postcard.encode(&Payload::from(bytes.clone())).unwrap();
            prop_assert_eq!(&as_vec, &as_payload);
            let back: Payload = Postcard.decode(&as_vec).unwrap();
            prop_assert_eq!(back, bytes);
        }
    }

    #[test]
    fn reads_a_sequence_of_bytes_from_a_self_describing_format() {
        use serde::de::value::{Error, SeqDeserializer};
        let seq = SeqDeserializer::<_, Error>::new(vec![1u8, 2, 3].into_iter());
        assert_eq!(Payload::deserialize(seq).unwrap(), [1, 2, 3]);
    }
}
