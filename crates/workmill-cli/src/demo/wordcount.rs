//! Demo step (a): word count as a map-reduce job through the Runtime on SQLite, checked
//! against the sequential count, with the speedup over it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use workmill::{Job, JobStatus, Runtime, Shutdown};

use super::checks::{Check, Checks};
use super::progress::Progress;
use super::sqlite_url;
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
    let path = dir.join("corpus.txt");
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
        .url(sqlite_url(&dir.join("wordcount.db")))
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

    let words: u64 = sequential.values().sum();
    let mut checks = Checks::new("wordcount");
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
        top_words: top,
    };
    Ok((report, checks.into_vec()))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
