//! Interleaved measurement for cases whose single iteration takes milliseconds: every round runs
//! each contender once, in an order that changes from round to round, so drift of the machine
//! lands on all of them alike.
//!
//! Criterion measures one function wholly before the next. For a case that runs tens of
//! iterations in all, a slow stretch of a shared VM (a neighbour's burst, a frequency change)
//! then falls on one side and moves the ratio by several percent; on such a case two
//! schedulers at parity land either side of 1.00 from run to run. Here each contender's time is
//! taken from its own closure (so set-up such as cloning the input is not counted), and a row's
//! `ratio` is the median over rounds of the ratio within a round, whose two times were taken
//! seconds apart.
//!
//! The rounds' orders form a balanced Latin square (Williams' design): over one cycle of
//! orders, every contender runs in every position equally often and runs right after every
//! other contender equally often, and a case measures whole cycles. What ran just before can
//! change a time: a pool that starts after a long single-threaded baseline finds the other
//! cores idle and cold, one that starts after another pool finds them warm. Plain rotation
//! (round `r` starting at contender `r mod n`) keeps the cyclic order: with four contenders,
//! the first ran right after the fourth in every round it did not open. Measured that way, the
//! quicksort's workmill followed the single-threaded work-span estimate in three rounds of
//! four, and rayon followed workmill.
//!
//! A bench built on this module takes the flags criterion takes from `cargo xtask bench` and
//! `cargo bench` (`--warm-up-time`, `--measurement-time`, `--sample-size`, a filter), writes
//! its rows to `$WORKMILL_BENCH_OUT/rows/<bench>.json`, which `cargo xtask bench` merges into
//! the summary, and without `--bench` (as under `cargo test --benches`) runs every contender
//! once as a check.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::out_dir;

/// Pause between two timed calls, long enough for the pool that just ran to park its threads,
/// so that no contender starts while the previous one's threads are still spinning.
const SETTLE: Duration = Duration::from_millis(1);

/// What to measure and for how long, read from the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Time spent running contenders before measuring; every contender runs at least once.
    pub warm_up: Duration,
    /// Measuring time per contender, as with criterion: the rounds stop once
    /// `measurement × contenders` has passed and at least `min_rounds` have run.
    pub measurement: Duration,
    /// Fewest rounds measured.
    pub min_rounds: usize,
    /// False without `--bench`: run every contender once, measure nothing.
    pub bench: bool,
    /// Only cases whose `group/case` contains this text run.
    pub filter: Option<String>,
}

impl Default for Settings {
    /// Criterion's defaults, with its smallest sample for the rounds.
    fn default() -> Self {
        Settings {
            warm_up: Duration::from_secs(3),
            measurement: Duration::from_secs(5),
            min_rounds: 10,
            bench: false,
            filter: None,
        }
    }
}

/// Criterion flags that take a value and mean nothing here; they are accepted so that
/// `cargo bench -p workmill-benches -- --save-baseline x` still runs every bench.
const IGNORED_WITH_VALUE: [&str; 9] = [
    "--save-baseline",
    "--baseline",
    "--load-baseline",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--nresamples",
    "--output-format",
    "--plotting-backend",
];

impl Settings {
    /// Reads the flags after `--`, as `std::env::args().skip(1)` gives them.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Settings, String> {
        let mut settings = Settings::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
            match arg.as_str() {
                "--bench" => settings.bench = true,
                "--warm-up-time" => settings.warm_up = seconds(&arg, &value(&arg)?)?,
                "--measurement-time" => settings.measurement = seconds(&arg, &value(&arg)?)?,
                "--sample-size" => {
                    let text = value(&arg)?;
                    settings.min_rounds = match text.parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            return Err(format!(
                                "--sample-size needs a whole number above 0, got {text:?}"
                            ));
                        }
                    };
                }
                "--noplot" | "--quiet" | "--verbose" | "--discard-baseline" | "--nocapture" => {}
                flag if IGNORED_WITH_VALUE.contains(&flag) => {
                    value(flag)?;
                }
                flag if flag.starts_with('-') => {
                    return Err(format!(
                        "unknown flag {flag:?}; this bench takes --bench, --warm-up-time SECS, \
                         --measurement-time SECS, --sample-size N and a filter"
                    ));
                }
                filter => settings.filter = Some(filter.to_owned()),
            }
        }
        Ok(settings)
    }

    /// These settings, measuring at least `rounds` rounds: for a case so long that its time
    /// budget covers only a few, too few for a paired ratio to settle within a percent.
    pub fn at_least(&self, rounds: usize) -> Settings {
        Settings {
            min_rounds: self.min_rounds.max(rounds),
            ..self.clone()
        }
    }

    /// Whether the case `group/case` passes the filter: the filter is part of `group/case`,
    /// or is a criterion-style id of one of its contenders (`group/case/rayon`). A contender
    /// id selects the whole case, since a ratio needs both sides of it.
    pub fn selects(&self, group: &str, case: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| {
            let id = format!("{group}/{case}");
            id.contains(f)
                || f.strip_prefix(id.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag} needs a number of seconds, got {text:?}"))
}

/// One side of a comparison: a name (`workmill`, `workmill-<variant>` or a baseline's) and a
/// closure that runs one iteration and returns the time it measured.
pub struct Contender<'a> {
    name: &'static str,
    run: Box<dyn FnMut() -> Duration + 'a>,
}

impl<'a> Contender<'a> {
    /// `run` does any set-up, then times one iteration and returns that time.
    pub fn new(name: &'static str, run: impl FnMut() -> Duration + 'a) -> Self {
        Contender {
            name,
            run: Box::new(run),
        }
    }
}

/// The times of one case, in nanoseconds, one per round for each contender.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The summary group, `executor` say.
    pub group: String,
    /// The case within the group, `quicksort10m` say.
    pub case: String,
    /// Each contender's name with its time in every round, in round order.
    pub samples: Vec<(String, Vec<f64>)>,
    /// Elements one call processes, when rows give times per element ([`Comparison::per_element`]).
    pub elements: Option<u64>,
}

/// Runs the contenders of one case, interleaved as the module says.
pub fn measure(
    settings: &Settings,
    group: &str,
    case: &str,
    mut contenders: Vec<Contender<'_>>,
) -> Comparison {
    let n = contenders.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    // The check mode runs one round and no warm-up.
    let (rounds_wanted, budget) = if settings.bench {
        (
            settings.min_rounds,
            settings.measurement.saturating_mul(n as u32),
        )
    } else {
        (1, Duration::ZERO)
    };
    if settings.bench {
        let started = Instant::now();
        let mut calls = 0;
        while calls < n || started.elapsed() < settings.warm_up {
            (contenders[calls % n].run)();
            std::thread::sleep(SETTLE);
            calls += 1;
        }
    }
    let started = Instant::now();
    let mut round = 0;
    // Whole cycles of orders, so that no contender runs more often first or after another.
    let cycle = if settings.bench { cycle_len(n) } else { 1 };
    while round < rounds_wanted || started.elapsed() < budget || round % cycle != 0 {
        for k in order(round, n) {
            let time = (contenders[k].run)();
            samples[k].push(time.as_nanos() as f64);
            std::thread::sleep(SETTLE);
        }
        round += 1;
    }
    Comparison {
        group: group.to_owned(),
        case: case.to_owned(),
        samples: contenders
            .iter()
            .map(|c| c.name.to_owned())
            .zip(samples)
            .collect(),
        elements: None,
    }
}

/// Rounds in one cycle of [`order`] for `n` contenders: `n` when `n` is even, `2n` when odd
/// and above 1 (an odd square needs its mirror image to balance who runs after whom).
fn cycle_len(n: usize) -> usize {
    match n {
        0 | 1 => 1,
        n if n % 2 == 0 => n,
        n => 2 * n,
    }
}

/// The order of the `n` contenders in round `round`, a row of a balanced Latin square: the
/// first row is `0, 1, n-1, 2, n-2, ...`, row `r` adds `r mod n` to each entry, and for odd `n`
/// the second `n` rows of a cycle are the first `n` reversed. Over a cycle ([`cycle_len`]),
/// every contender takes every position equally often and directly follows every other
/// contender equally often within a round.
fn order(round: usize, n: usize) -> impl Iterator<Item = usize> {
    let cycle = cycle_len(n);
    let row = round % cycle;
    let shift = row % n.max(1);
    let mirrored = row >= n;
    (0..n).map(move |position| {
        let position = if mirrored { n - 1 - position } else { position };
        // 0, 1, n-1, 2, n-2, ...: odd positions count up from 1, even ones down from n.
        let first = if position % 2 == 1 {
            position.div_ceil(2)
        } else {
            (n - position / 2) % n
        };
        (first + shift) % n
    })
}

/// The median of `values`; for an even count, the mean of the middle two.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn is_ours(name: &str) -> bool {
    name == "workmill" || name.starts_with("workmill-")
}

impl Comparison {
    /// The same times, reported in the rows per element of the `elements` that one call
    /// processes (as criterion's `Throughput::Elements`); ratios do not change.
    pub fn per_element(self, elements: u64) -> Comparison {
        Comparison {
            elements: Some(elements),
            ..self
        }
    }

    /// Summary rows: each workmill contender against each baseline. `workmill_ns` and
    /// `baseline_ns` are medians over rounds (per element if [`Comparison::per_element`] said
    /// so); `ratio` is the median of the rounds' ratios.
    pub fn rows(&self) -> Vec<Value> {
        let (per, unit) = match self.elements {
            Some(elements) => (elements.max(1) as f64, "ns/element"),
            None => (1.0, "ns/iter"),
        };
        let mut rows = Vec::new();
        for (ours, our_times) in self.samples.iter().filter(|(name, _)| is_ours(name)) {
            let case = match ours.strip_prefix("workmill-") {
                Some(variant) => format!("{}/{variant}", self.case),
                None => self.case.clone(),
            };
            for (baseline, their_times) in self.samples.iter().filter(|(name, _)| !is_ours(name)) {
                let ratios: Vec<f64> = our_times
                    .iter()
                    .zip(their_times)
                    .map(|(a, b)| a / b)
                    .collect();
                rows.push(json!({
                    "group": self.group,
                    "case": case,
                    "workmill_ns": median(our_times) / per,
                    "baseline": baseline,
                    "baseline_ns": median(their_times) / per,
                    "ratio": median(&ratios),
                    "unit": unit,
                    "method": "interleaved",
                    "rounds": ratios.len(),
                }));
            }
        }
        rows
    }

    /// One line per contender: median, fastest and slowest round.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (name, times) in &self.samples {
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            let max = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                out,
                "{}/{}/{name}: median {:.3} ms over {} rounds (min {:.3}, max {:.3})",
                self.group,
                self.case,
                median(times) / 1e6,
                times.len(),
                min / 1e6,
                max / 1e6,
            );
        }
        out
    }
}

/// One case of a bench binary: its name within the group, and what measures it.
pub type Case<'a> = (&'a str, Box<dyn FnOnce(&Settings) -> Comparison + 'a>);

/// The `main` of a bench binary built on this module: reads the flags, runs the cases the
/// filter selects (set-up inside a case's closure is paid only when it runs), prints each
/// report, and in bench mode writes the rows for `cargo xtask bench`. Exits with status 2 on
/// a bad flag and 1 when the rows cannot be written.
pub fn run_cases(bench: &str, group: &str, cases: Vec<Case<'_>>) {
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{bench}: {message}");
            std::process::exit(2);
        }
    };
    let mut rows = Vec::new();
    let names: Vec<&str> = cases.iter().map(|(case, _)| *case).collect();
    if let Some(note) = unmatched_filter(&settings, group, &names) {
        eprintln!("{bench}: {note}");
    }
    for (case, run) in cases {
        if !settings.selects(group, case) {
            continue;
        }
        let comparison = run(&settings);
        print!("{}", comparison.report());
        rows.extend(comparison.rows());
    }
    if settings.bench && !rows.is_empty() {
        match write_rows(bench, rows) {
            Ok(path) => println!("wrote {}", path.display()),
            Err(message) => {
                eprintln!("{bench}: {message}");
                std::process::exit(1);
            }
        }
    }
}

/// What to say when the filter selects none of `cases`, so that a filter spelled for another
/// bench or mistyped does not pass for a bench with nothing to measure.
fn unmatched_filter(settings: &Settings, group: &str, cases: &[&str]) -> Option<String> {
    let filter = settings.filter.as_deref()?;
    if cases.iter().any(|case| settings.selects(group, case)) {
        return None;
    }
    let ids: Vec<String> = cases.iter().map(|case| format!("{group}/{case}")).collect();
    Some(format!(
        "the filter {filter:?} selects none of this bench's cases ({})",
        ids.join(", ")
    ))
}

/// Writes `rows` to `$WORKMILL_BENCH_OUT/rows/<bench>.json`, where `cargo xtask bench` reads them.
pub fn write_rows(bench: &str, rows: Vec<Value>) -> Result<PathBuf, String> {
    let dir = out_dir().join("rows");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{bench}.json"));
    let json = serde_json::to_string_pretty(&Value::Array(rows)).map_err(|e| e.to_string())?;
    fs::write(&path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn reads_the_flags_cargo_xtask_bench_passes() {
        let settings = Settings::from_args(args(
            "--bench --warm-up-time 0.5 --measurement-time 1.5 --sample-size 12 quicksort",
        ))
        .unwrap();
        assert_eq!(
            settings,
            Settings {
                warm_up: Duration::from_millis(500),
                measurement: Duration::from_millis(1500),
                min_rounds: 12,
                bench: true,
                filter: Some("quicksort".to_owned()),
            }
        );
        assert!(settings.selects("executor", "quicksort10m"));
        assert!(!settings.selects("executor", "skew2000"));
        // No --bench: the check mode `cargo test --benches` uses.
        assert!(!Settings::from_args(args("")).unwrap().bench);
        assert!(Settings::from_args(args("--bench --save-baseline main --noplot")).is_ok());
    }

    #[test]
    fn a_criterion_id_naming_a_contender_selects_its_case() {
        let filter = |text: &str| Settings::from_args(args(text)).unwrap();
        let by_function = filter("mapreduce/sum_vec/rayon");
        assert!(by_function.selects("mapreduce", "sum_vec"));
        assert!(!by_function.selects("mapreduce", "sum_squares"));
        // A longer case name is not a contender of a shorter one.
        assert!(!filter("mapreduce/sum_vec_big").selects("mapreduce", "sum_vec"));
        assert!(!filter("mapreduce/sum_vecx/rayon").selects("mapreduce", "sum_vec"));
        assert!(filter("sum_").selects("mapreduce", "sum_vec"));
    }

    #[test]
    fn a_filter_that_selects_nothing_is_reported_with_the_cases() {
        let settings = Settings::from_args(args("--bench quicksrot")).unwrap();
        let note = unmatched_filter(&settings, "executor", &["quicksort10m", "skew2000"]).unwrap();
        assert!(note.contains("\"quicksrot\""), "{note}");
        assert!(
            note.contains("executor/quicksort10m, executor/skew2000"),
            "{note}"
        );
        let fine = Settings::from_args(args("--bench quicksort")).unwrap();
        assert_eq!(unmatched_filter(&fine, "executor", &["quicksort10m"]), None);
        assert_eq!(
            unmatched_filter(&Settings::default(), "executor", &["a"]),
            None
        );
    }

    #[test]
    fn bad_flags_are_errors_that_say_what_was_wrong() {
        let err = |text: &str| Settings::from_args(args(text)).unwrap_err();
        assert!(err("--sample-size 0").contains("above 0"));
        assert!(err("--sample-size").contains("needs a value"));
        assert!(err("--warm-up-time soon").contains("\"soon\""));
        assert!(err("--measurement-time -1").contains("seconds"));
        assert!(err("--fast").contains("\"--fast\""));
    }

    #[test]
    fn the_orders_of_a_cycle_form_a_williams_square() {
        let rows = |n: usize| -> Vec<Vec<usize>> {
            (0..cycle_len(n)).map(|r| order(r, n).collect()).collect()
        };
        assert_eq!(
            rows(4),
            [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
        );
        assert_eq!(
            rows(3),
            [
                [0, 1, 2],
                [1, 2, 0],
                [2, 0, 1],
                [2, 1, 0],
                [0, 2, 1],
                [1, 0, 2]
            ]
        );
        assert_eq!(rows(2), [[0, 1], [1, 0]]);
        assert_eq!(rows(1), [[0]]);
        for n in 1..=7 {
            let rows = rows(n);
            let per_cycle = rows.len() / n;
            // Each row runs every contender once; each takes every position equally often.
            for row in &rows {
                let mut sorted = row.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "n = {n}: {row:?}");
            }
            for position in 0..n {
                for k in 0..n {
                    let times = rows.iter().filter(|row| row[position] == k).count();
                    assert_eq!(times, per_cycle, "n = {n}: {k} at {position}");
                }
            }
            // Within rounds, every contender directly follows every other equally often.
            let mut follows = vec![vec![0; n]; n];
            for row in &rows {
                for pair in row.windows(2) {
                    follows[pair[0]][pair[1]] += 1;
                }
            }
            for (a, after) in follows.iter().enumerate() {
                for (b, &count) in after.iter().enumerate() {
                    let want = if a == b { 0 } else { per_cycle };
                    assert_eq!(count, want, "n = {n}: {b} after {a}");
                }
            }
        }
    }

    #[test]
    fn at_least_raises_the_rounds_and_keeps_the_rest() {
        let settings = Settings::from_args(args("--bench --sample-size 10 sort")).unwrap();
        let longer = settings.at_least(25);
        assert_eq!(longer.min_rounds, 25);
        assert_eq!(
            Settings {
                min_rounds: 10,
                ..longer.clone()
            },
            settings
        );
        assert_eq!(longer.at_least(5).min_rounds, 25);
    }

    #[test]
    fn measures_whole_cycles_of_orders_at_least_the_rounds_asked_for() {
        let log = std::cell::RefCell::new(Vec::new());
        let contender = |name: &'static str, nanos: u64| {
            let log = &log;
            Contender::new(name, move || {
                log.borrow_mut().push(name);
                Duration::from_nanos(nanos)
            })
        };
        let settings = Settings {
            warm_up: Duration::ZERO,
            measurement: Duration::ZERO,
            min_rounds: 3,
            bench: true,
            filter: None,
        };
        let comparison = measure(
            &settings,
            "g",
            "c",
            vec![contender("workmill", 10), contender("rayon", 20)],
        );
        // Warm-up runs each once, then the three rounds asked for alternate which goes first,
        // and a fourth completes the second cycle of two orders.
        assert_eq!(
            *log.borrow(),
            [
                "workmill", "rayon", "workmill", "rayon", "rayon", "workmill", "workmill", "rayon",
                "rayon", "workmill"
            ]
        );
        assert_eq!(
            comparison.samples[0],
            ("workmill".to_owned(), vec![10.0; 4])
        );
        assert_eq!(comparison.samples[1], ("rayon".to_owned(), vec![20.0; 4]));

        log.borrow_mut().clear();
        let check = Settings::default();
        let once = measure(&check, "g", "c", vec![contender("workmill", 1)]);
        assert_eq!(
            *log.borrow(),
            ["workmill"],
            "check mode runs once, no warm-up"
        );
        assert_eq!(once.samples[0].1.len(), 1);
    }

    #[test]
    fn a_row_pairs_times_taken_in_the_same_round() {
        let comparison = Comparison {
            group: "executor".to_owned(),
            case: "sort".to_owned(),
            samples: vec![
                // The machine slows in round 2 for both; paired ratios are 0.9, 0.9, 1.1.
                ("workmill".to_owned(), vec![90.0, 180.0, 110.0]),
                ("rayon".to_owned(), vec![100.0, 200.0, 100.0]),
                ("workmill-lazy".to_owned(), vec![50.0, 100.0, 50.0]),
                ("sequential".to_owned(), vec![200.0, 400.0, 200.0]),
            ],
            elements: None,
        };
        let rows = comparison.rows();
        assert_eq!(rows.len(), 4);
        let find = |case: &str, baseline: &str| {
            rows.iter()
                .find(|r| r["case"] == case && r["baseline"] == baseline)
                .unwrap()
        };
        let rayon = find("sort", "rayon");
        assert_eq!(rayon["ratio"].as_f64(), Some(0.9));
        assert_eq!(rayon["workmill_ns"].as_f64(), Some(110.0));
        assert_eq!(rayon["baseline_ns"].as_f64(), Some(100.0));
        assert_eq!(rayon["rounds"], 3);
        assert_eq!(rayon["method"], "interleaved");
        assert_eq!(find("sort", "sequential")["ratio"].as_f64(), Some(0.45));
        assert_eq!(find("sort/lazy", "rayon")["ratio"].as_f64(), Some(0.5));
        assert!(
            comparison
                .report()
                .contains("executor/sort/rayon: median 0.000 ms over 3 rounds")
        );
    }

    #[test]
    fn per_element_rows_divide_the_times_and_keep_the_ratio() {
        let comparison = Comparison {
            group: "mapreduce".to_owned(),
            case: "sum".to_owned(),
            samples: vec![
                ("workmill".to_owned(), vec![400.0, 800.0]),
                ("rayon".to_owned(), vec![500.0, 1000.0]),
            ],
            elements: None,
        }
        .per_element(100);
        let rows = comparison.rows();
        assert_eq!(rows[0]["workmill_ns"].as_f64(), Some(6.0));
        assert_eq!(rows[0]["baseline_ns"].as_f64(), Some(7.5));
        assert_eq!(rows[0]["ratio"].as_f64(), Some(0.8));
        assert_eq!(rows[0]["unit"], "ns/element");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }
}
