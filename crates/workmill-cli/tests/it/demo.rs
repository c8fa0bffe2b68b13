//! `workmill demo` with a small corpus: every check passes and the summary JSON says so.

use crate::Bench;

#[test]
fn a_small_demo_passes_every_check() {
    let bench = Bench::new();
    let keep = bench.path().with_file_name("demo");
    let summary = bench.json(&[
        "demo",
        "--size",
        "256KB",
        "--chunk",
        "16KB",
        "--balance-tasks",
        "2000",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    let checks = summary["checks"].as_array().expect("checks");
    let failed: Vec<&serde_json::Value> = checks.iter().filter(|c| c["passed"] != true).collect();
    assert!(failed.is_empty(), "failed checks: {failed:?}");
    assert_eq!(summary["passed"], true);
    for step in ["wordcount", "priority", "balance"] {
        assert!(checks.iter().any(|c| c["step"] == step), "no {step} check");
    }

    let wordcount = &summary["wordcount"];
    assert!(wordcount["corpus_bytes"].as_u64().unwrap() >= 256 * 1024);
    assert!(wordcount["maps"].as_u64().unwrap() >= 16);
    assert!(wordcount["speedup"].as_f64().unwrap() > 0.0);

    let priority = &summary["priority"];
    assert_eq!(priority["tasks"].as_array().unwrap().len(), 9);
    let stats = &priority["stats"];
    assert_eq!(stats["submitted"], 9);
    assert_eq!(
        stats["completed"].as_u64().unwrap() + stats["dead"].as_u64().unwrap(),
        9
    );

    let runs = summary["balance"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    assert!(
        runs.iter()
            .all(|run| run["completed"].as_u64().unwrap() <= 2000)
    );
    // The Runtime steps ran on SQLite files, kept where asked, that the other commands read.
    assert!(keep.join("wordcount.db").exists() && keep.join("tasks.db").exists());
    let job_id = wordcount["job_id"].as_str().expect("a job id");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_workmill"))
        .args(["inspect", job_id, "--json", "--backend"])
        .arg(format!("sqlite://{}", keep.join("wordcount.db").display()))
        .output()
        .unwrap();
    let job: serde_json::Value = serde_json::from_slice(&output.stdout).expect("job JSON");
    assert_eq!(
        (job["kind"].as_str(), job["status"].as_str()),
        (Some("job"), Some("completed"))
    );
    assert_eq!(job["maps_done"], wordcount["maps"]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_workmill"))
        .args(["list", "--status", "dead", "--json", "--backend"])
        .arg(format!("sqlite://{}", keep.join("tasks.db").display()))
        .output()
        .unwrap();
    let dead: serde_json::Value = serde_json::from_slice(&output.stdout).expect("list JSON");
    assert_eq!(
        dead.as_array().unwrap().len() as u64,
        stats["dead"].as_u64().unwrap()
    );
}

#[test]
fn the_text_summary_ends_with_the_checks() {
    let bench = Bench::new();
    let output = bench.run(&[
        "demo",
        "--size",
        "64KB",
        "--chunk",
        "8KB",
        "--balance-tasks",
        "2000",
    ]);
    assert!(output.status.success(), "{}", crate::stderr(&output));
    let text = crate::stdout(&output);
    for section in [
        "(a) word count",
        "(b) priorities and retries",
        "(c) load balancing",
        "summary",
    ] {
        assert!(text.contains(section), "no {section:?} in {text}");
    }
    assert!(text.contains("STEP       RESULT  CHECK"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("12 of 12 checks passed"), "{last}");
}

#[test]
fn a_failed_demo_argument_is_a_usage_error() {
    let bench = Bench::new();
    let output = bench.run(&["demo", "--size", "lots"]);
    assert_eq!(output.status.code(), Some(2));
}
