//! A private `redis-server` for the restart test: on a free port, in a temporary directory, syncing
//! every write to its append-only log before it answers; killed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;
use workmill_queue::redis::RedisQueue;

use crate::support::wait_until;

/// A `redis-server` child process of this test.
pub(crate) struct PrivateRedis {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl PrivateRedis {
    /// Starts a server, or prints why `test` is skipped when `redis-server` is not installed.
    pub(crate) fn start(test: &str) -> Option<PrivateRedis> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            println!(
                "skipped {test}: redis-server is not on PATH; install Redis \
                 (Debian: apt-get install redis-server) to run it"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free local port")
            .port();
        let mut server = PrivateRedis {
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory"),
            port,
        };
        server.launch();
        Some(server)
    }

    /// The server's URL, with the key prefix `prefix`.
    pub(crate) fn url(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}?prefix={prefix}", self.port)
    }

    /// Starts `redis-server` on the port and directory, and waits until it answers: after a
    /// restart, once it has replayed its append-only log.
    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("a log file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let url = self.url("ping");
        wait_until(|| RedisQueue::open(&url).is_ok());
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer would, and waits for it to go.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory.
    pub(crate) fn start_again(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
