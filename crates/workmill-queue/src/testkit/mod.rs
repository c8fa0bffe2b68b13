//! The conformance suite: one set of checks that every [`Queue`] backend must pass.
//!
//! A backend plugs in through a [`Harness`], which makes fresh, isolated
//! queues (a new file, key prefix or schema for each), and gets one `#[test]`
//! per check from [`queue_conformance_tests!`](crate::queue_conformance_tests):
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use workmill_core::{QueueError, TaskId};
//! use workmill_queue::sqlite::{SqliteConfig, SqliteQueue};
//! use workmill_queue::testkit::{CorruptStore, Harness, QueueSettings, checks};
//!
//! struct InMemorySqlite;
//!
//! impl Harness for InMemorySqlite {
//!     type Queue = SqliteQueue;
//!     fn fresh(&self, settings: &QueueSettings) -> SqliteQueue {
//!         SqliteConfig::new()
//!             .retain_finished(settings.retain_finished)
//!             .open("sqlite::memory:")
//!             .unwrap()
//!     }
//!     fn corrupt_payload(&self, queue: &SqliteQueue, id: &TaskId) -> Option<Result<(), QueueError>> {
//!         Some(queue.corrupt_payload(id))
//!     }
//! }
//!
//! // In a test file, `workmill_queue::queue_conformance_tests!(InMemorySqlite);`
//! // generates one #[test] per check; here, two checks run directly.
//! checks::priority_order_then_fifo(&InMemorySqlite);
//! checks::stats_are_exact_through_a_lifecycle(&InMemorySqlite);
//! # }
//! ```
//!
//! Each check is also a public function in [`checks`], taking `&impl Harness`,
//! for a backend that wants to run one on its own. The checks use short real
//! leases and delays (tens of milliseconds) but never assert on elapsed time:
//! they wait for a condition with a generous deadline, and assert only what
//! the contract promises (a delayed task is never handed out *before* its
//! time, for instance, not that it is handed out within so many milliseconds).
//!
//! Besides the semantics written on [`Queue`], the suite pins down one rule of
//! its own, for backends that keep bytes in a store: **a task whose stored
//! bytes cannot be read back intact is never handed to a worker**. `reserve`
//! dead-letters it as a failed attempt of kind
//! [`FailureKind::Corrupt`](workmill_core::FailureKind::Corrupt) and goes on
//! with the next task; `status` on it answers [`QueueError::Corrupt`] naming
//! the task; every other task, `list` and `stats` work as before.

pub mod checks;
mod support;

use std::time::Duration;

use workmill_core::{Queue, QueueError, TaskId};

pub use support::{reserve_one, wait_for, worker};

/// How a check wants its fresh queue configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Keep at most this many finished records (oldest dropped first); `None` keeps all.
    pub retain_finished: Option<u64>,
}

/// What the conformance suite needs from a backend under test.
pub trait Harness {
    /// The backend's queue type.
    type Queue: Queue + 'static;

    /// A new, empty queue that shares nothing with any other queue this harness made,
    /// so that checks can run in parallel.
    fn fresh(&self, settings: &QueueSettings) -> Self::Queue;

    /// Damages the stored payload of `id` in `queue`, or `None` when the backend keeps no
    /// stored bytes that could be damaged (an in-memory backend), which skips that check.
    fn corrupt_payload(&self, queue: &Self::Queue, id: &TaskId) -> Option<Result<(), QueueError>>;
}

/// A backend that can damage its own stored bytes on request, for the corruption check.
pub trait CorruptStore {
    /// Changes the stored payload bytes of `id` without updating anything that describes
    /// them, as a torn write or a bad disk would.
    fn corrupt_payload(&self, id: &TaskId) -> Result<(), QueueError>;
}

/// How long a check waits for a condition that should come true within milliseconds.
/// Generous, because a loaded CI machine can stall a thread for seconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Generates one `#[test]` per conformance check for a harness expression.
///
/// The expression is evaluated afresh in each test, so a harness may own
/// resources (a temporary directory) that live exactly as long as one test.
#[macro_export]
macro_rules! queue_conformance_tests {
    ($harness:expr) => {
        $crate::queue_conformance_tests!(@tests $harness;
            priority_order_then_fifo,
            batch_reserve_keeps_queue_order,
            delayed_tasks_stay_invisible_until_due,
            far_future_tasks_stay_delayed_and_readable,
            reserve_with_an_unbounded_max_takes_every_due_task,
            lapsed_lease_returns_the_task_and_counts_the_attempt,
            heartbeat_keeps_a_lease_alive_past_its_first_expiry,
            heartbeat_batch_extends_held_leases_and_reports_the_rest,
            stale_lease_tokens_are_refused,
            complete_batch_refuses_a_stale_lease_beside_the_current_one,
            release_hands_the_task_back_uncounted,
            retry_waits_out_the_backoff_and_demotes,
            last_attempt_dead_letters,
            permanent_error_dead_letters_at_once,
            an_unknown_task_name_is_retried,
            requeue_revives_a_dead_task,
            cancel_applies_to_waiting_tasks_only,
            result_round_trips,
            wait_times_out_then_sees_the_final_record,
            retention_drops_the_oldest_finished_records,
            stats_are_exact_through_a_lifecycle,
            duplicate_ids_are_refused,
            inputs_and_names_of_every_size_round_trip,
            invalid_requests_are_refused_by_name,
            list_filters_by_status_in_submission_order,
            purge_removes_tasks_as_if_never_submitted,
            concurrent_reservers_never_share_a_task,
            await_work_without_a_deadline_returns_for_new_work,
            corrupted_payload_fails_only_that_task,
            job_reduce_is_enqueued_once_when_the_last_map_completes,
            a_released_reduce_is_due_no_earlier_than_its_release,
            job_maps_completed_in_a_batch_enqueue_the_reduce_once,
            job_status_counts_maps_done_out_of_total,
            job_results_survive_a_tiny_retention_bound,
            wait_job_returns_the_job_with_its_reduce_once_it_ends,
            a_dead_map_fails_the_job_and_cancels_its_waiting_maps,
            cancelling_a_job_task_cancels_the_job,
            the_reduce_decides_the_end_of_its_job,
            requeue_of_a_dead_map_leaves_its_job_failed,
            job_submissions_are_refused_whole,
            purge_removes_a_job_with_the_task_that_ended_it,
            purge_of_a_waiting_job_task_cancels_the_job,
            concurrent_map_completions_enqueue_each_reduce_once,
            a_corrupted_map_fails_its_job,
        );
    };
    (@tests $harness:expr; $($check:ident,)*) => {
        $(
            #[test]
            fn $check() {
                let harness = $harness;
                $crate::testkit::checks::$check(&harness);
            }
        )*
    };
}
