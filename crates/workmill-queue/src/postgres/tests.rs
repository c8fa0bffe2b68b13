//! Unit tests of the PostgreSQL backend's internals: statements written from the transition table,
//! migrations from an older schema, refusal of a newer one, the plans that keep the hot
//! statements on their partial indexes, `list` past rows damaged by hand, and the rescue of
//! lapsed leases past a running row damaged by hand. Tests needing a server read
//! `WORKMILL_POSTGRES_URL` and say they were skipped when it is unset.

use std::time::Duration;

use postgres::{Client, NoTls};
use workmill_core::{
    Backoff, FailureKind, ListFilter, NewTask, Queue, QueueError, RetryPolicy, TaskId, TaskRecord,
    TaskStatus, WorkerId,
};

use super::pool::Settings;
use super::reserve::CLAIMED_FROM;
use super::schema::{LATEST_VERSION, MIGRATIONS, migrate};
use super::{PostgresConfig, PostgresQueue};

#[test]
fn reserve_claims_exactly_the_statuses_that_may_become_running() {
    let allowed: Vec<TaskStatus> = TaskStatus::ALL
        .into_iter()
        .filter(|status| status.can_become(TaskStatus::Running))
        .collect();
    assert_eq!(allowed, CLAIMED_FROM);
}

#[test]
fn migrations_are_numbered_in_order() {
    let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    let expected: Vec<i32> = (1..=LATEST_VERSION).collect();
    assert_eq!(versions, expected);
}

/// A server connection and a fresh schema name, dropped at the end of the test.
struct Scratch {
    url: String,
    schema: String,
    admin: Client,
}

impl Scratch {
    fn new() -> Option<Scratch> {
        let Some(url) = std::env::var("WORKMILL_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            println!(
                "skipped: WORKMILL_POSTGRES_URL is not set, so there is no PostgreSQL server to test against"
            );
            return None;
        };
        let admin = Client::connect(&url, NoTls).expect("connect to the test server");
        let schema = format!("wmunit_{}", TaskId::generate().as_str().to_lowercase());
        Some(Scratch { url, schema, admin })
    }

    fn url(&self) -> String {
        let joiner = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{joiner}schema={}", self.url, self.schema)
    }

    fn sql(&self, template: &str) -> String {
        Settings::new(&self.schema, None, 0).render(template)
    }

    /// The plan of the statement `template` as one text.
    fn plan(&mut self, template: &str) -> String {
        let sql = self.sql(template);
        self.admin
            .query(&format!("EXPLAIN {sql}"), &[])
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ));
    }
}

#[test]
fn a_version_1_schema_is_migrated_and_its_tasks_survive() {
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let settings = Settings::new(&scratch.schema, None, 0);
    // A schema as the first release left it: version 1, one waiting task.
    assert_eq!(
        migrate(&mut scratch.admin, &scratch.schema, &settings, 1).unwrap(),
        0
    );
    let insert = scratch.sql(
        "INSERT INTO {s}.tasks (id, name, payload, payload_checksum, status, priority, seq,
             submission, max_attempts, backoff, backoff_initial_us, backoff_factor,
             backoff_max_us, jitter, demote_by, created_at, run_at)
         VALUES ('old-task', 'legacy.job', '\\xDEADBEEF', $1, 'pending', 5, 1, 1, 3,
             'exponential', 1000000, 2.0, 300000000, 0.1, 0, 1700000000000000, 1700000000000000);
         ",
    );
    let checksum = crate::stored::payload_checksum(&[0xDE, 0xAD, 0xBE, 0xEF]);
    scratch.admin.execute(&insert, &[&checksum]).unwrap();
    scratch
        .admin
        .batch_execute(&scratch.sql(
            "UPDATE {s}.queue_counters SET submitted = 1, pending = 1 WHERE shard = 0;
             SELECT setval('{s}.task_arrivals', 1);",
        ))
        .unwrap();
    let views: i64 = scratch
        .admin
        .query_one(
            "SELECT count(*) FROM pg_views WHERE schemaname = $1",
            &[&scratch.schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(views, 0, "version 1 has no views");

    let queue = PostgresQueue::open(&scratch.url()).unwrap();
    assert_eq!(queue.schema_version().unwrap(), LATEST_VERSION);
    let old = TaskId::new("old-task").unwrap();
    let record = queue.status(&old).expect("the migrated task reads back");
    assert_eq!(record.payload, [0xDE, 0xAD, 0xBE, 0xEF]);
    assert_eq!(
        (record.status, record.name.as_str()),
        (TaskStatus::Pending, "legacy.job")
    );
    queue
        .enqueue(NewTask::new("new.job", vec![1]))
        .expect("new tasks go in after the old");
    let worker = WorkerId::new("w").unwrap();
    let got = queue.reserve(&worker, 10, Duration::from_secs(60)).unwrap();
    assert_eq!(got[0].id(), &old, "the old task keeps its place in line");
    for reservation in &got {
        queue.complete(&reservation.lease, Vec::new()).unwrap();
    }
    let stats = queue.stats().unwrap();
    assert_eq!((stats.submitted, stats.completed), (2, 2));

    let history: Vec<(i32, String)> = scratch
        .admin
        .query(
            &scratch.sql("SELECT version, description FROM {s}.schema_migrations ORDER BY version"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(history.len(), LATEST_VERSION as usize);
    assert!(history[1].1.contains("task_overview"), "{history:?}");
    assert!(history[2].1.contains("jobs"), "{history:?}");
    let job_of_old: Option<String> = scratch
        .admin
        .query_one(
            &scratch.sql("SELECT job_id FROM {s}.tasks WHERE id = 'old-task'"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        job_of_old, None,
        "a task stored before jobs belongs to none"
    );
    let completed: i64 = scratch
        .admin
        .query_one(&scratch.sql("SELECT completed FROM {s}.queue_stats"), &[])
        .unwrap()
        .get(0);
    assert_eq!(
        completed, 2,
        "the view added by version 2 reads the counters"
    );
    drop(queue);
    // Opening again migrates nothing.
    let queue = PostgresQueue::open(&scratch.url()).unwrap();
    assert_eq!(queue.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn a_schema_from_a_newer_workmill_is_refused() {
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    drop(PostgresQueue::open(&scratch.url()).unwrap());
    let record = scratch.sql(
        "INSERT INTO {s}.schema_migrations (version, description) VALUES ($1, 'from the future')",
    );
    scratch
        .admin
        .execute(&record, &[&(LATEST_VERSION + 7)])
        .unwrap();
    let err = PostgresQueue::open(&scratch.url()).unwrap_err();
    // Not transient: a worker must refuse it, not wait it out.
    assert!(matches!(err, QueueError::Incompatible { .. }), "{err:?}");
    assert!(!err.is_transient());
    let message = err.to_string();
    assert!(
        message.contains("newer") && message.contains("upgrade workmill"),
        "{message}"
    );
    assert!(message.contains(&scratch.schema), "{message}");
}

/// Rows that cannot be read take no place in a page: `list` goes on reading until it has
/// `limit` readable records or none are left, for every status filter.
#[test]
fn list_fills_its_page_past_unreadable_rows() {
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let queue = PostgresQueue::open(&scratch.url()).unwrap();
    let ids: Vec<TaskId> = (0..6u8)
        .map(|i| {
            queue
                .enqueue(
                    NewTask::new("list.page", vec![i])
                        .with_id(TaskId::new(format!("t{i}")).unwrap()),
                )
                .unwrap()
        })
        .collect();
    // Two kinds of damage a hand edit can do within the column types: a payload that no
    // longer matches its checksum, and a failure kind workmill never writes. The first two
    // tasks in submission order and one further on are damaged.
    let damage = scratch.sql(
        "UPDATE {s}.tasks SET payload = '\\xFFFF' WHERE id = 't0';
         UPDATE {s}.tasks SET last_error_kind = 'no-such-kind', last_error_message = 'x'
             WHERE id IN ('t1', 't3');",
    );
    scratch.admin.batch_execute(&damage).unwrap();
    for id in ["t0", "t1", "t3"] {
        let err = queue.status(&TaskId::new(id).unwrap()).unwrap_err();
        assert!(matches!(err, QueueError::Corrupt { .. }), "{id}: {err:?}");
    }

    for status in [None, Some(TaskStatus::Pending)] {
        let page = queue.list(&ListFilter { status, limit: 2 }).unwrap();
        let listed: Vec<&TaskId> = page.iter().map(|r| &r.id).collect();
        assert_eq!(listed, [&ids[2], &ids[4]], "status filter {status:?}");
        let page = queue.list(&ListFilter { status, limit: 3 }).unwrap();
        let listed: Vec<&TaskId> = page.iter().map(|r| &r.id).collect();
        assert_eq!(
            listed,
            [&ids[2], &ids[4], &ids[5]],
            "status filter {status:?}"
        );
        let all = queue.list(&ListFilter { status, limit: 100 }).unwrap();
        assert_eq!(all.len(), 3, "status filter {status:?}");
    }
    let running = ListFilter {
        status: Some(TaskStatus::Running),
        limit: 2,
    };
    assert!(queue.list(&running).unwrap().is_empty());
    let none = ListFilter {
        status: None,
        limit: 0,
    };
    assert!(queue.list(&none).unwrap().is_empty());
}

#[test]
fn the_hot_statements_read_their_partial_indexes() {
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let queue = PostgresConfig::new()
        .retain_finished(None)
        .open(&scratch.url())
        .unwrap();
    // The shape of a long-lived queue: mostly finished records, a backlog, a few running.
    let tasks: Vec<NewTask> = (0..3_000u32)
        .map(|i| NewTask::new("plan.check", i.to_le_bytes().to_vec()))
        .collect();
    queue.enqueue_batch(tasks).unwrap();
    let worker = WorkerId::new("planner").unwrap();
    let done: Vec<_> = queue
        .reserve(&worker, 2_800, Duration::from_secs(600))
        .unwrap()
        .into_iter()
        .map(|r| (r.lease, Vec::new()))
        .collect();
    queue.complete_batch(done).unwrap();
    queue
        .reserve(&worker, 20, Duration::from_secs(600))
        .unwrap();
    scratch
        .admin
        .batch_execute(&scratch.sql("ANALYZE {s}.tasks; SET enable_seqscan = off;"))
        .unwrap();
    // With sequential scans priced out, a statement that cannot use its partial index (its
    // predicate does not imply the index's) would still show a bitmap or full-index scan
    // of another index, or a sort; these checks pin the intended one.
    // A backlog that is due: reserve walks the queue order and stops, no sort.
    let reserve = scratch.plan(
        "SELECT id FROM {s}.tasks WHERE status IN ('pending', 'retrying')
             AND run_at <= 9223372036854775807
             ORDER BY priority, seq LIMIT 10 FOR UPDATE SKIP LOCKED",
    );
    assert!(reserve.contains("tasks_ready"), "{reserve}");
    assert!(
        !reserve.contains("Sort"),
        "reserve must not sort: {reserve}"
    );
    // A backlog that is not due yet (delayed tasks): reserve reads only the due ones, by
    // time, instead of stepping over the whole backlog in queue order.
    let nothing_due = scratch.plan(
        "SELECT id FROM {s}.tasks WHERE status IN ('pending', 'retrying') AND run_at <= 1
             ORDER BY priority, seq LIMIT 10 FOR UPDATE SKIP LOCKED",
    );
    assert!(nothing_due.contains("tasks_due"), "{nothing_due}");
    let due =
        scratch.plan("SELECT min(run_at) FROM {s}.tasks WHERE status IN ('pending', 'retrying')");
    assert!(due.contains("tasks_due"), "{due}");
    let lapsed = scratch.plan(
        "SELECT id FROM {s}.tasks WHERE status = 'running' AND lease_expires_at <= 1
             ORDER BY lease_expires_at LIMIT 500 FOR UPDATE SKIP LOCKED",
    );
    assert!(lapsed.contains("tasks_leased"), "{lapsed}");
    let retention = scratch.plan(
        "SELECT id FROM {s}.tasks WHERE status IN ('completed', 'dead', 'cancelled')
             ORDER BY finished_at, submission LIMIT 5 FOR UPDATE SKIP LOCKED",
    );
    assert!(retention.contains("tasks_finished"), "{retention}");
    assert!(
        !retention.contains("Sort"),
        "retention must not sort: {retention}"
    );
}

/// Leases tasks `a`, `damaged` and `b` (policy `retry`) to one worker, then damages the
/// running row of `damaged` by hand (its `lease_token` set to NULL, which the column allows)
/// and lets all three leases lapse.
fn lapsed_beside_a_row_without_a_lease_token(
    scratch: &mut Scratch,
    retry: RetryPolicy,
) -> PostgresQueue {
    let queue = PostgresQueue::open(&scratch.url()).unwrap();
    for id in ["a", "damaged", "b"] {
        queue
            .enqueue(
                NewTask::new("rescue.damaged", id.as_bytes().to_vec())
                    .with_id(TaskId::new(id).unwrap())
                    .retry(retry.clone()),
            )
            .unwrap();
    }
    let worker = WorkerId::new("vanished").unwrap();
    let held = queue.reserve(&worker, 3, Duration::from_secs(600)).unwrap();
    assert_eq!(held.len(), 3);
    // The damaged row lapsed first, so that it leads the rescue's batch.
    let damage = scratch.sql(
        "UPDATE {s}.tasks SET lease_expires_at = 2 WHERE status = 'running';
         UPDATE {s}.tasks SET lease_token = NULL, lease_expires_at = 1 WHERE id = 'damaged';",
    );
    scratch.admin.batch_execute(&damage).unwrap();
    queue
}

fn record(queue: &PostgresQueue, id: &str) -> TaskRecord {
    queue.status(&TaskId::new(id).unwrap()).unwrap()
}

/// The damaged row is dead-lettered as `Corrupt`, naming the column.
fn assert_dead_letter_names_the_lease_token(queue: &PostgresQueue) {
    let damaged = record(queue, "damaged");
    assert_eq!(damaged.status, TaskStatus::Dead);
    let failure = damaged.last_error.expect("a dead-lettered task says why");
    assert_eq!(failure.kind, FailureKind::Corrupt, "{failure:?}");
    assert!(failure.message.contains("lease_token"), "{failure:?}");
}

/// A running row without a lease token fails only itself: `rescue_expired` dead-letters it as
/// `Corrupt` and rescues every intact lapsed lease in the same pass, and the counts agree.
#[test]
fn rescue_expired_rescues_lapsed_leases_past_a_row_without_a_lease_token() {
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let retry = RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_secs(600)));
    let queue = lapsed_beside_a_row_without_a_lease_token(&mut scratch, retry);

    assert_eq!(queue.rescue_expired().unwrap(), 3);
    for id in ["a", "b"] {
        let rescued = record(&queue, id);
        assert_eq!(rescued.status, TaskStatus::Retrying, "{id}");
        assert_eq!(rescued.attempts, 1, "{id}");
        let failure = rescued.last_error.expect("a rescued task says why");
        assert_eq!(failure.kind, FailureKind::LeaseExpired, "{id}: {failure:?}");
    }
    assert_dead_letter_names_the_lease_token(&queue);
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(
        (stats.running, stats.retrying, stats.dead, stats.retried),
        (0, 2, 1, 2),
        "{stats:?}"
    );
    assert_eq!(stats.expired_leases, 3, "{stats:?}");
    assert_eq!(queue.rescue_expired().unwrap(), 0);
}

/// The rescue that `reserve` runs when a lease has lapsed gets past the damaged row too: the
/// intact lapsed tasks (retried at once) are rescued and handed out again in the same call.
#[test]
fn reserve_rescues_lapsed_leases_past_a_row_without_a_lease_token() {
    let Some(mut scratch) = Scratch::new() else {
        return;
    };
    let retry = RetryPolicy::new(3).backoff(Backoff::Immediate);
    let queue = lapsed_beside_a_row_without_a_lease_token(&mut scratch, retry);

    let worker = WorkerId::new("successor").unwrap();
    let again = queue
        .reserve(&worker, 10, Duration::from_secs(600))
        .unwrap();
    let mut ids: Vec<&str> = again.iter().map(|r| r.lease.task.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"]);
    assert!(again.iter().all(|r| r.attempt == 2), "{again:?}");
    assert_dead_letter_names_the_lease_token(&queue);
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!((stats.running, stats.dead), (2, 1), "{stats:?}");
}
