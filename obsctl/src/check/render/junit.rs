//! The report as JUnit XML: one testsuite, one testcase per check. A check that fails the run
//! is a `<failure>` (or an `<error>` when its source could not answer); a warning passes with
//! its findings in `<system-out>`; skips and allowed checks are `<skipped>`. Each testcase
//! carries its level and status as properties.

use std::fmt::Write as _;

use crate::check::model::{CheckResult, Status};
use crate::check::report::CheckReport;
use crate::markup::escape;

/// The report as a JUnit XML document. The suite is named after the service, never after an
/// ephemeral address, so CI test history lines up from run to run.
pub fn junit(report: &CheckReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = report
        .checks
        .iter()
        .filter(|c| c.fails_run(report.strict) && c.status != Status::Error)
        .count();
    let errors = report
        .checks
        .iter()
        .filter(|c| c.fails_run(report.strict) && c.status == Status::Error)
        .count();
    let skipped = report
        .checks
        .iter()
        .filter(|c| element(c, report.strict) == Some("skipped"))
        .count();
    let tests = report.checks.len();
    let totals = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\""
    );
    let _ = writeln!(out, "<testsuites name=\"obsctl check\" {totals}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"obsctl check {}\" {totals} timestamp=\"{}\">",
        escape(&report.service),
        escape(&report.started_at),
    );
    for check in &report.checks {
        testcase(&mut out, check, report.strict);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The element a result becomes, if any.
fn element(check: &CheckResult, strict: bool) -> Option<&'static str> {
    if check.fails_run(strict) {
        return Some(if check.status == Status::Error {
            "error"
        } else {
            "failure"
        });
    }
    match check.status {
        Status::Skip | Status::Allowed => Some("skipped"),
        _ => None,
    }
}

fn testcase(out: &mut String, check: &CheckResult, strict: bool) {
    let _ = writeln!(
        out,
        "    <testcase classname=\"obsctl.{}\" name=\"{}: {}\" time=\"{:.3}\">",
        check.signal.name(),
        escape(&check.id),
        escape(&check.title),
        check.duration_ms as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "      <properties><property name=\"level\" value=\"{}\"/><property name=\"status\" value=\"{}\"/></properties>",
        check.level.name(),
        check.status.name()
    );
    let body = escape(&details(check));
    match element(check, strict) {
        Some(element) => {
            let _ = writeln!(
                out,
                "      <{element} message=\"{}\">{body}</{element}>",
                escape(&one_line(&check.detail))
            );
        }
        None => {
            let _ = writeln!(out, "      <system-out>{body}</system-out>");
        }
    }
    out.push_str("    </testcase>\n");
}

fn details(check: &CheckResult) -> String {
    let mut body = format!("[{}] {}", check.status.label(), check.detail);
    for finding in &check.findings {
        let _ = write!(body, "\n- {} (x{})", finding.what, finding.count);
        for example in &finding.examples {
            let _ = write!(body, "\n    {example}");
        }
        if !finding.hint.is_empty() {
            let _ = write!(body, "\n    fix: {}", finding.hint);
        }
    }
    for line in &check.evidence {
        body.push_str("\n  ");
        body.push_str(line);
    }
    if check.findings.is_empty()
        && let Some(hint) = &check.hint
    {
        body.push_str("\nhint: ");
        body.push_str(hint);
    }
    body
}

/// The first line of `text`, at most 300 characters: a failure message is a summary.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut short: String = line.chars().take(300).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}
