//! The word-count demo's data: a deterministic generator of Zipf-distributed text, the
//! sequential word count that checks the job, and the split of a text into the maps' input
//! splits.

use std::collections::HashMap;
use std::ops::Range;

use crate::builtin::WordCounts;

/// Syllables that words are built from; every word of the vocabulary is distinct.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "an", "el", "or", "ul", "be", "di", "fa",
    "go", "hu", "ji", "pe", "qua", "se", "ti", "wy", "zo",
];

/// How the generated text is shaped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CorpusSpec {
    /// Size of the text in bytes (it stops at the first line end past this).
    pub bytes: usize,
    /// Distinct words in the vocabulary.
    pub vocabulary: usize,
    /// The Zipf exponent: the word of rank `r` is drawn with weight `1 / r^s`.
    pub exponent: f64,
    /// Seed of every draw; the same spec gives the same text.
    pub seed: u64,
}

impl CorpusSpec {
    /// `bytes` of text over 20 000 words, exponent 1.0 (natural language's), seed 2026.
    pub fn new(bytes: usize) -> CorpusSpec {
        CorpusSpec {
            bytes,
            vocabulary: 20_000,
            exponent: 1.0,
            seed: 2026,
        }
    }
}

/// The `index`-th word of the vocabulary, written in base `SYLLABLES.len()`.
fn word(mut index: usize) -> String {
    let mut word = String::new();
    loop {
        word.push_str(SYLLABLES[index % SYLLABLES.len()]);
        index /= SYLLABLES.len();
        if index == 0 {
            return word;
        }
        index -= 1;
    }
}

/// Generates the text: lines of 8 to 15 words, each sentence starting with a capital and
/// ending with a full stop, so that counting has to normalize case and punctuation.
pub fn generate(spec: &CorpusSpec) -> String {
    let vocabulary: Vec<String> = (0..spec.vocabulary.max(1)).map(word).collect();
    // Cumulative Zipf weights; a draw is a binary search in them.
    let mut cumulative = Vec::with_capacity(vocabulary.len());
    let mut total = 0.0;
    for rank in 1..=vocabulary.len() {
        total += 1.0 / (rank as f64).powf(spec.exponent);
        cumulative.push(total);
    }
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut text = String::with_capacity(spec.bytes + 128);
    while text.len() < spec.bytes {
        let words = rng.usize(8..=15);
        for position in 0..words {
            let draw = rng.f64() * total;
            let index = cumulative
                .partition_point(|&c| c < draw)
                .min(vocabulary.len() - 1);
            let word = &vocabulary[index];
            if position == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push_str(".\n");
    }
    text
}

/// Splits `text` into byte ranges of about `split_bytes`, each ending at a line end, so that
/// no word is cut in two. Every byte of `text` is in exactly one range, in order.
pub fn splits(text: &str, split_bytes: usize) -> Vec<Range<usize>> {
    let split_bytes = split_bytes.max(1);
    let mut splits = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let rest = &text[start..];
        let len = if rest.len() <= split_bytes {
            rest.len()
        } else {
            rest.as_bytes()[split_bytes..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |newline| split_bytes + newline + 1)
        };
        splits.push(start..start + len);
        start += len;
    }
    splits
}

/// The text of each of [`splits`].
pub fn chunks(text: &str, split_bytes: usize) -> Vec<&str> {
    splits(text, split_bytes)
        .into_iter()
        .map(|range| &text[range])
        .collect()
}

/// Counts the words of `text`: split at whitespace, stripped of punctuation at either end,
/// lower-cased; tokens with no letter or digit are skipped.
pub fn count_words(text: &str) -> WordCounts {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for token in text.split_whitespace() {
        let word = token.trim_matches(|c: char| !c.is_alphanumeric());
        if word.is_empty() {
            continue;
        }
        if word.chars().any(char::is_uppercase) {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        } else if let Some(count) = counts.get_mut(word) {
            *count += 1;
        } else {
            counts.insert(word.to_owned(), 1);
        }
    }
    counts.into_iter().collect()
}

/// Adds up word counts.
pub fn merge_counts(parts: impl IntoIterator<Item = WordCounts>) -> WordCounts {
    // A hash map takes the many lookups; the sorted map is built once at the end.
    let mut total: HashMap<String, u64> = HashMap::new();
    for part in parts {
        for (word, count) in part {
            *total.entry(word).or_default() += count;
        }
    }
    total.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_words_are_distinct() {
        let words: std::collections::HashSet<String> = (0..20_000).map(word).collect();
        assert_eq!(words.len(), 20_000);
    }

    #[test]
    fn generation_is_deterministic_and_sized() {
        let spec = CorpusSpec::new(50_000);
        let text = generate(&spec);
        assert_eq!(text, generate(&spec));
        assert!(
            text.len() >= 50_000 && text.len() < 50_000 + 300,
            "{}",
            text.len()
        );
        assert_ne!(text, generate(&CorpusSpec { seed: 7, ..spec }));
    }

    #[test]
    fn frequencies_fall_with_rank_as_zipf_says() {
        let counts = count_words(&generate(&CorpusSpec::new(400_000)));
        let of = |rank: usize| counts.get(&word(rank)).copied().unwrap_or(0) as f64;
        // Rank 1 is drawn twice as often as rank 2, ten times as often as rank 10.
        let ratio2 = of(0) / of(1);
        let ratio10 = of(0) / of(9);
        assert!((1.7..2.3).contains(&ratio2), "{ratio2}");
        assert!((8.0..12.5).contains(&ratio10), "{ratio10}");
    }

    #[test]
    fn chunks_cover_the_text_at_line_ends() {
        let text = generate(&CorpusSpec::new(20_000));
        let parts = chunks(&text, 1_000);
        assert_eq!(parts.concat(), text);
        assert!(parts.len() >= 15, "{}", parts.len());
        assert!(parts.iter().all(|chunk| chunk.ends_with('\n')));
        assert!(chunks("", 10).is_empty());
        let ranges = splits(&text, 1_000);
        assert_eq!(ranges.len(), parts.len());
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(
            (ranges[0].start, ranges[ranges.len() - 1].end),
            (0, text.len())
        );
        assert_eq!(chunks("no newline at all", 4), vec!["no newline at all"]);
    }

    #[test]
    fn counting_normalizes_case_and_punctuation() {
        let counts = count_words("The cat, the hat.\nTHE end -- fin!");
        assert_eq!(counts.get("the"), Some(&3));
        assert_eq!(counts.get("cat"), Some(&1));
        assert_eq!(counts.get("fin"), Some(&1));
        assert!(!counts.contains_key("--"));
        assert_eq!(counts.values().sum::<u64>(), 7);
    }

    #[test]
    fn counts_of_chunks_add_up_to_the_whole() {
        let text = generate(&CorpusSpec::new(30_000));
        let parts = chunks(&text, 2_000).into_iter().map(count_words);
        assert_eq!(merge_counts(parts), count_words(&text));
    }
}
