//! Unit tests of the built-in tasks and their JSON catalog.

use serde_json::json;
use workmill::{Codec, NamedTask, Postcard, TaskContext};

use super::*;

#[test]
fn every_task_is_registered_and_found_by_short_name() {
    let registry = registry().expect("no duplicate names");
    for task in BUILTINS {
        assert!(
            registry.contains(task.name),
            "{} is not registered",
            task.name
        );
        assert_eq!(find(task.name).map(|t| t.name), Some(task.name));
    }
    assert_eq!(find("square").map(|t| t.name), Some("demo.square"));
    assert!(find("nope").is_none());
}

#[test]
fn json_inputs_round_trip_through_the_payload() {
    let square = find("square").unwrap();
    let payload = square.encode_input(json!(12)).unwrap();
    assert_eq!(Postcard.decode::<u64>(&payload).unwrap(), 12);
    assert_eq!(square.input_json(&payload), Some(json!(12)));
    let result = Postcard.encode(&144u64).unwrap();
    assert_eq!(square.output_json(&result), Some(json!(144)));

    let flaky = find("flaky").unwrap();
    let payload = flaky
        .encode_input(json!({"key": 3, "failure_rate": 0.5}))
        .unwrap();
    assert_eq!(
        flaky.input_json(&payload),
        Some(json!({"key": 3, "failure_rate": 0.5, "work_ms": 0}))
    );
}

#[test]
fn every_example_input_is_one_its_task_takes() {
    // The example is what a wrong input's error recommends: it must be one the task accepts,
    // and its stored payload must read back with the task's own decoder.
    let mut checked = 0;
    for task in BUILTINS.iter().filter(|task| task.input.is_some()) {
        let input: serde_json::Value = serde_json::from_str(task.example).unwrap_or_else(|e| {
            panic!("{}'s example {} is not JSON: {e}", task.name, task.example)
        });
        let payload = task
            .encode_input(input.clone())
            .unwrap_or_else(|e| panic!("{}'s example is refused: {e}", task.name));
        let stored = task
            .input_json(&payload)
            .unwrap_or_else(|| panic!("{}'s example does not decode", task.name));
        assert_eq!(
            task.encode_input(stored).as_deref(),
            Ok(&payload[..]),
            "{}'s example does not read back as itself",
            task.name
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        BUILTINS.len() - 1,
        "only words.merge has no decoder"
    );
    let count = find("words.count").unwrap();
    assert!(count.example.contains("path"), "{}", count.example);
}

#[test]
fn a_wrong_input_says_what_was_expected() {
    let error = find("square")
        .unwrap()
        .encode_input(json!("twelve"))
        .unwrap_err();
    assert!(error.contains("bad input"), "{error}");
    assert!(
        error.contains("demo.square takes an input like 12"),
        "{error}"
    );
    let error = find("words.merge")
        .unwrap()
        .encode_input(json!(null))
        .unwrap_err();
    assert!(error.contains("the backend enqueues it"), "{error}");
}

#[test]
fn tasks_compute_what_they_say() {
    let ctx = TaskContext::new(1);
    assert_eq!(Square(12).run(&ctx).unwrap(), 144);
    assert!(Square(u64::MAX).run(&ctx).unwrap_err().is_permanent());
    assert_eq!(Echo("hi".into()).run(&ctx).unwrap(), "hi");
    assert!(
        Sleep(MAX_SLEEP_MS + 1)
            .run(&ctx)
            .unwrap_err()
            .is_permanent()
    );
    let error = Fail("on purpose".into()).run(&ctx).unwrap_err();
    assert!(error.is_permanent());
    assert_eq!(error.message(), "on purpose");
}

#[test]
fn word_count_maps_read_their_split_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.txt");
    std::fs::write(&path, "a b a\nc a\n").unwrap();
    let path = path.display().to_string();
    let ctx = TaskContext::new(1);
    let split = |offset, len| CountWords {
        path: path.clone(),
        offset,
        len,
    };
    let whole = split(0, None).run(&ctx).unwrap();
    assert_eq!((whole.get("a"), whole.get("c")), (Some(&3), Some(&1)));
    let second_line = split(6, Some(4)).run(&ctx).unwrap();
    assert_eq!(
        second_line.into_iter().collect::<Vec<_>>(),
        [("a".into(), 1), ("c".into(), 1)]
    );

    let error = split(6, Some(40)).run(&ctx).unwrap_err();
    assert!(
        error.is_permanent() && error.message().contains("the file ends 4 bytes"),
        "{}",
        error.message()
    );
    let error = split(0, Some(MAX_SPLIT_BYTES + 1)).run(&ctx).unwrap_err();
    assert!(error.is_permanent(), "{}", error.message());
    let missing = CountWords {
        path: dir.path().join("gone").display().to_string(),
        offset: 0,
        len: None,
    };
    let error = missing.run(&ctx).unwrap_err();
    assert!(
        !error.is_permanent() && error.message().contains("cannot open"),
        "{}",
        error.message()
    );
    std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
    let binary = CountWords {
        path: dir.path().join("bin").display().to_string(),
        offset: 0,
        len: None,
    };
    assert!(
        binary
            .run(&ctx)
            .unwrap_err()
            .message()
            .contains("not UTF-8")
    );
}

#[test]
fn flaky_fails_as_its_rate_and_key_say() {
    let always = Flaky {
        key: 1,
        failure_rate: 1.0,
        work_ms: 0,
    };
    let never = Flaky {
        key: 1,
        failure_rate: 0.0,
        work_ms: 0,
    };
    assert!(always.clone().run(&TaskContext::new(1)).is_err());
    assert_eq!(never.run(&TaskContext::new(2)).unwrap(), 2);

    // Deterministic, and near the rate over many draws.
    let flaky = |key| Flaky {
        key,
        failure_rate: 0.7,
        work_ms: 0,
    };
    assert_eq!(flaky(9).fails(2), flaky(9).fails(2));
    let failures = (0..10_000u64).filter(|&key| flaky(key).fails(1)).count();
    assert!((6_500..7_500).contains(&failures), "{failures} of 10000");

    let bad = Flaky {
        key: 1,
        failure_rate: 1.5,
        work_ms: 0,
    };
    assert!(bad.run(&TaskContext::new(1)).unwrap_err().is_permanent());
}
