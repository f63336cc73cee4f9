//! The page as a whole: every section present, nothing fetched, report strings escaped, and
//! the reports that lack parts (version 1, empty, closed loop, interrupted) still rendered.

use super::*;
use crate::report::histogram;
use hdrhistogram::Histogram;

const NASTY: &str = "</script><img src=x onerror=alert(1)>";

fn encoded(values_us: impl IntoIterator<Item = u64>) -> String {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("bounds");
    for v in values_us {
        h.saturating_record(v);
    }
    histogram::encode(&h).expect("encodes")
}

fn stats(count: u64, errors: u64) -> serde_json::Value {
    serde_json::json!({
        "count": count, "not_started": 0, "errors": errors,
        "error_rate": errors as f64 / count.max(1) as f64, "achieved_rate": count as f64 / 3.0,
        "statuses": { "200": count - errors, "503": errors },
        "errors_by_kind": if errors > 0 { serde_json::json!({ "unexpected_status": errors }) }
                          else { serde_json::json!({}) },
        "latency_ms": { "samples": count, "mean": 1.0, "p50": 0.8, "p90": 1.5, "p95": 2.0,
                        "p99": 4.0, "p99_9": 9.0, "max": 12.0 }
    })
}

/// A three-second, two-stage open run with two request names, one of them hostile.
fn report() -> RunReport {
    let second = |t: u64, planned: f64| {
        serde_json::json!({ "t": t, "planned_rate": planned, "achieved_rate": planned - 1.0,
            "due": planned as u64, "sent": planned as u64, "answered": planned as u64,
            "errors": t, "not_started": 0, "p50_ms": 0.8, "p90_ms": 1.5, "p99_ms": 4.0,
            "max_ms": 12.0 })
    };
    let json = serde_json::json!({
        "schema_version": 2, "run_id": "00000000000000ab", "trace_id_prefix": "00000000000000ab",
        "seq_count": 300, "scenario": { "name": format!("smoke {NASTY}"), "file": "s.toml" },
        "target": "http://127.0.0.1:8000", "model": "open",
        "plan": { "duration_s": 3.0, "planned_requests": 300, "start_rate": 50.0,
                  "stages": [ { "duration_s": 1.0, "rate": 150.0 }, { "duration_s": 2.0, "rate": 100.0 } ],
                  "max_in_flight": 256, "timeout_ms": 5000.0 },
        "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:00:03Z",
        "duration_s": 3.0, "interrupted": false, "requests_sent": 300, "requests_not_started": 0,
        "requests": [], "overall": stats(300, 3),
        "by_name": [ { "name": "get", "method": "GET", "stats": stats(200, 0) },
                     { "name": NASTY, "method": "GET", "stats": stats(100, 3) } ],
        "histograms": { "encoding": "hdr-v2-deflate-base64", "unit": "us",
            "overall": encoded((1..=300).map(|i| i * 40)),
            "by_name": [ { "name": "get", "histogram": encoded((1..=200).map(|i| i * 30)) },
                         { "name": NASTY, "histogram": encoded((1..=100).map(|i| i * 120)) } ] },
        "timeline": [ second(0, 100.0), second(1, 150.0), second(2, 100.0) ],
        "thresholds": [ { "name": "p99_ms", "limit": 250.0, "observed": 4.0, "passed": true },
                        { "name": "min_rate", "limit": 120.0, "observed": 99.0, "passed": false } ],
        "passed": false
    });
    serde_json::from_value(json).expect("a valid report")
}

#[test]
fn every_chart_and_table_is_on_the_page() {
    let page = render(&report());
    for id in [
        "chart-rate",
        "chart-latency",
        "chart-errors",
        "chart-spectrum",
        "chart-mix",
        "table-by-name",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
    }
    assert_eq!(page.matches("class=\"series\"").count(), 2 + 4 + 2 + 3);
    // Stage boundaries: the second stage begins at 1 s.
    assert!(page.contains(">stage 2</text>"));
    assert!(page.contains("FAILED") && page.contains(">FAIL<") && page.contains("&ge; 120"));
    assert!(page.contains(">99%<") && page.contains(">90%<"));
}

#[test]
fn nothing_on_the_page_is_fetched() {
    let page = render(&report());
    // (The hostile name shows `src=x` as text; attributes here are always quoted.)
    assert!(!page.contains(" src=\""), "no element with a source");
    assert!(!page.contains("url("), "no stylesheet fetch");
    assert!(!page.contains("<script"), "no script");
    let hrefs: Vec<&str> = page
        .match_indices("href=")
        .map(|(i, _)| &page[i..i + 14])
        .collect();
    assert_eq!(hrefs, ["href=\"data:,\">"]);
    assert!(page.contains("default-src 'none'"));
}

#[test]
fn names_from_the_report_are_text_never_markup() {
    let page = render(&report());
    assert!(!page.contains("<img"), "an injected element");
    assert!(!page.contains("</script>"));
    let escaped = escape(NASTY);
    assert_eq!(escaped, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
    // In the title, the header, the spectrum legend and title, the mix and the table.
    assert!(page.matches(&escaped).count() >= 6, "{page}");
    assert_eq!(escape("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
}

#[test]
fn a_version_1_report_says_what_it_lacks() {
    let mut report = report();
    report.schema_version = 1;
    report.timeline.clear();
    report.histograms = None;
    let page = render(&report);
    assert_eq!(page.matches("not in this report").count(), 4, "{page}");
    assert!(!page.contains("class=\"series\""));
    assert!(page.contains("id=\"chart-mix\"") && page.contains("id=\"table-by-name\""));
}

#[test]
fn an_empty_run_renders_without_charts() {
    let mut report = report();
    report.timeline.clear();
    report.histograms = Some(crate::report::Histograms {
        encoding: histogram::ENCODING.to_owned(),
        unit: histogram::UNIT.to_owned(),
        overall: encoded([]),
        by_name: Vec::new(),
    });
    report.by_name.clear();
    let page = render(&report);
    assert_eq!(page.matches("No request came due").count(), 3, "{page}");
    assert!(page.contains("there is no latency spectrum"));
}

#[test]
fn a_closed_loop_has_no_planned_rate() {
    let mut report = report();
    report.model = crate::report::Model::Closed;
    report.plan.stages.clear();
    report.plan.start_rate = None;
    for second in &mut report.timeline {
        second.planned_rate = None;
    }
    let page = render(&report);
    assert!(page.contains("has no planned rate"));
    assert!(!page.contains("<title>planned</title>"));
    assert!(page.contains("<title>achieved</title>"));
}

#[test]
fn an_interrupted_run_is_marked_where_it_stopped() {
    let mut report = report();
    report.interrupted = true;
    report.duration_s = 2.2;
    let page = render(&report);
    assert!(page.contains("INTERRUPTED") && page.contains(">stopped</text>"));
    assert!(page.contains("of 3 s planned"));
}

#[test]
fn a_histogram_that_does_not_decode_is_reported_not_a_panic() {
    let mut report = report();
    if let Some(h) = report.histograms.as_mut() {
        h.overall = "not base64!".to_owned();
    }
    let page = render(&report);
    assert!(page.contains("does not decode"));
    assert!(page.contains("id=\"chart-rate\""));
}
