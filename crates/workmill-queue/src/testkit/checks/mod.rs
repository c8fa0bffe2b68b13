//! The conformance checks, one public function each, grouped by the part of the contract they hold.

mod accounting;
mod admin;
mod concurrency;
mod corruption;
mod failures;
mod job_admin;
mod job_endings;
mod jobs;
mod leases;
mod order;
mod records;

pub use accounting::{
    retention_drops_the_oldest_finished_records, stats_are_exact_through_a_lifecycle,
};
pub use admin::{
    cancel_applies_to_waiting_tasks_only, result_round_trips,
    wait_times_out_then_sees_the_final_record,
};
pub use concurrency::{
    await_work_without_a_deadline_returns_for_new_work,
    concurrent_map_completions_enqueue_each_reduce_once, concurrent_reservers_never_share_a_task,
};
pub use corruption::{a_corrupted_map_fails_its_job, corrupted_payload_fails_only_that_task};
pub use failures::{
    an_unknown_task_name_is_retried, last_attempt_dead_letters,
    permanent_error_dead_letters_at_once, requeue_revives_a_dead_task,
    retry_waits_out_the_backoff_and_demotes,
};
pub use job_admin::{
    job_submissions_are_refused_whole, purge_of_a_waiting_job_task_cancels_the_job,
    purge_removes_a_job_with_the_task_that_ended_it,
};
pub use job_endings::{
    a_dead_map_fails_the_job_and_cancels_its_waiting_maps, cancelling_a_job_task_cancels_the_job,
    requeue_of_a_dead_map_leaves_its_job_failed, the_reduce_decides_the_end_of_its_job,
};
pub use jobs::{
    a_released_reduce_is_due_no_earlier_than_its_release,
    job_maps_completed_in_a_batch_enqueue_the_reduce_once,
    job_reduce_is_enqueued_once_when_the_last_map_completes,
    job_results_survive_a_tiny_retention_bound, job_status_counts_maps_done_out_of_total,
    wait_job_returns_the_job_with_its_reduce_once_it_ends,
};
pub use leases::{
    complete_batch_refuses_a_stale_lease_beside_the_current_one,
    heartbeat_batch_extends_held_leases_and_reports_the_rest,
    heartbeat_keeps_a_lease_alive_past_its_first_expiry,
    lapsed_lease_returns_the_task_and_counts_the_attempt, release_hands_the_task_back_uncounted,
    stale_lease_tokens_are_refused,
};
pub use order::{
    batch_reserve_keeps_queue_order, delayed_tasks_stay_invisible_until_due,
    far_future_tasks_stay_delayed_and_readable, priority_order_then_fifo,
    reserve_with_an_unbounded_max_takes_every_due_task,
};
pub use records::{
    duplicate_ids_are_refused, inputs_and_names_of_every_size_round_trip,
    invalid_requests_are_refused_by_name, list_filters_by_status_in_submission_order,
    purge_removes_tasks_as_if_never_submitted,
};
