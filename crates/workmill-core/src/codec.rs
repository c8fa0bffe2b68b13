//! `Codec`: how task payloads and results become bytes in a backend; postcard by default, bincode 2 on request.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CodecError, CodecOp};
use crate::payload::{INLINE_PAYLOAD, Payload};

/// The capacity an encoding starts with: most payloads and results of small
/// tasks fit, and an allocator hands out no smaller block anyway.
const SMALL_ENCODING: usize = 16;

/// Turns values into bytes and back, for payloads and results that cross a
/// thread, process or machine boundary.
///
/// Decoding untrusted, corrupted or truncated bytes returns a [`CodecError`]
/// and never panics; trailing bytes after a complete value are an error too,
/// so a store that concatenated or padded a payload is noticed.
///
/// # Examples
///
/// ```
/// use workmill_core::{Codec, Postcard};
///
/// let bytes = Postcard.encode(&("resize", 640u32)).unwrap();
/// let back: (String, u32) = Postcard.decode(&bytes).unwrap();
/// assert_eq!(back, ("resize".to_owned(), 640));
/// assert!(Postcard.decode::<(String, u32)>(&bytes[..bytes.len() - 1]).is_err());
/// ```
pub trait Codec: Send + Sync + 'static {
    /// A short name for error messages and stored metadata, e.g. `"postcard"`.
    const NAME: &'static str;

    /// Encodes `value`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes a whole `T` from `bytes`, refusing leftovers.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// Encodes `value` straight into its stored form: the same bytes as
    /// [`Codec::encode`], without a heap allocation when they fit inline
    /// (at most [`INLINE_PAYLOAD`] bytes) and the codec can write them there.
    ///
    /// ```
    /// use workmill_core::{Codec, Postcard};
    ///
    /// let payload = Postcard.encode_payload(&(7u32, "x")).unwrap();
    /// assert!(payload.is_inline());
    /// assert_eq!(payload.as_slice(), Postcard.encode(&(7u32, "x")).unwrap());
    /// ```
    fn encode_payload<T: Serialize + ?Sized>(&self, value: &T) -> Result<Payload, CodecError> {
        self.encode(value).map(Payload::from)
    }
}

fn encode_error<T: ?Sized>(codec: &'static str, message: impl ToString) -> CodecError {
    CodecError {
        codec,
        op: CodecOp::Encode,
        type_name: std::any::type_name::<T>(),
        message: message.to_string(),
    }
}

fn decode_error<T>(codec: &'static str, message: impl ToString) -> CodecError {
    CodecError {
        codec,
        op: CodecOp::Decode,
        type_name: std::any::type_name::<T>(),
        message: message.to_string(),
    }
}

/// postcard's output for [`Postcard::encode_payload`]: the bytes of an inline [`Payload`],
/// written in place one at a time (the values are small, and postcard's own slice output
/// copies each varint with a call to `memcpy`).
#[derive(Default)]
struct InlineBuffer {
    bytes: [u8; INLINE_PAYLOAD],
    len: usize,
}

impl postcard::ser_flavors::Flavor for InlineBuffer {
    type Output = Payload;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        let slot = self
            .bytes
            .get_mut(self.len)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Payload> {
        Ok(Payload::inline(self.bytes, self.len))
    }
}

/// The default codec: [postcard](https://docs.rs/postcard), a compact, stable and documented wire format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Postcard;

impl Codec for Postcard {
    const NAME: &'static str = "postcard";

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        // Room for a small value up front: growing from empty reallocates once per doubling.
        postcard::to_extend(value, Vec::with_capacity(SMALL_ENCODING))
            .map_err(|e| encode_error::<T>(Self::NAME, e))
    }

    /// Writes into the payload's inline buffer first, byte by byte; a value that
    /// does not fit there is encoded again into a `Vec` (postcard stops as soon as
    /// the buffer is full, so the wasted work is at most [`INLINE_PAYLOAD`] bytes).
    ///
    /// Any error from the first attempt leads to the second, not only a full buffer:
    /// postcard reports a `collect_str` value (a date, a version, anything encoded through
    /// `Display`) that overflows the buffer as its own kind of error. A value that cannot
    /// be encoded at all fails the second attempt with the error [`Codec::encode`] gives.
    fn encode_payload<T: Serialize + ?Sized>(&self, value: &T) -> Result<Payload, CodecError> {
        match postcard::serialize_with_flavor(value, InlineBuffer::default()) {
            Ok(payload) => Ok(payload),
            Err(_) => self.encode(value).map(Payload::from),
        }
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, rest) =
            postcard::take_from_bytes::<T>(bytes).map_err(|e| decode_error::<T>(Self::NAME, e))?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(decode_error::<T>(
                Self::NAME,
                format_args!("{} trailing bytes after a complete value", rest.len()),
            ))
        }
    }
}

/// bincode 2 with its standard configuration and a 64 MiB allocation limit.
///
/// bincode checks the limit when it decodes, so `encode` refuses a value whose encoding is
/// longer than the limit, rather than write bytes its own `decode` would refuse. A value
/// whose containers would take more than the limit once decoded (ten million small `u64`s
/// in a `Vec`, say, 80 MB decoded from 10 MB) still fails only at decode.
///
/// Opt-in through the `bincode` feature: bincode is no longer maintained
/// upstream (its 3.0 release is a tombstone), so it is offered for
/// compatibility with existing data, never as the default.
#[cfg(feature = "bincode")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl Bincode {
    /// The most bytes a decode may claim.
    pub const LIMIT: usize = 64 * 1024 * 1024;

    /// The configuration shared by encode and decode; the limit stops a corrupted
    /// length prefix from asking for an enormous allocation.
    fn config() -> impl bincode::config::Config {
        bincode::config::standard().with_limit::<{ Bincode::LIMIT }>()
    }
}

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    const NAME: &'static str = "bincode";

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let bytes = bincode::serde::encode_to_vec(value, Self::config())
            .map_err(|e| encode_error::<T>(Self::NAME, e))?;
        if bytes.len() > Self::LIMIT {
            return Err(encode_error::<T>(
                Self::NAME,
                format_args!(
                    "the encoding is {} bytes, over the {} byte limit that decoding enforces",
                    bytes.len(),
                    Self::LIMIT
                ),
            ));
        }
        Ok(bytes)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, read) = bincode::serde::decode_from_slice::<T, _>(bytes, Self::config())
            .map_err(|e| decode_error::<T>(Self::NAME, e))?;
        if read == bytes.len() {
            Ok(value)
        } else {
            Err(decode_error::<T>(
                Self::NAME,
                format_args!(
                    "{} trailing bytes after a complete value",
                    bytes.len() - read
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
