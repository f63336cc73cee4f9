//! What a check is and what it finds: a stable id, the checklist's words, a level that says
//! whether its findings fail the run, and an outcome made of findings, each with evidence (what
//! was asked, expected and seen) and how to fix it.

use serde::{Deserialize, Serialize};

/// How much a check's findings matter, as clippy, cargo-deny and Weaver say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Not run; reported as `allowed`.
    Allow,
    /// Run and reported; a finding is a warning and never fails the run.
    Warn,
    /// Run; a finding (or an error) fails the run.
    Deny,
}

impl Level {
    /// The word used in flags, the policy file and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Warn => "warn",
            Self::Deny => "deny",
        }
    }

    /// The level named `word` (`allow`, `warn`, `deny`).
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "allow" => Some(Self::Allow),
            "warn" => Some(Self::Warn),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The item holds, with evidence.
    Pass,
    /// The check found something, at level `warn`: reported, not failing.
    Warn,
    /// The check found something, at level `deny`: the run fails.
    Fail,
    /// No source that could prove the item was given, or nothing to judge yet.
    Skip,
    /// A source was given but could not answer (unreachable, garbage, timeout).
    Error,
    /// Not run: the policy allows it.
    Allowed,
}

impl Status {
    /// The name used in JSON, JUnit properties and messages (`pass`, `allowed`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Skip => "skip",
            Self::Error => "error",
            Self::Allowed => "allowed",
        }
    }

    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
            Self::Error => "ERROR",
            Self::Allowed => "ALLOW",
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
    /// The load run itself: thresholds and expected statuses.
    Load,
}

impl Signal {
    /// Lower-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Traces => "traces",
            Self::Dashboard => "dashboard",
            Self::Load => "load",
        }
    }
}

/// One distinct problem a check found: what, how many times, examples, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// One sentence: what is wrong.
    pub what: String,
    /// How many times it was seen (lines, series, spans, requests); 1 for a single fact.
    pub count: u64,
    /// A few concrete occurrences (line numbers, series, span names), at most [`MAX_EXAMPLES`].
    pub examples: Vec<String>,
    /// How to fix it: the cause and the change, for the ecosystem when known.
    pub hint: String,
}

/// Examples kept per finding.
pub const MAX_EXAMPLES: usize = 5;

impl Finding {
    /// A finding seen `count` times.
    pub fn new(what: impl Into<String>, count: u64, hint: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            count,
            examples: Vec::new(),
            hint: hint.into(),
        }
    }

    /// Adds an example, up to [`MAX_EXAMPLES`].
    pub fn example(mut self, example: impl Into<String>) -> Self {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example.into());
        }
        self
    }

    /// Adds examples, up to [`MAX_EXAMPLES`] in all.
    pub fn examples<I, S>(self, examples: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        examples.into_iter().fold(self, Finding::example)
    }
}

/// What running a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict before the level is applied: `Fail` means "found something".
    pub status: Status,
    /// One sentence: what was found.
    pub detail: String,
    /// What was asked, expected and seen, one line each.
    pub evidence: Vec<String>,
    /// How to fix it (failures and errors) or how to check it (skips).
    pub hint: Option<String>,
    /// Every distinct problem, when the check found several (the first one is in `detail`).
    pub findings: Vec<Finding>,
}

impl Outcome {
    fn new(status: Status, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            evidence: Vec::new(),
            hint: None,
            findings: Vec::new(),
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

    /// `pass` when `findings` is empty, else a failure whose detail and hint are the first
    /// finding's and which carries every finding.
    pub fn judged(findings: Vec<Finding>, pass: impl Into<String>) -> Self {
        let Some(first) = findings.first() else {
            return Self::pass(pass);
        };
        let detail = if findings.len() == 1 {
            first.what.clone()
        } else {
            format!("{} problems; first: {}", findings.len(), first.what)
        };
        let mut outcome = Self::fail(detail, first.hint.clone());
        outcome.findings = findings;
        outcome
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

    /// The findings as reported: those the check listed, or its failure as the one finding.
    pub fn into_findings(self) -> Vec<Finding> {
        if !self.findings.is_empty() || self.status != Status::Fail {
            return self.findings;
        }
        // The evidence stays the result's own: it is reported beside the findings.
        vec![Finding {
            what: self.detail,
            count: 1,
            examples: Vec::new(),
            hint: self.hint.unwrap_or_default(),
        }]
    }
}

/// One check's result as reported: its identity, level, verdict, findings and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable kebab-case id.
    pub id: String,
    /// The checklist item's words.
    pub title: String,
    /// The signal it concerns.
    pub signal: Signal,
    /// The level it ran at (its default, unless the policy file or a flag changed it).
    pub level: Level,
    /// Its default level.
    pub default_level: Level,
    /// The verdict, the level applied.
    pub status: Status,
    /// One sentence: what was found.
    pub detail: String,
    /// What was asked, expected and seen.
    pub evidence: Vec<String>,
    /// How to fix it, or how to check it when skipped.
    pub hint: Option<String>,
    /// Every distinct problem found (empty when it passed or did not run).
    pub findings: Vec<Finding>,
    /// Wall time the check took, waiting for ingestion included.
    pub duration_ms: u64,
}

impl CheckResult {
    /// Whether this result fails the run: a denied check that found something or could not
    /// look; under `strict`, also any warning or skip.
    pub fn fails_run(&self, strict: bool) -> bool {
        match self.status {
            Status::Fail => true,
            Status::Error => self.level == Level::Deny,
            Status::Warn | Status::Skip => strict,
            Status::Pass | Status::Allowed => false,
        }
    }
}
