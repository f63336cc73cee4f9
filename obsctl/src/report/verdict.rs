//! The verdict beyond thresholds: a run in which no request succeeded proves nothing about the
//! target, so it fails (`passed: false`, exit 1) whatever its thresholds say, and even when it
//! has none. Pure: a report in, the reason out.

use super::RunReport;
use std::collections::BTreeMap;
use std::fmt;

/// Why no request of a run succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSuccess {
    /// No request got a response: connections refused, everything timed out, nothing started.
    NoResponse {
        /// Requests that came due.
        due: u64,
        /// What happened to them instead, e.g. `connect: 40`.
        errors: String,
        /// The target they were for.
        target: String,
    },
    /// Responses came, but none with a status the scenario expects.
    NoneExpected {
        /// Requests that came due.
        due: u64,
        /// The statuses that came, e.g. `500: 40`.
        statuses: String,
    },
}

impl fmt::Display for NoSuccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoResponse {
                due,
                errors,
                target,
            } => write!(
                f,
                "none of the {due} requests got a response ({errors}): check that a service \
                 listens at {target}"
            ),
            Self::NoneExpected { due, statuses } => write!(
                f,
                "none of the {due} requests succeeded: every response had a status the scenario \
                 does not expect ({statuses}); check the paths and each request's `expect`"
            ),
        }
    }
}

/// Why no request of `report` succeeded; `None` when one did, or when none came due.
pub fn no_success(report: &RunReport) -> Option<NoSuccess> {
    let due = report.requests_due();
    let succeeded: u64 = report
        .requests
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| r.count)
        .sum();
    if due == 0 || succeeded > 0 {
        return None;
    }
    let responses: u64 = report.overall.statuses.values().sum();
    if responses == 0 {
        return Some(NoSuccess::NoResponse {
            due,
            errors: counts(&report.overall.errors_by_kind),
            target: report.target.clone(),
        });
    }
    Some(NoSuccess::NoneExpected {
        due,
        statuses: counts(&report.overall.statuses),
    })
}

/// `connect: 38, timeout: 2`.
fn counts(map: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    parts.join(", ")
}
