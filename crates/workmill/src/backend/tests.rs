//! Tests of `backend::open`: each scheme opens what it names, and every refusal names the URL, the scheme and the fix.

use workmill_core::{NewTask, QueueError};

use super::*;

/// Why `url` did not open; fails the test if it did.
fn refusal(url: &str) -> QueueError {
    match open(url) {
        Ok(queue) => panic!("{url} opened a {} queue", queue.backend_name()),
        Err(error) => error,
    }
}

fn reason(error: QueueError) -> String {
    match error {
        QueueError::InvalidUrl { reason, .. } => reason,
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[test]
fn memory_urls_open_a_new_empty_queue_each_time() {
    let first = open("memory://").unwrap();
    let second = open("MEMORY://").unwrap();
    first.enqueue(NewTask::new("a", vec![1])).unwrap();
    assert_eq!(first.stats().unwrap().submitted, 1);
    assert_eq!(second.stats().unwrap().submitted, 0, "opens share nothing");
    assert_eq!(first.backend_name(), "memory");
    assert!(!Backend::parse("memory://").unwrap().is_durable());
}

#[test]
fn memory_urls_take_no_path() {
    let message = reason(refusal("memory://queue-1"));
    assert!(message.contains("exactly memory://"), "{message}");
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_urls_open_one_shared_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("Sqlite://{}", dir.path().join("tasks.db").display());
    let backend = Backend::parse(&url).unwrap();
    assert_eq!(backend.scheme(), "sqlite");
    assert!(backend.url().starts_with("sqlite://"));
    assert!(backend.is_durable());
    // An in-memory database is new at every open, like `memory://`.
    for private in ["sqlite::memory:", "sqlite://:memory:"] {
        assert!(!Backend::parse(private).unwrap().is_durable(), "{private}");
    }

    let producer = backend.open().unwrap();
    let id = producer.enqueue(NewTask::new("a", vec![1])).unwrap();
    let worker = open(backend.url()).unwrap();
    assert_eq!(worker.backend_name(), "sqlite");
    let reserved = worker
        .reserve(
            &workmill_core::WorkerId::new("w").unwrap(),
            4,
            std::time::Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(reserved.len(), 1);
    worker.complete(&reserved[0].lease, vec![7]).unwrap();
    assert_eq!(
        producer.status(&id).unwrap().status,
        workmill_core::TaskStatus::Completed
    );
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_refusals_come_from_the_backend() {
    let message = reason(refusal("sqlite://"));
    assert!(message.contains("path is empty"), "{message}");
}

#[test]
fn unknown_schemes_name_the_scheme_and_the_forms_that_work() {
    let error = refusal("sqlit://tasks.db");
    assert!(matches!(&error, QueueError::InvalidUrl { url, .. } if url == "sqlit://tasks.db"));
    let message = error.to_string();
    assert!(message.contains("\"sqlit\""), "{message}");
    assert!(message.contains("memory://"), "{message}");
    assert!(message.contains("sqlite://path/to/tasks.db"), "{message}");
}

#[test]
fn urls_without_a_valid_scheme_are_refused() {
    let message = reason(refusal("tasks.db"));
    assert!(message.contains("starts with a scheme"), "{message}");
    let message = reason(refusal("://tasks.db"));
    assert!(message.contains("\"\" is not a URL scheme"), "{message}");
    let message = reason(refusal("9p://host"));
    assert!(message.contains("\"9p\" is not a URL scheme"), "{message}");
}

#[test]
fn a_backend_that_is_not_compiled_in_names_its_feature() {
    let off = Scheme {
        name: "redis",
        feature: Some("redis"),
        compiled: false,
        durable: true,
        example: "redis://host:6379",
    };
    let message = not_compiled(&off);
    assert!(
        message.contains("\"redis\" backend is not compiled"),
        "{message}"
    );
    assert!(
        message.contains("enable the \"redis\" feature"),
        "{message}"
    );
    let on = Scheme {
        name: "memory",
        feature: None,
        compiled: true,
        durable: false,
        example: "memory://",
    };
    assert_eq!(
        expected_forms_in(&[on, off]),
        "expected one of memory://, redis://host:6379 (with the \"redis\" feature)"
    );
}

#[test]
fn the_table_agrees_with_the_build() {
    let sqlite = SCHEMES.iter().find(|s| s.name == "sqlite").unwrap();
    assert_eq!(sqlite.compiled, cfg!(feature = "sqlite"));
    for scheme in SCHEMES {
        assert!(is_scheme(scheme.name), "{}", scheme.name);
        assert!(scheme.example.starts_with(scheme.name));
        // A bare scheme is refused by every backend before it touches a store.
        let bare = format!("{}:", scheme.name);
        assert_eq!(
            open_compiled(scheme.name, &bare).is_some(),
            scheme.compiled,
            "{}: the table and the match arms must use the same feature",
            scheme.name
        );
    }
}

#[cfg(not(feature = "sqlite"))]
#[test]
fn sqlite_without_its_feature_is_refused_with_the_feature_to_enable() {
    let message = reason(refusal("sqlite://tasks.db"));
    assert!(
        message.contains("enable the \"sqlite\" feature"),
        "{message}"
    );
}
