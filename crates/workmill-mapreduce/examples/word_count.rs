//! Example: count the words of a text file in parallel with `map_reduce_by_key`, and print the most frequent.
//!
//! ```sh
//! cargo run --release -p workmill-mapreduce --example word_count -- README.md
//! # or count a generated Zipf corpus of 50 MB:
//! cargo run --release -p workmill-mapreduce --example word_count -- --zipf 50
//! ```

use std::process::ExitCode;
use std::time::Instant;

use workmill_mapreduce::corpus::ZipfCorpus;
use workmill_mapreduce::map_reduce_by_key;

const USAGE: &str = "usage: word_count <FILE> | word_count --zipf <MEGABYTES>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args.as_slice() {
        [flag, megabytes] if flag == "--zipf" => match megabytes.parse::<usize>() {
            Ok(mb) => ZipfCorpus::default().generate(mb << 20),
            Err(_) => {
                eprintln!(
                    "error: --zipf wants a whole number of megabytes, not {megabytes:?}\n{USAGE}"
                );
                return ExitCode::FAILURE;
            }
        },
        [path] if !path.starts_with('-') => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("error: cannot read {path:?}: {error}\n{USAGE}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };

    let start = Instant::now();
    let lines: Vec<&str> = text.lines().collect();
    let counts = map_reduce_by_key(
        &lines,
        |line| line.split_whitespace().map(|word| (word, 1u64)),
        |count, one| *count += one,
    );
    let elapsed = start.elapsed();

    let total: u64 = counts.values().sum();
    let mut top: Vec<(&str, u64)> = counts.iter().map(|(w, c)| (*w, *c)).collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    println!(
        "{total} words, {} distinct, {} MB, counted in {elapsed:?}",
        counts.len(),
        text.len() >> 20
    );
    for (word, count) in top.iter().take(10) {
        println!("{count:>12}  {word}");
    }
    ExitCode::SUCCESS
}
