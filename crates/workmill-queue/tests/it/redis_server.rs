//! A private `redis-server` for the tests that must restart, pause or password-protect a
//! server: on a free port, in a temporary directory, killed when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A `redis-server` child process of this test.
pub(crate) struct PrivateRedis {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    extra: Vec<String>,
    tls: bool,
}

/// True when `redis-server` can be started; otherwise prints why `test` is skipped.
pub(crate) fn redis_server_available(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        println!(
            "skipped {test}: redis-server is not on PATH; install Redis (Debian: apt-get install redis-server) to run it"
        );
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

impl PrivateRedis {
    /// Starts a server that appends every write to its log and syncs it before answering
    /// (`appendonly yes`, `appendfsync always`), with `extra` arguments.
    pub(crate) fn start(extra: &[&str]) -> PrivateRedis {
        let mut server = PrivateRedis {
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory"),
            port: free_port(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: false,
        };
        server.launch();
        server
    }

    /// Starts a server that speaks only TLS on its port, with the certificate and key in
    /// `cert_dir` (`server.crt`, `server.key`, `ca.crt`), and `extra` arguments.
    pub(crate) fn start_tls(cert_dir: &Path, extra: &[&str]) -> PrivateRedis {
        let file = |name: &str| cert_dir.join(name).display().to_string();
        let port = free_port();
        let mut args = vec![
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            file("server.crt"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.crt"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut server = PrivateRedis {
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory"),
            port,
            extra: args,
            tls: true,
        };
        server.launch();
        server
    }

    /// The port the server listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the server, with `userinfo` (like `:password@`) in front of the host.
    pub(crate) fn url(&self, userinfo: &str) -> String {
        format!("redis://{userinfo}127.0.0.1:{}", self.port)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

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
            .args(&self.extra)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_until_it_answers();
    }

    /// Polls with `PING` until the server answers (a password refusal counts as an answer);
    /// a TLS server is ready when its port accepts connections.
    fn wait_until_it_answers(&self) {
        if self.tls {
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the private TLS redis-server on port {} did not listen",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        let client = redis::Client::open(self.url("")).expect("a valid URL");
        let start = Instant::now();
        loop {
            let answer = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
            match answer {
                Ok(_) => return,
                Err(err)
                    if err.to_string().contains("NOAUTH") || err.to_string().contains("AUTH") =>
                {
                    return;
                }
                Err(err) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "the private redis-server on port {} did not answer: {err}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Kills the server with SIGKILL, as a crash or an OOM killer would, and waits for it to go.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory; it replays its append-only log.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
