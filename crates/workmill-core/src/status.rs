//! `TaskStatus` and the one transition table that every backend consults before it moves a task.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{IllegalTransition, UnknownStatus};

/// Where a task is in its life.
///
/// ```text
///            reserve             complete
/// Pending ───────────▶ Running ───────────▶ Completed
///  ▲  │ ▲                │ │ │
///  │  │ └── release ─────┘ │ └── fail, no attempts left ──▶ Dead ──┐
///  │  │  (never started)   │                                        │
///  │  │                    └── fail, attempts left ──▶ Retrying     │
///  │  │                                                │  │         │
///  │  │ ◀──────────── backoff elapsed ─────────────────┘  │         │
///  │  └── cancel ──▶ Cancelled ◀──────── cancel ──────────┘         │
///  └──────────────────────────── requeue (an operator's retry) ─────┘
/// ```
///
/// A due `Retrying` task may also be reserved directly (`Retrying -> Running`).
/// A lapsed lease is a failed attempt like any other: it leaves `Running` for
/// `Retrying` or `Dead` by the task's retry policy.
/// The legal moves are listed once, in [`TaskStatus::transition`]; backends
/// call it rather than deciding for themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for a worker; may carry a future `run_at` (a delayed task).
    Pending,
    /// Reserved by a worker under a lease.
    Running,
    /// Failed an attempt and waits for its backoff before the next.
    Retrying,
    /// Finished successfully; its result is stored.
    Completed,
    /// Out of attempts, or failed permanently: in the dead-letter set.
    Dead,
    /// Cancelled before it ran.
    Cancelled,
}

/// The named moves between statuses, for error messages and for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// `Pending | Retrying -> Running`: a worker took the task under a lease.
    Reserve,
    /// `Running -> Completed`.
    Complete,
    /// `Running -> Retrying`: an attempt failed and attempts remain.
    Retry,
    /// `Running -> Dead`: attempts exhausted, or a permanent error.
    DeadLetter,
    /// `Running -> Pending`: handed back unstarted; the attempt is not counted.
    Release,
    /// `Retrying -> Pending`: the backoff elapsed.
    Wake,
    /// `Pending | Retrying -> Cancelled`.
    Cancel,
    /// `Dead -> Pending`: an operator asked for another try.
    Requeue,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Retrying,
        TaskStatus::Completed,
        TaskStatus::Dead,
        TaskStatus::Cancelled,
    ];

    /// The move from `self` to `to`, or an error if the lifecycle forbids it.
    ///
    /// This match is the transition table: a pair missing here is illegal.
    pub fn transition(self, to: TaskStatus) -> Result<Transition, IllegalTransition> {
        use TaskStatus::*;
        let transition = match (self, to) {
            (Pending | Retrying, Running) => Transition::Reserve,
            (Running, Completed) => Transition::Complete,
            (Running, Retrying) => Transition::Retry,
            (Running, Dead) => Transition::DeadLetter,
            (Running, Pending) => Transition::Release,
            (Retrying, Pending) => Transition::Wake,
            (Pending | Retrying, Cancelled) => Transition::Cancel,
            (Dead, Pending) => Transition::Requeue,
            _ => return Err(IllegalTransition { from: self, to }),
        };
        Ok(transition)
    }

    /// True if the lifecycle allows moving from `self` to `to`.
    pub fn can_become(self, to: TaskStatus) -> bool {
        self.transition(to).is_ok()
    }

    /// True for the statuses a task stays in unless an operator acts:
    /// `Completed`, `Dead` and `Cancelled`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Dead | TaskStatus::Cancelled
        )
    }

    /// True for statuses waiting for a worker: `Pending` and `Retrying`.
    pub fn is_waiting(self) -> bool {
        matches!(self, TaskStatus::Pending | TaskStatus::Retrying)
    }

    /// The lowercase name used in stores, URLs and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Completed => "completed",
            TaskStatus::Dead => "dead",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<TaskStatus, UnknownStatus> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;

    /// The lifecycle written out a second time, pair by pair, so that the match
    /// above is checked against an independent statement of the rules.
    const LEGAL: [(TaskStatus, TaskStatus); 10] = [
        (Pending, Running),
        (Pending, Cancelled),
        (Running, Completed),
        (Running, Retrying),
        (Running, Dead),
        (Running, Pending),
        (Retrying, Pending),
        (Retrying, Running),
        (Retrying, Cancelled),
        (Dead, Pending),
    ];

    #[test]
    fn table_accepts_exactly_the_legal_moves() {
        let legal: std::collections::HashSet<_> = LEGAL.into_iter().collect();
        assert_eq!(legal.len(), 10, "ten distinct legal moves");
        let mut accepted = 0;
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let allowed = from.can_become(to);
                assert_eq!(allowed, legal.contains(&(from, to)), "{from} -> {to}");
                if allowed {
                    accepted += 1;
                } else {
                    let err = from.transition(to).unwrap_err();
                    assert!(
                        err.to_string().contains(from.as_str())
                            && err.to_string().contains(to.as_str())
                    );
                }
            }
        }
        assert_eq!(accepted, 10);
    }

    #[test]
    fn final_statuses_only_leave_by_requeue() {
        for from in TaskStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in TaskStatus::ALL {
                if from.can_become(to) {
                    assert_eq!((from, to), (Dead, Pending));
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
            assert_eq!(
                status
                    .to_string()
                    .to_uppercase()
                    .parse::<TaskStatus>()
                    .unwrap(),
                status
            );
        }
        let err = "finished".parse::<TaskStatus>().unwrap_err();
        assert!(err.to_string().contains("finished"));
    }
}
