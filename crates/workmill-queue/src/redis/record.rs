//! How a task is spelled in its Redis hash: the retry policy as readable text, the payload
//! checksum, and reading a hash back into a `TaskRecord` with every field checked.

use std::collections::HashMap;
use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, Payload, Priority, QueueError, RetryPolicy, TaskId, TaskName,
    TaskRecord, TaskStatus, Timestamp, WorkerId,
};

/// FNV-1a (64 bit) of the payload, as 16 hex digits.
///
/// Every step of FNV-1a is a bijection of the running state, so any change to a single
/// byte changes the result; larger damage goes unnoticed with probability 2^-64. It
/// detects damage, not tampering.
pub(crate) fn checksum(payload: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in payload {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Checks a payload against its stored checksum, explaining a mismatch.
pub(crate) fn verify_payload(payload: &[u8], stored: &str) -> Result<(), String> {
    let actual = checksum(payload);
    if stored == actual {
        Ok(())
    } else {
        Err(format!(
            "the payload does not match its checksum (stored {stored:?}, computed {actual:?}): \
             it was damaged after it was stored; resubmit the task with its original input"
        ))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The policy as one line of `name=value` words, readable with `HGET ... retry`.
///
/// Durations are whole nanoseconds and numbers use Rust's shortest round-trip form, so
/// [`parse_policy`] gives back exactly the policy that was written.
pub(crate) fn policy_text(policy: &RetryPolicy) -> String {
    let backoff = match *policy.backoff_schedule() {
        Backoff::Immediate => "backoff=immediate".to_owned(),
        Backoff::Fixed(d) => format!("backoff=fixed delay_ns={}", nanos(d)),
        Backoff::Exponential {
            initial,
            factor,
            max,
        } => format!(
            "backoff=exponential initial_ns={} factor={factor} max_ns={}",
            nanos(initial),
            nanos(max)
        ),
    };
    format!(
        "max_attempts={} {backoff} jitter={} demote_by={}",
        policy.max_attempts(),
        policy.jitter_fraction(),
        policy.demotion_step()
    )
}

/// Reads a policy written by [`policy_text`].
pub(crate) fn parse_policy(text: &str) -> Result<RetryPolicy, String> {
    let words: HashMap<&str, &str> = text
        .split_whitespace()
        .map(|word| word.split_once('=').unwrap_or((word, "")))
        .collect();
    let get = |name: &str| {
        words
            .get(name)
            .copied()
            .ok_or_else(|| format!("the retry policy {text:?} has no {name}"))
    };
    let number = |name: &str| {
        get(name)?
            .parse::<f64>()
            .map_err(|_| format!("the retry policy's {name} is not a number"))
    };
    let duration = |name: &str| {
        get(name)?
            .parse::<u64>()
            .map(Duration::from_nanos)
            .map_err(|_| format!("the retry policy's {name} is not a whole number of nanoseconds"))
    };
    let backoff = match get("backoff")? {
        "immediate" => Backoff::Immediate,
        "fixed" => Backoff::Fixed(duration("delay_ns")?),
        "exponential" => Backoff::Exponential {
            initial: duration("initial_ns")?,
            factor: number("factor")?,
            max: duration("max_ns")?,
        },
        other => return Err(format!("the retry policy's backoff {other:?} is unknown")),
    };
    let max_attempts = get("max_attempts")?
        .parse::<u32>()
        .map_err(|_| "the retry policy's max_attempts is out of range".to_owned())?;
    let demote_by = get("demote_by")?
        .parse::<u16>()
        .map_err(|_| "the retry policy's demote_by is out of range".to_owned())?;
    let policy = RetryPolicy::new(max_attempts)
        .backoff(backoff)
        .jitter(number("jitter")?)
        .demote_by(demote_by);
    policy
        .validate()
        .map_err(|e| format!("the stored retry policy is unusable: {e}"))?;
    Ok(policy)
}

/// Reads a field as UTF-8 text.
pub(crate) fn text<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|_| format!("field {name}: not valid UTF-8"))
}

/// Reads a field as a number of type `T`.
pub(crate) fn number<T: std::str::FromStr>(name: &str, bytes: &[u8]) -> Result<T, String> {
    let text = text(name, bytes)?;
    text.parse()
        .map_err(|_| format!("field {name}: {text:?} is not a number in range"))
}

/// Reads a stored priority.
pub(crate) fn priority(bytes: &[u8]) -> Result<Priority, String> {
    number::<u16>("priority", bytes).map(Priority::new)
}

/// A task's hash, as `HGETALL` returns it.
pub(crate) type Fields = HashMap<String, Vec<u8>>;

/// Reads a task's hash into its record; any unreadable field makes it `Corrupt`, naming the task.
pub(crate) fn read_record(id: &TaskId, fields: &Fields) -> Result<TaskRecord, QueueError> {
    decode(id, fields).map_err(|detail| QueueError::Corrupt {
        id: id.clone(),
        detail,
    })
}

fn decode(id: &TaskId, fields: &Fields) -> Result<TaskRecord, String> {
    let required = |name: &str| {
        fields
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("field {name} is missing"))
    };
    let optional = |name: &str| fields.get(name).map(Vec::as_slice);
    let timestamp =
        |name: &str, bytes: &[u8]| number::<u64>(name, bytes).map(Timestamp::from_micros);
    let optional_timestamp = |name: &str| optional(name).map(|b| timestamp(name, b)).transpose();

    // Checked where it lies in the hash, and copied once, into the record's payload.
    let payload = required("payload")?;
    verify_payload(payload, text("checksum", required("checksum")?)?)?;
    let status_text = text("status", required("status")?)?;
    let status: TaskStatus = status_text
        .parse()
        .map_err(|_| format!("field status: {status_text:?} is not a task status"))?;
    let last_error = match optional("error_kind") {
        None => None,
        Some(kind) => {
            let kind_text = text("error_kind", kind)?;
            let kind = FailureKind::parse(kind_text)
                .ok_or_else(|| format!("field error_kind: unknown kind {kind_text:?}"))?;
            let message = optional("error_message")
                .map(|m| text("error_message", m).map(str::to_owned))
                .transpose()?
                .unwrap_or_default();
            Some(Failure::new(kind, message))
        }
    };
    let worker = optional("worker")
        .map(|w| WorkerId::new(text("worker", w)?).map_err(|e| format!("field worker: {e}")))
        .transpose()?;
    Ok(TaskRecord {
        id: id.clone(),
        name: TaskName::from(text("name", required("name")?)?),
        payload: Payload::copy_from_slice(payload),
        status,
        priority: priority(required("priority")?)?,
        attempts: number("attempts", required("attempts")?)?,
        retry: parse_policy(text("retry", required("retry")?)?)?,
        created_at: timestamp("created_at", required("created_at")?)?,
        run_at: timestamp("run_at", required("run_at")?)?,
        started_at: optional_timestamp("started_at")?,
        finished_at: optional_timestamp("finished_at")?,
        last_error,
        worker,
        result: optional("result").map(Payload::copy_from_slice),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_their_text() {
        let policies = [
            RetryPolicy::default(),
            RetryPolicy::never(),
            RetryPolicy::new(7).backoff(Backoff::Immediate).jitter(0.0),
            RetryPolicy::new(2)
                .backoff(Backoff::Fixed(Duration::from_nanos(1_234_567_891)))
                .jitter(1.0)
                .demote_by(u16::MAX),
            RetryPolicy::new(u32::MAX)
                .backoff(Backoff::Exponential {
                    initial: Duration::from_millis(30),
                    factor: 1.618_033_988_749_895,
                    max: Duration::from_secs(86_400),
                })
                .jitter(0.123_456_789)
                .demote_by(10),
        ];
        for policy in policies {
            let text = policy_text(&policy);
            assert_eq!(parse_policy(&text).as_ref(), Ok(&policy), "{text}");
        }
        assert_eq!(
            policy_text(&RetryPolicy::default()),
            "max_attempts=3 backoff=exponential initial_ns=1000000000 factor=2 \
             max_ns=300000000000 jitter=0.1 demote_by=0"
        );
    }

    #[test]
    fn damaged_policies_are_explained() {
        for (text, expected) in [
            ("", "no backoff"),
            (
                "max_attempts=3 backoff=sometimes jitter=0 demote_by=0",
                "unknown",
            ),
            (
                "max_attempts=x backoff=immediate jitter=0 demote_by=0",
                "max_attempts",
            ),
            (
                "max_attempts=0 backoff=immediate jitter=0 demote_by=0",
                "unusable",
            ),
            (
                "max_attempts=3 backoff=fixed delay_ns=-1 jitter=0 demote_by=0",
                "delay_ns",
            ),
        ] {
            let err = parse_policy(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn checksum_notices_any_single_byte_change() {
        let payload: Vec<u8> = (0..=255).collect();
        let original = checksum(&payload);
        assert_eq!(original.len(), 16);
        for i in 0..payload.len() {
            let mut damaged = payload.clone();
            damaged[i] ^= 0x01;
            assert!(verify_payload(&damaged, &original).is_err(), "byte {i}");
        }
        assert!(verify_payload(&payload, &original).is_ok());
        assert_ne!(checksum(b""), checksum(b"\0"));
    }
}
