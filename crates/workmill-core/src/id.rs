//! `TaskId` and `WorkerId`: validated, cheaply cloned names for tasks and for the workers that run them.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::InvalidId;
use crate::time::Timestamp;

/// The longest id, in bytes, that workmill accepts.
pub const MAX_ID_LEN: usize = 128;

/// Checks the rules shared by task and worker ids: 1 to [`MAX_ID_LEN`] bytes, no whitespace or control characters.
fn validate(kind: &'static str, id: &str) -> Result<(), InvalidId> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > MAX_ID_LEN {
        "it is longer than 128 bytes"
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it contains whitespace or a control character"
    } else {
        return Ok(());
    };
    Err(InvalidId {
        kind,
        id: id.chars().take(MAX_ID_LEN).collect(),
        reason,
    })
}

/// Crockford's base-32 alphabet: no I, L, O or U, so ids read aloud without confusion.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The longest id kept inline in a [`TaskId`], without a heap allocation.
const INLINE_LEN: usize = 30;

/// A task id's text: inline when it is short (every generated id is), shared on the heap otherwise.
///
/// The form depends only on the length, so equal texts always have the same form.
#[derive(Clone)]
enum IdText {
    /// Up to [`INLINE_LEN`] bytes of UTF-8 in `bytes[..len]`; the bytes after them are zero
    /// (equality compares whole arrays).
    Inline { len: u8, bytes: [u8; INLINE_LEN] },
    /// Longer ids, shared by every clone.
    Shared(Arc<str>),
}

impl IdText {
    /// `text`, inline if it fits.
    fn new(text: &str) -> IdText {
        if text.len() <= INLINE_LEN {
            let mut bytes = [0u8; INLINE_LEN];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            IdText::Inline {
                len: text.len() as u8,
                bytes,
            }
        } else {
            IdText::Shared(Arc::from(text))
        }
    }

    /// `text`, reusing its allocation if it is too long to be inline.
    fn from_string(text: String) -> IdText {
        if text.len() <= INLINE_LEN {
            IdText::new(&text)
        } else {
            IdText::Shared(Arc::from(text))
        }
    }

    fn as_str(&self) -> &str {
        match self {
            IdText::Inline { len, bytes } => {
                // The bytes were copied from a `&str` of exactly `len` bytes, so they
                // are valid UTF-8 and the fallback is never taken.
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            IdText::Shared(text) => text,
        }
    }

    /// The text's bytes, without the UTF-8 check that [`IdText::as_str`] repeats.
    fn bytes(&self) -> &[u8] {
        match self {
            IdText::Inline { len, bytes } => &bytes[..usize::from(*len)],
            IdText::Shared(text) => text.as_bytes(),
        }
    }
}

// Equality, order and hashing are the text's, for task and worker ids alike.

impl PartialEq for IdText {
    fn eq(&self, other: &IdText) -> bool {
        match (self, other) {
            // Bytes past `len` are always zero, so comparing the whole fixed-size arrays is
            // comparing the texts, without a call to `memcmp` (backends compare a lease's id
            // with a record's on every completion, under their lock).
            (IdText::Inline { len: a, bytes: x }, IdText::Inline { len: b, bytes: y }) => {
                a == b && x == y
            }
            _ => self.bytes() == other.bytes(),
        }
    }
}

impl Eq for IdText {}

impl PartialOrd for IdText {
    fn partial_cmp(&self, other: &IdText) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdText {
    /// The order of the text: `str` compares bytewise.
    fn cmp(&self, other: &IdText) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl Hash for IdText {
    /// Hashes as the text does (as [`Borrow<str>`] on `TaskId` requires): `str` writes its
    /// bytes and then `0xff`, a byte UTF-8 never contains.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.bytes());
        state.write_u8(0xff);
    }
}

/// The identity of one task: a custom id chosen by the submitter, or a generated one.
///
/// Generated ids are 26 characters of Crockford base 32 that sort by creation
/// time (48 bits of milliseconds, then 32 random bits fixed per process, then a
/// 48-bit per-process counter), so ids from many processes sharing one backend
/// do not collide and list in submission order. Custom ids double as
/// idempotency keys: a backend refuses a second task with the same id.
///
/// Ids up to 30 bytes (every generated id) are stored inline, so creating and
/// cloning them does not allocate; longer ones share one heap copy. Equality,
/// order and hashing are those of the text.
///
/// # Examples
///
/// ```
/// use workmill_core::TaskId;
///
/// let a = TaskId::generate();
/// let b = TaskId::generate();
/// assert_ne!(a, b);
/// assert!(a < b, "generated ids sort in creation order");
///
/// let custom: TaskId = "invoice-2026-001".parse().unwrap();
/// assert_eq!(custom.as_str(), "invoice-2026-001");
/// assert!(TaskId::new("has space").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(IdText);

impl TaskId {
    /// A task id from a caller's string, checked: 1 to 128 bytes, no whitespace or control characters.
    pub fn new(id: impl AsRef<str>) -> Result<TaskId, InvalidId> {
        let id = id.as_ref();
        validate("task", id)?;
        Ok(TaskId(IdText::new(id)))
    }

    /// A fresh id, unique across processes and sorted by creation time.
    pub fn generate() -> TaskId {
        TaskId::generate_at(Timestamp::now())
    }

    /// A fresh id stamped with the time `at` rather than the clock's, for a caller that makes
    /// many ids at once and reads the clock once for all of them.
    ///
    /// It is unique across processes whatever `at` says (a counter shared by the process tells
    /// ids apart); it sorts among other ids by `at` to the millisecond, then by creation order
    /// within this process.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::{TaskId, Timestamp};
    ///
    /// let now = Timestamp::now();
    /// let (a, b) = (TaskId::generate_at(now), TaskId::generate_at(now));
    /// assert!(a < b);
    /// assert!(b < TaskId::generate_at(now.saturating_add(std::time::Duration::from_millis(1))));
    /// ```
    pub fn generate_at(at: Timestamp) -> TaskId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        GeneratedParts {
            millis: at.as_millis(),
            nonce: process_nonce(),
            count: COUNTER.fetch_add(1, Ordering::Relaxed),
        }
        .to_id()
    }

    /// The parts of this id if it has the shape [`TaskId::generate`] gives an id: 26 Crockford
    /// base-32 characters (upper case) that encode 128 bits; `None` for any other id.
    ///
    /// A caller's own id may have that shape too, so the parts say what the text encodes, not
    /// where the id came from. The memory queue uses them to give the ids of one batch
    /// neighbouring places in its index.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::{TaskId, Timestamp};
    ///
    /// let at = Timestamp::from_micros(1_700_000_000_000_000);
    /// let (a, b) = (TaskId::generate_at(at), TaskId::generate_at(at));
    /// let (pa, pb) = (a.generated_parts().unwrap(), b.generated_parts().unwrap());
    /// assert_eq!(pa.millis, 1_700_000_000_000);
    /// assert_eq!((pa.millis, pa.nonce), (pb.millis, pb.nonce));
    /// assert_eq!(pb.count, pa.count + 1);
    /// assert_eq!(TaskId::new("order-42").unwrap().generated_parts(), None);
    /// ```
    pub fn generated_parts(&self) -> Option<GeneratedParts> {
        let IdText::Inline { len, bytes } = &self.0 else {
            return None;
        };
        if usize::from(*len) != GENERATED_LEN {
            return None;
        }
        // Three groups of whole characters, so that each fits a `u64`: bits 80-129 (the
        // milliseconds, under two bits that must be zero), 50-79 and 0-49.
        let (high, a) = decode_group(&bytes[..10]);
        let (middle, b) = decode_group(&bytes[10..16]);
        let (low, c) = decode_group(&bytes[16..GENERATED_LEN]);
        let invalid = a | b | c;
        // A byte that is no digit maps to 32; 26 characters carry 130 bits, and the first
        // may use only its low three.
        if invalid >= 32 || bytes[0] > b'7' {
            return None;
        }
        Some(GeneratedParts {
            millis: high,
            nonce: ((middle << 2) | (low >> 48)) as u32,
            count: low & LOW_48,
        })
    }

    /// Whether the id is stored inline (up to 30 bytes, every generated id) rather than in a
    /// shared heap copy: cloning and dropping it then touches no shared count.
    ///
    /// ```
    /// use workmill_core::TaskId;
    ///
    /// assert!(TaskId::generate().is_inline());
    /// assert!(!TaskId::new("x".repeat(31)).unwrap().is_inline());
    /// ```
    pub fn is_inline(&self) -> bool {
        matches!(self.0, IdText::Inline { .. })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The value of `digits` as Crockford base 32, and the bitwise or of their digit values
/// (32 or more if one is no digit).
#[inline]
fn decode_group(digits: &[u8]) -> (u64, u8) {
    let mut value = 0u64;
    let mut seen = 0u8;
    for &byte in digits {
        let digit = CROCKFORD_VALUE[usize::from(byte)];
        seen |= digit;
        value = (value << 5) | u64::from(digit & 31);
    }
    (value, seen)
}

/// The low 48 bits, the width of a generated id's milliseconds and sequence number.
const LOW_48: u64 = (1 << 48) - 1;

/// The length of a generated id: 128 bits in 5-bit characters.
const GENERATED_LEN: usize = 26;

/// Each byte's value as a Crockford base-32 digit ([`CROCKFORD`]), or 32 for a byte that is none.
const CROCKFORD_VALUE: [u8; 256] = {
    let mut table = [32u8; 256];
    let mut digit = 0;
    while digit < 32 {
        table[CROCKFORD[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// What a generated id encodes (see [`TaskId::generated_parts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GeneratedParts {
    /// Its time stamp, in milliseconds since the Unix epoch (48 bits).
    pub millis: u64,
    /// The 32 bits its process chose at random once.
    pub nonce: u32,
    /// Its place in the process's sequence of ids (48 bits).
    pub count: u64,
}

impl GeneratedParts {
    /// The id that encodes these parts, as [`TaskId::generate`] writes it: the inverse of
    /// [`TaskId::generated_parts`]. Only the low 48 bits of `millis` and `count` are kept.
    ///
    /// ```
    /// use workmill_core::{GeneratedParts, TaskId};
    ///
    /// let id = TaskId::generate();
    /// assert_eq!(id.generated_parts().unwrap().to_id(), id);
    /// ```
    pub fn to_id(self) -> TaskId {
        // The groups of `TaskId::generated_parts`: bits 80-129, 50-79 and 0-49.
        let groups = [
            (self.millis & LOW_48, 10),
            (u64::from(self.nonce >> 2), 6),
            (
                (u64::from(self.nonce & 3) << 48) | (self.count & LOW_48),
                10,
            ),
        ];
        let mut bytes = [0u8; INLINE_LEN];
        let mut at = 0;
        for (value, digits) in groups {
            for i in (0..digits).rev() {
                bytes[at] = CROCKFORD[((value >> (5 * i)) & 31) as usize];
                at += 1;
            }
        }
        TaskId(IdText::Inline {
            len: GENERATED_LEN as u8,
            bytes,
        })
    }
}

/// 32 random bits chosen once per process, from the operating system's hash seed.
fn process_nonce() -> u32 {
    static NONCE: OnceLock<u32> = OnceLock::new();
    *NONCE.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(Timestamp::now().as_micros());
        hasher.finish() as u32
    })
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({:?})", self.as_str())
    }
}

impl FromStr for TaskId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<TaskId, InvalidId> {
        TaskId::new(s)
    }
}

impl TryFrom<String> for TaskId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<TaskId, InvalidId> {
        validate("task", &s)?;
        Ok(TaskId(IdText::from_string(s)))
    }
}

impl TryFrom<&str> for TaskId {
    type Error = InvalidId;
    fn try_from(s: &str) -> Result<TaskId, InvalidId> {
        TaskId::new(s)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.as_str().to_owned()
    }
}

impl Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The identity of a worker: a thread, a process or a remote endpoint that runs tasks.
///
/// Recorded on each task it runs, so an operator can tell which process held a
/// task when it failed. [`WorkerId::generate`] gives `host-pid-n`.
///
/// Like a [`TaskId`], an id of up to 30 bytes is stored inline, so cloning and dropping it
/// touches no shared count: a backend stores the worker's id on every task it hands out, and
/// with a shared string every worker thread would bump one count per task, on a cache line
/// that the thread dropping old records bumps too. Longer ids share one heap copy: a
/// generated id (`host-pid-n`) is longer than 30 bytes when the host name is longer than
/// about 20, and a runtime's worker ids add `-i` to a base (see the runtime builder's
/// `worker_id`), so a short base keeps them inline. Equality, order and hashing are those of
/// the text.
///
/// # Examples
///
/// ```
/// use workmill_core::WorkerId;
///
/// let id = WorkerId::new("billing-7")?;
/// assert_eq!(id.as_str(), "billing-7");
/// assert_eq!(id, "billing-7".parse()?);
/// assert!(WorkerId::new("two words").is_err());
/// # Ok::<(), workmill_core::InvalidId>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkerId(IdText);

impl WorkerId {
    /// A worker id from a caller's string, checked like a task id.
    pub fn new(id: impl AsRef<str>) -> Result<WorkerId, InvalidId> {
        let id = id.as_ref();
        validate("worker", id)?;
        Ok(WorkerId(IdText::new(id)))
    }

    /// `host-pid-n`: the host name, this process id, and a counter that makes each call unique.
    pub fn generate() -> WorkerId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let host = host_name();
        WorkerId(IdText::from_string(format!(
            "{host}-{}-{n}",
            std::process::id()
        )))
    }

    /// Whether the id is stored inline (up to 30 bytes) rather than in a shared heap copy.
    ///
    /// ```
    /// use workmill_core::WorkerId;
    ///
    /// assert!(WorkerId::new("billing-7").unwrap().is_inline());
    /// assert!(!WorkerId::new("w".repeat(31)).unwrap().is_inline());
    /// ```
    pub fn is_inline(&self) -> bool {
        matches!(self.0, IdText::Inline { .. })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The most bytes of the host name a generated worker id keeps: with the process id and
/// the counter (at most 32 digits and two dashes) the id stays within [`MAX_ID_LEN`].
const MAX_HOST_BYTES: usize = 64;

/// The machine's host name, reduced to characters valid in an id; `host` when unknown.
fn host_name() -> String {
    let raw = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    id_safe_host(&raw)
}

/// `raw` without whitespace and control characters, cut to whole characters within
/// [`MAX_HOST_BYTES`] bytes (`HOSTNAME` may hold anything); `host` when nothing is left.
fn id_safe_host(raw: &str) -> String {
    let mut cleaned = String::new();
    for c in raw
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
    {
        if cleaned.len() + c.len_utf8() > MAX_HOST_BYTES {
            break;
        }
        cleaned.push(c);
    }
    if cleaned.is_empty() {
        "host".to_owned()
    } else {
        cleaned
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerId({:?})", self.as_str())
    }
}

impl FromStr for WorkerId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<WorkerId, InvalidId> {
        WorkerId::new(s)
    }
}

impl TryFrom<String> for WorkerId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<WorkerId, InvalidId> {
        validate("worker", &s)?;
        Ok(WorkerId(IdText::from_string(s)))
    }
}

impl From<WorkerId> for String {
    fn from(id: WorkerId) -> String {
        id.as_str().to_owned()
    }
}

impl AsRef<str> for WorkerId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_generated_worker_id_is_valid_whatever_the_host_name() {
        let wide = id_safe_host(&"名".repeat(64));
        assert_eq!((wide.len(), wide.chars().count()), (63, 21));
        let long = id_safe_host(&format!(" {} ", "h".repeat(300)));
        assert_eq!(long.len(), MAX_HOST_BYTES);
        for host in [wide, long] {
            let id = format!("{host}-{}-{}", u32::MAX, u64::MAX);
            assert!(WorkerId::new(&id).is_ok(), "{id}");
        }
        assert_eq!(id_safe_host("\t\n"), "host");
        assert_eq!(id_safe_host("web 1\u{7}"), "web1");
    }

    #[test]
    fn generated_ids_are_unique_sorted_and_valid() {
        let ids: Vec<TaskId> = (0..10_000).map(|_| TaskId::generate()).collect();
        let unique: HashSet<&TaskId> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids must sort in creation order"
        );
        for id in &ids {
            assert_eq!(id.as_str().len(), 26);
            assert!(TaskId::new(id.as_str()).is_ok());
        }
    }

    #[test]
    fn parts_at_the_edges_of_their_widths_survive_the_round_trip() {
        let edges48 = [0, 1, 31, 32, (1 << 48) - 2, (1 << 48) - 1];
        let nonces = [0, 1, 2, 3, 4, 0x8000_0000, u32::MAX - 3, u32::MAX];
        for &millis in &edges48 {
            for &nonce in &nonces {
                for &count in &edges48 {
                    let parts = GeneratedParts {
                        millis,
                        nonce,
                        count,
                    };
                    let id = parts.to_id();
                    // Checked against the 128-bit value written out independently.
                    let value =
                        (u128::from(millis) << 80) | (u128::from(nonce) << 48) | u128::from(count);
                    let text: String = (0..26)
                        .map(|i| char::from(CROCKFORD[((value >> (5 * (25 - i))) & 31) as usize]))
                        .collect();
                    assert_eq!(id.as_str(), text);
                    assert_eq!(id.generated_parts(), Some(parts), "{id}");
                }
            }
        }
    }

    #[test]
    fn generated_parts_read_back_what_generate_wrote_and_nothing_else() {
        let at = Timestamp::from_micros(1_234_567_890_123_456);
        let ids: Vec<TaskId> = (0..100).map(|_| TaskId::generate_at(at)).collect();
        let parts: Vec<GeneratedParts> =
            ids.iter().map(|id| id.generated_parts().unwrap()).collect();
        for (p, q) in parts.iter().zip(&parts[1..]) {
            assert_eq!((p.millis, p.nonce), (1_234_567_890_123, process_nonce()));
            // Other tests make ids at the same time, from the same counter.
            assert!(q.count > p.count, "one process counter");
        }
        // Re-encoding the parts gives the id back (encoded here independently of `to_id`).
        let p = parts[7];
        let value =
            (u128::from(p.millis) << 80) | (u128::from(p.nonce) << 48) | u128::from(p.count);
        let text: String = (0..26)
            .map(|i| char::from(CROCKFORD[((value >> (5 * (25 - i))) & 31) as usize]))
            .collect();
        assert_eq!(text, ids[7].as_str());
        for other in [
            "order-42",
            "",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",   // 25 characters
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX", // 27
            "01arz3ndektsv4rrffq69g5fav",  // lower case
            "01ARZ3NDEKTSV4RRFFQ69G5FAU",  // U is no Crockford digit
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",  // more than 128 bits
        ] {
            assert_eq!(
                TaskId::new(other)
                    .map(|id| id.generated_parts())
                    .ok()
                    .flatten(),
                None,
                "{other:?}"
            );
        }
        let largest = TaskId::new("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
            .unwrap()
            .generated_parts()
            .unwrap();
        assert_eq!(
            (largest.millis, largest.nonce, largest.count),
            ((1 << 48) - 1, u32::MAX, (1 << 48) - 1)
        );
    }

    #[test]
    fn ids_stamped_with_one_time_are_unique_and_sort_by_that_time() {
        let early = Timestamp::from_micros(1_000_000);
        let late = Timestamp::from_micros(2_000_000);
        let ids: Vec<TaskId> = (0..1_000)
            .map(|i| TaskId::generate_at(if i % 2 == 0 { late } else { early }))
            .collect();
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        let (lates, earlies): (Vec<_>, Vec<_>) =
            ids.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        // Every id stamped early sorts before every id stamped late, whatever the creation order.
        let last_early = earlies.iter().map(|(_, id)| *id).max().unwrap();
        let first_late = lates.iter().map(|(_, id)| *id).min().unwrap();
        assert!(last_early < first_late);
        assert!(
            lates.windows(2).all(|w| w[0].1 < w[1].1),
            "creation order within a time"
        );
        for id in &ids {
            assert!(TaskId::new(id.as_str()).is_ok());
        }
    }

    #[test]
    fn inline_ids_are_equal_exactly_when_their_texts_are() {
        let generated = TaskId::generate();
        let same = [
            TaskId::new(generated.as_str()).unwrap(),
            TaskId::try_from(generated.as_str().to_owned()).unwrap(),
            generated.as_str().parse().unwrap(),
        ];
        assert!(same.iter().all(|id| *id == generated));
        let ab = TaskId::new("ab").unwrap();
        assert_ne!(ab, TaskId::new("abc").unwrap());
        assert_ne!(ab, TaskId::new("ba").unwrap());
        assert_eq!(ab, TaskId::new("ab").unwrap());
        let longest = "z".repeat(INLINE_LEN);
        assert_ne!(
            TaskId::new(&longest).unwrap(),
            TaskId::new(&longest[1..]).unwrap()
        );
        assert_ne!(
            TaskId::new(&longest).unwrap(),
            TaskId::new(format!("{longest}z")).unwrap()
        );
    }

    #[test]
    fn short_and_long_ids_behave_as_their_text() {
        use std::hash::BuildHasher;
        let state = RandomState::new();
        let texts = [
            "a".to_owned(),
            "x".repeat(INLINE_LEN),
            "x".repeat(INLINE_LEN + 1),
            "y".repeat(MAX_ID_LEN),
            "ünïcode-ok".to_owned(),
            TaskId::generate().as_str().to_owned(),
        ];
        for text in &texts {
            let parsed = TaskId::new(text).unwrap();
            let owned = TaskId::try_from(text.clone()).unwrap();
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed, owned);
            assert_eq!(String::from(owned.clone()), *text);
            // `Borrow<str>` lookups need the id to hash as its text.
            assert_eq!(state.hash_one(&parsed), state.hash_one(text.as_str()));
            assert_eq!(format!("{parsed}"), *text);
            assert_eq!(format!("{parsed:?}"), format!("TaskId({text:?})"));
        }
        let mut sorted: Vec<TaskId> = texts.iter().map(|t| TaskId::new(t).unwrap()).collect();
        sorted.sort();
        let mut by_text = texts.to_vec();
        by_text.sort();
        assert_eq!(
            sorted.iter().map(TaskId::as_str).collect::<Vec<_>>(),
            by_text
        );
        // A generated id and the same text given as a custom id are one id.
        let generated = TaskId::generate();
        assert_eq!(TaskId::new(generated.as_str()).unwrap(), generated);
        let mut set = HashSet::new();
        assert!(set.insert(generated.clone()));
        assert!(!set.insert(TaskId::new(generated.as_str()).unwrap()));
        assert!(set.contains(generated.as_str()));
    }

    #[test]
    fn validation_refuses_bad_ids_with_a_reason() {
        let empty = TaskId::new("").unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");
        let long = TaskId::new("x".repeat(129)).unwrap_err();
        assert!(long.to_string().contains("128"), "{long}");
        assert!(TaskId::new("a\tb").is_err());
        assert!(TaskId::new("a\u{7}b").is_err());
        assert!(TaskId::new("x".repeat(128)).is_ok());
        assert!(TaskId::new("ünïcode-ok").is_ok());
        assert!(
            WorkerId::new("w 1")
                .unwrap_err()
                .to_string()
                .contains("worker")
        );
    }

    #[test]
    fn serde_refuses_invalid_ids() {
        let bytes = postcard::to_stdvec(&"bad id").unwrap();
        assert!(postcard::from_bytes::<TaskId>(&bytes).is_err());
        let good = TaskId::new("ok").unwrap();
        let bytes = postcard::to_stdvec(&good).unwrap();
        assert_eq!(postcard::from_bytes::<TaskId>(&bytes).unwrap(), good);
    }

    #[test]
    fn worker_ids_are_unique_and_valid() {
        let a = WorkerId::generate();
        let b = WorkerId::generate();
        assert_ne!(a, b);
        assert!(WorkerId::new(a.as_str()).is_ok());
    }

    #[test]
    fn worker_ids_short_and_long_compare_order_and_hash_as_their_text() {
        use std::hash::BuildHasher;
        let hasher = RandomState::new();
        let texts = [
            "b".to_owned(),
            "a".repeat(30),
            "a".repeat(31),
            "c".repeat(64),
            "a".to_owned(),
        ];
        let ids: Vec<WorkerId> = texts.iter().map(|t| WorkerId::new(t).unwrap()).collect();
        for (text, id) in texts.iter().zip(&ids) {
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), *text);
            assert_eq!(String::from(id.clone()), *text);
            assert_eq!(*id, WorkerId::try_from(text.to_string()).unwrap());
            assert_eq!(hasher.hash_one(id), hasher.hash_one(text.as_str()));
            let bytes = postcard::to_stdvec(id).unwrap();
            assert_eq!(postcard::from_bytes::<WorkerId>(&bytes).unwrap(), *id);
        }
        // Inline (up to 30 bytes) and shared ids order by text alone.
        let mut sorted = ids.clone();
        sorted.sort();
        let mut by_text = texts.to_vec();
        by_text.sort();
        assert_eq!(
            sorted.iter().map(WorkerId::as_str).collect::<Vec<_>>(),
            by_text
        );
    }
}
