//! The report's text parts: the header (what ran, where, the verdict), the thresholds, the
//! status and error mix per request name, and the per-name statistics table.

use super::{escape, note};
use crate::report::{Model, RunReport, Stats, ThresholdResult, verdict};
use std::fmt::Write as _;

/// Width of a mix bar in SVG units.
const BAR_WIDTH: f64 = 320.0;

/// The scenario, the verdict, and the facts of the run.
pub fn header(report: &RunReport) -> String {
    let (class, word) = if report.passed {
        ("pass", "PASSED")
    } else {
        ("fail", "FAILED")
    };
    let interrupted = if report.interrupted {
        " <span class=\"badge warn\">INTERRUPTED</span>"
    } else if report.aborted.is_some() {
        " <span class=\"badge warn\">ABORTED</span>"
    } else {
        ""
    };
    let mut out = format!(
        "<header><h1>{} <span class=\"badge {class}\">{word}</span>{interrupted}</h1>\
         <dl class=\"facts\">",
        escape(&report.scenario.name)
    );
    let model = match report.model {
        Model::Open => "open: requests due on a schedule, latency from each due time",
        Model::Closed => "closed loop (--rps max): latency from each send time",
    };
    let planned = if (report.duration_s - report.plan.duration_s).abs() > 0.05 {
        format!(" of {} s planned", float(report.plan.duration_s, 1))
    } else {
        String::new()
    };
    let facts = [
        ("target", escape(&report.target)),
        (
            "scenario file",
            escape(
                report
                    .scenario
                    .file
                    .as_deref()
                    .unwrap_or("(built in: GET /)"),
            ),
        ),
        ("run id", format!("<code>{}</code>", escape(&report.run_id))),
        (
            "window",
            format!(
                "{} &rarr; {} ({} s{planned})",
                escape(&short_time(&report.window_start)),
                escape(&short_time(&report.window_end)),
                float(report.duration_s, 2)
            ),
        ),
        ("model", model.to_owned()),
        ("plan", plan(report)),
        (
            "requests",
            format!(
                "{} due, {} sent, {} not started",
                count(report.requests_due()),
                count(report.requests_sent),
                count(report.requests_not_started)
            ),
        ),
    ];
    for (term, value) in facts {
        let _ = write!(out, "<dt>{term}</dt><dd>{value}</dd>");
    }
    out.push_str("</dl></header>");
    out
}

/// The plan in words: start rate, each stage, the in-flight cap and the timeout.
fn plan(report: &RunReport) -> String {
    let p = &report.plan;
    let mut parts = Vec::new();
    if let Some(start) = p.start_rate {
        parts.push(format!("from {} req/s", float(start, 1)));
    }
    for s in &p.stages {
        parts.push(format!(
            "to {} req/s over {} s",
            float(s.rate, 1),
            float(s.duration_s, 1)
        ));
    }
    if report.model == Model::Closed {
        parts.push(format!(
            "as fast as possible for {} s",
            float(p.duration_s, 1)
        ));
    }
    format!(
        "{}; at most {} in flight, timeout {} ms",
        parts.join(", "),
        count(p.max_in_flight),
        float(p.timeout_ms, 0)
    )
}

/// Each threshold with its limit, what was observed and the verdict; why a run without
/// thresholds failed.
pub fn thresholds(report: &RunReport) -> String {
    let mut out = String::new();
    if let Some(reason) = verdict::no_success(report) {
        out.push_str(&note(&escape(&format!("Failed: {reason}."))));
    }
    if let Some(reason) = &report.aborted {
        out.push_str(&note(&escape(&format!(
            "Aborted (abort_on_fail): {reason}."
        ))));
    }
    if report.thresholds.is_empty() {
        out.push_str(&note("The scenario sets no thresholds."));
        return out;
    }
    out.push_str(
        "<table class=\"thresholds\"><thead><tr><th>threshold</th><th>limit</th>\
         <th>observed</th><th>verdict</th></tr></thead><tbody>",
    );
    for t in &report.thresholds {
        out.push_str(&threshold_row(t));
    }
    out.push_str("</tbody></table>");
    out
}

fn threshold_row(t: &ThresholdResult) -> String {
    // min_rate is a floor; every other threshold is a ceiling.
    let op = if t.name.ends_with("min_rate") {
        "&ge;"
    } else {
        "&le;"
    };
    let observed = t
        .observed
        .map_or_else(|| "nothing measured".to_owned(), |v| float(v, 4));
    let (class, word) = if t.passed {
        ("pass", "pass")
    } else {
        ("fail", "FAIL")
    };
    let scope = t.request.as_ref().map_or_else(String::new, |name| {
        format!(" of <code>{}</code>", escape(name))
    });
    format!(
        "<tr><td><code>{}</code>{scope}</td><td class=\"num\">{op} {}</td><td class=\"num\">{observed}</td>\
         <td><span class=\"badge {class}\">{word}</span></td></tr>",
        escape(&t.name),
        float(t.limit, 4)
    )
}

/// Per request name and overall: a bar of how requests ended, and the counts in words.
pub fn mix(report: &RunReport) -> String {
    let mut out = String::from(
        "<table id=\"chart-mix\" class=\"mix\"><thead><tr><th>request</th>\
         <th>how requests ended</th><th>statuses</th><th>errors</th></tr></thead><tbody>",
    );
    for (name, stats, class) in rows(report) {
        let statuses = join(stats.statuses.iter().map(|(s, n)| (s.as_str(), *n)));
        let errors = join(stats.errors_by_kind.iter().map(|(k, n)| (k.as_str(), *n)));
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{statuses}</td><td>{errors}</td></tr>",
            escape(name),
            mix_bar(stats)
        );
    }
    out.push_str("</tbody></table>");
    out.push_str(&mix_legend());
    out
}

/// One bar: a segment per status, then per error kind that has no status of its own.
fn mix_bar(stats: &Stats) -> String {
    let segments: Vec<(String, u64, &'static str)> = stats
        .statuses
        .iter()
        .map(|(status, n)| (status.clone(), *n, status_color(status)))
        .chain(
            stats
                .errors_by_kind
                .iter()
                // These requests got a response: their status is already in the bar.
                .filter(|(kind, _)| kind.as_str() != "unexpected_status")
                .map(|(kind, n)| (kind.clone(), *n, error_color(kind))),
        )
        .filter(|(_, n, _)| *n > 0)
        .collect();
    let total: u64 = segments.iter().map(|s| s.1).sum();
    let mut out = format!(
        "<svg class=\"bar\" viewBox=\"0 0 {BAR_WIDTH} 16\" width=\"{BAR_WIDTH}\" height=\"16\" \
         role=\"img\" aria-label=\"how requests ended\">"
    );
    if total == 0 {
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"2\" width=\"{BAR_WIDTH}\" height=\"12\" fill=\"#e5e7eb\"/>"
        );
    }
    let mut x = 0.0;
    for (label, n, color) in segments {
        let width = n as f64 / total as f64 * BAR_WIDTH;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"2\" width=\"{width:.1}\" height=\"12\" fill=\"{color}\" \
             stroke=\"#fff\" stroke-width=\"0.5\"><title>{}: {} ({})</title></rect>",
            escape(&label),
            count(n),
            percent(n as f64 / total as f64)
        );
        x += width;
    }
    out.push_str("</svg>");
    out
}

fn mix_legend() -> String {
    let entries = [
        ("2xx", "#16a34a"),
        ("3xx", "#2563eb"),
        ("4xx", "#f59e0b"),
        ("5xx", "#dc2626"),
        ("timeout", "#9333ea"),
        ("io", "#92400e"),
        ("connect", "#111827"),
        ("not started", "#9ca3af"),
        ("cancelled", "#d1d5db"),
    ];
    let mut out = String::from("<ul class=\"legend\">");
    for (name, color) in entries {
        let _ = write!(
            out,
            "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" \
             height=\"12\" fill=\"{color}\"/></svg>{name}</li>"
        );
    }
    out.push_str("</ul>");
    out
}

/// The colour of a status class.
pub fn status_color(status: &str) -> &'static str {
    match status.as_bytes().first() {
        Some(b'2') => "#16a34a",
        Some(b'3') => "#2563eb",
        Some(b'4') => "#f59e0b",
        Some(b'5') => "#dc2626",
        _ => "#6b7280",
    }
}

fn error_color(kind: &str) -> &'static str {
    match kind {
        "timeout" => "#9333ea",
        "io" => "#92400e",
        "connect" => "#111827",
        "not_started" => "#9ca3af",
        "cancelled" => "#d1d5db",
        _ => "#6b7280",
    }
}

/// `200 × 9,000 · 503 × 12`, or a dash.
fn join<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = counts
        .map(|(what, n)| {
            format!(
                "<code>{}</code>&nbsp;&times;&nbsp;{}",
                escape(what),
                count(n)
            )
        })
        .collect();
    if parts.is_empty() {
        "&ndash;".to_owned()
    } else {
        parts.join(" &middot; ")
    }
}

/// Count, rate, errors and latency percentiles per request name and overall.
pub fn by_name(report: &RunReport) -> String {
    let mut out = String::from(
        "<table id=\"table-by-name\" class=\"stats\"><thead><tr><th>request</th><th>method</th>\
         <th class=\"num\">sent</th><th class=\"num\">rate/s</th><th class=\"num\">errors</th>\
         <th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th>\
         <th class=\"num\">p99.9</th><th class=\"num\">max</th></tr></thead><tbody>",
    );
    let methods = report
        .by_name
        .iter()
        .map(|n| n.method.as_str())
        .chain(std::iter::once(""));
    for ((name, s, class), method) in rows(report).zip(methods) {
        let l = &s.latency_ms;
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{} <span class=\"dim\">({})</span></td>",
            escape(name),
            escape(method),
            count(s.count),
            float(s.achieved_rate, 1),
            count(s.errors),
            percent(s.error_rate)
        );
        for v in [l.p50, l.p90, l.p99, l.p99_9, l.max] {
            let _ = write!(out, "<td class=\"num\">{}</td>", ms(v));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// `(name, stats, row attributes)` per request name, then the whole run.
fn rows(report: &RunReport) -> impl Iterator<Item = (&str, &Stats, &'static str)> {
    report
        .by_name
        .iter()
        .map(|n| (n.name.as_str(), &n.stats, ""))
        .chain(std::iter::once((
            "all requests",
            &report.overall,
            " class=\"total\"",
        )))
}

/// An RFC 3339 time with its fraction of a second cut to milliseconds (nanoseconds are noise
/// to a reader).
pub fn short_time(time: &str) -> String {
    match time.split_once('.') {
        Some((whole, rest)) => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let zone = &rest[digits..];
            format!("{whole}.{}{zone}", &rest[..digits.min(3)])
        }
        None => time.to_owned(),
    }
}

/// A latency in milliseconds with three significant digits or so.
pub fn ms(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}&nbsp;ms"),
        Some(v) if v >= 10.0 => format!("{v:.1}&nbsp;ms"),
        Some(v) => format!("{v:.2}&nbsp;ms"),
        None => "&ndash;".to_owned(),
    }
}

/// `fraction` as a percentage: `0 %`, `0.05 %`, `12.5 %`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 {
        "0&nbsp;%".to_owned()
    } else if p < 1.0 {
        format!("{p:.2}&nbsp;%")
    } else {
        format!("{p:.1}&nbsp;%")
    }
}

/// A count with thousands separated: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `value` with at most `decimals` decimals, trailing zeros dropped.
pub fn float(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_easily() {
        assert_eq!(
            [0, 999, 1_000, 1_234_567].map(count),
            ["0", "999", "1,000", "1,234,567"]
        );
        assert_eq!(float(2.50, 2), "2.5");
        assert_eq!(float(500.0, 1), "500");
        assert_eq!(float(0.01, 4), "0.01");
        assert_eq!(percent(0.0), "0&nbsp;%");
        assert_eq!(percent(0.0005), "0.05&nbsp;%");
        assert_eq!(percent(0.125), "12.5&nbsp;%");
        assert_eq!(ms(Some(0.4321)), "0.43&nbsp;ms");
        assert_eq!(ms(Some(250.4)), "250&nbsp;ms");
        assert_eq!(ms(None), "&ndash;");
    }

    #[test]
    fn times_keep_milliseconds() {
        assert_eq!(
            short_time("2026-12-05T10:16:41.778659913Z"),
            "2026-12-05T10:16:41.778Z"
        );
        assert_eq!(short_time("2026-01-01T00:00:02Z"), "2026-01-01T00:00:02Z");
        assert_eq!(
            short_time("2026-01-01T00:00:02.5+01:00"),
            "2026-01-01T00:00:02.5+01:00"
        );
    }

    #[test]
    fn statuses_are_coloured_by_class() {
        assert_eq!(status_color("201"), status_color("200"));
        assert_ne!(status_color("200"), status_color("503"));
        assert_eq!(status_color(""), "#6b7280");
    }
}
