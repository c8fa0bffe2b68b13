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
        [flag, megabytes] if flag == "--zipf" => {
            match zipf_bytes(megabytes).and_then(|bytes| {
                ZipfCorpus::default().try_generate(bytes).map_err(|error| {
                    format!("error: cannot generate {megabytes} MB of text: {error}")
                })
            }) {
                Ok(text) => text,
                Err(message) => {
                    eprintln!("{message}\n{USAGE}");
                    return ExitCode::FAILURE;
                }
            }
        }
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

/// The bytes of `--zipf`'s argument, a whole number of megabytes, or the
/// message for one that is not a number or whose bytes a `usize` cannot count.
fn zipf_bytes(megabytes: &str) -> Result<usize, String> {
    let mb: usize = megabytes.parse().map_err(|_| {
        format!("error: --zipf wants a whole number of megabytes, not {megabytes:?}")
    })?;
    mb.checked_mul(1 << 20)
        .ok_or_else(|| format!("error: --zipf {mb}: more bytes than this machine can address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_megabytes_that_overflow_a_usize_are_refused() {
        assert_eq!(zipf_bytes("50"), Ok(50 << 20));
        assert!(zipf_bytes("fifty").unwrap_err().contains("whole number"));
        let huge = (usize::MAX >> 20) + 1;
        assert!(
            zipf_bytes(&huge.to_string())
                .unwrap_err()
                .contains("address")
        );
        assert_eq!(zipf_bytes(&(huge - 1).to_string()), Ok((huge - 1) << 20));
    }
}
