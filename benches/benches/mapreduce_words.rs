//! Group `mapreduce`, word count over a generated Zipf-distributed corpus of about 100 MB:
//! workmill's `map_reduce_by_key` against rayon's fold into `HashMap`s and reduce, and a
//! sequential loop into one `HashMap`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use workmill_benches::executor::{pools, timed};
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

fn word_count(c: &mut Criterion) {
    let (ours, theirs) = pools();
    // Generated once per process: every function counts the same lines.
    let text = ZipfCorpus::default().generate(CORPUS_BYTES);
    let lines: Vec<&str> = text.lines().collect();
    let expected = count_sequential(&lines);
    assert_eq!(ours.install(|| count_workmill(&lines)), expected);
    assert_eq!(theirs.install(|| count_rayon(&lines)), expected);
    let total: u64 = expected.values().sum();
    let distinct = expected.len();

    let mut group = c.benchmark_group("mapreduce/word_count");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sampling_mode(SamplingMode::Flat);
    let check = |counts: HashMap<&str, u64>| {
        assert_eq!(counts.len(), distinct);
        black_box(total);
    };
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| timed(iters, || check(count_workmill(black_box(&lines)))))
        })
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| timed(iters, || check(count_rayon(black_box(&lines)))))
        })
    });
    group.bench_function("sequential", |b| {
        b.iter(|| check(count_sequential(black_box(&lines))))
    });
    group.finish();
}

criterion_group!(benches, word_count);
criterion_main!(benches);
