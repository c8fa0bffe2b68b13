//! Quick start: register two tasks, submit them with priorities, wait for their results, print the stats.
//!
//! Run it with `cargo run -p workmill --example quick_start`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workmill::{
    Backoff, NamedTask, Priority, RetryPolicy, Runtime, RuntimeError, Shutdown, TaskContext,
    TaskError,
};

/// A task type: the value is the input, `NAME` is how workers find the handler.
#[derive(Serialize, Deserialize)]
struct WordCount {
    text: String,
}

impl NamedTask for WordCount {
    const NAME: &'static str = "text.word_count";
    type Output = usize;

    fn run(self, ctx: &TaskContext<'_>) -> Result<usize, TaskError> {
        if self.text.is_empty() {
            // Retrying cannot fix an empty document: fail permanently.
            return Err(TaskError::permanent("the document is empty"));
        }
        if self.text.contains("flaky") && ctx.attempt() == 1 {
            // A transient failure: the retry policy runs it again, one level lower in priority.
            return Err(TaskError::retryable("the word service timed out"));
        }
        Ok(self.text.split_whitespace().count())
    }
}

fn main() -> Result<(), RuntimeError> {
    let runtime = Runtime::builder()
        .threads(2)
        .default_retry(
            RetryPolicy::new(3)
                .backoff(Backoff::exponential(
                    Duration::from_millis(10),
                    Duration::from_secs(1),
                ))
                .demote_by(10),
        )
        .build()?;

    // Two tasks: a named type, and a closure registered under a name.
    runtime.register::<WordCount>()?;
    let shout = runtime.register_fn("text.shout", |text: String| {
        Ok::<_, TaskError>(text.to_uppercase())
    })?;

    // Submit with priorities: lower numbers run first.
    let urgent = runtime
        .submit(WordCount {
            text: "the quick brown fox".into(),
        })
        .priority(Priority::HIGH)
        .send()?;
    let flaky = runtime
        .submit(WordCount {
            text: "a flaky service answers on the second try".into(),
        })
        .send()?;
    let empty = runtime
        .submit(WordCount {
            text: String::new(),
        })
        .priority(Priority::LOW)
        .send()?;
    let loud = runtime
        .submit(shout.call("hello, workmill".into()))
        .send()?;

    // Wait for each result; a task that ended dead reports its last error.
    let wait = Duration::from_secs(10);
    println!("urgent: {} words", runtime.wait_for(&urgent, wait)?);
    println!("flaky:  {} words", runtime.wait_for(&flaky, wait)?);
    println!("shout:  {}", runtime.wait_for(&loud, wait)?);
    match runtime.wait_for(&empty, wait) {
        Ok(count) => println!("empty:  {count} words"),
        Err(error) => println!("empty:  {error}"),
    }
    let record = runtime.status(flaky.id())?;
    println!(
        "flaky took {} attempts, now at priority {}",
        record.attempts, record.priority
    );

    let report = runtime.shutdown(Shutdown::Drain)?;
    let stats = report.stats;
    println!(
        "stats: submitted {}, completed {}, dead {}, failed attempts {}, retried {}",
        stats.submitted, stats.completed, stats.dead, stats.failed_attempts, stats.retried
    );
    Ok(())
}
