//! The check report: every result, a summary, and the exit code CI reads.

use serde::{Deserialize, Serialize};

use super::model::{CheckResult, Status};

/// Version of the JSON shape of [`CheckReport`]; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 2;

/// Everything one `obsctl check` or `obsctl verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Version of this JSON shape.
    pub schema_version: u32,
    /// The obsctl version that produced the report.
    pub obsctl_version: String,
    /// Base URL of the service checked, when one was given.
    pub target: Option<String>,
    /// The service name looked for in logs and traces.
    pub service: String,
    /// Whether every check not allowed was denied, skips included.
    pub strict: bool,
    /// The policy file whose levels applied, if any.
    pub policy_file: Option<String>,
    /// RFC 3339 time the checks started.
    pub started_at: String,
    /// RFC 3339 time the checks finished.
    pub finished_at: String,
    /// One result per check, in registry order.
    pub checks: Vec<CheckResult>,
    /// Counts per status.
    pub summary: Summary,
}

/// How many checks ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Checks at level `warn` that found something.
    pub warned: usize,
    /// Checks at level `deny` that found something.
    pub failed: usize,
    /// Checks skipped for want of a source.
    pub skipped: usize,
    /// Checks whose source could not answer.
    pub errors: usize,
    /// Checks not run because the policy allows them.
    pub allowed: usize,
}

impl Summary {
    /// Counts the statuses of `checks`.
    pub fn of(checks: &[CheckResult]) -> Self {
        checks.iter().fold(Self::default(), |mut sum, check| {
            match check.status {
                Status::Pass => sum.passed += 1,
                Status::Warn => sum.warned += 1,
                Status::Fail => sum.failed += 1,
                Status::Skip => sum.skipped += 1,
                Status::Error => sum.errors += 1,
                Status::Allowed => sum.allowed += 1,
            }
            sum
        })
    }
}

impl CheckReport {
    /// True when no result fails the run (see [`CheckResult::fails_run`]).
    pub fn succeeded(&self) -> bool {
        !self.checks.iter().any(|c| c.fails_run(self.strict))
    }

    /// True when nothing was checked: every check that ran was skipped.
    pub fn nothing_checked(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.status, Status::Skip | Status::Allowed))
    }

    /// The results that fail the run.
    pub fn failing(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.fails_run(self.strict))
    }
}
