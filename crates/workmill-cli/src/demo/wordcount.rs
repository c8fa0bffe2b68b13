//! Demo step (a): word count as a map-reduce job through the Runtime on SQLite, and in process
//! with workmill-mapreduce's keyed map-reduce, each checked against the sequential count, with
//! the speedup over it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use workmill::{Job, JobStatus, Runtime, Shutdown};
use workmill_mapreduce::MapReduce;

use super::checks::{Check, Checks};
use super::progress::Progress;
use super::{CORPUS_FILE, WORDCOUNT_DB, sqlite_url};
use crate::builtin::{self, CountWords, MergeCounts, WordCounts};
use crate::cli::DemoArgs;
use crate::corpus::{self, CorpusSpec};
use crate::error::CliError;

/// How long the job may take before the demo gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);

/// What the word-count step measured.
#[derive(Clone, Debug, Serialize)]
pub struct WordCountReport {
    /// The job's id, for `workmill inspect` on the kept file (`demo --keep DIR`).
    pub job_id: String,
    /// Size of the generated corpus.
    pub corpus_bytes: usize,
    /// Words in it.
    pub words: u64,
    /// Distinct words in it.
    pub distinct_words: usize,
    /// Map tasks in the job (splits of the corpus file).
    pub maps: usize,
    /// Worker threads of the runtime.
    pub threads: u16,
    /// The sequential count's time, reading the file included (the median of three runs), in
    /// milliseconds.
    pub sequential_ms: f64,
    /// The job's time from submit to its result, in milliseconds.
    pub job_ms: f64,
    /// `sequential_ms / job_ms`.
    pub speedup: f64,
    /// The same count in process, `map_reduce_by_key` over the lines of the text on a pool of
    /// `threads` threads (the median of five runs, the text already in memory), in
    /// milliseconds.
    pub in_process_ms: f64,
    /// The sequential count of the text in memory (the median of five runs), in
    /// milliseconds: the baseline of the in-process count.
    pub in_process_sequential_ms: f64,
    /// `in_process_sequential_ms / in_process_ms`.
    pub in_process_speedup: f64,
    /// The five most frequent words and their counts.
    pub top_words: Vec<(String, u64)>,
}

/// Runs the step in `dir`.
pub(super) fn run(
    dir: &Path,
    args: &DemoArgs,
    progress: &Progress,
) -> Result<(WordCountReport, Vec<Check>), CliError> {
    let spec = CorpusSpec {
        seed: args.seed,
        ..CorpusSpec::new(args.size)
    };
    let text = corpus::generate(&spec);
    let path = dir.join(CORPUS_FILE);
    std::fs::write(&path, &text).map_err(|error| {
        CliError::Demo(format!(
            "cannot write the corpus to {}: {error}",
            path.display()
        ))
    })?;
    drop(text);

    // The sequential answer, and its time (the median of three runs): read the file, count.
    let mut times = Vec::new();
    let mut sequential = WordCounts::new();
    let mut text = String::new();
    for _ in 0..3 {
        let start = Instant::now();
        text = std::fs::read_to_string(&path)
            .map_err(|error| CliError::Demo(format!("cannot read {}: {error}", path.display())))?;
        sequential = corpus::count_words(&text);
        times.push(start.elapsed());
    }
    times.sort();
    let sequential_time = times[1];

    // Each map reads its split of the file, as MapReduce maps read splits of shared files:
    // the queue carries where the text is, not the text.
    let splits = corpus::splits(&text, args.chunk);
    let file = path
        .to_str()
        .ok_or_else(|| CliError::Demo(format!("{} is not a UTF-8 path", path.display())))?
        .to_owned();
    let maps = splits.iter().map(|split| CountWords {
        path: file.clone(),
        offset: split.start as u64,
        len: Some(split.len() as u64),
    });
    // One map per reservation, so that each thread takes a map as it frees up rather than a
    // batch of them that the other thread could have run.
    let runtime = Runtime::builder()
        .url(sqlite_url(&dir.join(WORDCOUNT_DB)))
        .threads(usize::from(args.threads))
        .max_batch(1)
        .registry(builtin::registry()?)
        .build()?;
    let start = Instant::now();
    let job = runtime.submit_job(Job::map_reduce(maps, MergeCounts))?;
    if progress.shown() {
        let bar = progress.bar(splits.len() as u64, "word count: maps done");
        loop {
            let record = runtime.job_status(job.id())?;
            bar.set_position(u64::from(record.maps_done));
            if record.status != JobStatus::Mapping || start.elapsed() > JOB_TIMEOUT {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bar.finish_and_clear();
    }
    let counts = runtime.wait_job(&job, JOB_TIMEOUT)?;
    let job_time = start.elapsed();
    let record = runtime.job_status(job.id())?;
    runtime.shutdown(Shutdown::Drain)?;

    let (in_process, in_process_time, in_memory_time) = count_in_process(&text, args.threads)?;

    let words: u64 = sequential.values().sum();
    let mut checks = Checks::new("wordcount");
    checks.check(
        "the in-process map_reduce_by_key equals the sequential count",
        in_process == sequential,
        format!(
            "{} distinct words, {} words in process",
            in_process.len(),
            in_process.values().sum::<u64>()
        ),
    );
    checks.check(
        "the job's counts equal the sequential count",
        counts == sequential,
        format!(
            "{} distinct words, {} words from the job; {} distinct, {words} sequentially",
            counts.len(),
            counts.values().sum::<u64>(),
            sequential.len()
        ),
    );
    checks.check(
        "the job completed with every map done",
        record.status == JobStatus::Completed
            && record.maps_done == record.maps_total()
            && record.maps.len() == splits.len(),
        format!(
            "{} with {} of {} maps done",
            record.status,
            record.maps_done,
            record.maps_total()
        ),
    );

    let mut top: Vec<(String, u64)> = sequential.iter().map(|(w, &c)| (w.clone(), c)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(5);
    let sequential_ms = millis(sequential_time);
    let job_ms = millis(job_time);
    let report = WordCountReport {
        job_id: record.id.as_str().to_owned(),
        corpus_bytes: text.len(),
        words,
        distinct_words: sequential.len(),
        maps: splits.len(),
        threads: args.threads,
        sequential_ms,
        job_ms,
        speedup: sequential_ms / job_ms.max(f64::MIN_POSITIVE),
        in_process_ms: millis(in_process_time),
        in_process_sequential_ms: millis(in_memory_time),
        in_process_speedup: in_memory_time.as_secs_f64()
            / in_process_time.as_secs_f64().max(f64::MIN_POSITIVE),
        top_words: top,
    };
    Ok((report, checks.into_vec()))
}

/// Counts `text` with `map_reduce_by_key` over its lines on a pool of `threads` threads, and
/// sequentially in memory; the counts and the median times of five runs of each.
fn count_in_process(
    text: &str,
    threads: u16,
) -> Result<(WordCounts, Duration, Duration), CliError> {
    let pool = workmill_executor::ThreadPool::builder()
        .num_threads(usize::from(threads.max(1)))
        .thread_name(|i| format!("demo-mapreduce-{i}"))
        .build()
        .map_err(|error| CliError::Demo(format!("cannot start the map-reduce pool: {error}")))?;
    let lines: Vec<&str> = text.lines().collect();
    let job = MapReduce::new().pool(&pool);
    let mut parallel = Vec::new();
    let mut counts = HashMap::new();
    // A first run to start the pool's threads and touch the text, then five timed.
    for run in 0..6 {
        let start = Instant::now();
        counts = job.map_reduce_by_key(
            lines.as_slice(),
            |line: &&str| {
                // Keys borrow the text; only a word with a capital is copied, lower-cased.
                let line: &str = line;
                line.split_whitespace()
                    .filter_map(corpus::word_of)
                    .map(|word| {
                        let key: Cow<'_, str> = if word.chars().any(char::is_uppercase) {
                            Cow::Owned(word.to_lowercase())
                        } else {
                            Cow::Borrowed(word)
                        };
                        (key, 1u64)
                    })
            },
            |total: &mut u64, count| *total += count,
        );
        if run > 0 {
            parallel.push(start.elapsed());
        }
    }
    let mut sequential = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        std::hint::black_box(corpus::count_words(std::hint::black_box(text)));
        sequential.push(start.elapsed());
    }
    parallel.sort();
    sequential.sort();
    let counts = counts
        .into_iter()
        .map(|(word, count)| (word.into_owned(), count))
        .collect();
    Ok((counts, parallel[2], sequential[2]))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
