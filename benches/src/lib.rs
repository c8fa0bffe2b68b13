//! Shared helpers for the workmill benchmarks: realistic inputs, and the knobs `cargo xtask bench` passes in.

pub mod executor;
pub mod interleaved;

use std::path::PathBuf;
use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, Priority, RetryPolicy, TaskId, TaskRecord, TaskStatus,
    Timestamp, WorkerId,
};

/// True when `cargo xtask bench --quick` is running the benches.
pub fn quick() -> bool {
    std::env::var("WORKMILL_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Where a bench may write extra outputs (tables, extra summary rows); `target/workmill-bench` by default.
pub fn out_dir() -> PathBuf {
    std::env::var_os("WORKMILL_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/workmill-bench"
            ))
        })
}

/// A record as a busy worker leaves it: a 200-byte payload, retried once after a
/// network error, completed with a 64-byte result.
pub fn realistic_record() -> TaskRecord {
    let created = Timestamp::from_micros(1_795_910_400_000_000);
    TaskRecord {
        id: TaskId::generate(),
        name: "thumbnail.resize".into(),
        payload: (0..200u8).collect(),
        status: TaskStatus::Completed,
        priority: Priority::new(15),
        attempts: 2,
        retry: RetryPolicy::new(3)
            .backoff(Backoff::exponential(
                Duration::from_secs(2),
                Duration::from_secs(60),
            ))
            .demote_by(10),
        created_at: created,
        run_at: created.saturating_add(Duration::from_secs(2)),
        started_at: Some(created.saturating_add(Duration::from_secs(2))),
        finished_at: Some(created.saturating_add(Duration::from_millis(2_350))),
        last_error: Some(Failure::new(FailureKind::Error, "connection reset by peer")),
        worker: WorkerId::new("worker-host-4242-0").ok(),
        result: Some(vec![7; 64].into()),
    }
}
