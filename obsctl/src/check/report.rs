//! The check report: every result, a summary, and the exit code CI reads.

use serde::{Deserialize, Serialize};

use super::model::{CheckResult, Status};

/// Version of the JSON shape of [`CheckReport`]; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

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
    /// Whether skipped checks count as failures.
    pub strict: bool,
    /// RFC 3339 time the checks started.
    pub started_at: String,
    /// RFC 3339 time the checks finished.
    pub finished_at: String,
    /// One result per check, in catalogue order.
    pub checks: Vec<CheckResult>,
    /// Counts per status.
    pub summary: Summary,
}

/// How many checks ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks skipped for want of a source.
    pub skipped: usize,
    /// Checks whose source could not answer.
    pub errors: usize,
}

impl Summary {
    /// Counts the statuses of `checks`.
    pub fn of(checks: &[CheckResult]) -> Self {
        checks.iter().fold(Self::default(), |mut sum, check| {
            match check.status {
                Status::Pass => sum.passed += 1,
                Status::Fail => sum.failed += 1,
                Status::Skip => sum.skipped += 1,
                Status::Error => sum.errors += 1,
            }
            sum
        })
    }
}

impl CheckReport {
    /// True when nothing failed or errored (and, under `strict`, nothing was skipped).
    pub fn succeeded(&self) -> bool {
        let s = &self.summary;
        s.failed == 0 && s.errors == 0 && (!self.strict || s.skipped == 0)
    }
}
