//! Stores a command cannot use as asked: a private `memory://` queue, a SQLite file in a
//! directory that does not exist (both refused at once, exit 2), a file that is not a
//! database (a worker stops at once and says why), and a store that cannot be opened yet
//! (a worker waits for it, saying so on stderr), and the log those warnings go to.

use std::time::Duration;

use crate::{Bench, Running, stderr, workmill};

/// Long enough for a loaded machine; a passing test waits far less.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn private_backends_are_refused_by_every_command() {
    let bench = Bench::new();
    let commands: [&[&str]; 8] = [
        &["submit", "square", "3"],
        &["stats"],
        &["inspect", "t1"],
        &["list"],
        &["retry", "t1"],
        &["cancel", "t1"],
        &["purge"],
        &["worker", "--until-idle"],
    ];
    for url in ["memory://", "sqlite::memory:", "SQLITE://:memory:"] {
        for args in commands {
            let output = workmill()
                .args(args)
                .args(["--backend", url])
                .current_dir(bench.path().parent().unwrap())
                .output()
                .unwrap();
            let message = stderr(&output);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?} on {url}: {message}"
            );
            assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
            assert!(
                message.contains("is private to the process that opens it")
                    && message.contains("sqlite://workmill.db"),
                "{args:?} on {url}: {message}"
            );
            assert!(
                output.stdout.is_empty(),
                "{args:?} on {url} printed a result"
            );
        }
    }
}

#[test]
fn a_sqlite_file_in_a_missing_directory_is_refused_at_once() {
    let bench = Bench::new();
    let missing = bench
        .path()
        .with_file_name("no")
        .join("such")
        .join("tasks.db");
    let url = format!("sqlite://{}", missing.display());
    let mut command = workmill();
    command.args(["worker", "--backend", &url]);
    let mut worker = Running::start(command);
    let code = worker.exit_code(PATIENCE);
    let message = worker.stderr();
    assert_eq!(code, Some(2), "the worker did not stop: {message}");
    let refusal = message
        .lines()
        .find(|line| line.starts_with("workmill: "))
        .unwrap_or_default();
    assert!(
        refusal.contains(&format!(
            "the directory {} does not exist",
            missing.parent().unwrap().display()
        )),
        "{message}"
    );
    assert!(!missing.parent().unwrap().exists(), "nothing is created");

    // The one-shot commands say the same, as a usage error.
    let output = workmill()
        .args(["submit", "square", "3", "--backend", &url])
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    // A file where the directory should be is no better.
    std::fs::write(bench.path().with_file_name("plain"), "a file").unwrap();
    let inside_a_file = bench.path().with_file_name("plain").join("tasks.db");
    let output = workmill()
        .args(["stats", "--backend"])
        .arg(format!("sqlite://{}", inside_a_file.display()))
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("is not a directory"), "{message}");
}

#[test]
fn a_worker_says_on_stderr_that_it_waits_for_a_store_it_cannot_open() {
    let bench = Bench::new();
    // A store that fails to open for a reason the library retries (another connection holds
    // the file locked past the busy timeout): the worker must wait, and the operator must
    // see why.
    let holder = rusqlite::Connection::open(bench.path()).unwrap();
    holder
        .execute_batch("CREATE TABLE held (x); BEGIN EXCLUSIVE; INSERT INTO held VALUES (1);")
        .unwrap();
    for extra in [&[][..], &["--until-idle"][..]] {
        let mut command = workmill();
        command
            .arg("worker")
            .args(extra)
            .args(["--backend", &bench.url()]);
        let mut worker = Running::start(command);
        let warning = worker
            .line_with("could not open the store; trying again", PATIENCE)
            .unwrap_or_else(|seen| panic!("{extra:?}: no warning on stderr, only:\n{seen}"));
        assert!(
            warning.contains("WARN") && warning.contains("locked"),
            "{warning}"
        );
        assert_eq!(
            worker.exit_code(Duration::from_millis(300)),
            None,
            "{extra:?}: the worker gave up instead of waiting: {}",
            worker.stderr()
        );
    }
}

#[test]
fn a_worker_refuses_a_file_that_is_not_a_database_at_once() {
    let bench = Bench::new();
    // No retry can make this file a database: the worker stops and says why, rather than
    // waiting for good.
    std::fs::write(
        bench.path(),
        "not a SQLite database, but long enough to look at",
    )
    .unwrap();
    let mut command = workmill();
    command.arg("worker").args(["--backend", &bench.url()]);
    let mut worker = Running::start(command);
    let code = worker.exit_code(PATIENCE);
    let message = worker.stderr();
    assert!(
        matches!(code, Some(code) if code != 0),
        "{code:?}: {message}"
    );
    assert!(message.contains("not a SQLite database"), "{message}");
    assert!(!message.contains("trying again"), "{message}");
}

#[test]
fn workmill_log_sets_the_level_and_a_bad_one_is_a_usage_error() {
    let bench = Bench::new();
    let run = |level: Option<&str>| {
        let mut command = workmill();
        command.args(["worker", "--until-idle", "--backend", &bench.url()]);
        if let Some(level) = level {
            command.env("WORKMILL_LOG", level);
        }
        command.output().unwrap()
    };
    let quiet = run(None);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert!(
        !stderr(&quiet).contains("worker started"),
        "{}",
        stderr(&quiet)
    );
    let told = run(Some("info"));
    assert!(told.status.success(), "{}", stderr(&told));
    assert!(
        stderr(&told).contains("INFO") && stderr(&told).contains("worker started"),
        "{}",
        stderr(&told)
    );

    let output = workmill()
        .args(["stats", "--backend", &bench.url()])
        .env("WORKMILL_LOG", "verbose")
        .output()
        .unwrap();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("WORKMILL_LOG=\"verbose\" is not a log level"),
        "{message}"
    );
    // Help still answers: the variable matters only to a command that runs.
    let help = workmill()
        .args(["stats", "--help"])
        .env("WORKMILL_LOG", "verbose")
        .output()
        .unwrap();
    assert!(help.status.success(), "{}", stderr(&help));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage"));
}
