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
    assert!(wordcount["in_process_speedup"].as_f64().unwrap() > 0.0);

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

    // A second run in the same directory is refused before any work, and the first run's
    // files are left as they were.
    let before = std::fs::read(keep.join("corpus.txt")).unwrap();
    let started = std::time::Instant::now();
    let output = bench.run(&["demo", "--size", "256KB", "--keep", keep.to_str().unwrap()]);
    let message = crate::stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("already holds files the demo writes")
            && message.contains(&keep.join("tasks.db").display().to_string())
            && message.contains(&keep.join("wordcount.db").display().to_string()),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(output.stdout.is_empty(), "{}", crate::stdout(&output));
    assert_eq!(std::fs::read(keep.join("corpus.txt")).unwrap(), before);
}

#[test]
fn keep_never_overwrites_a_file_of_the_users() {
    let bench = Bench::new();
    let keep = bench.path().with_file_name("mine");
    std::fs::create_dir(&keep).unwrap();
    std::fs::write(keep.join("corpus.txt"), "my own corpus").unwrap();
    let output = bench.run(&[
        "demo",
        "--size",
        "64KB",
        "--chunk",
        "8KB",
        "--balance-tasks",
        "2000",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    let message = crate::stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains(&keep.join("corpus.txt").display().to_string()),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(keep.join("corpus.txt")).unwrap(),
        "my own corpus"
    );
    assert!(!keep.join("tasks.db").exists() && !keep.join("wordcount.db").exists());
}

#[test]
fn any_seed_runs() {
    let bench = Bench::new();
    let summary = bench.json(&[
        "demo",
        "--size",
        "16KB",
        "--chunk",
        "4KB",
        "--balance-tasks",
        "2000",
        "--seed",
        &u64::MAX.to_string(),
    ]);
    assert_eq!(summary["priority"]["tasks"].as_array().unwrap().len(), 9);
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
    assert!(last.starts_with("13 of 13 checks passed"), "{last}");
}

#[test]
fn a_failed_demo_argument_is_a_usage_error() {
    let bench = Bench::new();
    let output = bench.run(&["demo", "--size", "lots"]);
    assert_eq!(output.status.code(), Some(2));
}
