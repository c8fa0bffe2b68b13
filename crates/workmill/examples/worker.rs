//! A worker binary and its producer in one file: submit tasks to a SQLite file, then run worker
//! processes on it until SIGTERM or Ctrl-C.
//!
//! ```sh
//! cargo run -p workmill --example worker -- submit 1000   # enqueue 1000 thumbnails
//! cargo run -p workmill --example worker                  # run a worker; start several
//! cargo run -p workmill --example worker -- stats         # what is done, what is left
//! ```
//!
//! The file is `tasks.db` in the current directory unless `WORKMILL_URL` names another backend
//! (`sqlite:///var/lib/app/tasks.db`). Kill a worker with `kill -9` while it runs: its tasks come
//! back to the others within the lease (10 s here), and nothing is lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workmill::worker::{self, RunOptions};
use workmill::{
    Backoff, Codec, NamedTask, NewTask, Postcard, Registry, RetryPolicy, TaskContext, TaskError,
};

/// A task type: the value is the input, `NAME` is how a worker finds the handler.
#[derive(Serialize, Deserialize)]
struct Thumbnail {
    image: u32,
    width: u32,
}

impl NamedTask for Thumbnail {
    const NAME: &'static str = "images.thumbnail";
    type Output = String;

    fn run(self, ctx: &TaskContext<'_>) -> Result<String, TaskError> {
        if self.width == 0 {
            return Err(TaskError::permanent("a thumbnail needs a width"));
        }
        // Stands in for real work: decoding, resizing, uploading.
        std::thread::sleep(Duration::from_millis(5));
        Ok(format!(
            "image {} at {} px by {}",
            self.image,
            self.width,
            ctx.worker().map_or("?", |w| w.as_str())
        ))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("WORKMILL_URL").unwrap_or_else(|_| "sqlite://tasks.db".to_owned());
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("submit") => {
            let count: u32 = args.get(1).map_or(Ok(100), |n| n.parse())?;
            let queue = workmill::backend::open(&url)?;
            let retry = RetryPolicy::new(5).backoff(Backoff::exponential(
                Duration::from_millis(100),
                Duration::from_secs(10),
            ));
            let tasks =
                (0..count)
                    .map(|image| {
                        let input = Thumbnail { image, width: 128 };
                        Ok(NewTask::new(Thumbnail::NAME, Postcard.encode(&input)?)
                            .retry(retry.clone()))
                    })
                    .collect::<Result<Vec<_>, workmill::CodecError>>()?;
            queue.enqueue_batch(tasks)?;
            println!("submitted {count} tasks to {url}");
        }
        Some("stats") => {
            let stats = workmill::backend::open(&url)?.stats()?;
            println!("{stats:?}");
        }
        None => {
            let mut registry = Registry::new();
            registry.register::<Thumbnail>()?;
            let options = RunOptions::new()
                .concurrency(4)
                .lease(Duration::from_secs(10));
            println!("working on {url}; stop with Ctrl-C or SIGTERM");
            let report = worker::run(registry, &url, options)?;
            println!("{report}");
        }
        Some(other) => {
            return Err(
                format!("unknown command {other:?}; use submit N, stats, or nothing").into(),
            );
        }
    }
    Ok(())
}
