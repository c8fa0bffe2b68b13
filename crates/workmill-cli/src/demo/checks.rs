//! The demo's checks: each a named claim, whether it held, and what was measured.

use serde::Serialize;

/// One claim the demo checked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// The demo step: `wordcount`, `priority` or `balance`.
    pub step: &'static str,
    /// What was claimed.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was measured.
    pub detail: String,
}

/// Collects the checks of one step.
#[derive(Debug)]
pub(super) struct Checks {
    step: &'static str,
    checks: Vec<Check>,
}

impl Checks {
    /// No checks yet, for `step`.
    pub(super) fn new(step: &'static str) -> Checks {
        Checks {
            step,
            checks: Vec::new(),
        }
    }

    /// Records that `name` held if `passed`, with `detail`.
    pub(super) fn check(
        &mut self,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) {
        self.checks.push(Check {
            step: self.step,
            name: name.into(),
            passed,
            detail: detail.into(),
        });
    }

    /// The checks recorded.
    pub(super) fn into_vec(self) -> Vec<Check> {
        self.checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_keep_their_step_and_outcome() {
        let mut checks = Checks::new("wordcount");
        checks.check("counts match", true, "1 == 1");
        checks.check("ordered", false, "2 before 1");
        let checks = checks.into_vec();
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(|c| c.step == "wordcount"));
        assert_eq!(checks.iter().filter(|c| c.passed).count(), 1);
    }
}
