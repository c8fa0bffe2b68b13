//! `cargo xtask loom`: model-checks workmill's concurrent primitives with loom.
//!
//! A package takes part when it declares loom under
//! `[target.'cfg(workmill_loom)'.dependencies]`. Its loom tests are named
//! `loom_*`; they run in release mode with `--cfg workmill_loom` and a
//! separate target directory so the normal build cache survives.

use crate::workspace;

/// Workspace packages that depend on loom under `cfg(workmill_loom)`.
fn loom_packages() -> Result<Vec<String>, String> {
    let metadata = workspace::metadata()?;
    let mut names = Vec::new();
    for package in workspace::packages(&metadata) {
        let uses_loom = package["dependencies"].as_array().is_some_and(|deps| {
            deps.iter().any(|d| {
                d["name"] == "loom"
                    && d["target"]
                        .as_str()
                        .is_some_and(|t| t.contains("workmill_loom"))
            })
        });
        if uses_loom && let Some(name) = package["name"].as_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn run() -> Result<(), String> {
    let packages = loom_packages()?;
    if packages.is_empty() {
        println!(
            "xtask loom: no package declares loom under cfg(workmill_loom) yet; nothing to check"
        );
        return Ok(());
    }
    let mut command = workspace::cargo();
    command
        .env("RUSTFLAGS", "--cfg workmill_loom")
        .env("LOOM_MAX_PREEMPTIONS", "2")
        .args([
            "test",
            "--release",
            "--target-dir",
            "target/loom",
            // Default features pull in backends (SQLite's C build) that no model check needs;
            // the PostgreSQL backend's wake-up doorbell and vacuum gate do have model checks.
            "--no-default-features",
            "--features",
            "workmill-queue/postgres",
            "--lib",
            "--tests",
        ]);
    for package in &packages {
        command.args(["-p", package]);
    }
    command.args(["--", "loom_"]);
    let counts = crate::ci::run_tests(&mut command)?;
    // A cfg renamed or a model gated away would leave the filter matching nothing, and an
    // empty run passes: that must not pass for a model check.
    if counts.passed == 0 {
        return Err(format!(
            "xtask loom: no model check ran (no test named loom_* in {})",
            packages.join(", ")
        ));
    }
    println!(
        "xtask loom: {} model checks passed in {} test binaries",
        counts.passed, counts.binaries
    );
    Ok(())
}
