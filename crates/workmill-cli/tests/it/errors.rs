//! Failures: one clear line on stderr, exit code 2 for what the caller can fix (bad
//! arguments, bad URLs, unknown ids and tasks) and 1 for the rest.

use crate::{Bench, stderr};

/// Runs a command that must fail with `code` and one line on stderr containing `expected`.
fn fails(bench: &Bench, args: &[&str], code: i32, expected: &str) {
    let output = bench.run(args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}",
        stderr(&output)
    );
    let message = stderr(&output);
    assert_eq!(
        message.lines().count(),
        1,
        "{args:?}: not one line: {message}"
    );
    assert!(message.contains(expected), "{args:?}: {message}");
    assert!(
        output.stdout.is_empty(),
        "{args:?} printed {:?}",
        crate::stdout(&output)
    );
}

#[test]
fn unknown_ids_exit_2_and_name_the_id() {
    let bench = Bench::new();
    fails(
        &bench,
        &["inspect", "no-such-task"],
        2,
        "no task or job has the id no-such-task",
    );
    fails(&bench, &["retry", "no-such-task"], 2, "no-such-task");
    fails(&bench, &["cancel", "no-such-task"], 2, "no-such-task");
    fails(
        &bench,
        &["inspect", "bad id with spaces"],
        2,
        "is not a task id",
    );
}

#[test]
fn bad_backend_urls_exit_2_and_say_what_works() {
    let bench = Bench::new();
    for url in ["sqlit://tasks.db", "tasks.db", "memory://somewhere"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_workmill"))
            .args(["stats", "--backend", url])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{url}: {}", stderr(&output));
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains("invalid backend URL"), "{message}");
    }
    drop(bench);
}

#[test]
fn usage_errors_exit_2() {
    let bench = Bench::new();
    fails(
        &bench,
        &["list", "--status", "lost"],
        2,
        "invalid value 'lost'",
    );
    fails(&bench, &["submit", "nope", "1"], 2, "unknown task \"nope\"");
    fails(
        &bench,
        &["submit", "square", "minus one"],
        2,
        "demo.square takes an input like 12",
    );
    fails(&bench, &["frobnicate"], 2, "unrecognized subcommand");
    fails(
        &bench,
        &["purge", "--status", "pending"],
        2,
        "purge deletes finished tasks only",
    );
}

#[test]
fn moves_the_task_cannot_make_are_refused() {
    let bench = Bench::new();
    bench.json(&["submit", "square", "2", "--id", "two"]);
    fails(
        &bench,
        &["retry", "two"],
        2,
        "task two is pending, not dead",
    );
    bench.json(&["submit", "square", "2", "--id", "dup"]);
    fails(
        &bench,
        &["submit", "square", "2", "--id", "dup"],
        2,
        "already exists",
    );
}
