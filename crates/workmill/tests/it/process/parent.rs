//! `WorkerProcess`: a test's handle on a worker process it started (the test binary again, entering
//! `child::worker_process_entry`): its settings, its lines, signals, kill, and its report.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::child::{BATCH, CONCURRENCY, ENTRY, LEASE_MS, LEDGER, SIGTERM_AFTER, URL, WORKER};
use crate::support::WAIT;

/// A worker process started by a test.
pub(crate) struct WorkerProcess {
    pub(crate) id: String,
    child: Child,
    lines: Receiver<String>,
}

/// What a worker process printed when it stopped.
pub(crate) type Report = HashMap<String, String>;

/// The settings of worker processes.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) ledger: PathBuf,
    pub(crate) concurrency: usize,
    pub(crate) min_batch: usize,
    pub(crate) max_batch: usize,
    pub(crate) lease: Duration,
    /// Whether the worker sends itself SIGTERM once `worker::run` returned.
    pub(crate) sigterm_after: bool,
}

impl WorkerProcess {
    /// Starts worker `id` and waits until it is about to connect.
    pub(crate) fn start(id: &str, settings: &Settings) -> WorkerProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([ENTRY, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(WORKER, id)
            .env(URL, &settings.url)
            .env(LEDGER, &settings.ledger)
            .env(CONCURRENCY, settings.concurrency.to_string())
            .env(
                BATCH,
                format!("{},{}", settings.min_batch, settings.max_batch),
            )
            .env(LEASE_MS, settings.lease.as_millis().to_string())
            .env(SIGTERM_AFTER, if settings.sigterm_after { "1" } else { "" })
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test binary starts again as a worker");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("WORKMILL ")
                    && send
                        .send(line[at + "WORKMILL ".len()..].to_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        let process = WorkerProcess {
            id: id.to_owned(),
            child,
            lines,
        };
        process.expect_line("READY");
        process
    }

    /// Waits for the next line the worker says, which must start with `prefix`.
    pub(crate) fn expect_line(&self, prefix: &str) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) if line.starts_with(prefix) => line,
            Ok(line) => panic!("worker {} said {line:?}, expected {prefix}", self.id),
            Err(RecvTimeoutError::Timeout) => {
                panic!("worker {} said nothing for {WAIT:?}", self.id)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("worker {} exited before saying {prefix}", self.id)
            }
        }
    }

    pub(crate) fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).unwrap()
    }

    /// Sends `signal` to the worker.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        // SAFETY: `kill` only sends a signal; the pid is our own child, which has not been
        // waited for, so it cannot have been reused by another process.
        let sent = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(sent, 0, "could not signal worker {}", self.id);
    }

    /// Stops the worker with `SIGSTOP` and waits until the kernel reports it stopped (the
    /// signal is delivered asynchronously): from then on it runs no code of its own.
    pub(crate) fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let mut status = 0;
        // SAFETY: `waitpid` on our own unreaped child with WUNTRACED reports a stop without
        // reaping it, so the `Child` still owns the exit status; `status` is a valid out pointer.
        let waited = unsafe { libc::waitpid(self.pid(), &mut status, libc::WUNTRACED) };
        assert_eq!(waited, self.pid(), "waitpid failed");
        assert!(
            libc::WIFSTOPPED(status),
            "worker {} did not stop (status {status:#x})",
            self.id
        );
    }

    /// Lets a frozen worker run again.
    pub(crate) fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGKILLs the worker and waits for it to be gone.
    pub(crate) fn kill(mut self) -> ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    /// Waits for the worker to exit after a stop; its report, and how it exited.
    pub(crate) fn finish(mut self) -> (Report, ExitStatus) {
        let mut report = None;
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            if let Some(fields) = line.strip_prefix("REPORT ") {
                report = Some(
                    fields
                        .split(' ')
                        .filter_map(|field| field.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                );
            }
        }
        let status = self.exit_within(WAIT);
        let report = report
            .unwrap_or_else(|| panic!("worker {} exited without a report ({status})", self.id));
        (report, status)
    }

    /// Waits for the worker to exit; how it exited.
    pub(crate) fn exit_status(mut self) -> ExitStatus {
        self.exit_within(WAIT)
    }

    /// Waits up to `patience` for the worker to exit; a worker that hangs is killed and the
    /// test fails, instead of the test run hanging with it.
    fn exit_within(&mut self, patience: Duration) -> ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                panic!(
                    "worker {} did not exit within {patience:?} of being told to stop; killed ({status})",
                    self.id
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for WorkerProcess {
    /// Kills a worker still running when its test ends early (a failed assertion), so that no
    /// worker outlives the test run.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A count from a worker's report.
pub(crate) fn count(report: &Report, field: &str) -> u64 {
    report
        .get(field)
        .unwrap_or_else(|| panic!("no {field} in {report:?}"))
        .parse()
        .unwrap()
}
