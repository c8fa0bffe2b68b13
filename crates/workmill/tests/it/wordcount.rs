//! Word count as a map-reduce job, shared by the job tests in this process and in worker
//! processes: a corpus made from a seed, the map and reduce tasks, and the sequential answer
//! every job must match.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use workmill::job::ReduceTask;
use workmill::{NamedTask, TaskContext, TaskError};

/// Words and their counts.
pub(crate) type Counts = BTreeMap<String, u64>;

/// `chunks` chunks of text of about `words` words each, the same for the same `seed`: words
/// from a small vocabulary (so counts add up across chunks) with mixed case and punctuation
/// (so the map's normalising matters).
pub(crate) fn corpus(seed: u64, chunks: usize, words: usize) -> Vec<String> {
    const VOCABULARY: [&str; 12] = [
        "mill", "Work", "queue", "the", "A", "lease", "worker", "reduce", "map", "job", "of",
        "steal",
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..chunks)
        .map(|_| {
            let mut text = String::new();
            for _ in 0..words {
                text.push_str(VOCABULARY[rng.usize(..VOCABULARY.len())]);
                text.push_str([" ", ", ", ". ", "\n"][rng.usize(..4)]);
            }
            text
        })
        .collect()
}

/// How words are counted: lowercase, without the punctuation around them.
pub(crate) fn count_words(text: &str) -> Counts {
    let mut counts = Counts::new();
    for word in text.split_whitespace() {
        let word = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if !word.is_empty() {
            *counts.entry(word).or_default() += 1;
        }
    }
    counts
}

/// Adds `more` into `total`.
pub(crate) fn merge(total: &mut Counts, more: Counts) {
    for (word, count) in more {
        *total.entry(word).or_default() += count;
    }
}

/// The answer without any job: one pass over the whole corpus, in this thread.
pub(crate) fn sequential(corpus: &[String]) -> Counts {
    let mut total = Counts::new();
    for chunk in corpus {
        merge(&mut total, count_words(chunk));
    }
    total
}

/// The map: counts the words of one chunk.
#[derive(Serialize, Deserialize)]
pub(crate) struct CountWords(pub(crate) String);

impl NamedTask for CountWords {
    const NAME: &'static str = "test.words.count";
    type Output = Counts;
    fn run(self, _ctx: &TaskContext<'_>) -> Result<Counts, TaskError> {
        Ok(count_words(&self.0))
    }
}

/// The reduce: adds the chunks' counts, keeping words seen at least `min` times.
#[derive(Serialize, Deserialize)]
pub(crate) struct MergeCounts {
    pub(crate) min: u64,
}

impl ReduceTask for MergeCounts {
    const NAME: &'static str = "test.words.merge";
    type Map = CountWords;
    type Output = Counts;
    fn reduce(self, counts: Vec<Counts>, _ctx: &TaskContext<'_>) -> Result<Counts, TaskError> {
        let mut total = Counts::new();
        for more in counts {
            merge(&mut total, more);
        }
        total.retain(|_, count| *count >= self.min);
        Ok(total)
    }
}
