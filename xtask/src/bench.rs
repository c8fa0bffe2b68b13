//! `cargo xtask bench`: runs the criterion benches and writes one summary with workmill and its baselines side by side.
//!
//! Conventions the benches follow, so that this file can pair results:
//!
//! - a bench target is named `<group>_<topic>` (for example `executor_join`);
//! - its criterion groups are named `<group>/<case>`, and inside a group the
//!   function named `workmill` (or `workmill-<variant>`) is ours, every other
//!   function (`rayon`, `sequential`, `channel-pool`, ...) is a baseline;
//! - a bench may add rows of its own (simulator ratios, say) by writing a JSON
//!   array of row objects to `$WORKMILL_BENCH_OUT/rows/<name>.json`; the
//!   benches built on `workmill_benches::interleaved` write all their rows so,
//!   with `"method": "interleaved"` and a `ratio` that is the median of
//!   per-round ratios.
//!
//! Every summary row compares one workmill function with one baseline of the
//! same case, measured in the same run: `ratio = workmill_ns / baseline_ns`,
//! from criterion's median estimates. Below 1.0 workmill is faster.
//!
//! `--filter TEXT` is handed to every bench binary, as `cargo bench -- TEXT`
//! does, so only the cases whose id it matches run (`--filter quicksort`).
//!
//! `--runs N` runs the selected benches N times, one whole pass after
//! another, and each row reports the median of its N ratios (`ratio`), their
//! range (`ratio_min`, `ratio_max`) and every ratio in run order (`ratios`);
//! `workmill_ns` and `baseline_ns` are then the medians of their own runs. On
//! a noisy machine a case at parity flips either side of 1.0 from run to run;
//! the median over runs is the figure to compare with a target.

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

/// What `cargo xtask bench` was asked to run.
#[derive(Debug, Default, PartialEq)]
struct Options {
    quick: bool,
    runs: usize,
    /// Benchmark groups to run; all when empty.
    groups: Vec<String>,
    /// Handed to every bench binary as its filter, as `cargo bench -- FILTER` does: only
    /// cases whose id (`group/case`, or criterion's `group/case/function`) it matches run.
    filter: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        runs: 1,
        ..Options::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--runs" => options.runs = parse_runs(args.next().map(String::as_str))?,
            flag if flag.starts_with("--runs=") => {
                options.runs = parse_runs(flag.strip_prefix("--runs="))?;
            }
            "--filter" => options.filter = Some(parse_filter(args.next().map(String::as_str))?),
            flag if flag.starts_with("--filter=") => {
                options.filter = Some(parse_filter(flag.strip_prefix("--filter="))?);
            }
            flag if flag.starts_with('-') => return Err(format!("bench: unknown flag {flag:?}")),
            group => options.groups.push(group.to_owned()),
        }
    }
    Ok(options)
}

fn parse_filter(value: Option<&str>) -> Result<String, String> {
    match value {
        Some(text) if !text.is_empty() && !text.starts_with('-') => Ok(text.to_owned()),
        _ => Err("bench: --filter needs the text of a case id, e.g. --filter quicksort".to_owned()),
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let Options {
        quick,
        runs,
        groups,
        filter,
    } = parse_args(args)?;

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
    let mut passes = Vec::with_capacity(runs);
    for pass in 1..=runs {
        if runs > 1 {
            println!("xtask bench: run {pass} of {runs}");
        }
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
            command.args(&filter);
            workspace::run(&mut command)?;
        }

        let mut rows = criterion_rows(&criterion_dir(), started)?;
        rows.extend(extra_rows(&rows_dir)?);
        passes.push(rows);
    }
    let mut rows = combine_runs(passes);
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
        return Err(match &filter {
            Some(filter) => format!("bench: the filter {filter:?} selected no case"),
            None => "bench: the benches ran but produced no comparable results".to_owned(),
        });
    }

    // A backend bench without its server prints that it skipped and writes nothing; without
    // a filter, say so here too rather than leave its rows silently missing.
    let unmeasured = if filter.is_none() {
        unmeasured_backends(&selected, &rows)
    } else {
        Vec::new()
    };

    let json =
        serde_json::to_string_pretty(&Value::Array(rows.clone())).map_err(|e| e.to_string())?;
    fs::write(out_dir.join("summary.json"), json + "\n")
        .map_err(|e| format!("bench: cannot write summary.json: {e}"))?;
    let mut table = markdown(&rows);
    if !unmeasured.is_empty() {
        table.push_str("\nNot measured:\n");
        for note in &unmeasured {
            let _ = writeln!(table, "- {note}");
        }
    }
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

/// The backend benches among `selected` (`backends_<backend>`) that wrote no row: their server
/// was unreachable, its URL unset, or the server too old for the baseline (each bench says
/// which when it skips).
fn unmeasured_backends(selected: &[&String], rows: &[Value]) -> Vec<String> {
    selected
        .iter()
        .filter_map(|target| target.strip_prefix("backends_"))
        .filter(|backend| {
            !rows.iter().any(|r| {
                r["group"] == "backends" && r["case"].as_str().is_some_and(|c| c.contains(backend))
            })
        })
        .map(|backend| {
            format!(
                "backends/{backend}: its bench wrote no rows; its output above says why (a \
                 server unreachable, its URL unset, or too old for the baseline)"
            )
        })
        .collect()
}

/// `executor_join` belongs to group `executor`.
fn group_of(target: &str) -> &str {
    target.split('_').next().unwrap_or(target)
}

fn parse_runs(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Ok(n),
        Some(Ok(_)) => Err("bench: --runs needs at least 1 run".to_owned()),
        Some(Err(_)) | None => Err(format!(
            "bench: --runs needs a whole number of runs, got {}",
            value.map_or("nothing".to_owned(), |v| format!("{v:?}"))
        )),
    }
}

/// The median of `values`; for an even count, the mean of the middle two.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Merges the rows of several runs: one row per (group, case, baseline), whose
/// `ratio`, `workmill_ns` and `baseline_ns` are medians over the runs that
/// measured it, with `ratios` in run order and their range. A single run's rows
/// come back as they are.
fn combine_runs(passes: Vec<Vec<Value>>) -> Vec<Value> {
    if passes.len() < 2 {
        return passes.into_iter().flatten().collect();
    }
    type Key = (String, String, String, usize);
    let mut merged: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
    for pass in passes {
        // A bench may write two rows with the same names in one run; the nth
        // of them is matched with the nth of every other run.
        let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for row in pass {
            let text = |field: &str| row[field].as_str().unwrap_or_default().to_owned();
            let names = (text("group"), text("case"), text("baseline"));
            let nth = seen.entry(names.clone()).or_default();
            let key = (names.0, names.1, names.2, *nth);
            *nth += 1;
            merged.entry(key).or_default().push(row);
        }
    }
    merged
        .into_values()
        .filter_map(|runs| {
            let mut first = runs.first()?.clone();
            let field =
                |name: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[name].as_f64()).collect() };
            let ratios = field("ratio");
            let (min, max) = ratios
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                    (lo.min(r), hi.max(r))
                });
            let object = first.as_object_mut()?;
            for name in ["workmill_ns", "baseline_ns", "ratio"] {
                if let Some(m) = median(&mut field(name)) {
                    object.insert(name.to_owned(), json!(m));
                }
            }
            object.insert("runs".to_owned(), json!(runs.len()));
            object.insert("ratios".to_owned(), json!(ratios));
            if min <= max {
                object.insert("ratio_min".to_owned(), json!(min));
                object.insert("ratio_max".to_owned(), json!(max));
            }
            Some(first)
        })
        .collect()
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
/// Where criterion writes its estimates, as criterion decides it: `$CRITERION_HOME`, else
/// `criterion` in `$CARGO_TARGET_DIR`, else in the workspace's `target`.
fn criterion_dir() -> PathBuf {
    criterion_dir_from(
        std::env::var_os("CRITERION_HOME"),
        std::env::var_os("CARGO_TARGET_DIR"),
        &workspace::root(),
    )
}

fn criterion_dir_from(
    home: Option<std::ffi::OsString>,
    target: Option<std::ffi::OsString>,
    root: &Path,
) -> PathBuf {
    match (home, target) {
        (Some(home), _) => PathBuf::from(home),
        (None, Some(target)) => root.join(target).join("criterion"),
        (None, None) => root.join("target/criterion"),
    }
}

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

/// The summary as a markdown table; rows merged from several runs add the
/// range and every ratio.
fn markdown(rows: &[Value]) -> String {
    let several = rows
        .iter()
        .any(|r| r["runs"].as_u64().is_some_and(|n| n > 1));
    let mut out = String::from("| group | case | workmill | baseline | baseline time | ratio |");
    out.push_str(if several {
        " runs | range | ratios |\n|---|---|---:|---|---:|---:|---:|---|---|\n"
    } else {
        "\n|---|---|---:|---|---:|---:|\n"
    });
    for r in rows {
        let unit = r["unit"].as_str().unwrap_or("ns/iter");
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {:.3} |",
            r["group"].as_str().unwrap_or("?"),
            r["case"].as_str().unwrap_or("?"),
            human(r["workmill_ns"].as_f64(), unit),
            r["baseline"].as_str().unwrap_or("?"),
            human(r["baseline_ns"].as_f64(), unit),
            r["ratio"].as_f64().unwrap_or(f64::NAN),
        );
        if several {
            let ratios: Vec<String> = r["ratios"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .map(|x| format!("{x:.3}"))
                .collect();
            let _ = write!(
                out,
                " {} | {:.3}–{:.3} | {} |",
                r["runs"].as_u64().unwrap_or(1),
                r["ratio_min"].as_f64().unwrap_or(f64::NAN),
                r["ratio_max"].as_f64().unwrap_or(f64::NAN),
                ratios.join(" "),
            );
        }
        out.push('\n');
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
    fn criterion_estimates_are_read_where_criterion_writes_them() {
        let root = Path::new("/work/ws");
        assert_eq!(
            criterion_dir_from(None, None, root),
            Path::new("/work/ws/target/criterion")
        );
        assert_eq!(
            criterion_dir_from(None, Some("/tmp/t".into()), root),
            Path::new("/tmp/t/criterion")
        );
        assert_eq!(
            criterion_dir_from(None, Some("build".into()), root),
            Path::new("/work/ws/build/criterion")
        );
        assert_eq!(
            criterion_dir_from(Some("/tmp/c".into()), Some("/tmp/t".into()), root),
            Path::new("/tmp/c")
        );
    }

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

    fn measured(case: &str, baseline: &str, ours: f64, theirs: f64) -> Value {
        json!({
            "group": "executor", "case": case, "workmill_ns": ours, "baseline": baseline,
            "baseline_ns": theirs, "ratio": ours / theirs, "unit": "ns/iter",
        })
    }

    #[test]
    fn one_run_keeps_its_rows_as_they_are() {
        let rows = vec![measured("sort", "rayon", 1.0, 2.0)];
        assert_eq!(combine_runs(vec![rows.clone()]), rows);
        assert!(!markdown(&rows).contains("range"));
    }

    #[test]
    fn several_runs_report_the_median_ratio_and_every_ratio() {
        let passes = vec![
            vec![
                measured("sort", "rayon", 102.0, 100.0),
                measured("sort", "sequential", 1.0, 2.0),
            ],
            vec![measured("sort", "rayon", 97.0, 100.0)],
            vec![
                measured("sort", "rayon", 99.0, 100.0),
                measured("sort", "sequential", 1.0, 4.0),
            ],
        ];
        let rows = combine_runs(passes);
        assert_eq!(rows.len(), 2);
        let rayon = rows.iter().find(|r| r["baseline"] == "rayon").unwrap();
        assert_eq!(rayon["runs"], 3);
        assert_eq!(rayon["ratio"].as_f64(), Some(0.99));
        assert_eq!(rayon["workmill_ns"].as_f64(), Some(99.0));
        assert_eq!(rayon["ratio_min"].as_f64(), Some(0.97));
        assert_eq!(rayon["ratio_max"].as_f64(), Some(1.02));
        assert_eq!(rayon["ratios"], json!([1.02, 0.97, 0.99]));
        // Measured in two runs only: the median of an even count is the mean of the middle two.
        let sequential = rows.iter().find(|r| r["baseline"] == "sequential").unwrap();
        assert_eq!(sequential["runs"], 2);
        assert_eq!(sequential["ratio"].as_f64(), Some(0.375));
        assert!(markdown(&rows).contains("| 0.990 | 3 | 0.970–1.020 | 1.020 0.970 0.990 |"));
    }

    #[test]
    fn rows_with_the_same_names_in_one_run_stay_apart() {
        let pass = || {
            vec![
                measured("sim", "bound", 1.0, 1.0),
                measured("sim", "bound", 3.0, 1.0),
            ]
        };
        let rows = combine_runs(vec![pass(), pass()]);
        let mut ratios: Vec<f64> = rows.iter().filter_map(|r| r["ratio"].as_f64()).collect();
        ratios.sort_by(f64::total_cmp);
        assert_eq!(ratios, [1.0, 3.0]);
    }

    #[test]
    fn runs_must_be_a_positive_whole_number() {
        assert_eq!(parse_runs(Some("5")), Ok(5));
        assert!(parse_runs(Some("0")).unwrap_err().contains("at least 1"));
        assert!(parse_runs(Some("x")).unwrap_err().contains("\"x\""));
        assert!(parse_runs(None).unwrap_err().contains("nothing"));
    }

    #[test]
    fn reads_groups_runs_and_a_filter() {
        let parse = |text: &str| {
            parse_args(
                &text
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            parse("--quick --runs 7 executor --filter quicksort"),
            Ok(Options {
                quick: true,
                runs: 7,
                groups: vec!["executor".to_owned()],
                filter: Some("quicksort".to_owned()),
            })
        );
        let plain = parse("--runs=2 --filter=mapreduce/sum_vec").unwrap();
        assert_eq!(
            (plain.runs, plain.filter.as_deref()),
            (2, Some("mapreduce/sum_vec"))
        );
        assert_eq!(parse("").unwrap().runs, 1);
        assert!(parse("--filter").unwrap_err().contains("--filter needs"));
        assert!(
            parse("--filter --quick")
                .unwrap_err()
                .contains("--filter needs")
        );
        assert!(parse("--fast").unwrap_err().contains("\"--fast\""));
    }

    #[test]
    fn backend_benches_without_rows_are_named() {
        let targets = [
            "backends_postgres",
            "backends_redis",
            "backends_sqlite",
            "executor_join",
        ]
        .map(str::to_owned);
        let selected: Vec<&String> = targets.iter().collect();
        let rows = vec![
            measured("sqlite-batched-100", "raw-sqlite", 1.0, 1.0),
            measured("redis-2-workers", "raw-redis", 1.0, 1.0),
        ]
        .into_iter()
        .map(|mut r| {
            r["group"] = json!("backends");
            r
        })
        .collect::<Vec<_>>();
        let missing = unmeasured_backends(&selected, &rows);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("backends/postgres:"), "{missing:?}");
        assert!(unmeasured_backends(&selected[3..], &[]).is_empty());
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Some(12.0), "ns/iter"), "12.000 ns");
        assert_eq!(human(Some(1_500_000.0), "ns/iter"), "1.500 ms");
        assert_eq!(human(Some(2_000.0), "ns/element"), "2.000 µs/elem");
        assert_eq!(group_of("executor_join"), "executor");
    }
}
