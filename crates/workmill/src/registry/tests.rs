//! Registry tests: each way an attempt ends maps to the right `Failure` kind, and panics never escape.

use serde::{Deserialize, Serialize};
use workmill_core::{Codec, FailureKind, NamedTask, Postcard, TaskContext, TaskError};

use super::*;

#[derive(Serialize, Deserialize)]
struct Divide {
    numerator: i64,
    denominator: i64,
}

impl NamedTask for Divide {
    const NAME: &'static str = "test.divide";
    type Output = i64;
    fn run(self, ctx: &TaskContext<'_>) -> Result<i64, TaskError> {
        match self.denominator {
            0 => Err(TaskError::permanent("division by zero")),
            -1 if ctx.attempt() == 1 => Err(TaskError::retryable("flaky on the first try")),
            -2 => panic!("asked to panic"),
            d => Ok(self.numerator / d),
        }
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register::<Divide>().unwrap();
    registry
}

fn run(registry: &Registry, name: &str, payload: &[u8], attempt: u32) -> Result<Payload, Failure> {
    registry.run(name, payload, &TaskContext::new(attempt))
}

fn divide(numerator: i64, denominator: i64) -> Vec<u8> {
    Postcard
        .encode(&Divide {
            numerator,
            denominator,
        })
        .unwrap()
}

#[test]
fn a_named_task_decodes_runs_and_encodes() {
    let output = run(&registry(), Divide::NAME, &divide(12, 4), 1).unwrap();
    assert_eq!(Postcard.decode::<i64>(&output).unwrap(), 3);
    assert!(output.is_inline(), "a small output needs no allocation");
}

#[test]
fn an_output_too_large_to_be_inline_keeps_all_its_bytes() {
    let mut registry = Registry::new();
    let handle = registry
        .register_fn("repeat", |n: usize| Ok::<_, TaskError>("ab".repeat(n)))
        .unwrap();
    for n in [0, 10, 11, 12, 1_000] {
        let output = run(&registry, handle.name(), &Postcard.encode(&n).unwrap(), 1).unwrap();
        assert_eq!(output, Postcard.encode(&"ab".repeat(n)).unwrap());
        assert_eq!(
            output.is_inline(),
            output.len() <= workmill_core::INLINE_PAYLOAD
        );
    }
}

#[test]
fn task_errors_keep_their_kind_and_see_the_attempt() {
    let registry = registry();
    let failure = run(&registry, Divide::NAME, &divide(1, 0), 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Permanent);
    assert_eq!(failure.message, "division by zero");
    let failure = run(&registry, Divide::NAME, &divide(5, -1), 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Error);
    let output = run(&registry, Divide::NAME, &divide(5, -1), 2).unwrap();
    assert_eq!(Postcard.decode::<i64>(&output).unwrap(), -5);
}

#[test]
fn a_panic_is_a_failure_with_its_message() {
    let failure = run(&registry(), Divide::NAME, &divide(1, -2), 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Panic);
    assert!(
        failure.message.contains("asked to panic"),
        "{}",
        failure.message
    );

    let mut registry = Registry::new();
    registry
        .register_fn("formatted", |n: u32| -> Result<u32, TaskError> {
            panic!("bad input {n}")
        })
        .unwrap();
    let failure = run(&registry, "formatted", &Postcard.encode(&7u32).unwrap(), 1).unwrap_err();
    assert!(
        failure.message.contains("bad input 7"),
        "{}",
        failure.message
    );
    registry
        .register_fn("opaque", |_: ()| -> Result<(), TaskError> {
            std::panic::panic_any(42u8)
        })
        .unwrap();
    let failure = run(&registry, "opaque", &[], 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Panic);
    assert!(
        failure.message.contains("non-string"),
        "{}",
        failure.message
    );
}

#[test]
fn unknown_names_are_retryable_and_bad_payloads_permanent_failures() {
    let registry = registry();
    let failure = run(&registry, "test.multiply", &divide(1, 1), 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::UnknownTask);
    assert!(failure.message.contains("test.multiply") && failure.message.contains("test.divide"));
    // Another worker may know the name, or this one once it registers it.
    assert!(!failure.kind.is_permanent());

    for payload in [&b""[..], &[0xff; 3][..], &[2, 4, 9][..]] {
        let failure = run(&registry, Divide::NAME, payload, 1).unwrap_err();
        assert_eq!(failure.kind, FailureKind::Decode, "{payload:?}");
        assert!(
            failure.message.contains("test.divide"),
            "{}",
            failure.message
        );
        assert!(failure.kind.is_permanent());
    }
}

#[test]
fn names_are_unique_and_not_empty() {
    let mut registry = registry();
    assert_eq!(
        registry.register::<Divide>().unwrap_err(),
        RegistryError::DuplicateName {
            name: "test.divide".to_owned()
        }
    );
    assert!(
        registry
            .register_fn("test.divide", |x: u8| Ok::<_, TaskError>(x))
            .is_err()
    );
    assert_eq!(
        registry
            .register_fn("", |x: u8| Ok::<_, TaskError>(x))
            .unwrap_err(),
        RegistryError::EmptyName
    );
    assert_eq!(registry.names(), ["test.divide"]);
}

#[test]
fn a_shared_registry_grows_without_disturbing_snapshots() {
    let shared = SharedRegistry::new(registry());
    let before = shared.snapshot();
    shared
        .update(|registry| registry.register_fn("later", |x: u8| Ok::<_, TaskError>(x)))
        .unwrap();
    assert!(!before.contains("later"));
    assert!(shared.snapshot().contains("later"));
    assert!(
        shared
            .update(|registry| registry.register::<Divide>().map(|_| ()))
            .is_err()
    );
    assert_eq!(shared.snapshot().names(), ["later", "test.divide"]);
}

#[test]
fn a_reduce_run_without_its_queue_fails_permanently_saying_why() {
    let mut registry = Registry::new();
    registry
        .register_reduce_fn("sum", |numbers: Vec<u64>| {
            Ok::<_, TaskError>(numbers.iter().sum::<u64>())
        })
        .unwrap();
    let payload = Postcard
        .encode(&crate::job::ReduceInput {
            job: "a-job".to_owned(),
            arg: Vec::new(),
        })
        .unwrap();
    let failure = run(&registry, "sum", &payload, 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Permanent);
    assert!(
        failure.message.contains("a-job") && failure.message.contains("run_from"),
        "{failure}"
    );
    // A payload that is not a reduce's is a decode failure, as for any task.
    let failure = run(&registry, "sum", &[0xff; 3], 1).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Decode);
}
