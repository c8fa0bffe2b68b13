//! `workmill submit`: enqueue a built-in task with its JSON input, priority, retries and id.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use workmill::{NewTask, Priority, Queue, RetryPolicy, TaskName};

use super::{Output, parse_id};
use crate::builtin;
use crate::cli::SubmitArgs;
use crate::error::CliError;

/// What `submit` reports.
#[derive(Debug, Serialize)]
struct Submitted {
    id: String,
    name: &'static str,
    priority: u16,
    max_attempts: u32,
}

/// Enqueues the task that `args` describe and prints its id.
pub fn submit(
    queue: &dyn Queue,
    args: &SubmitArgs,
    output: &mut Output<'_>,
) -> Result<(), CliError> {
    let task = builtin::find(&args.task).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown task {:?}; the built-in tasks are {}",
            args.task,
            builtin::names()
        ))
    })?;
    let input = parse_input(&args.input);
    let payload = task.encode_input(input).map_err(CliError::Usage)?;
    let max_attempts = args.retries.saturating_add(1);
    let retry = RetryPolicy::new(max_attempts).demote_by(args.demote);
    // The built-in's name is a literal: the task borrows it rather than copying it.
    let mut new = NewTask::new(TaskName::from_static(task.name), payload)
        .priority(Priority::new(args.priority))
        .retry(retry);
    if args.delay_ms > 0 {
        new = new.delay(Duration::from_millis(args.delay_ms));
    }
    if let Some(id) = &args.id {
        new = new.with_id(parse_id(id)?);
    }
    let id = queue.enqueue(new)?;
    let submitted = Submitted {
        id: id.as_str().to_owned(),
        name: task.name,
        priority: args.priority,
        max_attempts,
    };
    output.emit(&submitted, || id.as_str().to_owned())
}

/// The input as JSON; text that is not JSON is a JSON string, so `submit echo hello` works.
fn parse_input(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use workmill::{Codec, MemoryQueue, Postcard, TaskId};

    use super::*;

    fn args(task: &str, input: &str) -> SubmitArgs {
        SubmitArgs {
            task: task.to_owned(),
            input: input.to_owned(),
            priority: 1,
            retries: 4,
            demote: 10,
            delay_ms: 0,
            id: Some("job-1".to_owned()),
        }
    }

    #[test]
    fn inputs_are_json_or_else_text() {
        assert_eq!(parse_input("12"), json!(12));
        assert_eq!(parse_input(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(parse_input("hello world"), json!("hello world"));
    }

    #[test]
    fn a_submitted_task_carries_every_option() {
        let queue = MemoryQueue::new();
        let mut out = Vec::new();
        submit(
            &queue,
            &args("square", "7"),
            &mut Output {
                out: &mut out,
                json: true,
            },
        )
        .unwrap();
        let printed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(printed["id"], "job-1");
        assert_eq!(printed["max_attempts"], 5);
        let record = queue.status(&TaskId::new("job-1").unwrap()).unwrap();
        assert_eq!(record.name, "demo.square");
        assert!(
            std::ptr::eq(record.name.as_str(), builtin::find("square").unwrap().name),
            "the queued name borrows the built-in's literal"
        );
        assert_eq!(record.priority, Priority::HIGH);
        assert_eq!(record.retry.max_attempts(), 5);
        assert_eq!(record.retry.demotion_step(), 10);
        assert_eq!(Postcard.decode::<u64>(&record.payload).unwrap(), 7);
    }

    #[test]
    fn unknown_tasks_and_bad_inputs_are_usage_errors() {
        let queue = MemoryQueue::new();
        let mut out = Vec::new();
        let mut output = Output {
            out: &mut out,
            json: false,
        };
        let error = submit(&queue, &args("nope", "1"), &mut output).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the built-in tasks are demo.square"),
            "{error}"
        );
        assert_eq!(error.exit_code(), crate::error::EXIT_USAGE);
        let error = submit(&queue, &args("square", "minus one"), &mut output).unwrap_err();
        assert!(
            error.to_string().contains("takes an input like 12"),
            "{error}"
        );
        assert_eq!(error.exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(queue.stats().unwrap().submitted, 0);
    }
}
