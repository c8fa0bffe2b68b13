//! `cargo xtask bench`: runs the criterion benches and writes one summary with workmill and its baselines side by side.
//!
//! Conventions the benches follow, so that this file can pair results:
//!
//! - a bench target is named `<group>_<topic>` (for example `executor_join`);
//! - its criterion groups are named `<group>/<case>`, and inside a group the
//!   function named `workmill` (or `workmill-<variant>`) is ours, every other
//!   function (`rayon`, `sequential`, `channel-pool`, ...) is a baseline;
//! - a bench may add rows of its own (simulator ratios, say) by writing a JSON
//!   array of row objects to `$WORKMILL_BENCH_OUT/rows/<name>.json`.
//!
//! Every summary row compares one workmill function with one baseline of the
//! same case, measured in the same run: `ratio = workmill_ns / baseline_ns`,
//! from criterion's median estimates. Below 1.0 workmill is faster.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::workspace;

const BENCH_PACKAGE: &str = "workmill-benches";

/// Arguments given to criterion in `--quick` mode: short warm-up and measurement, the minimum sample.
const QUICK_ARGS: [&str; 6] = [
    "--warm-up-time",
    "0.5",
    "--measurement-time",
    "1.5",
    "--sample-size",
    "10",
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut groups = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            flag if flag.starts_with('-') => return Err(format!("bench: unknown flag {flag:?}")),
            group => groups.push(group.to_owned()),
        }
    }

    let targets = bench_targets()?;
    let selected: Vec<&String> = if groups.is_empty() {
        targets.iter().collect()
    } else {
        let known: Vec<&str> = targets.iter().map(|t| group_of(t)).collect();
        for group in &groups {
            if !known.contains(&group.as_str()) {
                let mut known = known.clone();
                known.dedup();
                return Err(format!(
                    "bench: no benchmark group {group:?}; known groups: {}",
                    known.join(", ")
                ));
            }
        }
        targets
            .iter()
            .filter(|t| groups.iter().any(|g| g == group_of(t)))
            .collect()
    };

    let out_dir = workspace::root().join("target/workmill-bench");
    let rows_dir = out_dir.join("rows");
    // Extra rows from an earlier run must not leak into this summary.
    let _ = fs::remove_dir_all(&rows_dir);
    fs::create_dir_all(&rows_dir)
        .map_err(|e| format!("bench: cannot create {}: {e}", rows_dir.display()))?;
    let started = SystemTime::now();

    for target in &selected {
        let mut command = workspace::cargo();
        command
            .env("WORKMILL_BENCH_OUT", &out_dir)
            .env("WORKMILL_BENCH_QUICK", if quick { "1" } else { "0" })
            .args(["bench", "-p", BENCH_PACKAGE, "--bench", target, "--"]);
        if quick {
            command.args(QUICK_ARGS);
        }
        workspace::run(&mut command)?;
    }

    let mut rows = criterion_rows(&workspace::root().join("target/criterion"), started)?;
    rows.extend(extra_rows(&rows_dir)?);
    rows.sort_by(|a, b| {
        let key = |r: &Value| {
            (
                r["group"].as_str().map(str::to_owned),
                r["case"].as_str().map(str::to_owned),
            )
        };
        key(a).cmp(&key(b))
    });
    if rows.is_empty() {
        return Err("bench: the benches ran but produced no comparable results".to_owned());
    }

    let json =
        serde_json::to_string_pretty(&Value::Array(rows.clone())).map_err(|e| e.to_string())?;
    fs::write(out_dir.join("summary.json"), json + "\n")
        .map_err(|e| format!("bench: cannot write summary.json: {e}"))?;
    let table = markdown(&rows);
    fs::write(out_dir.join("summary.md"), &table)
        .map_err(|e| format!("bench: cannot write summary.md: {e}"))?;
    println!("\n{table}");
    println!("wrote {}", out_dir.join("summary.json").display());
    Ok(())
}

/// The bench targets of the benches package, sorted.
fn bench_targets() -> Result<Vec<String>, String> {
    let metadata = workspace::metadata()?;
    let package = workspace::packages(&metadata)
        .into_iter()
        .find(|p| p["name"] == BENCH_PACKAGE)
        .ok_or_else(|| format!("bench: package {BENCH_PACKAGE} is not in the workspace"))?;
    let mut names: Vec<String> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bench"))
        })
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// `executor_join` belongs to group `executor`.
fn group_of(target: &str) -> &str {
    target.split('_').next().unwrap_or(target)
}

/// One measured function of one criterion group.
struct Measurement {
    group: String,
    case: String,
    function: String,
    /// Median nanoseconds per iteration, or per element when criterion knew the throughput.
    ns: f64,
    per_element: bool,
}

/// Reads every `new/benchmark.json` under `criterion_dir` written since `since`.
fn measurements(criterion_dir: &Path, since: SystemTime) -> Result<Vec<Measurement>, String> {
    let mut found = Vec::new();
    let mut stack = vec![criterion_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let in_new = path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "new");
            if !in_new || path.file_name().is_none_or(|n| n != "benchmark.json") {
                continue;
            }
            let fresh = fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if fresh {
                found.push(path);
            }
        }
    }

    let mut out = Vec::new();
    for path in found {
        let benchmark = read_json(&path)?;
        let estimates = read_json(&path.with_file_name("estimates.json"))?;
        let Some(group_id) = benchmark["group_id"].as_str() else {
            continue;
        };
        let Some((group, case)) = group_id.split_once('/') else {
            continue;
        };
        let function = benchmark["function_id"].as_str().unwrap_or("").to_owned();
        let mut case = case.to_owned();
        if let Some(value) = benchmark["value_str"].as_str() {
            case = format!("{case}/{value}");
        }
        let Some(median) = estimates["median"]["point_estimate"].as_f64() else {
            continue;
        };
        let elements = benchmark["throughput"]["Elements"]
            .as_f64()
            .or_else(|| benchmark["throughput"]["ElementsAndBytes"]["elements"].as_f64());
        let (ns, per_element) = match elements {
            Some(n) if n > 0.0 => (median / n, true),
            _ => (median, false),
        };
        out.push(Measurement {
            group: group.to_owned(),
            case,
            function,
            ns,
            per_element,
        });
    }
    Ok(out)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("bench: cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("bench: {} is not valid JSON: {e}", path.display()))
}

/// Pairs each workmill function with each baseline of the same case.
fn criterion_rows(criterion_dir: &Path, since: SystemTime) -> Result<Vec<Value>, String> {
    let mut cases: BTreeMap<(String, String), Vec<Measurement>> = BTreeMap::new();
    for m in measurements(criterion_dir, since)? {
        cases
            .entry((m.group.clone(), m.case.clone()))
            .or_default()
            .push(m);
    }
    let mut rows = Vec::new();
    for ((group, case), functions) in cases {
        let (ours, baselines): (Vec<&Measurement>, Vec<&Measurement>) = functions
            .iter()
            .partition(|m| m.function == "workmill" || m.function.starts_with("workmill-"));
        for workmill in &ours {
            let case_name = match workmill.function.strip_prefix("workmill-") {
                Some(variant) => format!("{case}/{variant}"),
                None => case.clone(),
            };
            for baseline in &baselines {
                rows.push(row(&group, &case_name, workmill, baseline));
            }
        }
    }
    Ok(rows)
}

fn row(group: &str, case: &str, workmill: &Measurement, baseline: &Measurement) -> Value {
    let unit = if workmill.per_element {
        "ns/element"
    } else {
        "ns/iter"
    };
    json!({
        "group": group,
        "case": case,
        "workmill_ns": workmill.ns,
        "baseline": baseline.function,
        "baseline_ns": baseline.ns,
        "ratio": workmill.ns / baseline.ns,
        "unit": unit,
    })
}

/// Rows the benches wrote themselves, each file a JSON array of row objects.
fn extra_rows(rows_dir: &PathBuf) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    let Ok(entries) = fs::read_dir(rows_dir) else {
        return Ok(rows);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            match read_json(&path)? {
                Value::Array(items) => rows.extend(items),
                _ => {
                    return Err(format!(
                        "bench: {} must hold a JSON array of rows",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(rows)
}

/// The summary as a markdown table.
fn markdown(rows: &[Value]) -> String {
    let mut out = String::from(
        "| group | case | workmill | baseline | baseline time | ratio |\n|---|---|---:|---|---:|---:|\n",
    );
    for r in rows {
        let unit = r["unit"].as_str().unwrap_or("ns/iter");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.3} |",
            r["group"].as_str().unwrap_or("?"),
            r["case"].as_str().unwrap_or("?"),
            human(r["workmill_ns"].as_f64(), unit),
            r["baseline"].as_str().unwrap_or("?"),
            human(r["baseline_ns"].as_f64(), unit),
            r["ratio"].as_f64().unwrap_or(f64::NAN),
        );
    }
    out
}

/// `1234567.0 ns` as `1.235 ms`, keeping the per-element unit visible.
fn human(ns: Option<f64>, unit: &str) -> String {
    let Some(ns) = ns else { return "?".to_owned() };
    let per = if unit == "ns/element" { "/elem" } else { "" };
    let (value, suffix) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    format!("{value:.3} {suffix}{per}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_each_workmill_function_with_each_baseline() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let write = |group: &str, function: &str, median: f64| {
            let d = dir.join(group.replace('/', "_")).join(function).join("new");
            fs::create_dir_all(&d).unwrap();
            let benchmark = json!({"group_id": group, "function_id": function, "value_str": null, "throughput": null});
            fs::write(d.join("benchmark.json"), benchmark.to_string()).unwrap();
            fs::write(
                d.join("estimates.json"),
                json!({"median": {"point_estimate": median}}).to_string(),
            )
            .unwrap();
        };
        let since = SystemTime::now() - std::time::Duration::from_secs(1);
        write("codec/encode", "workmill", 50.0);
        write("codec/encode", "serde_json", 200.0);
        write("codec/decode", "workmill", 80.0);
        write("codec/decode", "serde_json", 40.0);
        write("codec/decode", "bincode", 80.0);
        let rows = criterion_rows(&dir, since).unwrap();
        assert_eq!(rows.len(), 3);
        let encode = rows.iter().find(|r| r["case"] == "encode").unwrap();
        assert_eq!(encode["ratio"].as_f64(), Some(0.25));
        let decode_json = rows
            .iter()
            .find(|r| r["case"] == "decode" && r["baseline"] == "serde_json")
            .unwrap();
        assert_eq!(decode_json["ratio"].as_f64(), Some(2.0));
        assert!(
            markdown(&rows)
                .contains("| codec | encode | 50.000 ns | serde_json | 200.000 ns | 0.250 |")
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Some(12.0), "ns/iter"), "12.000 ns");
        assert_eq!(human(Some(1_500_000.0), "ns/iter"), "1.500 ms");
        assert_eq!(human(Some(2_000.0), "ns/element"), "2.000 µs/elem");
        assert_eq!(group_of("executor_join"), "executor");
    }
}
