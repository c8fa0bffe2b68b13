//! The built-in demo tasks: what `workmill worker` runs, `workmill submit` enqueues and
//! `workmill demo` measures, with their inputs and outputs readable as JSON.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use workmill::{
    Codec, NamedTask, Postcard, ReduceTask, Registry, RegistryError, TaskContext, TaskError,
};

use crate::corpus;

/// Word counts, sorted by word so that two counts compare and print alike.
pub type WordCounts = BTreeMap<String, u64>;

/// `demo.square`: squares a number; a square too large for 64 bits is a permanent error.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Square(pub u64);

impl NamedTask for Square {
    const NAME: &'static str = "demo.square";
    type Output = u64;

    fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
        self.0
            .checked_mul(self.0)
            .ok_or_else(|| TaskError::permanent(format!("{} squared overflows 64 bits", self.0)))
    }
}

/// `demo.echo`: returns its text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Echo(pub String);

impl NamedTask for Echo {
    const NAME: &'static str = "demo.echo";
    type Output = String;

    fn run(self, _ctx: &TaskContext<'_>) -> Result<String, TaskError> {
        Ok(self.0)
    }
}

/// The longest `demo.sleep` accepts, so that a typo cannot hold a worker for hours.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// `demo.sleep`: sleeps for its number of milliseconds (at most [`MAX_SLEEP_MS`]) and returns it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sleep(pub u64);

impl NamedTask for Sleep {
    const NAME: &'static str = "demo.sleep";
    type Output = u64;

    fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
        if self.0 > MAX_SLEEP_MS {
            return Err(TaskError::permanent(format!(
                "demo.sleep takes at most {MAX_SLEEP_MS} ms, not {}",
                self.0
            )));
        }
        std::thread::sleep(Duration::from_millis(self.0));
        Ok(self.0)
    }
}

/// `demo.fail`: always fails permanently with its text, so the task goes straight to the
/// dead letters (for trying `workmill list --status dead` and `workmill retry`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fail(pub String);

impl NamedTask for Fail {
    const NAME: &'static str = "demo.fail";
    type Output = ();

    fn run(self, _ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        Err(TaskError::permanent(self.0))
    }
}

/// `demo.flaky`: the seed's unreliable task. Each attempt fails (retryably) with probability
/// `failure_rate`, decided by `key` and the attempt number alone, so a run can be predicted
/// and checked; on success it returns the attempt that succeeded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flaky {
    /// Which task this is; the failures of two keys are independent.
    pub key: u64,
    /// The chance that an attempt fails, from 0 to 1.
    pub failure_rate: f64,
    /// Milliseconds of simulated work per attempt.
    #[serde(default)]
    pub work_ms: u64,
}

impl Flaky {
    /// Whether attempt `attempt` (from 1) of this task fails.
    pub fn fails(&self, attempt: u32) -> bool {
        let seed = self.key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt);
        fastrand::Rng::with_seed(seed).f64() < self.failure_rate
    }
}

impl NamedTask for Flaky {
    const NAME: &'static str = "demo.flaky";
    type Output = u32;

    fn run(self, ctx: &TaskContext<'_>) -> Result<u32, TaskError> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(TaskError::permanent(format!(
                "failure_rate must be between 0 and 1, not {}",
                self.failure_rate
            )));
        }
        std::thread::sleep(Duration::from_millis(self.work_ms.min(MAX_SLEEP_MS)));
        if self.fails(ctx.attempt()) {
            return Err(TaskError::retryable(format!(
                "task {} randomly failed on attempt {}",
                self.key,
                ctx.attempt()
            )));
        }
        Ok(ctx.attempt())
    }
}

/// The largest split `words.count` reads, so that a typo cannot make a worker allocate the disk.
pub const MAX_SPLIT_BYTES: u64 = 1 << 30;

/// `words.count`: the map of the word-count job, counting the words of one split of a text
/// file: `len` bytes from `offset` (to the end of the file when `len` is absent). As in
/// MapReduce, a map's input names a part of a file that every worker can read, rather than
/// carrying the text through the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountWords {
    /// The file.
    pub path: String,
    /// Where the split starts, in bytes.
    #[serde(default)]
    pub offset: u64,
    /// How many bytes it has; to the end of the file when absent.
    #[serde(default)]
    pub len: Option<u64>,
}

impl CountWords {
    fn read(&self) -> Result<String, TaskError> {
        let describe = || format!("{} (bytes from {})", self.path, self.offset);
        if self.len.is_some_and(|len| len > MAX_SPLIT_BYTES) {
            return Err(TaskError::permanent(format!(
                "{}: a split has at most {MAX_SPLIT_BYTES} bytes",
                describe()
            )));
        }
        // An unreadable file is retried: it may be on a share that is coming back.
        let mut file = File::open(&self.path)
            .map_err(|e| TaskError::retryable(format!("cannot open {}: {e}", describe())))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| TaskError::retryable(format!("cannot seek in {}: {e}", describe())))?;
        let mut bytes = Vec::new();
        // One byte past the limit tells a file that is too long from one that fits exactly.
        file.take(self.len.unwrap_or(MAX_SPLIT_BYTES + 1))
            .read_to_end(&mut bytes)
            .map_err(|e| TaskError::retryable(format!("cannot read {}: {e}", describe())))?;
        if bytes.len() as u64 > MAX_SPLIT_BYTES {
            return Err(TaskError::permanent(format!(
                "{}: more than {MAX_SPLIT_BYTES} bytes; give the split a len",
                describe()
            )));
        }
        if let Some(len) = self.len.filter(|&len| len != bytes.len() as u64) {
            return Err(TaskError::permanent(format!(
                "{}: the file ends {} bytes into a split of {len}",
                describe(),
                bytes.len()
            )));
        }
        String::from_utf8(bytes)
            .map_err(|e| TaskError::permanent(format!("{} is not UTF-8 text: {e}", describe())))
    }
}

impl NamedTask for CountWords {
    const NAME: &'static str = "words.count";
    type Output = WordCounts;

    fn run(self, _ctx: &TaskContext<'_>) -> Result<WordCounts, TaskError> {
        Ok(corpus::count_words(&self.read()?))
    }
}

/// `words.merge`: the reduce of the word-count job, adding up the splits' counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergeCounts;

impl ReduceTask for MergeCounts {
    const NAME: &'static str = "words.merge";
    type Map = CountWords;
    type Output = WordCounts;

    fn reduce(
        self,
        counts: Vec<WordCounts>,
        _ctx: &TaskContext<'_>,
    ) -> Result<WordCounts, TaskError> {
        Ok(corpus::merge_counts(counts))
    }
}

/// A registry holding every built-in task, for `workmill worker` and the demo's runtimes.
pub fn registry() -> Result<Registry, RegistryError> {
    let mut registry = Registry::new();
    registry
        .register::<Square>()?
        .register::<Echo>()?
        .register::<Sleep>()?
        .register::<Fail>()?
        .register::<Flaky>()?
        .register::<CountWords>()?
        .register_reduce::<MergeCounts>()?;
    Ok(registry)
}

/// Reads a JSON input into a task's payload.
type EncodeJson = fn(Value) -> Result<Vec<u8>, String>;
/// Shows stored bytes (an input or a result) as JSON, if they decode.
type DecodeJson = fn(&[u8]) -> Option<Value>;

/// One built-in task as the command line sees it: how to read its input from JSON, and how
/// to show its stored input and result as JSON.
#[derive(Debug)]
pub struct Builtin {
    /// The registered task name.
    pub name: &'static str,
    /// What it does, for `workmill submit --help` and error messages.
    pub summary: &'static str,
    /// An input, as typed on the command line.
    pub example: &'static str,
    encode: Option<EncodeJson>,
    input: Option<DecodeJson>,
    output: DecodeJson,
}

impl Builtin {
    /// Encodes a JSON input as the task's payload; a message saying what was expected if it
    /// does not fit, or if the task cannot be submitted on its own.
    pub fn encode_input(&self, input: Value) -> Result<Vec<u8>, String> {
        match self.encode {
            Some(encode) => encode(input).map_err(|reason| {
                format!(
                    "{reason}; {} takes an input like {}",
                    self.name, self.example
                )
            }),
            None => Err(format!("{} {}", self.name, self.summary)),
        }
    }

    /// The stored payload as JSON, if it decodes.
    pub fn input_json(&self, payload: &[u8]) -> Option<Value> {
        self.input.and_then(|input| input(payload))
    }

    /// The stored result as JSON, if it decodes.
    pub fn output_json(&self, result: &[u8]) -> Option<Value> {
        (self.output)(result)
    }
}

macro_rules! builtin {
    ($task:ty, $summary:literal, $example:literal) => {
        Builtin {
            name: <$task as NamedTask>::NAME,
            summary: $summary,
            example: $example,
            encode: Some(encode_json::<$task>),
            input: Some(decode_json::<$task>),
            output: decode_json::<<$task as NamedTask>::Output>,
        }
    };
}

/// Every built-in task.
pub const BUILTINS: &[Builtin] = &[
    builtin!(Square, "squares a number", "12"),
    builtin!(Echo, "returns its text", "\"hello\""),
    builtin!(Sleep, "sleeps for some milliseconds", "250"),
    builtin!(
        Fail,
        "fails permanently with its text (it ends dead)",
        "\"broken on purpose\""
    ),
    builtin!(
        Flaky,
        "fails each attempt with a probability, retryably",
        r#"{"key":1,"failure_rate":0.7}"#
    ),
    builtin!(
        CountWords,
        "counts the words of a text file that every worker can read (path; offset and len \
         in bytes for a split of it)",
        r#"{"path":"/tmp/corpus.txt"}"#
    ),
    Builtin {
        name: MergeCounts::NAME,
        summary: "is the reduce of word-count jobs; the backend enqueues it, not `submit`",
        example: "",
        encode: None,
        input: None,
        output: decode_json::<WordCounts>,
    },
];

/// The built-in task named `name`, with or without its `demo.` prefix.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|task| task.name == name || task.name.strip_prefix("demo.") == Some(name))
}

/// The built-in names, for messages.
pub fn names() -> String {
    BUILTINS
        .iter()
        .map(|task| task.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn encode_json<T: Serialize + DeserializeOwned>(input: Value) -> Result<Vec<u8>, String> {
    let value: T = serde_json::from_value(input).map_err(|e| format!("bad input: {e}"))?;
    Postcard.encode(&value).map_err(|e| e.to_string())
}

fn decode_json<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<Value> {
    let value: T = Postcard.decode(bytes).ok()?;
    serde_json::to_value(value).ok()
}

#[cfg(test)]
mod tests;
