//! Map-reduce jobs on Redis: submitting one in a single script, and reading its record (one
//! `MULTI` of two reads) and its maps' results (one script). What the moves of a job's tasks
//! do to it happens inside their own scripts (`lua/jobs.lua`).

use std::collections::HashMap;

use redis::Value;
use workmill_core::{
    Failure, FailureKind, JobRecord, JobStatus, NewJob, QueueError, TaskId, Timestamp,
};

use super::RedisQueue;
use super::enqueue::{PolicyTexts, task_args, validate};
use super::record::{number, text};
use super::scripts::{JOB_RESULTS, Reply, SUBMIT_JOB, malformed};

/// Enqueues the maps of `job`, holds back its reduce and records the job, in one script.
pub(crate) fn submit_job(queue: &RedisQueue, job: NewJob) -> Result<TaskId, QueueError> {
    const OP: &str = "submit a job";
    job.validate()?;
    for task in job.maps.iter().chain(std::iter::once(&job.reduce)) {
        validate(task, queue.config.payload_limit)?;
    }
    let mut invocation = SUBMIT_JOB.prepare_invoke();
    invocation
        .arg(&queue.prefix)
        .arg(job.id.as_str())
        .arg(job.maps.len());
    let mut policies = PolicyTexts::default();
    task_args(&mut invocation, &job.reduce, &mut policies);
    for map in &job.maps {
        task_args(&mut invocation, map, &mut policies);
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    let read = Reply::of(OP);
    match reply {
        Value::Array(items) => {
            let mut items = items.into_iter();
            let verdict = items.next().map(|v| read.text(v)).transpose()?;
            let taken = items.next().map(|v| read.text(v)).transpose()?;
            match (verdict.as_deref(), taken) {
                (Some("duplicate"), Some(taken)) => {
                    let id = job
                        .maps
                        .iter()
                        .chain(std::iter::once(&job.reduce))
                        .map(|task| &task.id)
                        .find(|id| id.as_str() == taken)
                        .cloned()
                        .ok_or_else(|| {
                            malformed(OP, format_args!("duplicate of an id not sent: {taken:?}"))
                        })?;
                    Err(QueueError::DuplicateTask { id })
                }
                other => Err(malformed(OP, format_args!("{other:?}"))),
            }
        }
        other => match read.text(other)?.as_str() {
            "ok" => Ok(job.id),
            "duplicate_job" => Err(QueueError::DuplicateJob { id: job.id }),
            verdict => Err(malformed(OP, format_args!("verdict {verdict:?}"))),
        },
    }
}

impl RedisQueue {
    fn job_key(&self, id: &TaskId) -> String {
        format!("{}:job:{}", self.prefix, id.as_str())
    }

    fn job_maps_key(&self, id: &TaskId) -> String {
        format!("{}:job-maps:{}", self.prefix, id.as_str())
    }
}

/// The record of job `id`: its hash and its maps, read together in one `MULTI`.
pub(crate) fn job(queue: &RedisQueue, id: &TaskId) -> Result<JobRecord, QueueError> {
    const OP: &str = "read a job";
    let (fields, maps): (HashMap<String, Vec<u8>>, Vec<String>) = queue.pool.run(OP, |con| {
        redis::pipe()
            .atomic()
            .hgetall(queue.job_key(id))
            .lrange(queue.job_maps_key(id), 0, -1)
            .query(con)
    })?;
    if fields.is_empty() {
        return Err(QueueError::JobNotFound { id: id.clone() });
    }
    read_job(id, &fields, &maps).map_err(|detail| QueueError::Corrupt {
        id: id.clone(),
        detail,
    })
}

/// Reads a job's hash and map list into its record, naming the field that cannot be read.
fn read_job(
    id: &TaskId,
    fields: &HashMap<String, Vec<u8>>,
    maps: &[String],
) -> Result<JobRecord, String> {
    let required = |name: &str| {
        fields
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("field {name} of the job is missing"))
    };
    let optional = |name: &str| fields.get(name).map(Vec::as_slice);
    let status = job_status(text("status", required("status")?)?)?;
    let maps_total: u32 = number("maps_total", required("maps_total")?)?;
    let maps = maps
        .iter()
        .map(|map| TaskId::new(map).map_err(|e| format!("a map id of the job is unreadable: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if maps.len() != maps_total as usize {
        return Err(format!(
            "the job lists {} maps but maps_total says {maps_total}",
            maps.len()
        ));
    }
    let failure = match (optional("failed_task"), optional("failure_kind")) {
        (Some(task), Some(kind)) => {
            let task = TaskId::new(text("failed_task", task)?)
                .map_err(|e| format!("field failed_task: {e}"))?;
            let kind_text = text("failure_kind", kind)?;
            let kind = FailureKind::parse(kind_text)
                .ok_or_else(|| format!("field failure_kind: unknown kind {kind_text:?}"))?;
            let message = optional("failure_message")
                .map(|m| text("failure_message", m).map(str::to_owned))
                .transpose()?
                .unwrap_or_default();
            Some((task, Failure::new(kind, message)))
        }
        _ => None,
    };
    let time = |name: &str, bytes: &[u8]| number::<u64>(name, bytes).map(Timestamp::from_micros);
    Ok(JobRecord {
        id: id.clone(),
        status,
        maps,
        maps_done: number("maps_done", required("maps_done")?)?,
        reduce: TaskId::new(text("reduce", required("reduce")?)?)
            .map_err(|e| format!("field reduce: {e}"))?,
        failure,
        created_at: time("created_at", required("created_at")?)?,
        finished_at: optional("finished_at")
            .map(|t| time("finished_at", t))
            .transpose()?,
    })
}

fn job_status(text: &str) -> Result<JobStatus, String> {
    text.parse()
        .map_err(|_| format!("field status: {text:?} is not a job status"))
}

/// The results of job `id`'s maps in map order, once every map completed.
pub(crate) fn job_results(queue: &RedisQueue, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
    const OP: &str = "read a job's results";
    let reply: Value = queue.pool.run(OP, |con| {
        JOB_RESULTS
            .prepare_invoke()
            .arg(&queue.prefix)
            .arg(id.as_str())
            .invoke(con)
    })?;
    let read = Reply::of(OP);
    let mut values = read.items(reply)?.into_iter();
    let Some(status) = values.next() else {
        return Err(QueueError::JobNotFound { id: id.clone() });
    };
    let corrupt = |detail: String| QueueError::Corrupt {
        id: id.clone(),
        detail,
    };
    let status = job_status(&read.text(status)?).map_err(corrupt)?;
    let mut count = |name: &str| -> Result<u32, QueueError> {
        let bytes = read.bytes(values.next().unwrap_or(Value::Nil))?;
        number(name, &bytes).map_err(corrupt)
    };
    let (maps_done, maps_total) = (count("maps_done")?, count("maps_total")?);
    let incomplete = || QueueError::JobIncomplete {
        id: id.clone(),
        status,
        maps_done,
        maps_total,
    };
    if maps_done != maps_total {
        return Err(incomplete());
    }
    let results: Vec<Vec<u8>> = values
        .map(|value| match value {
            Value::Nil => Err(incomplete()),
            other => read.bytes(other),
        })
        .collect::<Result<_, _>>()?;
    if results.len() != maps_total as usize {
        return Err(corrupt(format!(
            "{} results for {maps_total} maps",
            results.len()
        )));
    }
    Ok(results)
}
