//! Group `mapreduce`, word count over a generated Zipf-distributed corpus of about 100 MB:
//! workmill's `map_reduce_by_key` against rayon's fold into `HashMap`s and reduce, and a
//! sequential loop into one `HashMap`, interleaved round by round (`interleaved`).

use std::collections::HashMap;
use std::hint::black_box;

use rayon::prelude::*;
use workmill_benches::executor::{pools, timed};
use workmill_benches::interleaved::{self, Contender};
use workmill_mapreduce::corpus::ZipfCorpus;

const CORPUS_BYTES: usize = 100 << 20;

fn words<'a>(line: &&'a str) -> impl Iterator<Item = (&'a str, u64)> + use<'a> {
    line.split_whitespace().map(|word| (word, 1))
}

fn count_workmill<'a>(lines: &[&'a str]) -> HashMap<&'a str, u64> {
    workmill_mapreduce::map_reduce_by_key(lines, words, |count, n| *count += n)
}

fn count_rayon<'a>(lines: &[&'a str]) -> HashMap<&'a str, u64> {
    lines
        .par_iter()
        .fold(HashMap::new, |mut counts, line| {
            for word in line.split_whitespace() {
                *counts.entry(word).or_insert(0) += 1;
            }
            counts
        })
        .reduce(HashMap::new, |mut a, mut b| {
            // Merge the smaller map into the larger.
            if a.len() < b.len() {
                std::mem::swap(&mut a, &mut b);
            }
            for (word, n) in b {
                *a.entry(word).or_insert(0) += n;
            }
            a
        })
}

fn count_sequential<'a>(lines: &[&'a str]) -> HashMap<&'a str, u64> {
    let mut counts = HashMap::new();
    for line in lines {
        for word in line.split_whitespace() {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    counts
}

fn main() {
    let (ours, theirs) = pools();
    interleaved::run_cases(
        "mapreduce_words",
        "mapreduce",
        vec![(
            "word_count",
            Box::new(|settings| {
                // Generated once per process: every contender counts the same lines.
                let text = ZipfCorpus::default().generate(CORPUS_BYTES);
                let lines: Vec<&str> = text.lines().collect();
                let lines = &lines;
                let expected = count_sequential(lines);
                assert_eq!(ours.install(|| count_workmill(lines)), expected);
                assert_eq!(theirs.install(|| count_rayon(lines)), expected);
                let total: u64 = expected.values().sum();
                let distinct = expected.len();
                let check = move |counts: HashMap<&str, u64>| {
                    assert_eq!(counts.len(), distinct);
                    black_box(total);
                };
                interleaved::measure(
                    settings,
                    "mapreduce",
                    "word_count",
                    vec![
                        Contender::new("workmill", || {
                            ours.install(|| timed(1, || check(count_workmill(black_box(lines)))))
                        }),
                        Contender::new("rayon", || {
                            theirs.install(|| timed(1, || check(count_rayon(black_box(lines)))))
                        }),
                        Contender::new("sequential", || {
                            timed(1, || check(count_sequential(black_box(lines))))
                        }),
                    ],
                )
            }),
        )],
    );
}
