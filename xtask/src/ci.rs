//! `cargo xtask ci`: the CI gate, exactly what `.ci/run` runs.
//!
//! Services first (Redis and PostgreSQL must answer, started with the commands
//! in DEVELOPERS.md if they do not), then fmt, clippy, doc, the README's test
//! command, the loom suite, and the executor's tests under Miri (skipped, with
//! the reason, only where rustup cannot install Miri). It prints the test
//! counts and the time each step took, and fails on the first step that fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{loom, miri, workspace};

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const START_REDIS: &str = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" \
     --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log";
const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

pub(crate) fn run() -> Result<(), String> {
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut step =
        |name: &'static str, f: &mut dyn FnMut() -> Result<(), String>| -> Result<(), String> {
            println!("\n==> {name}");
            let t = Instant::now();
            f().map_err(|e| format!("CI step `{name}` failed: {e}"))?;
            timings.push((name, t.elapsed()));
            Ok(())
        };

    step("services", &mut ensure_services)?;
    step("fmt", &mut || {
        workspace::run(workspace::cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("clippy", &mut || {
        workspace::run(workspace::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("doc", &mut || {
        workspace::run(workspace::cargo().env("RUSTDOCFLAGS", "-D warnings").args([
            "doc",
            "--workspace",
            "--no-deps",
        ]))
    })?;
    let mut counts = TestCounts::default();
    step("test", &mut || {
        counts = run_tests(workspace::cargo().args(["test", "--workspace"]))?;
        Ok(())
    })?;
    let mut bincode_counts = TestCounts::default();
    step("test (core with bincode)", &mut || {
        bincode_counts = run_tests(workspace::cargo().args([
            "test",
            "-p",
            "workmill-core",
            "--features",
            "bincode",
        ]))?;
        Ok(())
    })?;
    step("loom", &mut loom::run)?;
    let mut miri_counts = None;
    step("miri", &mut || {
        miri_counts = miri::run_in_ci()?;
        Ok(())
    })?;

    println!("\n==> CI passed in {:.1?}", started.elapsed());
    println!(
        "cargo test --workspace: {} passed, {} failed, {} ignored, in {} test binaries",
        counts.passed, counts.failed, counts.ignored, counts.binaries
    );
    println!(
        "cargo test -p workmill-core --features bincode: {} passed, {} ignored",
        bincode_counts.passed, bincode_counts.ignored
    );
    match miri_counts {
        Some(miri) => println!(
            "cargo xtask miri: {} passed, {} ignored under Miri, in {} test binaries",
            miri.passed, miri.ignored, miri.binaries
        ),
        None => println!("cargo xtask miri: skipped, rustup could not install Miri (see above)"),
    }
    for (name, took) in timings {
        println!("  {name:<26} {took:>8.1?}");
    }
    Ok(())
}

/// Totals of the `test result:` lines of one `cargo test` run.
#[derive(Default)]
pub(crate) struct TestCounts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) ignored: u64,
    pub(crate) binaries: u64,
}

impl TestCounts {
    /// Adds one `test result: ok. 12 passed; 0 failed; 1 ignored; ...` line.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        self.binaries += 1;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = number
                .trim_start_matches("ok.")
                .trim_start_matches("FAILED.")
                .parse::<u64>()
            else {
                continue;
            };
            match label {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs a test command, echoing its output and totalling its result lines.
pub(crate) fn run_tests(command: &mut Command) -> Result<TestCounts, String> {
    let shown = workspace::describe(command);
    println!("$ {shown}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    let mut counts = TestCounts::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading test output: {e}"))?;
            println!("{line}");
            counts.add_line(&line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{shown}`: {e}"))?;
    if status.success() {
        Ok(counts)
    } else {
        Err(format!(
            "`{shown}` failed with {status} ({} tests failed)",
            counts.failed
        ))
    }
}

/// Makes sure Redis and PostgreSQL answer at the URLs the tests will use, starting them if needed.
fn ensure_services() -> Result<(), String> {
    let redis_url = env_or("WORKMILL_REDIS_URL", DEFAULT_REDIS_URL);
    let postgres_url = env_or("WORKMILL_POSTGRES_URL", DEFAULT_POSTGRES_URL);
    // Children (the test binaries) inherit these, so every backend test sees the same servers.
    set_env("WORKMILL_REDIS_URL", &redis_url);
    set_env("WORKMILL_POSTGRES_URL", &postgres_url);
    let redis = address_of(&redis_url, 6379)?;
    let postgres = address_of(&postgres_url, 5432)?;
    ensure("Redis", &redis_url, START_REDIS, || redis_answers(redis))?;
    ensure("PostgreSQL", &postgres_url, START_POSTGRES, || {
        postgres_answers(postgres)
    })?;
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn set_env(name: &str, value: &str) {
    // SAFETY: called before any thread is spawned by xtask; the variable is read by child processes.
    unsafe { std::env::set_var(name, value) };
}

/// Checks a service, starts it with `start` if it does not answer, and checks again for up to 30 s.
fn ensure(name: &str, url: &str, start: &str, answers: impl Fn() -> bool) -> Result<(), String> {
    if answers() {
        println!("{name} answers at {url}");
        return Ok(());
    }
    println!("{name} does not answer at {url}; starting it: {start}");
    let status = Command::new("sh").args(["-c", start]).status();
    if let Err(e) = &status {
        println!("could not run the start command: {e}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if answers() {
            println!("{name} answers at {url}");
            return Ok(());
        }
        thread::sleep(Duration::from_millis(250));
    }
    Err(format!(
        "{name} does not answer at {url} even after `{start}`; the backend tests need it (see DEVELOPERS.md)"
    ))
}

/// The socket address of `scheme://[user[:password]@]host[:port][/...]`.
fn address_of(url: &str, default_port: u16) -> Result<SocketAddr, String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {with_port} from {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url} resolves to no address"))
}

fn connect(address: SocketAddr) -> Option<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    Some(stream)
}

/// Redis answers `PING` with `+PONG`.
fn redis_answers(address: SocketAddr) -> bool {
    let Some(mut stream) = connect(address) else {
        return false;
    };
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG"
}

/// PostgreSQL answers an SSLRequest with a single `S` or `N`.
fn postgres_answers(address: SocketAddr) -> bool {
    let Some(mut stream) = connect(address) else {
        return false;
    };
    let mut request = Vec::with_capacity(8);
    request.extend_from_slice(&8u32.to_be_bytes());
    request.extend_from_slice(&80_877_103u32.to_be_bytes());
    if stream.write_all(&request).is_err() {
        return false;
    }
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).is_ok() && matches!(&reply, b"S" | b"N")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_test_result_lines() {
        let mut counts = TestCounts::default();
        counts.add_line("test result: ok. 32 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.15s");
        counts.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        counts.add_line("running 3 tests");
        assert_eq!(
            (
                counts.passed,
                counts.failed,
                counts.ignored,
                counts.binaries
            ),
            (35, 2, 1, 2)
        );
    }

    #[test]
    fn parses_service_addresses() {
        assert_eq!(
            address_of("redis://127.0.0.1:6379", 1).unwrap().port(),
            6379
        );
        assert_eq!(
            address_of("postgres://postgres@127.0.0.1/test", 5432)
                .unwrap()
                .port(),
            5432
        );
        assert_eq!(
            address_of("redis://:secret@127.0.0.1:7000/2", 1)
                .unwrap()
                .port(),
            7000
        );
    }
}
