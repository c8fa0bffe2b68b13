//! `cargo xtask miri`: runs the executor's tests under Miri, which reports undefined behaviour.
//!
//! The executor is where workmill's `unsafe` code lives (job blocks, join
//! frames, stack jobs, latches, scopes). Miri interprets its unit, integration
//! and doc tests and stops at the first use after free, data race, invalid
//! reference or leak. The tests shrink their sizes under `cfg(miri)`, and the
//! executor swaps crossbeam-deque for its mutex-protected queue there (see
//! `deque.rs`), so crossbeam-epoch, which breaks a Stacked Borrows rule
//! (crossbeam-rs/crossbeam#545), never runs. Miri keeps its defaults: Stacked
//! Borrows, isolation from the host (a virtual clock, so every run schedules
//! the threads the same way) and the leak check, which only the integration
//! and doc tests give up (see [`RUNS`]); [`EVERY_RUN`] adds two checks and a
//! second CPU.
//!
//! Miri needs the nightly toolchain with the `miri` and `rust-src` components
//! and builds into `target/miri`, so the normal build cache survives. The CI
//! gate runs the same suite last ([`run_in_ci`]): it installs what is missing
//! with rustup, and skips Miri, saying why, only when rustup cannot get it.
//! Under isolation Miri's schedule depends only on the code and the seed, so
//! a commit that passes once passes every time.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{ci, workspace};

/// The packages whose tests run under Miri: the crates with `unsafe` code.
const PACKAGES: &[&str] = &["workmill-executor"];

/// The components Miri needs on the nightly toolchain.
const COMPONENTS: &[&str] = &["miri", "rust-src"];

/// Flags for every run. Strict provenance makes an integer-to-pointer cast an
/// error (none of ours needs one). The symbolic alignment check accepts a
/// pointer as aligned only if its allocation's declared alignment and offset
/// make it so, not the address Miri happened to pick: job blocks place jobs by
/// offset in a 64-byte-aligned block. Two CPUs instead of Miri's one give the
/// global pool, and every pool of the default size, two workers, so that the
/// doc examples and the tests that use them steal and sleep across threads.
const EVERY_RUN: &str =
    "-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check -Zmiri-num-cpus=2";

/// One `cargo miri test` run.
struct Run {
    /// What it runs, for the log.
    what: &'static str,
    /// Cargo's selection of test targets.
    targets: &'static [&'static str],
    /// Miri's flags beyond its defaults and [`EVERY_RUN`].
    flags: &'static str,
}

/// The unit tests run with every check, leaks included. The integration and
/// doc tests run without the leak check: they use the global pool, whose
/// threads, by design, run until the process ends, and Miri counts a thread
/// still running at exit as a leak. `tests/block_memory.rs` checks with a
/// counting allocator, under Miri too, that every job block is freed.
const RUNS: &[Run] = &[
    Run {
        what: "unit tests, every check",
        targets: &["--lib"],
        flags: "",
    },
    Run {
        what: "integration tests, no leak check (the global pool's threads never exit)",
        targets: &["--test", "*"],
        flags: "-Zmiri-ignore-leaks",
    },
    Run {
        what: "doc tests, no leak check (the global pool's threads never exit)",
        targets: &["--doc"],
        flags: "-Zmiri-ignore-leaks",
    },
];

/// How long CI lets rustup try to install the nightly toolchain or Miri's components.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// rustup's arguments that install the smallest nightly toolchain with Miri's components.
const INSTALL_NIGHTLY: &[&str] = &[
    "toolchain",
    "install",
    "nightly",
    "--profile",
    "minimal",
    "--component",
    "miri,rust-src",
];

/// rustup's arguments that add Miri's components to an installed nightly toolchain.
const ADD_COMPONENTS: &[&str] = &[
    "component",
    "add",
    "--toolchain",
    "nightly",
    "miri",
    "rust-src",
];

/// Why Miri cannot run yet, and the rustup arguments that fix it.
struct Missing {
    reason: String,
    fix: &'static [&'static str],
}

/// `cargo xtask miri`: fails, naming the command that fixes it, unless the
/// toolchain is there, then runs the suite.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    check_toolchain().map_err(|missing| missing.reason)?;
    run_suite(args).map(|_| ())
}

/// The CI step: installs the nightly toolchain or Miri's components if they
/// are missing, then runs the whole suite. Returns `None`, having printed why,
/// when rustup cannot install them (no rustup, or no way to reach its server):
/// Miri runs where the toolchain allows, and the gate does not depend on it.
pub(crate) fn run_in_ci() -> Result<Option<ci::TestCounts>, String> {
    if let Err(missing) = check_toolchain() {
        println!("{}", missing.reason);
        println!("installing it: rustup {}", missing.fix.join(" "));
        let installed = run_with_timeout(Command::new("rustup").args(missing.fix), INSTALL_TIMEOUT)
            .and_then(|()| check_toolchain().map_err(|missing| missing.reason));
        if let Err(reason) = installed {
            println!("Miri skipped: {reason}");
            return Ok(None);
        }
    }
    run_suite(&[]).map(Some)
}

/// Runs each of [`RUNS`] in turn and stops at the first that fails; `args`
/// (a test name filter, say) go to every `cargo miri test`.
fn run_suite(args: &[String]) -> Result<ci::TestCounts, String> {
    // Flags the caller sets (`-Zmiri-seed=7`, `-Zmiri-tree-borrows`) come after ours.
    let extra = std::env::var("MIRIFLAGS").unwrap_or_default();
    let started = Instant::now();
    let mut total = ci::TestCounts::default();
    for run in RUNS {
        let flags = [EVERY_RUN, run.flags, extra.trim()]
            .into_iter()
            .filter(|flags| !flags.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = nightly_cargo();
        command
            .env("MIRIFLAGS", &flags)
            .args(["miri", "test", "--target-dir", "target/miri"]);
        for package in PACKAGES {
            command.args(["-p", package]);
        }
        command.args(run.targets).args(args);
        println!("\n==> Miri: {} (MIRIFLAGS=\"{flags}\")", run.what);
        let counts = ci::run_tests(&mut command).map_err(|e| {
            format!(
                "{e}; Miri's report is above. `cargo xtask miri <test name>` reruns one test; \
                 the same command runs the same schedule, MIRIFLAGS=-Zmiri-seed=<n> another"
            )
        })?;
        total.passed += counts.passed;
        total.ignored += counts.ignored;
        total.binaries += counts.binaries;
    }
    println!(
        "\n==> Miri found no undefined behaviour in {:.1?}: {} tests passed, {} ignored under Miri, in {} test binaries",
        started.elapsed(),
        total.passed,
        total.ignored,
        total.binaries
    );
    Ok(total)
}

/// Runs `command`, killing it if it takes longer than `timeout`.
fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<(), String> {
    let shown = workspace::describe(command);
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("`{shown}` failed with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                // Best effort: the child may have exited since `try_wait`.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{shown}` did not finish in {timeout:?}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for `{shown}`: {e}")),
        }
    }
}

/// `cargo +nightly`, through rustup's proxy, from the workspace root.
///
/// Not [`workspace::cargo`]: that is the cargo running xtask, one toolchain's
/// own binary, which does not understand `+nightly`.
fn nightly_cargo() -> Command {
    let mut command = Command::new("cargo");
    command.arg("+nightly").current_dir(workspace::root());
    command
}

/// Fails, naming the command that fixes it, unless the nightly toolchain has Miri's components.
fn check_toolchain() -> Result<(), Missing> {
    let installed = nightly_components().map_err(|reason| Missing {
        reason,
        fix: INSTALL_NIGHTLY,
    })?;
    let missing = missing_components(&installed);
    let lacks = match missing.as_slice() {
        [] => return Ok(()),
        [one] => format!("the {one} component"),
        several => format!("the {} components", several.join(" and ")),
    };
    Err(Missing {
        reason: format!(
            "the nightly toolchain lacks {lacks}; run `rustup {}`",
            ADD_COMPONENTS.join(" ")
        ),
        fix: ADD_COMPONENTS,
    })
}

/// The output of `rustup component list --installed` for the nightly toolchain;
/// fails, naming the command that installs it, when there is no nightly (or no rustup).
fn nightly_components() -> Result<String, String> {
    let install = INSTALL_NIGHTLY.join(" ");
    let output = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "could not run rustup ({e}); Miri needs rustup's nightly toolchain: \
                 install rustup, then run `rustup {install}`"
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // rustup's first line says what is wrong; the rest may be its backtrace.
        let reason = stderr.lines().next().unwrap_or("rustup failed").trim();
        return Err(format!(
            "the nightly toolchain is not installed ({reason}); install it with Miri's components: `rustup {install}`"
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The [`COMPONENTS`] absent from the output of `rustup component list --installed`,
/// whose lines name a component with its target (`miri-x86_64-unknown-linux-gnu`) or
/// without (`rust-src`).
fn missing_components(installed: &str) -> Vec<&'static str> {
    COMPONENTS
        .iter()
        .copied()
        .filter(|component| {
            !installed.lines().map(str::trim).any(|line| {
                line.strip_prefix(component)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_components_miri_needs() {
        let installed = "cargo-x86_64-unknown-linux-gnu\nmiri-x86_64-unknown-linux-gnu\n\
                         rust-src\nrust-std-x86_64-unknown-linux-gnu\n";
        assert!(missing_components(installed).is_empty());
        assert_eq!(
            missing_components("cargo-x86_64-unknown-linux-gnu\nrust-src\n"),
            vec!["miri"]
        );
        // `rust-std` is not `rust-src`.
        assert_eq!(
            missing_components(
                "miri-x86_64-unknown-linux-gnu\nrust-std-x86_64-unknown-linux-gnu\n"
            ),
            vec!["rust-src"]
        );
        assert_eq!(missing_components(""), vec!["miri", "rust-src"]);
    }

    #[test]
    fn an_install_that_fails_or_hangs_is_an_error_not_a_stuck_gate() {
        assert_eq!(
            run_with_timeout(&mut Command::new("true"), Duration::from_secs(60)),
            Ok(())
        );
        let failed = run_with_timeout(&mut Command::new("false"), Duration::from_secs(60));
        assert!(failed.is_err_and(|e| e.contains("failed with")));
        let started = Instant::now();
        let hung = run_with_timeout(Command::new("sleep").arg("30"), Duration::from_millis(300));
        assert!(hung.is_err_and(|e| e.contains("did not finish")));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the child was killed"
        );
        let absent = run_with_timeout(
            &mut Command::new("workmill-no-such-program"),
            Duration::from_secs(60),
        );
        assert!(absent.is_err_and(|e| e.contains("could not start")));
    }
}
