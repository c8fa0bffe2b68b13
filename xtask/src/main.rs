//! `cargo xtask`: the project's automation, one small binary with subcommands.
//!
//! - `cargo xtask bench [--quick] [--runs N] [--filter TEXT] [GROUP...]` runs
//!   the criterion benches of the `benches/` package and writes
//!   `target/workmill-bench/summary.{json,md}`; with `--runs N`, the median
//!   ratio of N whole runs; with `--filter`, only the cases it matches.
//! - `cargo xtask loom` model-checks the concurrent primitives with loom.
//! - `cargo xtask miri [ARGS...]` runs the executor's tests under Miri (nightly),
//!   which reports undefined behaviour; CI runs it last.
//! - `cargo xtask ci` runs exactly what `.ci/run` runs.

mod bench;
mod ci;
mod loom;
mod miri;
#[cfg(test)]
mod tidy;
mod workspace;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  bench [--quick] [--runs N] [--filter TEXT] [GROUP...]
                              run benchmark groups (all when none named) against their
                              baselines; writes target/workmill-bench/summary.json and .md;
                              --runs N repeats the whole run N times and reports the
                              median ratio, its range and every ratio; --filter runs only
                              the cases whose id contains TEXT (e.g. quicksort)
  loom                        run the loom model checks (release, LOOM_MAX_PREEMPTIONS=2)
  miri [ARGS...]              run workmill-executor's unit, integration and doc tests under
                              Miri (nightly toolchain with miri and rust-src);
                              ARGS go to `cargo miri test`, e.g. a test name filter
  ci                          run the CI gate: services, fmt, clippy, doc, tests, loom, miri
                              (miri installed with rustup if missing, skipped if it cannot be)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("loom") => loom::run(),
        Some("miri") => miri::run(&args[1..]),
        Some("ci") => ci::run(),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
