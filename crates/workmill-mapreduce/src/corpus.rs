//! A deterministic Zipf-distributed text generator, for word-count benchmarks and demos.

use std::collections::HashSet;

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
    /// Distinct words.
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
    /// The vocabulary, most frequent word first: distinct lowercase words of 1 to 12 letters.
    pub fn words(&self) -> Vec<String> {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let mut seen = HashSet::with_capacity(self.vocabulary);
        let mut words = Vec::with_capacity(self.vocabulary);
        while words.len() < self.vocabulary {
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
    pub fn generate(&self, bytes: usize) -> String {
        let words = self.words();
        if words.is_empty() {
            return String::new();
        }
        // Cumulative weights, to sample a rank by binary search.
        let mut total = 0.0;
        let cumulative: Vec<f64> = (1..=words.len())
            .map(|rank| {
                total += (rank as f64).powf(-self.exponent);
                total
            })
            .collect();
        let mut rng = fastrand::Rng::with_seed(self.seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut text = String::with_capacity(bytes + 256);
        while text.len() < bytes {
            let count = rng.usize(1..=self.max_words_per_line.max(1));
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
        text
    }
}
