//! Integration tests of the `workmill` binary: each runs the real executable against a SQLite
//! file in a temporary directory and reads its stdout, stderr and exit code.

mod commands;
mod demo;
mod errors;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// A SQLite backend in a fresh temporary directory, and a way to run the binary on it.
pub(crate) struct Bench {
    dir: TempDir,
}

impl Bench {
    pub(crate) fn new() -> Bench {
        Bench {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().join("tasks.db")
    }

    /// Runs `workmill ARGS --backend URL` in the temporary directory.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_workmill"))
            .args(args)
            .args(["--backend", &self.url()])
            .current_dir(self.dir.path())
            .output()
            .expect("the workmill binary runs")
    }

    /// Runs a command that must succeed, with `--json`, and parses its stdout.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let output = self.run(&with_json);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            stderr(&output)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", stdout(&output)))
    }
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
