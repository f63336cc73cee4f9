//! The report as a table for people, in the manner of hyperfine's output.

use std::fmt::Write as _;

use crate::check::model::Status;
use crate::check::report::CheckReport;

/// The report as text. `color` adds ANSI colours (the caller decides: terminal and `NO_COLOR`).
pub fn text(report: &CheckReport, color: bool) -> String {
    let paint = |status: Status, s: &str| -> String {
        if !color {
            return s.to_owned();
        }
        let code = match status {
            Status::Pass => "32",
            Status::Fail => "31",
            Status::Error => "35",
            Status::Skip => "33",
        };
        format!("\x1b[1;{code}m{s}\x1b[0m")
    };
    let dim = |s: &str| -> String {
        if color {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    let target = report.target.as_deref().unwrap_or("(no target)");
    let _ = writeln!(
        out,
        "obsctl check: {target} (service \"{}\")\n",
        report.service
    );
    for check in &report.checks {
        let label = paint(check.status, &format!("{:<5}", check.status.label()));
        let _ = writeln!(out, "{label} {:<width$}  {}", check.id, check.title);
        let _ = writeln!(out, "      {:<width$}  {}", "", check.detail);
        if check.status != Status::Pass {
            for line in &check.evidence {
                let _ = writeln!(out, "      {:<width$}  {}", "", dim(line));
            }
            if let Some(hint) = &check.hint {
                let _ = writeln!(out, "      {:<width$}  hint: {hint}", "");
            }
        }
    }
    let s = &report.summary;
    if s.errors > 0 {
        let _ = writeln!(
            out,
            "\n({} of the failures are errors: a source could not answer)",
            s.errors
        );
    }
    if report.strict && s.skipped > 0 {
        let _ = writeln!(out, "(strict: the skipped checks count as failures)");
    }
    let verdict = if report.succeeded() {
        paint(Status::Pass, "OK")
    } else {
        paint(Status::Fail, "FAILED")
    };
    let _ = writeln!(out, "\n{verdict}");
    // "N passed, N failed, N skipped" alone on the last line: the closing line CI systems read.
    let _ = writeln!(
        out,
        "checks: {} passed, {} failed, {} skipped",
        s.passed,
        s.failed + s.errors,
        s.skipped
    );
    out
}
