//! The report as text for people, in the manner of hyperfine's output: one line per check,
//! then what fails the run and what is only advice, apart, each finding with its fix.

use std::fmt::Write as _;

use crate::check::model::{CheckResult, Finding, Status};
use crate::check::report::CheckReport;

/// Colours, or none.
struct Paint {
    color: bool,
}

impl Paint {
    fn status(&self, status: Status, text: &str) -> String {
        let code = match status {
            Status::Pass => "32",
            Status::Fail => "31",
            Status::Error => "35",
            Status::Warn | Status::Skip => "33",
            Status::Allowed => "2",
        };
        self.code(code, text)
    }

    fn dim(&self, text: &str) -> String {
        self.code("2", text)
    }

    fn code(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[1;{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The report as text. `color` adds ANSI colours (the caller decides: terminal and `NO_COLOR`).
pub fn text(report: &CheckReport, color: bool) -> String {
    let paint = Paint { color };
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    let target = report.target.as_deref().unwrap_or("(no target)");
    let _ = writeln!(
        out,
        "obsctl check: {target} (service \"{}\")\n",
        report.service
    );
    for check in &report.checks {
        let label = paint.status(check.status, &format!("{:<5}", check.status.label()));
        let _ = writeln!(out, "{label} {:<width$}  {}", check.id, check.title);
        let indent = format!("      {:<width$}  ", "");
        let detail = check.detail.replace('\n', &format!("\n{indent}"));
        let _ = writeln!(out, "{indent}{detail}");
        if matches!(check.status, Status::Skip | Status::Error)
            && let Some(hint) = &check.hint
        {
            let _ = writeln!(out, "      {:<width$}  hint: {hint}", "");
        }
    }
    let failing: Vec<&CheckResult> = report.failing().collect();
    let failing_found: Vec<&CheckResult> = failing
        .iter()
        .copied()
        .filter(|c| !c.findings.is_empty())
        .collect();
    if !failing_found.is_empty() {
        let _ = writeln!(out, "\n{}", paint.status(Status::Fail, "Failures"));
        for check in failing_found {
            section(&mut out, check, &paint);
        }
    }
    let warnings: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warn && !c.fails_run(report.strict))
        .collect();
    if !warnings.is_empty() {
        let _ = writeln!(
            out,
            "\n{} (advice beyond the contract; --deny ID or --strict makes them fail)",
            paint.status(Status::Warn, "Warnings")
        );
        for check in warnings {
            section(&mut out, check, &paint);
        }
    }
    footer(&mut out, report, &paint);
    out
}

/// One check's findings, each with its examples and fix.
fn section(out: &mut String, check: &CheckResult, paint: &Paint) {
    let _ = writeln!(out, "  {} ({})", check.id, check.level.name());
    for finding in &check.findings {
        finding_lines(out, finding, paint);
    }
    for line in &check.evidence {
        let _ = writeln!(out, "      {}", paint.dim(line));
    }
}

fn finding_lines(out: &mut String, finding: &Finding, paint: &Paint) {
    let _ = writeln!(out, "    - {}", finding.what);
    for example in &finding.examples {
        let _ = writeln!(out, "        {}", paint.dim(example));
    }
    if !finding.hint.is_empty() {
        let _ = writeln!(out, "        fix: {}", finding.hint);
    }
}

fn footer(out: &mut String, report: &CheckReport, paint: &Paint) {
    let s = &report.summary;
    if s.errors > 0 {
        let _ = writeln!(
            out,
            "\n({} of the checks could not look: a source did not answer)",
            s.errors
        );
    }
    if report.strict && s.skipped > 0 {
        let _ = writeln!(out, "(strict: the skipped checks count as failures)");
    }
    let verdict = if report.succeeded() {
        paint.status(Status::Pass, "OK")
    } else {
        paint.status(Status::Fail, "FAILED")
    };
    let _ = writeln!(out, "\n{verdict}");
    if s.warned > 0 || s.allowed > 0 {
        let _ = writeln!(
            out,
            "warnings: {}, allowed by policy: {}",
            s.warned, s.allowed
        );
    }
    // "N passed, N failed, N skipped" alone on the last line: the closing line CI systems read.
    let failed = report.failing().count();
    let skipped = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Skip && !c.fails_run(report.strict))
        .count();
    let passed = report.checks.len() - failed - skipped - s.allowed;
    let _ = writeln!(
        out,
        "checks: {passed} passed, {failed} failed, {skipped} skipped"
    );
}
