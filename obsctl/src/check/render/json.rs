//! The report as pretty JSON.

use crate::check::report::CheckReport;

/// The report as JSON text, newline-terminated.
pub fn json(report: &CheckReport) -> String {
    // Serializing plain owned data cannot fail.
    let mut out = serde_json::to_string_pretty(report).unwrap_or_default();
    out.push('\n');
    out
}
