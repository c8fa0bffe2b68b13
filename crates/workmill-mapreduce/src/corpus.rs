//! A deterministic Zipf-distributed text generator, for word-count benchmarks and demos.

use std::collections::{HashSet, TryReserveError};

/// Generates text whose word frequencies follow Zipf's law, as natural text
/// roughly does: the word of rank `r` appears with probability proportional
/// to `1 / r^exponent`. The same settings and seed give the same text.
///
/// # Examples
///
/// ```
/// use workmill_mapreduce::corpus::ZipfCorpus;
///
/// let corpus = ZipfCorpus { vocabulary: 1_000, ..ZipfCorpus::default() };
/// let text = corpus.generate(10_000);
/// assert!(text.len() >= 10_000 && text.len() <= 10_000 + 16 * 13);
/// assert_eq!(text, corpus.generate(10_000), "deterministic");
/// assert!(text.lines().all(|line| !line.is_empty()));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ZipfCorpus {
    /// Distinct words: at least 1 and at most [`MAX_VOCABULARY`](Self::MAX_VOCABULARY);
    /// 0 is taken as 1, and more than the maximum as the maximum.
    pub vocabulary: usize,
    /// Zipf exponent: 1.0 is close to English; larger makes the top words dominate more.
    pub exponent: f64,
    /// Seed of the generator.
    pub seed: u64,
    /// Words per line, at most (each line has between 1 and this many).
    pub max_words_per_line: usize,
}

impl Default for ZipfCorpus {
    /// 100,000 words, exponent 1.0, seed 42, up to 16 words a line.
    fn default() -> Self {
        ZipfCorpus {
            vocabulary: 100_000,
            exponent: 1.0,
            seed: 42,
            max_words_per_line: 16,
        }
    }
}

impl ZipfCorpus {
    /// The largest vocabulary, 2^20 (1,048,576) words: more than a large
    /// dictionary of English holds, and about 100 MB to generate.
    pub const MAX_VOCABULARY: usize = 1 << 20;

    /// The vocabulary, most frequent word first: distinct lowercase words of
    /// 1 to 12 letters, as many as [`vocabulary`](Self::vocabulary) says
    /// (within its bounds).
    pub fn words(&self) -> Vec<String> {
        let vocabulary = self.vocabulary.clamp(1, Self::MAX_VOCABULARY);
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let mut seen = HashSet::with_capacity(vocabulary);
        let mut words = Vec::with_capacity(vocabulary);
        while words.len() < vocabulary {
            // Frequent words tend to be short, as in natural text.
            let longest = 2 + (words.len().max(1).ilog2() as usize).min(10);
            let len = rng.usize(1..=longest);
            let word: String = (0..len).map(|_| rng.lowercase()).collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        words
    }

    /// At least `bytes` bytes of text (at most one line more): lines of words
    /// separated by single spaces, each line ending in `\n`.
    ///
    /// # Panics
    ///
    /// If the text cannot be allocated: `bytes` and a line more exceed
    /// `isize::MAX`, or the allocator refuses them.
    /// [`try_generate`](Self::try_generate) returns that error instead.
    pub fn generate(&self, bytes: usize) -> String {
        self.try_generate(bytes)
            .unwrap_or_else(|error| panic!("cannot generate {bytes} bytes of text: {error}"))
    }

    /// [`generate`](Self::generate), with the room for the text allocated
    /// before any is written, and a failure to allocate it returned.
    ///
    /// # Errors
    ///
    /// The [`TryReserveError`] of reserving `bytes` and the longest line:
    /// 13 bytes (12 letters and a space or `\n`) for each of
    /// [`max_words_per_line`](Self::max_words_per_line).
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_mapreduce::corpus::ZipfCorpus;
    ///
    /// let corpus = ZipfCorpus { vocabulary: 100, ..ZipfCorpus::default() };
    /// assert!(corpus.try_generate(usize::MAX).is_err());
    /// assert_eq!(corpus.try_generate(1_000)?, corpus.generate(1_000));
    /// # Ok::<(), std::collections::TryReserveError>(())
    /// ```
    pub fn try_generate(&self, bytes: usize) -> Result<String, TryReserveError> {
        let max_words = self.max_words_per_line.max(1);
        let mut text = String::new();
        text.try_reserve_exact(bytes.saturating_add(max_words.saturating_mul(13)))?;
        let words = self.words();
        // Cumulative weights, to sample a rank by binary search.
        let mut total = 0.0;
        let cumulative: Vec<f64> = (1..=words.len())
            .map(|rank| {
                total += (rank as f64).powf(-self.exponent);
                total
            })
            .collect();
        let mut rng = fastrand::Rng::with_seed(self.seed ^ 0x9e37_79b9_7f4a_7c15);
        while text.len() < bytes {
            let count = rng.usize(1..=max_words);
            for i in 0..count {
                if i > 0 {
                    text.push(' ');
                }
                let target = rng.f64() * total;
                let rank = cumulative
                    .partition_point(|&c| c <= target)
                    .min(words.len() - 1);
                text.push_str(&words[rank]);
            }
            text.push('\n');
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vocabulary_outside_its_bounds_is_taken_as_the_nearer_bound() {
        let none = ZipfCorpus {
            vocabulary: 0,
            ..ZipfCorpus::default()
        };
        assert_eq!(none.words().len(), 1);
        let text = none.generate(100);
        assert!(text.len() >= 100, "{text:?}");
        let endless = ZipfCorpus {
            vocabulary: usize::MAX,
            ..ZipfCorpus::default()
        };
        let words = endless.words();
        assert_eq!(words.len(), ZipfCorpus::MAX_VOCABULARY);
        assert_eq!(words.iter().collect::<HashSet<_>>().len(), words.len());
    }

    #[test]
    fn text_too_large_to_allocate_is_an_error() {
        let corpus = ZipfCorpus::default();
        assert!(corpus.try_generate(usize::MAX).is_err());
        assert!(corpus.try_generate(isize::MAX as usize).is_err());
        let long_lines = ZipfCorpus {
            max_words_per_line: usize::MAX,
            ..corpus
        };
        assert!(long_lines.try_generate(0).is_err());
        let caught = std::panic::catch_unwind(|| ZipfCorpus::default().generate(usize::MAX));
        assert!(caught.is_err());
    }
}
