//! Waiting without polling: idle workers block on the notification list (`BLPOP`), and a
//! submitter waiting for a result subscribes to the queue's completion channel.

use std::time::{Duration, Instant};

use redis::{Connection, Value};
use workmill_core::{QueueError, TaskId, TaskRecord};

use super::RedisQueue;
use super::admin::status;
use super::scripts::{NEXT_DUE, Reply};

/// The longest a `wait` trusts its subscription before looking at the task again: a
/// completion whose message does not arrive (the server dropped the subscriber, say) is seen
/// this late at worst.
const RECHECK: Duration = Duration::from_secs(1);
/// Sleeps shorter than this are not worth a blocking call.
const MIN_BLOCK: Duration = Duration::from_millis(1);
/// The longest one `BLPOP` blocks, whatever the timeout and poll interval: a timeout of
/// `Duration::MAX` ("until there is work") must neither overflow the socket timeout nor
/// reach `BLPOP` as a number it refuses. The caller's wait simply resumes, as in the memory
/// queue.
const LONGEST_BLOCK: Duration = Duration::from_secs(3_600);

/// Blocks until work may be available or `timeout` passes.
///
/// A ready task ends the wait at once. Otherwise the wait is cut to the moment the first
/// delayed task comes due or the first lease lapses (both need a `reserve` to act on them),
/// and to the poll interval, and spent in `BLPOP` on the notification list. Every script that
/// makes a task ready (enqueue, release, requeue, a retry due now, a reduce, a `reserve` that
/// promotes more due tasks than it takes) pushes a token per task, and every one that adds a
/// delayed task (a delayed enqueue or reduce, a retry in backoff) pushes one, so that the
/// worker it wakes sleeps again until the new first due time. A lease taken, or shortened,
/// while the worker sleeps wakes nobody: the poll interval bounds how late its lapse is seen.
/// The list keeps its tokens (up to 64) while no one waits, so a task enqueued between a
/// worker's empty `reserve` and its `BLPOP` still wakes it.
pub(crate) fn await_work(queue: &RedisQueue, timeout: Duration) -> Result<(), QueueError> {
    const OP: &str = "wait for work";
    if timeout < MIN_BLOCK {
        return Ok(());
    }
    let due: Value = queue.pool.run(OP, |con| {
        NEXT_DUE.prepare_invoke().arg(&queue.prefix).invoke(con)
    })?;
    let due = Reply::of(OP).int(due)?;
    let mut block = timeout.min(queue.config.poll_interval).min(LONGEST_BLOCK);
    // Negative: nothing delayed or leased.
    if let Ok(micros) = u64::try_from(due) {
        block = block.min(Duration::from_micros(micros));
    }
    if block < MIN_BLOCK {
        return Ok(());
    }
    let wake = queue.key("wake");
    let answer_within = queue.pool.response_timeout();
    queue.pool.run(OP, |con| {
        queue
            .pool
            .set_timeout(con, block.saturating_add(answer_within))?;
        let popped: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
            .arg(&wake)
            .arg(format!("{:.3}", block.as_secs_f64()))
            .query(con);
        // Reset before any error returns: a connection that answered with an error (LOADING
        // after a restart, READONLY after a failover) goes back to the pool, and must not keep
        // the long timeout of the blocking pop for the next caller's command.
        let reset = queue.pool.set_timeout(con, answer_within);
        let popped = popped?;
        reset?;
        Ok(popped.map(drop))
    })?;
    Ok(())
}

/// Blocks until the task reaches a final status, or fails with `Timeout`.
///
/// Every script that finishes tasks publishes their ids (one per line) on `<prefix>:done`.
/// The waiter subscribes on a connection of its own, then reads the record (so a task that
/// finished before the subscription is seen), then sleeps until a message naming the task,
/// the re-check interval, or the deadline. If subscribing fails the wait falls back to
/// polling every 50 ms.
pub(crate) fn wait(
    queue: &RedisQueue,
    id: &TaskId,
    timeout: Duration,
) -> Result<TaskRecord, QueueError> {
    const OP: &str = "wait for a task";
    let start = Instant::now();
    let record = status(queue, id)?;
    if record.status.is_final() {
        return Ok(record);
    }
    if timeout.is_zero() {
        return Err(QueueError::Timeout {
            id: id.clone(),
            waited: start.elapsed(),
            status: record.status,
        });
    }
    let channel = queue.key("done");
    let mut connection: Option<Connection> = queue.pool.connect(OP).ok();
    let mut subscription = connection.as_mut().and_then(|con| {
        let mut pubsub = con.as_pubsub();
        match pubsub.subscribe(&channel) {
            Ok(()) => Some(pubsub),
            Err(err) => {
                tracing::debug!(error = %err, "subscribing failed; waiting by polling");
                None
            }
        }
    });
    // The first read after subscribing catches a task that finished in between.
    let mut current = record.status;
    let mut look = true;
    let mut last_look = Instant::now();
    loop {
        if look || last_look.elapsed() >= RECHECK {
            let record = status(queue, id)?;
            if record.status.is_final() {
                return Ok(record);
            }
            current = record.status;
            last_look = Instant::now();
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(QueueError::Timeout {
                id: id.clone(),
                waited,
                status: current,
            });
        }
        let pause = (timeout - waited).min(RECHECK);
        let heard = subscription.as_mut().map(|pubsub| {
            pubsub
                .set_read_timeout(Some(pause.max(MIN_BLOCK)))
                .and_then(|()| pubsub.get_message())
        });
        look = match heard {
            Some(Ok(message)) => names(message.get_payload_bytes(), id),
            Some(Err(err)) if err.is_timeout() => true,
            Some(Err(err)) => {
                tracing::debug!(error = %err, "the subscription failed; waiting by polling");
                subscription = None;
                true
            }
            None => {
                std::thread::sleep(pause.min(Duration::from_millis(50)));
                true
            }
        };
    }
}

/// True when a completion message (ids, one per line) names `id`.
fn names(payload: &[u8], id: &TaskId) -> bool {
    payload
        .split(|&byte| byte == b'\n')
        .any(|line| line == id.as_str().as_bytes())
}
