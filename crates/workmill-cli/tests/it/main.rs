//! Integration tests of the `workmill` binary: each runs the real executable against a SQLite
//! file in a temporary directory and reads its stdout, stderr and exit code.

mod commands;
mod demo;
mod errors;
mod stores;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
        workmill()
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

/// The binary, with the log level it has when `WORKMILL_LOG` is unset (a developer's own
/// setting would add lines to the stderr that tests read).
pub(crate) fn workmill() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_workmill"));
    command.env_remove("WORKMILL_LOG");
    command
}

/// A `workmill` process that may never end by itself (a worker), its stderr read line by
/// line on a thread so that a test waits for it with a deadline rather than hangs. Killed
/// when dropped.
pub(crate) struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `command` with its stderr piped.
    pub(crate) fn start(mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the workmill binary starts");
        let stderr = child.stderr.take().expect("a piped stderr");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line of stderr, from the start, that contains `text`, waiting up to
    /// `timeout` for it; every line seen if none did.
    pub(crate) fn line_with(&mut self, text: &str, timeout: Duration) -> Result<String, String> {
        if let Some(line) = self.seen.iter().find(|line| line.contains(text)) {
            return Ok(line.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return Ok(line);
                    }
                }
                Err(_) => break,
            }
        }
        Err(self.seen.join("\n"))
    }

    /// The exit code, waiting up to `timeout`; `None` if it is still running then.
    pub(crate) fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line of stderr, the process killed first if it is still running (a worker that
    /// logs as it waits would otherwise never let the reading end).
    pub(crate) fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
