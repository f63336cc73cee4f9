//! What a check is and what it finds: a stable id, the checklist's words, and an outcome with
//! evidence (what was asked, expected and seen) and, when something is wrong, how to fix it.

use serde::{Deserialize, Serialize};

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The item holds, with evidence.
    Pass,
    /// The item was checked and does not hold.
    Fail,
    /// No source that could prove the item was given.
    Skip,
    /// A source was given but could not answer (unreachable, garbage, timeout).
    Error,
}

impl Status {
    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
            Self::Error => "ERROR",
        }
    }
}

/// The signal a check proves something about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Prometheus metrics.
    Metrics,
    /// JSON logs.
    Logs,
    /// OpenTelemetry traces.
    Traces,
    /// The Grafana side: datasources and dashboard panels.
    Dashboard,
}

impl Signal {
    /// Lower-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Traces => "traces",
            Self::Dashboard => "dashboard",
        }
    }
}

/// A check's identity: stable across releases, so CI configurations can refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSpec {
    /// Stable kebab-case id, e.g. `metrics-endpoint`.
    pub id: &'static str,
    /// The checklist item's words (spec Part 6), or what the check proves beyond it.
    pub title: &'static str,
    /// The signal it concerns.
    pub signal: Signal,
}

/// What running a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// One sentence: what was found.
    pub detail: String,
    /// What was asked, expected and seen, one line each.
    pub evidence: Vec<String>,
    /// How to fix it (failures and errors) or how to check it (skips).
    pub hint: Option<String>,
}

impl Outcome {
    fn new(status: Status, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            evidence: Vec::new(),
            hint: None,
        }
    }

    /// The item holds.
    pub fn pass(detail: impl Into<String>) -> Self {
        Self::new(Status::Pass, detail)
    }

    /// The item does not hold; `hint` says how to fix it.
    pub fn fail(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Status::Fail, detail).hint(hint)
    }

    /// No source could prove the item; `hint` names the flag that would.
    pub fn skip(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Status::Skip, detail).hint(hint)
    }

    /// A source could not answer; `hint` says what to look at.
    pub fn error(detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Status::Error, detail).hint(hint)
    }

    /// Adds one line of evidence.
    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    /// Sets the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One check's result as reported: the spec, the outcome and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable kebab-case id.
    pub id: String,
    /// The checklist item's words.
    pub title: String,
    /// The signal it concerns.
    pub signal: Signal,
    /// The verdict.
    pub status: Status,
    /// One sentence: what was found.
    pub detail: String,
    /// What was asked, expected and seen.
    pub evidence: Vec<String>,
    /// How to fix it, or how to check it when skipped.
    pub hint: Option<String>,
    /// Wall time the check took, waiting for ingestion included.
    pub duration_ms: u64,
}

impl CheckResult {
    /// Joins a spec and its outcome.
    pub fn new(spec: &CheckSpec, outcome: Outcome, duration_ms: u64) -> Self {
        Self {
            id: spec.id.to_owned(),
            title: spec.title.to_owned(),
            signal: spec.signal,
            status: outcome.status,
            detail: outcome.detail,
            evidence: outcome.evidence,
            hint: outcome.hint,
            duration_ms,
        }
    }
}
