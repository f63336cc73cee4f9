//! The accounting checks: a run report of known requests, a baseline scrape and a target whose
//! counter rose by the right amount or not; request log lines and SERVER spans of the run's own
//! traces, complete or not.

use std::time::Duration;

use obsctl::check::context::{CheckContext, LogInput};
use obsctl::check::model::Status;
use obsctl::report::RunReport;
use obsctl::report::fold::PathFolder;
use obsctl::sources::exposition::{self, Exposition};
use obsctl::sources::logs::{CountedRun, LogBuffer, LogLimits};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::exposition::{
    CONTRACT_BUCKETS, Series, duration_histogram, exposition_of, process_metrics, requests_counter,
};
use crate::helpers::{
    FakeServer, SERVICE, WAIT, assert_check, context, log_input, result, run_checks, target_context,
};
use crate::traces::{attribute, export, receiver, send, span};

/// The run id of the fixture run; every trace id of the run starts with it.
pub(crate) const RUN_ID: &str = "5eed0b5c0ffee001";

/// One request line of the run report: method, concrete path, status, count.
pub(crate) type Sent<'a> = (&'a str, &'a str, u16, u64);

/// What the fixture run sent: 11 requests, all answered.
pub(crate) const SENT: &[Sent<'static>] = &[
    ("GET", "/api/users/1", 200, 3),
    ("GET", "/api/users/2", 200, 2),
    ("GET", "/api/users/999", 404, 2),
    ("POST", "/api/users", 201, 4),
];

/// A run report of `obsctl load` that sent `sent`, as JSON in the shape of
/// `obsctl/schema/run-report.schema.json`, read back as `obsctl check --run-report` does.
pub(crate) fn run_report(sent: &[Sent]) -> RunReport {
    let now = OffsetDateTime::now_utc();
    run_report_between(sent, now - Duration::from_secs(2), now)
}

/// [`run_report`] of a run whose window was `start` to `end`.
pub(crate) fn run_report_between(
    sent: &[Sent],
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> RunReport {
    let total: u64 = sent.iter().map(|(_, _, _, n)| n).sum();
    let stamp = |t: OffsetDateTime| t.format(&Rfc3339).expect("UTC formats as RFC 3339");
    let requests: Vec<Value> = sent
        .iter()
        .map(|(method, path, status, count)| {
            json!({
                "method": method, "path": path, "name": format!("{method} {path}"),
                "status": status, "error": null, "count": count,
                "examples": crate::helpers::example_paths(path)
            })
        })
        .collect();
    let mut statuses = serde_json::Map::new();
    for (_, _, status, count) in sent {
        let seen = statuses
            .get(&status.to_string())
            .and_then(Value::as_u64)
            .unwrap_or(0);
        statuses.insert(status.to_string(), json!(seen + count));
    }
    let latency = json!({
        "samples": total, "mean": 4.0, "p50": 4.0, "p90": 5.0, "p95": 5.0,
        "p99": 6.0, "p99_9": 6.0, "max": 6.0
    });
    let report = json!({
        "schema_version": 2,
        "run_id": RUN_ID,
        "trace_id_prefix": RUN_ID,
        "seq_count": total,
        "sequences": [],
        "segment": null,
        "merged": null,
        "scenario": { "name": "accounting", "file": null },
        "target": "http://127.0.0.1:8000",
        "model": "open",
        "plan": {
            "duration_s": 1.0, "planned_requests": total, "start_rate": total as f64,
            "stages": [{ "duration_s": 1.0, "rate": total as f64 }],
            "max_in_flight": 16, "timeout_ms": 2000.0
        },
        "window_start": stamp(start),
        "window_end": stamp(end),
        "duration_s": 1.0,
        "interrupted": false,
        "aborted": null,
        "requests_sent": total,
        "requests_not_started": 0,
        "requests": requests,
        "overall": {
            "count": total, "not_started": 0, "errors": 0, "error_rate": 0.0,
            "achieved_rate": total as f64, "statuses": statuses, "errors_by_kind": {},
            "latency_ms": latency
        },
        "by_name": [],
        "histograms": null,
        "timeline": [],
        "thresholds": [],
        "passed": true
    });
    let violations = crate::helpers::schema_violations("run-report.schema.json", &report);
    assert!(
        violations.is_empty(),
        "the fixture violates the schema: {violations:?}"
    );
    serde_json::from_value(report).expect("the fixture is a run report")
}

/// The trace id of request `seq` of the fixture run.
fn trace_id(seq: u64) -> String {
    format!("{RUN_ID}{seq:016x}")
}

fn parsed(body: &str) -> Exposition {
    exposition::parse(body).expect("the fixture exposition parses")
}

/// A context with the fixture run, a baseline scrape `before`, and a target serving `after`.
fn accounting_context(target: &FakeServer, before: &str) -> CheckContext {
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(SENT));
    ctx.baseline = Some(parsed(before));
    ctx
}

/// Earlier traffic, as the baseline scrape saw it.
const BEFORE_TEMPLATES: &[Series<'static>] = &[
    ("GET", "/api/users/{user_id}", 200, 10),
    ("GET", "/metrics", 200, 1),
];

/// The baseline plus exactly the fixture run (and two scrapes).
const AFTER_EXACT: &[Series<'static>] = &[
    ("GET", "/api/users/{user_id}", 200, 15),
    ("GET", "/api/users/{user_id}", 404, 2),
    ("POST", "/api/users", 201, 4),
    ("GET", "/metrics", 200, 2),
];

#[tokio::test]
async fn a_counter_that_rose_by_fewer_than_sent_fails_with_per_series_evidence() {
    // One of the two 404s was not counted.
    let after: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 15),
        ("GET", "/api/users/{user_id}", 404, 1),
        ("POST", "/api/users", 201, 4),
        ("GET", "/metrics", 200, 2),
    ];
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let ctx = accounting_context(&target, &exposition_of(BEFORE_TEMPLATES));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &[
            "1 of 11 answered requests",
            "GET /api/users/{user_id} 404: sent 2, seen 1",
        ],
    );
}

#[tokio::test]
async fn a_counter_that_rose_by_exactly_the_requests_sent_passes() {
    let after = AFTER_EXACT;
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let mut ctx = accounting_context(&target, &exposition_of(BEFORE_TEMPLATES));
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Pass,
        &["every one of 11 answered requests"],
    );
}

#[tokio::test]
async fn a_histogram_that_misses_the_errors_the_counter_saw_fails() {
    // The duration is observed only on success: the counter is right, the latency panels lie.
    let after = AFTER_EXACT;
    let timed: Vec<Series> = after.iter().copied().filter(|s| s.2 != 404).collect();
    let body = [
        requests_counter(after),
        duration_histogram(&CONTRACT_BUCKETS, &timed),
        process_metrics(),
    ]
    .concat();
    let target = FakeServer::exposition(&body).await;
    let ctx = accounting_context(&target, &exposition_of(BEFORE_TEMPLATES));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &[
            "2 of 11 answered requests have no fastapi_request_duration_seconds observation",
            // No 404 series at all, so the run's own path names the requests.
            "GET /api/users/999 404: sent 2, seen 0",
        ],
    );
}

#[tokio::test]
async fn a_raw_path_backend_with_exact_counts_passes_accounting() {
    // Labels the raw URL (the spec's bug 3): wrong for cardinality, yet every request counted.
    let before: &[Series] = &[("GET", "/api/users/1", 200, 7)];
    let after: &[Series] = &[
        ("GET", "/api/users/1", 200, 10),
        ("GET", "/api/users/2", 200, 2),
        ("GET", "/api/users/999", 404, 2),
        ("POST", "/api/users", 201, 4),
        ("GET", "/metrics", 200, 1),
    ];
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let mut ctx = accounting_context(&target, &exposition_of(before));
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Pass,
        &["every one of 11 answered requests"],
    );
    assert_eq!(result(&report, "metrics-cardinality").status, Status::Warn);
}

/// The fixture run as a version 2 report counts it: per path template, whatever ids were sent.
const SENT_TEMPLATES: &[Sent<'static>] = &[
    ("GET", "/api/users/{{random:1..2}}", 200, 5),
    ("GET", "/api/users/{{random:900000000..999999999}}", 404, 2),
    ("POST", "/api/users", 201, 4),
];

fn template_context(target: &FakeServer) -> CheckContext {
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(SENT_TEMPLATES));
    ctx.baseline = Some(parsed(&exposition_of(&[("GET", "/metrics", 200, 1)])));
    ctx.exclusive = true;
    ctx
}

#[tokio::test]
async fn a_template_report_accounts_for_raw_and_templated_path_labels_alike() {
    let raw: &[Series] = &[
        ("GET", "/api/users/1", 200, 3),
        ("GET", "/api/users/2", 200, 2),
        ("GET", "/api/users/912345678", 404, 1),
        ("GET", "/api/users/987654321", 404, 1),
        ("POST", "/api/users", 201, 4),
        ("GET", "/metrics", 200, 2),
    ];
    let templated: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 5),
        ("GET", "/api/users/{user_id}", 404, 2),
        ("POST", "/api/users", 201, 4),
        ("GET", "/metrics", 200, 2),
    ];
    for after in [raw, templated] {
        let target = FakeServer::exposition(&exposition_of(after)).await;
        let report = run_checks(&template_context(&target)).await;
        assert_check(
            &report,
            "accounting-metrics",
            Status::Pass,
            &["every one of 11 answered requests"],
        );
    }
}

#[tokio::test]
async fn a_raw_path_label_missing_from_a_template_report_fails_naming_the_template() {
    // One 404 lost, one 200 counted twice: per template, the sums tell both.
    let after: &[Series] = &[
        ("GET", "/api/users/1", 200, 4),
        ("GET", "/api/users/2", 200, 2),
        ("GET", "/api/users/912345678", 404, 1),
        ("POST", "/api/users", 201, 4),
        ("GET", "/metrics", 200, 2),
    ];
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let report = run_checks(&template_context(&target)).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &[
            "GET /api/users/{{random:900000000..999999999}} 404: sent 2, seen 1",
            "GET /api/users/{{random:1..2}} 200: sent 5, seen 6",
        ],
    );
}

#[tokio::test]
async fn requests_counted_twice_on_an_exclusive_target_fail() {
    let after: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 20),
        ("GET", "/api/users/{user_id}", 404, 4),
        ("POST", "/api/users", 201, 8),
        ("GET", "/metrics", 200, 2),
    ];
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let mut ctx = accounting_context(&target, &exposition_of(BEFORE_TEMPLATES));
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &["recorded twice", "POST /api/users 201: sent 4, seen 8"],
    );
}

/// A request log line in trace `trace`.
fn log_line(method: &str, endpoint: &str, status: u16, trace: &str) -> String {
    json!({
        "timestamp": "2026-11-25T09:30:00.123Z",
        "level": if status >= 400 { "WARNING" } else { "INFO" },
        "service": SERVICE,
        "message": "Request completed",
        "endpoint": endpoint,
        "method": method,
        "status_code": status,
        "duration_ms": 2.5,
        "trace_id": trace,
        "span_id": "00f067aa0ba902b7",
    })
    .to_string()
}

/// Log lines for every request of `sent`, numbered in order, except those `skip` rejects.
fn run_log_lines(sent: &[Sent], skip: impl Fn(&str, u16) -> bool) -> Vec<String> {
    let mut seq = 0;
    let mut lines = Vec::new();
    for (method, path, status, count) in sent {
        for _ in 0..*count {
            if !skip(path, *status) {
                lines.push(log_line(method, path, *status, &trace_id(seq)));
            }
            seq += 1;
        }
    }
    lines
}

#[tokio::test]
async fn a_complete_request_log_passes_accounting() {
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(log_input(&run_log_lines(SENT, |_, _| false)));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Pass,
        &["every one of 11 answered requests", RUN_ID],
    );
}

#[tokio::test]
async fn requests_logged_twice_on_an_exclusive_target_fail() {
    let mut lines = run_log_lines(SENT, |_, _| false);
    lines.extend(run_log_lines(SENT, |path, _| path != "/api/users"));
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(log_input(&lines));
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Fail,
        &[
            "4 more request log lines",
            "POST /api/users 201: sent 4, seen 8",
        ],
    );
}

#[tokio::test]
async fn log_lines_missing_for_the_runs_traces_fail() {
    // The 404s were never logged; another client's 404s (other traces) must not stand in.
    let mut lines = run_log_lines(SENT, |_, status| status == 404);
    for _ in 0..2 {
        lines.push(log_line(
            "GET",
            "/api/users/999",
            404,
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ));
    }
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(log_input(&lines));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Fail,
        &[
            "2 of 11 answered requests have no request log line",
            "GET /api/users/999 404: sent 2, seen 0",
        ],
    );
}

/// A log input that keeps only `max_lines` lines of `lines`, counting the run's request lines
/// as they arrive when `count_run` is set (as `obsctl check --run-report --logs` does).
fn capped_log_input(lines: &[String], max_lines: usize, count_run: bool) -> LogInput {
    let buffer = LogBuffer::new(LogLimits {
        max_lines,
        count_run: count_run.then(|| CountedRun {
            prefix: RUN_ID.to_owned(),
            paths: PathFolder::default(),
        }),
        ..LogLimits::default()
    });
    for line in lines {
        buffer.push(line.clone());
    }
    LogInput {
        buffer,
        origin: "app.log".to_owned(),
        stderr: None,
    }
}

/// Another client's request lines, around the run's.
fn other_traffic(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| log_line("GET", "/health", 200, "4bf92f3577b34da6a3ce929d0e0e4736"))
        .collect()
}

#[tokio::test]
async fn a_log_longer_than_the_lines_kept_is_accounted_for_as_it_is_read() {
    let complete = [
        other_traffic(40),
        run_log_lines(SENT, |_, _| false),
        other_traffic(40),
    ]
    .concat();
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(capped_log_input(&complete, 5, true));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Pass,
        &[
            "every one of 11 answered requests",
            "91 lines, more than the 5 kept",
        ],
    );

    // The count is real: the run's 404 lines missing past the cap are still found missing.
    let incomplete = [
        other_traffic(40),
        run_log_lines(SENT, |_, status| status == 404),
    ]
    .concat();
    ctx.logs = Some(capped_log_input(&incomplete, 5, true));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Fail,
        &["2 of 11 answered requests have no request log line"],
    );
}

#[tokio::test]
async fn past_the_lines_kept_without_the_runs_count_accounting_is_an_error_not_a_verdict() {
    let lines = [other_traffic(40), run_log_lines(SENT, |_, _| false)].concat();
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(capped_log_input(&lines, 5, false));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Error,
        &["obsctl keeps the newest 5"],
    );
}

#[tokio::test]
async fn past_the_lines_kept_the_log_checks_wait_on_the_runs_count_and_say_what_they_judged() {
    let lines = [other_traffic(40), run_log_lines(SENT, |_, _| false)].concat();
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(capped_log_input(&lines, 5, true));
    // The run's lines were counted as they arrived: the snapshot is not held to the deadline.
    let started = std::time::Instant::now();
    let judged = ctx.log_lines().await.map(<[_]>::len);
    assert_eq!(judged, Some(5));
    assert!(
        started.elapsed() < WAIT / 2,
        "waited {:?}",
        started.elapsed()
    );
    let report = run_checks(&ctx).await;
    let judged_newest = format!(
        "judged on the newest 5 lines of app.log: {} older ones went past what obsctl keeps",
        lines.len() - 5
    );
    assert_check(&report, "logs-json-stdout", Status::Pass, &[&judged_newest]);
    assert_check(&report, "logs-fields", Status::Pass, &[&judged_newest]);
}

#[tokio::test]
async fn server_spans_missing_from_the_runs_traces_fail() {
    let receiver = receiver().await;
    // SERVER spans for requests 0..9 only; two requests of the run lost their spans.
    let spans = (0..9u64)
        .map(|seq| {
            let mut id = [0u8; 16];
            hex_into(&trace_id(seq), &mut id);
            span(id, 1, SpanKind::Server, "GET /api/users/{user_id}")
        })
        .collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.otlp = Some(receiver);
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-traces",
        Status::Fail,
        &["9 of 11 answered requests have a SERVER span; 2 missing"],
    );
}

#[tokio::test]
async fn server_spans_in_new_traces_instead_of_the_callers_fail() {
    // A service that ignores traceparent starts its own traces.
    let receiver = receiver().await;
    let spans = (0..11u8)
        .map(|n| span([n + 1; 16], 1, SpanKind::Server, "GET /api/users/{user_id}"))
        .collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.otlp = Some(receiver);
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-traces",
        Status::Fail,
        &["none in the traces obsctl started", "traceparent"],
    );
}

/// Decodes 32 hex digits into `out`.
fn hex_into(hex: &str, out: &mut [u8; 16]) {
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("the fixture id is hex");
    }
}

// logs-trace-correlation: the run's request lines against the SERVER spans of the run.

/// SERVER spans, with span id `span_byte` repeated, for every request of `SENT`.
async fn receiver_with_server_spans(
    span_byte: u8,
) -> std::sync::Arc<obsctl::sources::otlp::OtlpReceiver> {
    let receiver = receiver().await;
    let total: u64 = SENT.iter().map(|(_, _, _, count)| *count).sum();
    let spans = (0..total)
        .map(|seq| {
            let mut id = [0u8; 16];
            hex_into(&trace_id(seq), &mut id);
            span(id, span_byte, SpanKind::Server, "GET /api/users/{user_id}")
        })
        .collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    receiver
}

/// Every request line of the run, as `edit` leaves it.
fn run_lines_edited(edit: impl Fn(&mut serde_json::Map<String, Value>)) -> Vec<String> {
    run_log_lines(SENT, |_, _| false)
        .into_iter()
        .map(|line| {
            let mut value: Value = serde_json::from_str(&line).unwrap();
            edit(value.as_object_mut().expect("a fixture line is an object"));
            value.to_string()
        })
        .collect()
}

/// The run's request lines with `span_id` set to `span_id` (or removed when `None`).
fn run_lines_with_span_id(span_id: Option<&str>) -> Vec<String> {
    run_lines_edited(|line| match span_id {
        Some(id) => {
            line.insert("span_id".to_owned(), json!(id));
        }
        None => {
            line.remove("span_id");
        }
    })
}

async fn correlation_report(lines: &[String], span_byte: u8) -> obsctl::check::report::CheckReport {
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.logs = Some(log_input(lines));
    ctx.otlp = Some(receiver_with_server_spans(span_byte).await);
    run_checks(&ctx).await
}

#[tokio::test]
async fn log_lines_naming_their_server_span_are_correlated() {
    let report = correlation_report(&run_lines_with_span_id(Some("abababababababab")), 0xab).await;
    assert_check(
        &report,
        "logs-trace-correlation",
        Status::Pass,
        &["11 request lines carry the trace_id and span_id of their request's SERVER span"],
    );
}

#[tokio::test]
async fn log_lines_naming_another_span_or_none_warn() {
    // A child span's id (the logger ran inside get_user), or no span_id at all.
    let report = correlation_report(&run_lines_with_span_id(Some("0101010101010101")), 0xab).await;
    assert_check(
        &report,
        "logs-trace-correlation",
        Status::Warn,
        &[
            "11 of 11 request lines name a span other than their request's SERVER span",
            "span_id 0101010101010101, its SERVER span is abababababababab",
        ],
    );
    let report = correlation_report(&run_lines_with_span_id(None), 0xab).await;
    assert_check(
        &report,
        "logs-trace-correlation",
        Status::Warn,
        &["without a span_id"],
    );
}

#[tokio::test]
async fn log_lines_without_trace_ids_cannot_lead_to_a_trace() {
    let lines = run_lines_edited(|line| {
        line.remove("trace_id");
    });
    let report = correlation_report(&lines, 0xab).await;
    assert_check(
        &report,
        "logs-trace-correlation",
        Status::Warn,
        &["none of 11 request lines carries a trace_id"],
    );
}

// duration-units: the histogram against the log lines.

/// The run's request lines with every `duration_ms` set to `ms`.
fn run_lines_taking(ms: f64) -> Vec<String> {
    run_lines_edited(|line| {
        line.insert("duration_ms".to_owned(), json!(ms));
    })
}

#[tokio::test]
async fn a_histogram_and_logs_that_disagree_by_a_thousand_fail_as_a_unit_error() {
    // The fixture histogram's requests take 4 ms on average.
    let target = FakeServer::exposition(&exposition_of(AFTER_EXACT)).await;
    let mut ctx = target_context(&target.url());
    ctx.logs = Some(log_input(&run_lines_taking(3.5)));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "duration-units",
        Status::Pass,
        &["mean request 4.000 ms by the histogram, 3.500 ms by the log lines"],
    );
    // duration_ms written in seconds.
    ctx.logs = Some(log_input(&run_lines_taking(0.0035)));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "duration-units",
        Status::Fail,
        &["the histogram says requests take 1143x longer than the log lines do"],
    );
}

#[tokio::test]
async fn a_status_read_before_the_response_is_named_as_such() {
    // A middleware that labels before the handler ran: the 404s are all there, as 200s.
    let after: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 17),
        ("POST", "/api/users", 201, 8),
        ("GET", "/metrics", 200, 1),
    ];
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let ctx = accounting_context(&target, &exposition_of(BEFORE_TEMPLATES));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &[
            "1 routes have every counter increment, under other statuses than the answers had",
            "GET /api/users/{user_id}: answered 200 x5, 404 x2, recorded 200 x7",
            "after the handler and the error handlers ran",
        ],
    );
}
