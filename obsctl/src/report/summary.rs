//! The terminal summary of a run: a header line, one table row per request name and one for the
//! whole run, and the threshold verdicts. Pure: a report in, text out.

use super::{Model, RunReport, Stats, ThresholdResult};
use std::fmt::Write as _;

/// Renders the summary as plain text (no colour), ending with a newline.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let model = match report.model {
        Model::Open => "open model: latency from each request's due time",
        Model::Closed => "closed loop (--rps max): latency from send time",
    };
    let _ = writeln!(
        out,
        "{} -> {}  ({model})\nrun {}  {:.2} s  {} sent  {} not started{}\n",
        report.scenario.name,
        report.target,
        report.run_id,
        report.duration_s,
        report.requests_sent,
        report.requests_not_started,
        if report.interrupted { "  INTERRUPTED" } else { "" },
    );
    let rows: Vec<(String, &Stats)> = report
        .by_name
        .iter()
        .map(|n| (n.name.clone(), &n.stats))
        .chain(std::iter::once(("all".to_owned(), &report.overall)))
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "{:<width$} {:>8} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses",
        "name", "count", "rate/s", "errors", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, stats) in &rows {
        out.push_str(&row(name, stats, width));
    }
    if !report.thresholds.is_empty() {
        out.push_str("\nthresholds\n");
        for t in &report.thresholds {
            out.push_str(&threshold_line(t));
        }
    }
    out
}

fn row(name: &str, s: &Stats, width: usize) -> String {
    let l = &s.latency_ms;
    format!(
        "{name:<width$} {:>8} {:>10.1} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}  {}\n",
        s.count,
        s.achieved_rate,
        s.errors,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p99_9),
        ms(l.max),
        mix(s),
    )
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}ms"),
        Some(v) if v >= 10.0 => format!("{v:.1}ms"),
        Some(v) => format!("{v:.2}ms"),
        None => "-".to_owned(),
    }
}

fn mix(s: &Stats) -> String {
    let statuses = s.statuses.iter().map(|(k, v)| format!("{k}x{v}"));
    let errors = s.errors_by_kind.iter().map(|(k, v)| format!("{k}x{v}"));
    let all: Vec<String> = statuses.chain(errors).collect();
    if all.is_empty() { "-".to_owned() } else { all.join(" ") }
}

fn threshold_line(t: &ThresholdResult) -> String {
    let verdict = if t.passed { "PASS" } else { "FAIL" };
    let op = if t.name == "min_rate" { ">=" } else { "<=" };
    let observed = t.observed.map_or_else(|| "nothing measured".to_owned(), |v| format!("{v}"));
    format!("  {verdict}  {:<10} {observed} (limit {op} {})\n", t.name, t.limit)
}
