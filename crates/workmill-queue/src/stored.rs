//! What every backend that keeps tasks in a store shares: the checks at submit, the payload
//! checksum, the retry policy as plain columns, status moves checked against the one table, and
//! the counts those moves change.
//!
//! These are backend-neutral on purpose: the SQLite and PostgreSQL backends (and any other that
//! writes a task as a row of columns) store and read a task the same way, without either
//! backend depending on the other.

use std::time::Duration;

use workmill_core::{
    Backoff, NewTask, QueueError, RetryPolicy, TaskId, TaskRecord, TaskStatus, Transition,
};

/// Checks what can be checked before touching the store: the policy and the payload size.
pub(crate) fn validate(task: &NewTask, payload_limit: usize) -> Result<(), QueueError> {
    task.retry
        .validate()
        .map_err(|source| QueueError::InvalidPolicy {
            id: task.id.clone(),
            source,
        })?;
    if task.payload.len() > payload_limit {
        return Err(QueueError::PayloadTooLarge {
            id: task.id.clone(),
            size: task.payload.len(),
            limit: payload_limit,
        });
    }
    Ok(())
}

/// FNV-1a (64 bit) of the payload, stored as a signed SQL integer.
///
/// Every step of FNV-1a is a bijection of the running state, so any change to a
/// single byte changes the result; larger damage goes unnoticed with
/// probability 2^-64. It is a damage detector, not a defence against tampering.
pub(crate) fn payload_checksum(payload: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in payload {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A retry policy as plain column values: `max_attempts`, `backoff`, `backoff_initial_us`,
/// `backoff_factor`, `backoff_max_us`, `jitter`, `demote_by`.
pub(crate) struct PolicyColumns<'a> {
    pub(crate) max_attempts: i64,
    pub(crate) backoff: &'a str,
    pub(crate) initial_us: i64,
    pub(crate) factor: f64,
    pub(crate) max_us: i64,
    pub(crate) jitter: f64,
    pub(crate) demote_by: i64,
}

fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl PolicyColumns<'static> {
    /// Splits a policy into columns; durations are kept to the microsecond.
    pub(crate) fn of(policy: &RetryPolicy) -> PolicyColumns<'static> {
        let (backoff, initial, factor, max) = match *policy.backoff_schedule() {
            Backoff::Immediate => ("immediate", Duration::ZERO, 1.0, Duration::ZERO),
            Backoff::Fixed(d) => ("fixed", d, 1.0, d),
            Backoff::Exponential {
                initial,
                factor,
                max,
            } => ("exponential", initial, factor, max),
        };
        PolicyColumns {
            max_attempts: i64::from(policy.max_attempts()),
            backoff,
            initial_us: duration_us(initial),
            factor,
            max_us: duration_us(max),
            jitter: policy.jitter_fraction(),
            demote_by: i64::from(policy.demotion_step()),
        }
    }
}

impl PolicyColumns<'_> {
    /// Rebuilds the policy from stored values, naming the column that is out of range or
    /// the rule the whole policy breaks.
    pub(crate) fn into_policy(self) -> Result<RetryPolicy, String> {
        let max_attempts = u32::try_from(self.max_attempts)
            .map_err(|_| "column max_attempts: out of range".to_owned())?;
        let micros = |value: i64, name: &str| {
            u64::try_from(value)
                .map(Duration::from_micros)
                .map_err(|_| format!("column {name}: negative duration"))
        };
        let initial = micros(self.initial_us, "backoff_initial_us")?;
        let max = micros(self.max_us, "backoff_max_us")?;
        let backoff = match self.backoff {
            "immediate" => Backoff::Immediate,
            "fixed" => Backoff::Fixed(initial),
            "exponential" => Backoff::Exponential {
                initial,
                factor: self.factor,
                max,
            },
            other => return Err(format!("column backoff: unknown schedule {other:?}")),
        };
        let demote_by = u16::try_from(self.demote_by)
            .map_err(|_| "column demote_by: out of range".to_owned())?;
        let policy = RetryPolicy::new(max_attempts)
            .backoff(backoff)
            .jitter(self.jitter)
            .demote_by(demote_by);
        policy
            .validate()
            .map_err(|e| format!("the stored retry policy is unusable: {e}"))?;
        Ok(policy)
    }
}

/// Changes to the stored counts made by one transaction, written in one update before it commits.
///
/// The gauges follow the moves a transaction made ([`Deltas::moved`]); finished records
/// stay stored (and counted in `retained_finished`) until the retention bound evicts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deltas {
    pub(crate) submitted: i64,
    pub(crate) pending: i64,
    pub(crate) retrying: i64,
    pub(crate) running: i64,
    pub(crate) completed: i64,
    pub(crate) dead: i64,
    pub(crate) cancelled: i64,
    pub(crate) failed_attempts: i64,
    pub(crate) retried: i64,
    pub(crate) expired_leases: i64,
    pub(crate) evicted: i64,
    pub(crate) retained_finished: i64,
}

impl Deltas {
    /// The gauge counting tasks in `status`.
    pub(crate) fn gauge(&mut self, status: TaskStatus) -> &mut i64 {
        match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::Retrying => &mut self.retrying,
            TaskStatus::Running => &mut self.running,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Dead => &mut self.dead,
            TaskStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// Counts one task moving from `from` to `to`; finished records are stored until evicted.
    pub(crate) fn moved(&mut self, from: TaskStatus, to: TaskStatus) {
        *self.gauge(from) -= 1;
        *self.gauge(to) += 1;
        if from.is_final() {
            self.retained_finished -= 1;
        }
        if to.is_final() {
            self.retained_finished += 1;
        }
    }
}

/// Checks a status move against [`TaskStatus::transition`], naming the task when it is refused.
pub(crate) fn transition(
    id: &TaskId,
    from: TaskStatus,
    to: TaskStatus,
) -> Result<Transition, QueueError> {
    from.transition(to)
        .map_err(|source| QueueError::IllegalTransition {
            id: id.clone(),
            source,
        })
}

/// Reads a stored status name; a `CHECK` constraint keeps it valid unless the store was edited by hand.
pub(crate) fn parse_status(id: &TaskId, text: &str) -> Result<TaskStatus, QueueError> {
    text.parse().map_err(|_| QueueError::Corrupt {
        id: id.clone(),
        detail: format!("status {text:?} is not a task status"),
    })
}

/// Adds a record `list` read to `page`, or, if it could not be read, leaves it out with a
/// warning naming it (it takes no place in the page); true once the page holds `limit`.
pub(crate) fn add_to_page(
    page: &mut Vec<TaskRecord>,
    limit: usize,
    read: Result<TaskRecord, QueueError>,
) -> bool {
    match read {
        Ok(record) => page.push(record),
        Err(err) => tracing::warn!(error = %err, "list skips a task whose record cannot be read"),
    }
    page.len() >= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_notices_any_single_byte_change() {
        let payload: Vec<u8> = (0..=255).collect();
        let original = payload_checksum(&payload);
        for i in 0..payload.len() {
            let mut damaged = payload.clone();
            damaged[i] ^= 0x01;
            assert_ne!(payload_checksum(&damaged), original, "byte {i}");
        }
        assert_ne!(payload_checksum(&payload[..255]), original, "truncation");
        assert_ne!(payload_checksum(b""), payload_checksum(b"\0"));
    }

    #[test]
    fn policies_round_trip_through_columns() {
        let policies = [
            RetryPolicy::new(1),
            RetryPolicy::new(4).backoff(Backoff::Immediate).jitter(0.0),
            RetryPolicy::new(7)
                .backoff(Backoff::Fixed(Duration::from_millis(1_500)))
                .demote_by(10),
            RetryPolicy::new(3).backoff(Backoff::Exponential {
                initial: Duration::from_micros(250),
                factor: 3.5,
                max: Duration::from_secs(90),
            }),
        ];
        for policy in policies {
            let back = PolicyColumns::of(&policy).into_policy().unwrap();
            assert_eq!(back, policy);
        }
    }

    #[test]
    fn damaged_policy_columns_name_the_column() {
        let mut columns = PolicyColumns::of(&RetryPolicy::default());
        columns.backoff = "sometimes";
        assert!(columns.into_policy().unwrap_err().contains("backoff"));
        let mut columns = PolicyColumns::of(&RetryPolicy::default());
        columns.demote_by = 70_000;
        assert!(columns.into_policy().unwrap_err().contains("demote_by"));
        let mut columns = PolicyColumns::of(&RetryPolicy::default());
        columns.max_attempts = 0;
        assert!(columns.into_policy().unwrap_err().contains("unusable"));
        let mut columns = PolicyColumns::of(&RetryPolicy::default());
        columns.initial_us = -1;
        assert!(columns.into_policy().unwrap_err().contains("negative"));
    }

    #[test]
    fn moves_keep_the_gauges_balanced() {
        let mut deltas = Deltas::default();
        deltas.moved(TaskStatus::Pending, TaskStatus::Running);
        deltas.moved(TaskStatus::Running, TaskStatus::Completed);
        assert_eq!(deltas.pending, -1);
        assert_eq!(deltas.running, 0);
        assert_eq!(deltas.completed, 1);
        assert_eq!(deltas.retained_finished, 1);
        deltas.moved(TaskStatus::Running, TaskStatus::Dead);
        deltas.moved(TaskStatus::Dead, TaskStatus::Pending);
        assert_eq!(
            deltas.retained_finished, 1,
            "a requeued record is no longer finished"
        );
        let sum = deltas.pending
            + deltas.retrying
            + deltas.running
            + deltas.completed
            + deltas.dead
            + deltas.cancelled;
        assert_eq!(sum, 0, "moves never change the number of tasks");
    }
}
