//! The operator's commands on one SQLite file: submit, list, inspect, a worker, retry of a
//! dead task, cancel and purge, read back through `--json`.

use serde_json::Value;

use crate::{Bench, stdout};

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|task| task["id"].as_str().expect("an id"))
        .collect()
}

#[test]
fn submit_then_list_and_inspect_show_the_task() {
    let bench = Bench::new();
    let submitted = bench.json(&[
        "submit",
        "square",
        "12",
        "--priority",
        "1",
        "--retries",
        "4",
        "--id",
        "sq",
    ]);
    assert_eq!(submitted["id"], "sq");
    assert_eq!(submitted["name"], "demo.square");
    let generated = bench.json(&["submit", "echo", "hello world"]);
    let echo = generated["id"].as_str().unwrap().to_owned();

    let pending = bench.json(&["list", "--status", "pending"]);
    assert_eq!(ids(&pending), ["sq", echo.as_str()]);
    assert_eq!(
        ids(&bench.json(&["list", "--status", "pending", "--limit", "1"])),
        ["sq"]
    );
    assert!(ids(&bench.json(&["list", "--status", "dead"])).is_empty());

    let task = bench.json(&["inspect", "sq"]);
    assert_eq!(task["status"], "pending");
    assert_eq!(task["priority"], 1);
    assert_eq!(task["max_attempts"], 5);
    assert_eq!(task["input"], 12);
    let task = bench.json(&["inspect", &echo]);
    assert_eq!(task["input"], "hello world");

    // The text forms are for people, but they carry the same facts.
    let text = stdout(&bench.run(&["inspect", "sq"]));
    assert!(
        text.contains("status:") && text.contains("pending"),
        "{text}"
    );
    let table = stdout(&bench.run(&["list"]));
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("demo.echo"), "{table}");

    let stats = bench.json(&["stats"]);
    assert_eq!(
        (stats["submitted"].as_u64(), stats["pending"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn a_worker_runs_tasks_and_a_dead_task_can_be_retried() {
    let bench = Bench::new();
    bench.json(&["submit", "square", "9", "--id", "nine"]);
    bench.json(&["submit", "fail", "broken on purpose", "--id", "broken"]);
    let report = bench.json(&["worker", "--until-idle", "--concurrency", "2"]);
    assert_eq!(report["completed"], 1);
    assert_eq!(report["failed"], 1);

    let nine = bench.json(&["inspect", "nine"]);
    assert_eq!(
        (nine["status"].as_str(), nine["result"].as_u64()),
        (Some("completed"), Some(81))
    );
    let broken = bench.json(&["inspect", "broken"]);
    assert_eq!(broken["status"], "dead");
    assert_eq!(broken["last_error"]["kind"], "permanent");
    assert_eq!(broken["last_error"]["message"], "broken on purpose");
    // `failed` is the dead letters' other name.
    assert_eq!(
        ids(&bench.json(&["list", "--status", "failed"])),
        ["broken"]
    );

    let retried = bench.json(&["retry", "broken"]);
    assert_eq!(retried["status"], "pending");
    let broken = bench.json(&["inspect", "broken"]);
    assert_eq!(
        (broken["status"].as_str(), broken["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );

    // It runs again, and dies again: the retry gave it a fresh attempt.
    bench.json(&["worker", "--until-idle"]);
    let broken = bench.json(&["inspect", "broken"]);
    assert_eq!(
        (broken["status"].as_str(), broken["attempts"].as_u64()),
        (Some("dead"), Some(1))
    );
    let stats = bench.json(&["stats"]);
    assert_eq!(
        (stats["completed"].as_u64(), stats["dead"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn cancel_then_purge_removes_finished_tasks_only() {
    let bench = Bench::new();
    bench.json(&["submit", "sleep", "10", "--id", "keep"]);
    bench.json(&["submit", "sleep", "10", "--id", "drop"]);
    let cancelled = bench.json(&["cancel", "drop"]);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(bench.json(&["inspect", "drop"])["status"], "cancelled");
    assert_eq!(
        ids(&bench.json(&["list", "--status", "cancelled"])),
        ["drop"]
    );

    let purged = bench.json(&["purge"]);
    assert_eq!(purged["purged"], 1);
    assert_eq!(ids(&bench.json(&["list"])), ["keep"]);
    let stats = bench.json(&["stats"]);
    assert_eq!(
        (stats["submitted"].as_u64(), stats["cancelled"].as_u64()),
        (Some(1), Some(0))
    );
}

#[test]
fn the_default_backend_is_a_file_in_the_working_directory() {
    let bench = Bench::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_workmill"))
        .args(["submit", "square", "3", "--id", "here"])
        .current_dir(bench.path().parent().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", crate::stderr(&output));
    assert!(bench.path().with_file_name("workmill.db").exists());
}
