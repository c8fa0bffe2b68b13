//! Codec tests: round trips, and corrupted, truncated or random bytes that must give a `CodecError`, never a panic.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::{
    Backoff, Failure, FailureKind, Payload, Priority, RetryPolicy, TaskId, TaskRecord, TaskStatus,
    Timestamp, WorkerId,
};

/// A record as a busy worker leaves it: retried once, finished, result stored.
fn realistic_record(seed: u64, payload: Vec<u8>, result: Option<Vec<u8>>) -> TaskRecord {
    let created = Timestamp::from_micros(1_795_910_400_000_000 + seed);
    TaskRecord {
        id: TaskId::generate(),
        name: "thumbnail.resize".into(),
        payload: payload.into(),
        status: TaskStatus::Completed,
        priority: Priority::new(15),
        attempts: 2,
        retry: RetryPolicy::new(3)
            .backoff(Backoff::exponential(
                Duration::from_secs(2),
                Duration::from_secs(60),
            ))
            .demote_by(10),
        created_at: created,
        run_at: created.saturating_add(Duration::from_secs(2)),
        started_at: Some(created.saturating_add(Duration::from_secs(2))),
        finished_at: Some(created.saturating_add(Duration::from_secs(3))),
        last_error: Some(Failure::new(FailureKind::Error, "connection reset by peer")),
        worker: Some(WorkerId::new("host-42-0").unwrap()),
        result: result.map(Payload::from),
    }
}

fn codecs_round_trip(record: &TaskRecord) {
    let bytes = Postcard.encode(record).unwrap();
    let back: TaskRecord = Postcard.decode(&bytes).unwrap();
    assert_eq!(&back, record);
    #[cfg(feature = "bincode")]
    {
        let bytes = Bincode.encode(record).unwrap();
        let back: TaskRecord = Bincode.decode(&bytes).unwrap();
        assert_eq!(&back, record);
    }
}

proptest! {
    #[test]
    fn records_round_trip(
        seed in any::<u64>(),
        payload in prop::collection::vec(any::<u8>(), 0..256),
        result in prop::option::of(prop::collection::vec(any::<u8>(), 0..256)),
    ) {
        codecs_round_trip(&realistic_record(seed % 1_000_000, payload, result));
    }

    #[test]
    fn values_round_trip(value in (any::<String>(), any::<i64>(), prop::collection::vec(any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()), 0..32))) {
        let bytes = Postcard.encode(&value).unwrap();
        prop_assert_eq!(Postcard.decode::<(String, i64, Vec<f64>)>(&bytes).unwrap(), value);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Any outcome but a panic is acceptable: random bytes may happen to be valid.
        let _ = Postcard.decode::<TaskRecord>(&bytes);
        let _ = Postcard.decode::<(String, Vec<u64>, Option<TaskStatus>)>(&bytes);
        #[cfg(feature = "bincode")]
        {
            let _ = Bincode.decode::<TaskRecord>(&bytes);
        }
    }

    #[test]
    fn every_truncation_is_an_error(seed in any::<u64>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        let record = realistic_record(seed % 1_000, payload, Some(vec![1, 2, 3]));
        let bytes = Postcard.encode(&record).unwrap();
        for len in 0..bytes.len() {
            let err = Postcard.decode::<TaskRecord>(&bytes[..len]).unwrap_err();
            prop_assert_eq!(err.op, CodecOp::Decode);
        }
    }

    #[test]
    fn single_byte_corruption_never_panics(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let record = realistic_record(7, b"payload".to_vec(), None);
        let mut bytes = Postcard.encode(&record).unwrap();
        let i = index.index(bytes.len());
        bytes[i] = byte;
        // Either it decodes to some record or it is a CodecError.
        let _ = Postcard.decode::<TaskRecord>(&bytes);
    }
}

#[test]
fn known_corruptions_are_codec_errors() {
    // An invalid enum discriminant for TaskStatus.
    let err = Postcard.decode::<TaskStatus>(&[200]).unwrap_err();
    assert_eq!(err.codec, "postcard");
    assert!(err.to_string().contains("TaskStatus"), "{err}");
    // Invalid UTF-8 inside a string.
    let err = Postcard.decode::<String>(&[2, 0xff, 0xfe]).unwrap_err();
    assert_eq!(err.op, CodecOp::Decode);
    // A task id that breaks the id rules is refused while decoding.
    let bytes = Postcard.encode("has space").unwrap();
    assert!(Postcard.decode::<TaskId>(&bytes).is_err());
    // A length prefix claiming far more bytes than exist.
    assert!(
        Postcard
            .decode::<Vec<u8>>(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2])
            .is_err()
    );
    // Trailing garbage after a complete value.
    let mut bytes = Postcard.encode(&42u32).unwrap();
    bytes.push(0);
    let err = Postcard.decode::<u32>(&bytes).unwrap_err();
    assert!(err.message.contains("trailing"), "{err}");
}

#[cfg(feature = "bincode")]
#[test]
fn bincode_encodes_only_what_it_can_decode() {
    let fits = vec![7u8; Bincode::LIMIT - 16];
    let bytes = Bincode.encode(&fits).unwrap();
    assert_eq!(Bincode.decode::<Vec<u8>>(&bytes).unwrap().len(), fits.len());
    let over = vec![7u8; Bincode::LIMIT + 1];
    let err = Bincode.encode(&over).unwrap_err();
    assert_eq!(err.op, CodecOp::Encode);
    assert!(err.message.contains("limit"), "{err}");
}

#[cfg(feature = "bincode")]
#[test]
fn bincode_refuses_trailing_and_truncated_bytes() {
    let bytes = Bincode.encode(&(1u64, "two")).unwrap();
    assert!(
        Bincode
            .decode::<(u64, String)>(&bytes[..bytes.len() - 1])
            .is_err()
    );
    let mut padded = bytes.clone();
    padded.push(9);
    assert!(Bincode.decode::<(u64, String)>(&padded).is_err());
    assert_eq!(
        Bincode.decode::<(u64, String)>(&bytes).unwrap(),
        (1, "two".to_owned())
    );
}

#[test]
fn a_payload_encoded_in_place_has_the_bytes_of_encode_and_is_inline_when_it_fits() {
    let values: Vec<Vec<u8>> = (0..40).map(|n| vec![7; n]).collect();
    for value in &values {
        let bytes = Postcard.encode(value).unwrap();
        let payload = Postcard.encode_payload(value).unwrap();
        assert_eq!(payload.as_slice(), bytes, "{} bytes", bytes.len());
        assert_eq!(payload.is_inline(), bytes.len() <= INLINE_PAYLOAD);
    }
    // The boundary itself: 21 elements and a length byte fill the inline buffer exactly.
    assert!(
        Postcard
            .encode_payload(&vec![1u8; INLINE_PAYLOAD - 1])
            .unwrap()
            .is_inline()
    );
    assert!(
        !Postcard
            .encode_payload(&vec![1u8; INLINE_PAYLOAD])
            .unwrap()
            .is_inline()
    );
}

/// A value postcard cannot encode: a sequence that does not say its length up front.
struct UnknownLength;

impl serde::Serialize for UnknownLength {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element(&1u8)?;
        seq.end()
    }
}

#[test]
fn a_value_the_codec_refuses_is_an_encode_error_either_way() {
    let from_vec = Postcard.encode(&UnknownLength).unwrap_err();
    let in_place = Postcard.encode_payload(&UnknownLength).unwrap_err();
    assert_eq!(in_place.op, CodecOp::Encode);
    assert_eq!(in_place, from_vec);
}

/// A value written through `collect_str`, as dates and versions are: a length, then the text.
struct Displayed(&'static str);

impl serde::Serialize for Displayed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

#[test]
fn a_value_encoded_through_display_fits_or_falls_back_like_any_other() {
    for text in ["2026-11-30", "2026-11-30T10:43:31.123456Z"] {
        let bytes = Postcard.encode(&Displayed(text)).unwrap();
        let payload = Postcard.encode_payload(&Displayed(text)).unwrap();
        assert_eq!(payload.as_slice(), bytes, "{text}");
        assert_eq!(payload.is_inline(), bytes.len() <= INLINE_PAYLOAD, "{text}");
    }
}
