//! The report as JUnit XML: one testsuite per signal, one testcase per check.

use std::fmt::Write as _;

use crate::check::model::{CheckResult, Status};
use crate::check::report::CheckReport;

/// The report as a JUnit XML document. Under `--strict` a skip is a failure, as in the exit code.
pub fn junit(report: &CheckReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let s = &report.summary;
    let failures = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail || (report.strict && c.status == Status::Skip))
        .count();
    let skipped = if report.strict { 0 } else { s.skipped };
    let _ = writeln!(
        out,
        "<testsuites name=\"obsctl check\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{skipped}\">",
        report.checks.len(),
        s.errors,
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"obsctl check {}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{skipped}\" timestamp=\"{}\">",
        escape(report.target.as_deref().unwrap_or("")),
        report.checks.len(),
        s.errors,
        escape(&report.started_at),
    );
    for check in &report.checks {
        testcase(&mut out, check, report.strict);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(out: &mut String, check: &CheckResult, strict: bool) {
    let _ = write!(
        out,
        "    <testcase classname=\"obsctl.{}\" name=\"{}: {}\" time=\"{:.3}\"",
        check.signal.name(),
        escape(&check.id),
        escape(&check.title),
        check.duration_ms as f64 / 1000.0
    );
    let body = details(check);
    let element = match check.status {
        Status::Pass => None,
        Status::Fail => Some("failure"),
        Status::Error => Some("error"),
        Status::Skip if strict => Some("failure"),
        Status::Skip => Some("skipped"),
    };
    match element {
        None => {
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>",
                escape(&body)
            );
        }
        Some(element) => {
            let _ = writeln!(
                out,
                ">\n      <{element} message=\"{}\">{}</{element}>\n    </testcase>",
                escape(&check.detail),
                escape(&body)
            );
        }
    }
}

fn details(check: &CheckResult) -> String {
    let mut body = check.detail.clone();
    for line in &check.evidence {
        body.push_str("\n  ");
        body.push_str(line);
    }
    if let Some(hint) = &check.hint {
        body.push_str("\nhint: ");
        body.push_str(hint);
    }
    body
}

/// XML-escapes text and drops characters XML 1.0 cannot carry.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_markup_and_control_characters() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{fffd}"
        );
    }
}
