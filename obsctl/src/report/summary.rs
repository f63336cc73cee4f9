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
    let unreached = match report.overall.errors_by_kind.get("connect") {
        Some(n) => format!("  {n} could not connect"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "{} -> {}  ({model})\nrun {}  {:.2} s  {} sent  {} not started{unreached}{}\n",
        report.scenario.name,
        report.target,
        report.run_id,
        report.duration_s,
        report.requests_sent,
        report.requests_not_started,
        if report.interrupted {
            "  INTERRUPTED"
        } else {
            ""
        },
    );
    if let Some(reason) = &report.aborted {
        let _ = writeln!(out, "ABORTED (abort_on_fail): {reason}\n");
    }
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
    let statuses = s.statuses.iter().map(|(k, v)| format!("{k}:{v}"));
    let errors = s.errors_by_kind.iter().map(|(k, v)| format!("{k}:{v}"));
    let all: Vec<String> = statuses.chain(errors).collect();
    if all.is_empty() {
        "-".to_owned()
    } else {
        all.join(" ")
    }
}

fn threshold_line(t: &ThresholdResult) -> String {
    let verdict = if t.passed { "PASS" } else { "FAIL" };
    let op = if t.name == "min_rate" { ">=" } else { "<=" };
    let observed = t
        .observed
        .map_or_else(|| "nothing measured".to_owned(), |v| format!("{v}"));
    let scope = t
        .request
        .as_ref()
        .map_or_else(String::new, |name| format!(" of {name}"));
    format!(
        "  {verdict}  {:<10} {observed} (limit {op} {}){scope}\n",
        t.name, t.limit
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(count: u64, p50: f64, statuses: &[(&str, u64)], errors: &[(&str, u64)]) -> Stats {
        let latency = serde_json::json!({
            "samples": count, "mean": p50, "p50": p50, "p90": p50 * 2.0, "p95": p50 * 3.0,
            "p99": p50 * 40.0, "p99_9": p50 * 400.0, "max": p50 * 500.0
        });
        let errors_total: u64 = errors.iter().map(|(_, n)| n).sum();
        Stats {
            count,
            not_started: 0,
            errors: errors_total,
            error_rate: errors_total as f64 / count as f64,
            achieved_rate: count as f64 / 2.0,
            statuses: statuses
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            errors_by_kind: errors.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            latency_ms: serde_json::from_value(latency).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn report() -> RunReport {
        let json = serde_json::json!({
            "schema_version": 1, "run_id": "00000000000000ab", "trace_id_prefix": "00000000000000ab",
            "seq_count": 30, "scenario": { "name": "smoke", "file": "scenarios/smoke.toml" },
            "target": "http://127.0.0.1:8000", "model": "open",
            "plan": { "duration_s": 2.0, "planned_requests": 30, "start_rate": 15.0, "stages": [],
                      "max_in_flight": 256, "timeout_ms": 5000.0 },
            "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:00:02Z",
            "duration_s": 2.0, "interrupted": false, "requests_sent": 30, "requests_not_started": 0,
            "requests": [], "overall": stats(30, 0.2, &[("200", 20), ("500", 10)], &[("unexpected_status", 10)]),
            "by_name": [
                { "name": "get_user", "method": "GET", "stats": stats(20, 0.2, &[("200", 20)], &[]) },
                { "name": "boom", "method": "GET", "stats": stats(10, 0.3, &[("500", 10)], &[("unexpected_status", 10)]) }
            ],
            "thresholds": [
                { "name": "p99_ms", "limit": 250.0, "observed": 8.0, "passed": true },
                { "name": "min_rate", "limit": 20.0, "observed": 15.0, "passed": false }
            ],
            "passed": false
        });
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn renders_rows_per_name_then_all_then_thresholds() {
        let expected = concat!(
            "smoke -> http://127.0.0.1:8000  (open model: latency from each request's due time)\n",
            "run 00000000000000ab  2.00 s  30 sent  0 not started\n",
            "\n",
            "name        count     rate/s  errors       p50       p90       p99     p99.9       max  statuses\n",
            "get_user       20       10.0       0    0.20ms    0.40ms    8.00ms    80.0ms     100ms  200:20\n",
            "boom           10        5.0      10    0.30ms    0.60ms    12.0ms     120ms     150ms  500:10 unexpected_status:10\n",
            "all            30       15.0      10    0.20ms    0.40ms    8.00ms    80.0ms     100ms  200:20 500:10 unexpected_status:10\n",
            "\n",
            "thresholds\n",
            "  PASS  p99_ms     8 (limit <= 250)\n",
            "  FAIL  min_rate   15 (limit >= 20)\n",
        );
        assert_eq!(render(&report()), expected, "\n{}", render(&report()));
    }
}
