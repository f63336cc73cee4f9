//! One purpose-built broken target per finding a check names: the check's status and the words
//! of its finding (what, examples, hint) are asserted, and a target without the defect passes.
//! Metrics bodies follow the Prometheus text format 0.0.4; run reports follow
//! `obsctl/schema/run-report.schema.json` (checked here); spans arrive over real OTLP/gRPC.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use obsctl::check::context::CheckContext;
use obsctl::check::model::{Level, Status};
use obsctl::check::policy::{Overrides, Policy};
use obsctl::check::registry::CHECKS;
use obsctl::check::report::CheckReport;
use obsctl::report::RunReport;
use obsctl::sources::exposition;
use obsctl::sources::otlp::{OtlpOptions, OtlpReceiver};
use obsctl::sources::prometheus::Prometheus;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::exposition::{
    CONTRACT_BUCKETS, Series, contract_body, exposition_of, process_metrics, python_client_body,
    requests_counter,
};
use crate::helpers::{
    Asked, FakeServer, PROMETHEUS_TEXT, Reply, SERVICE, assert_check, bounded, client, context,
    log_input, result, run_checks, said, target_context,
};
use crate::traces::{attribute, export, receiver, send, span};

// ---------------------------------------------------------------------------------------------
// Fixtures: run reports, exposition bodies, spans.

/// The run id of every fixture run here; each trace id of a run starts with it.
const RUN_ID: &str = "f1dd1e55c0de0001";

/// One line of a run report's `requests`.
#[derive(Debug, Clone, Copy)]
struct Req {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    status: Option<u16>,
    error: Option<&'static str>,
    count: u64,
}

impl Req {
    /// `count` requests answered `status`, as their scenario expects.
    const fn answered(method: &'static str, path: &'static str, status: u16, count: u64) -> Self {
        Self {
            name: path,
            method,
            path,
            status: Some(status),
            error: None,
            count,
        }
    }
}

/// `(name, limit, observed, passed)` of one threshold.
type Threshold = (&'static str, f64, Option<f64>, bool);

/// The requests of `sent` (method, concrete path, status, count), all answered as expected.
fn answered(sent: &[Series<'static>]) -> Vec<Req> {
    sent.iter()
        .map(|(method, path, status, count)| Req::answered(method, path, *status, *count))
        .collect()
}

/// A run report of `obsctl load` with these `requests` and `thresholds`, as JSON in the shape of
/// `obsctl/schema/run-report.schema.json` (validated), read back as `--run-report` does.
fn run_report(requests: &[Req], thresholds: &[Threshold]) -> RunReport {
    let total: u64 = requests.iter().map(|r| r.count).sum();
    let not_started: u64 = requests
        .iter()
        .filter(|r| r.error == Some("not_started"))
        .map(|r| r.count)
        .sum();
    let sent = total - not_started;
    let with_answer: u64 = requests
        .iter()
        .filter(|r| r.status.is_some())
        .map(|r| r.count)
        .sum();
    let errors: u64 = requests
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.count)
        .sum();
    let mut statuses = serde_json::Map::new();
    let mut errors_by_kind = serde_json::Map::new();
    for request in requests {
        let add = |map: &mut serde_json::Map<String, Value>, key: String| {
            let seen = map.get(&key).and_then(Value::as_u64).unwrap_or(0);
            map.insert(key, json!(seen + request.count));
        };
        if let Some(status) = request.status {
            add(&mut statuses, status.to_string());
        }
        if let Some(kind) = request.error {
            add(&mut errors_by_kind, kind.to_owned());
        }
    }
    let latency = if with_answer > 0 {
        json!({
            "samples": with_answer, "mean": 4.0, "p50": 4.0, "p90": 5.0, "p95": 5.0,
            "p99": 6.0, "p99_9": 6.0, "max": 6.0
        })
    } else {
        json!({
            "samples": 0, "mean": null, "p50": null, "p90": null, "p95": null,
            "p99": null, "p99_9": null, "max": null
        })
    };
    let now = OffsetDateTime::now_utc();
    let stamp = |t: OffsetDateTime| t.format(&Rfc3339).expect("UTC formats as RFC 3339");
    let lines: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({
                "method": r.method, "path": r.path, "name": r.name,
                "status": r.status, "error": r.error, "count": r.count,
                "examples": crate::helpers::example_paths(r.path)
            })
        })
        .collect();
    let thresholds: Vec<Value> = thresholds
        .iter()
        .map(|(name, limit, observed, passed)| {
            json!({ "name": name, "limit": limit, "observed": observed, "passed": passed, "request": null })
        })
        .collect();
    let passed = thresholds.iter().all(|t| t["passed"] == json!(true));
    let report = json!({
        "schema_version": 2,
        "run_id": RUN_ID,
        "trace_id_prefix": RUN_ID,
        "seq_count": sent,
        "sequences": [],
        "segment": null,
        "merged": null,
        "scenario": { "name": "findings", "file": "findings.toml" },
        "target": "http://127.0.0.1:8000",
        "model": "open",
        "plan": {
            "duration_s": 1.0, "planned_requests": total, "start_rate": total as f64,
            "stages": [{ "duration_s": 1.0, "rate": total as f64 }],
            "max_in_flight": 16, "timeout_ms": 2000.0
        },
        "window_start": stamp(now - Duration::from_secs(2)),
        "window_end": stamp(now),
        "duration_s": 1.0,
        "interrupted": false,
        "aborted": null,
        "requests_sent": sent,
        "requests_not_started": not_started,
        "requests": lines,
        "overall": {
            "count": sent, "not_started": not_started, "errors": errors,
            "error_rate": if total == 0 { 0.0 } else { errors as f64 / total as f64 },
            "achieved_rate": sent as f64, "statuses": statuses,
            "errors_by_kind": errors_by_kind, "latency_ms": latency
        },
        "by_name": [],
        "histograms": null,
        "timeline": [],
        "thresholds": thresholds,
        "passed": passed
    });
    let violations = crate::helpers::schema_violations("run-report.schema.json", &report);
    assert!(
        violations.is_empty(),
        "the fixture violates the schema: {violations:?}"
    );
    serde_json::from_value(report).expect("the fixture is a run report")
}

/// `process_start_time_seconds`, as the process collector exposes it.
fn start_time(seconds: f64) -> String {
    format!(
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds {seconds:?}\n"
    )
}

/// One process's `/metrics`: `series` counted, started at `started`.
fn process_body(series: &[Series], started: f64) -> String {
    [exposition_of(series), start_time(started)].concat()
}

/// The trace id of request `seq` of the fixture run, as bytes.
fn trace_bytes(run: &RunReport, seq: u64) -> [u8; 16] {
    let hex = run.trace_id(seq);
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a trace id is hex");
    }
    out
}

/// The load generator's span: the parent of the service's request span, never exported.
const CALLER: u8 = 0xcc;

/// A span in request `seq`'s trace, child of span `parent` (8 repeated bytes).
fn child(run: &RunReport, seq: u64, id: u8, parent: u8, kind: SpanKind, name: &str) -> Span {
    let mut span = span(trace_bytes(run, seq), id, kind, name);
    span.parent_span_id = vec![parent; 8];
    span
}

/// Sends the spans `per_request` gives each request of `run` to a new receiver, under the
/// service's name.
async fn receiver_with(
    run: &RunReport,
    per_request: impl Fn(u64) -> Vec<Span>,
) -> Arc<OtlpReceiver> {
    let receiver = receiver().await;
    let spans = (0..run.seq_count).flat_map(per_request).collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    receiver
}

/// A context with the run and the receiver (as `obsctl verify` has them).
fn traced_context(run: RunReport, receiver: Arc<OtlpReceiver>) -> CheckContext {
    let mut ctx = context();
    ctx.run = Some(run);
    ctx.otlp = Some(receiver);
    ctx
}

/// What a fixture run sends: 6 requests, all answered.
const SIX: &[Series<'static>] = &[
    ("GET", "/api/users/1", 200, 3),
    ("GET", "/api/users/2", 200, 1),
    ("POST", "/api/users", 201, 2),
];

/// How the six requests' SERVER spans are named.
fn route_of(seq: u64) -> &'static str {
    if seq < 4 {
        "GET /api/users/{user_id}"
    } else {
        "POST /api/users"
    }
}

// ---------------------------------------------------------------------------------------------
// 1. duration-histogram: each inconsistency is its own finding.

/// One histogram series of `GET {path} 200`: cumulative counts of the contract's 10 buckets then
/// `+Inf`, `_sum` and `_count`.
struct Hist {
    path: &'static str,
    buckets: [f64; 11],
    sum: f64,
    count: f64,
}

/// A body with the contract's counter, these histogram series, and the process metrics.
fn histogram_body(series: &[Hist]) -> String {
    let name = "fastapi_request_duration_seconds";
    let counted: Vec<Series> = series
        .iter()
        .map(|s| ("GET", s.path, 200, s.count as u64))
        .collect();
    let mut out = requests_counter(&counted);
    out.push_str(&format!(
        "# HELP {name} HTTP request duration in seconds\n# TYPE {name} histogram\n"
    ));
    for one in series {
        let base = format!(r#"method="GET",path="{}",status_code="200""#, one.path);
        let bounds = CONTRACT_BUCKETS
            .iter()
            .map(|b| format!("{b:?}"))
            .chain(std::iter::once("+Inf".to_owned()));
        for (le, value) in bounds.zip(one.buckets) {
            out.push_str(&format!("{name}_bucket{{{base},le=\"{le}\"}} {value:?}\n"));
        }
        out.push_str(&format!("{name}_sum{{{base}}} {:?}\n", one.sum));
        out.push_str(&format!("{name}_count{{{base}}} {:?}\n", one.count));
    }
    out.push_str(&process_metrics());
    out
}

async fn histogram_report(series: &[Hist]) -> CheckReport {
    let target = FakeServer::exposition(&histogram_body(series)).await;
    run_checks(&target_context(&target.url())).await
}

/// Three observations of 4 ms, exposed as the client library does.
const CONSISTENT: Hist = Hist {
    path: "/api/users/{user_id}",
    buckets: [3.0; 11],
    sum: 0.012,
    count: 3.0,
};

/// Counts that dip at `le="0.1"` and recover: 3 observations up to 10 ms, then 5 in all up to
/// 250 ms (`_sum` 0.5 lies within what these buckets allow, so only the dip is wrong).
const NOT_CUMULATIVE: Hist = Hist {
    path: "/api/users/{user_id}",
    buckets: [3.0, 3.0, 3.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
    sum: 0.5,
    count: 5.0,
};

/// `+Inf` says 3 observations, `_count` says 4.
const INF_NOT_COUNT: Hist = Hist {
    path: "/api/users",
    buckets: [3.0; 11],
    sum: 0.012,
    count: 4.0,
};

#[tokio::test]
async fn histogram_bucket_counts_that_are_not_cumulative_fail() {
    let report = histogram_report(&[NOT_CUMULATIVE]).await;
    let result = assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &[
            "fastapi_request_duration_seconds bucket counts are not cumulative (a larger `le` counts fewer) (1 of 1 series)",
            r#"series {method="GET", path="/api/users/{user_id}", status_code="200"}"#,
            "never write per-bucket counts by hand",
        ],
    );
    assert_eq!(result.findings.len(), 1, "{result:#?}");
}

#[tokio::test]
async fn a_plus_inf_bucket_unequal_to_count_fails() {
    let report = histogram_report(&[INF_NOT_COUNT]).await;
    let result = assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &[
            "fastapi_request_duration_seconds: the +Inf bucket differs from _count (1 of 1 series)",
            "+Inf counts every observation, as _count does",
        ],
    );
    assert_eq!(result.findings.len(), 1, "{result:#?}");
}

#[tokio::test]
async fn a_sum_beyond_what_the_buckets_allow_fails_as_a_unit_error() {
    // Every observation at most 10 ms, yet 5 s each: milliseconds or a wrong value in _sum.
    let report = histogram_report(&[Hist {
        sum: 3.0 * 5.0,
        ..CONSISTENT
    }])
    .await;
    let result = assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &[
            "fastapi_request_duration_seconds: _sum is not what the bucket counts allow (1 of 1 series)",
            "in the buckets' unit (seconds)",
        ],
    );
    assert_eq!(result.findings.len(), 1, "{result:#?}");
}

#[tokio::test]
async fn consistent_histograms_pass_the_python_client_body_included() {
    let report = histogram_report(&[CONSISTENT]).await;
    assert_check(
        &report,
        "duration-histogram",
        Status::Pass,
        &["10 buckets, cumulative and consistent: 1 series"],
    );
    let target = FakeServer::exposition(&python_client_body()).await;
    let report = run_checks(&target_context(&target.url())).await;
    let result = assert_check(
        &report,
        "duration-histogram",
        Status::Pass,
        &["cumulative and consistent: 1 series"],
    );
    assert!(result.findings.is_empty(), "{result:#?}");
}

#[tokio::test]
async fn two_histogram_problems_are_two_findings_not_a_first_failure() {
    let report = histogram_report(&[NOT_CUMULATIVE, INF_NOT_COUNT]).await;
    let result = assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &[
            "2 problems; first:",
            "bucket counts are not cumulative (a larger `le` counts fewer) (1 of 2 series)",
            "the +Inf bucket differs from _count (1 of 2 series)",
            r#"path="/api/users/{user_id}""#,
            r#"path="/api/users""#,
        ],
    );
    assert!(result.findings.len() >= 2, "{result:#?}");
}

#[tokio::test]
async fn per_bucket_counts_are_one_finding_not_also_a_wrong_sum() {
    // Counts written per bucket by hand: 2 observations up to 10 ms, 1 in (10 ms, 25 ms]. The
    // _sum, 40 ms in seconds, is what those observations allow; the only defect is the counts.
    let report = histogram_report(&[Hist {
        path: "/api/users/{user_id}",
        buckets: [2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0],
        sum: 0.04,
        count: 3.0,
    }])
    .await;
    let result = assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &["bucket counts are not cumulative"],
    );
    assert!(!said(result).contains("_sum is not"), "{result:#?}");
}

// ---------------------------------------------------------------------------------------------
// 2. metrics-endpoint: a series exposed twice.

#[tokio::test]
async fn a_series_exposed_twice_fails_the_metrics_endpoint_naming_its_line() {
    let mut lines: Vec<String> = contract_body().lines().map(str::to_owned).collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("fastapi_requests_total{"))
        .expect("the contract body counts requests");
    lines.insert(first + 1, lines[first].clone());
    let body = lines.join("\n") + "\n";
    let target = FakeServer::exposition(&body).await;
    let report = run_checks(&target_context(&target.url())).await;
    // 1-based: the copy is the line after the original.
    let example = format!("line {}: fastapi_requests_total{{", first + 2);
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &[
            "/metrics exposes 1 samples more than once (same name and labels)",
            &example,
            "register each collector once, on one registry",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 3. and 4. requests-counter before the first request.

/// The counter declared (HELP and TYPE, as prometheus_client prints it) with no sample yet.
fn declared_only() -> String {
    [
        "# HELP fastapi_requests_total Total HTTP requests\n\
         # TYPE fastapi_requests_total counter\n"
            .to_owned(),
        process_metrics(),
    ]
    .concat()
}

#[tokio::test]
async fn a_counter_declared_without_series_is_not_judged_until_requests_were_sent() {
    let target = FakeServer::exposition(&declared_only()).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "requests-counter",
        Status::Skip,
        &[
            "fastapi_requests_total is declared, as a counter with the contract's labels, but has no series yet",
            "send traffic first",
        ],
    );

    // After a run, a declared counter without series lost every request.
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(&answered(SIX), &[]));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "requests-counter",
        Status::Fail,
        &[
            "fastapi_requests_total is declared but has no series after the run's requests",
            "count requests in a middleware that runs for every request",
        ],
    );
}

#[tokio::test]
async fn a_fresh_service_whose_request_metrics_appear_after_its_first_scrape_passes() {
    // The Rust `prometheus` crate omits a labelled family until its first observation: the
    // first scrape (itself a request) shows none, the second shows the scrape counted.
    let scrapes = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&scrapes);
    let counted: &[Series] = &[("GET", "/metrics", 200, 1)];
    let after = exposition_of(counted);
    let target = FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        // The exemplars check's scrape asks as Prometheus does (OpenMetrics first): not counted.
        "/metrics"
            if asked
                .accept
                .as_deref()
                .is_some_and(|a| a.contains("openmetrics")) =>
        {
            Reply::ok(PROMETHEUS_TEXT, after.clone())
        }
        "/metrics" => {
            let body = if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                process_metrics()
            } else {
                after.clone()
            };
            Reply::ok(PROMETHEUS_TEXT, body)
        }
        _ => Reply::not_found(),
    })
    .await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "requests-counter",
        Status::Pass,
        &["counter with labels method, path, status_code: 1 series, 1 requests"],
    );
    assert_check(&report, "duration-histogram", Status::Pass, &[]);
    assert_eq!(
        scrapes.load(Ordering::SeqCst),
        2,
        "one scrape without the request families, then one more, shared by every check"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. accounting-metrics: several processes behind one port, and a restart.

/// Worker A's start time (and B's, later).
const STARTED_A: f64 = 1_764_063_000.0;
const STARTED_B: f64 = 1_764_063_001.5;

/// A `/metrics` that answers `bodies` in turn, one per request.
async fn rotating_target(bodies: Vec<String>) -> FakeServer {
    let next = AtomicUsize::new(0);
    FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        "/metrics" => {
            let turn = next.fetch_add(1, Ordering::SeqCst) % bodies.len();
            Reply::ok(PROMETHEUS_TEXT, bodies[turn].clone())
        }
        _ => Reply::not_found(),
    })
    .await
}

#[tokio::test]
async fn workers_with_separate_registries_are_named_as_several_processes() {
    // uvicorn --workers 2 without multiprocess mode: each worker counts what it served.
    let before: &[Series] = &[("GET", "/api/users/{user_id}", 200, 5)];
    let worker_a: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 7),
        ("POST", "/api/users", 201, 1),
    ];
    let worker_b: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 2),
        ("POST", "/api/users", 201, 1),
    ];
    let target = rotating_target(vec![
        process_body(worker_a, STARTED_A),
        process_body(worker_b, STARTED_B),
    ])
    .await;
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(&answered(SIX), &[]));
    ctx.baseline =
        Some(exposition::parse(&process_body(before, STARTED_A)).expect("the baseline parses"));
    let report = run_checks(&ctx).await;
    let result = assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &[
            "process_start_time_seconds per scrape:",
            "fastapi_requests_total summed per scrape (without /metrics):",
        ],
    );
    let first = &result.findings[0];
    assert!(
        first
            .what
            .starts_with("several processes answer /metrics, each with its own registry"),
        "{result:#?}"
    );
    assert!(first.hint.contains("multiprocess"), "{first:#?}");
    assert!(result.detail.contains("several processes"), "{result:#?}");
}

#[tokio::test]
async fn a_counter_that_went_down_with_a_later_start_time_is_a_restart() {
    // Killed and restarted during the run: the counter starts again from 0.
    let before: &[Series] = &[("GET", "/api/users/{user_id}", 200, 10)];
    let after: &[Series] = &[
        ("GET", "/api/users/{user_id}", 200, 2),
        ("POST", "/api/users", 201, 2),
    ];
    let target = FakeServer::exposition(&process_body(after, STARTED_B)).await;
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(&answered(SIX), &[]));
    ctx.baseline =
        Some(exposition::parse(&process_body(before, STARTED_A)).expect("the baseline parses"));
    let report = run_checks(&ctx).await;
    let result = assert_check(
        &report,
        "accounting-metrics",
        Status::Fail,
        &[
            "the service restarted during the run: its counters started again from 0",
            "GET /api/users/{user_id} 200: 10 then 2",
            "an OOM kill",
        ],
    );
    assert!(
        !said(result).contains("several processes"),
        "a restart is not several processes: {result:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Route templates of other frameworks in accounting and cardinality.

/// A run with ids that exist, one that does not (404 in the handler) and one that is no
/// integer (Flask and Django answer 404 without matching the route).
const ROUTED: &[Series<'static>] = &[
    ("GET", "/api/users/1", 200, 3),
    ("GET", "/api/users/2", 200, 2),
    ("GET", "/api/users/999", 404, 2),
    ("GET", "/api/users/abc", 404, 1),
    ("POST", "/api/users", 201, 4),
];

/// Accounting over exact counts labelled by `route` (the users template) and `users` (the
/// collection), non-integer ids under `unmatched` when the framework's converter refuses them.
async fn assert_templates_account_exactly(route: &str, users: &str, unmatched: Option<&str>) {
    let before: &[Series] = &[("GET", route, 200, 10), ("POST", users, 201, 1)];
    let mut after: Vec<Series> = vec![
        ("GET", route, 200, 15),
        ("POST", users, 201, 5),
        ("GET", route, 404, if unmatched.is_some() { 2 } else { 3 }),
    ];
    if let Some(label) = unmatched {
        after.push(("GET", label, 404, 1));
    }
    let target = FakeServer::exposition(&exposition_of(&after)).await;
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(&answered(ROUTED), &[]));
    ctx.baseline = Some(exposition::parse(&exposition_of(before)).expect("the baseline parses"));
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Pass,
        &[
            "every one of 12 answered requests has its counter increment and its histogram observation",
        ],
    );
    assert_check(
        &report,
        "metrics-cardinality",
        Status::Pass,
        &["route templates"],
    );
}

#[tokio::test]
async fn express_route_templates_account_exactly() {
    // Express: req.route.path has no converter, so /api/users/abc matches it too.
    assert_templates_account_exactly("/api/users/:user_id", "/api/users", None).await;
}

#[tokio::test]
async fn flask_route_templates_with_an_unmatched_non_integer_id_account_exactly() {
    assert_templates_account_exactly(
        "/api/users/<int:user_id>",
        "/api/users",
        Some("<unmatched>"),
    )
    .await;
}

#[tokio::test]
async fn django_route_templates_without_a_leading_slash_account_exactly() {
    assert_templates_account_exactly("api/users/<int:user_id>", "api/users", Some("<unmatched>"))
        .await;
}

#[tokio::test]
async fn aiohttp_templates_that_drop_their_pattern_account_exactly() {
    // aiohttp labels a `{user_id:\d+}` route by its canonical `/api/users/{user_id}`, which
    // reads as taking /api/users/abc, yet answers that 404 as unmatched: the counts settle it.
    assert_templates_account_exactly("/api/users/{user_id}", "/api/users", Some("<unmatched>"))
        .await;
}

#[tokio::test]
async fn sanic_templates_with_the_type_after_the_name_account_exactly() {
    assert_templates_account_exactly(
        "/api/users/<user_id:int>",
        "/api/users",
        Some("<unmatched>"),
    )
    .await;
}

#[tokio::test]
async fn a_route_parameter_whose_name_contains_int_is_not_an_integer_converter() {
    // FastAPI types the parameter in the handler's signature, never in the route: the template
    // `{appointment_id}` matches any segment (so would `{longitude}`, `:endpoint_id`, `{print_id}`).
    let route = "/api/appointments/{appointment_id}";
    let sent: &[Series<'static>] = &[
        (
            "GET",
            "/api/appointments/123e4567-e89b-12d3-a456-426614174000",
            200,
            2,
        ),
        (
            "GET",
            "/api/appointments/9f1c2d3e-0000-4a5b-8c7d-0123456789ab",
            200,
            1,
        ),
    ];
    let before: &[Series] = &[("GET", route, 200, 4)];
    let after: &[Series] = &[("GET", route, 200, 7)];
    let target = FakeServer::exposition(&exposition_of(after)).await;
    let mut ctx = target_context(&target.url());
    ctx.run = Some(run_report(&answered(sent), &[]));
    ctx.baseline = Some(exposition::parse(&exposition_of(before)).expect("the baseline parses"));
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-metrics",
        Status::Pass,
        &[
            "every one of 3 answered requests has its counter increment and its histogram observation",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Logs: placeholders are not request lines; a string status is still a request.

/// A request line of the contract in request `seq`'s trace.
fn request_line(run: &RunReport, seq: u64, method: &str, endpoint: &str, status: Value) -> Value {
    json!({
        "timestamp": "2026-11-25T09:30:00.123Z",
        "level": "INFO",
        "service": SERVICE,
        "message": "Request completed",
        "endpoint": endpoint,
        "method": method,
        "status_code": status,
        "duration_ms": 3.25,
        "trace_id": run.trace_id(seq),
        "span_id": "00f067aa0ba902b7",
    })
}

/// A line logged inside the handler by python-json-logger, whose format names the request
/// fields: it prints them as `null` on lines that have none.
fn in_handler_line(run: &RunReport, seq: u64) -> Value {
    json!({
        "timestamp": "2026-11-25T09:30:00.120Z",
        "level": "INFO",
        "service": SERVICE,
        "message": "fetching user",
        "endpoint": null,
        "method": null,
        "status_code": null,
        "duration_ms": null,
        "trace_id": run.trace_id(seq),
        "span_id": "00f067aa0ba902b7",
    })
}

/// The run's lines: an in-handler line then the request line for each request of `SIX`, the
/// status as `status(seq, code)` writes it.
fn six_request_lines(run: &RunReport, status: impl Fn(u64, u16) -> Value) -> Vec<String> {
    let mut seq = 0;
    let mut lines = Vec::new();
    for (method, path, code, count) in SIX {
        for _ in 0..*count {
            lines.push(in_handler_line(run, seq).to_string());
            lines.push(request_line(run, seq, method, path, status(seq, *code)).to_string());
            seq += 1;
        }
    }
    lines
}

#[tokio::test]
async fn null_request_fields_of_in_handler_lines_are_not_request_lines() {
    let run = run_report(&answered(SIX), &[]);
    let lines = six_request_lines(&run, |_, code| json!(code));
    let mut ctx = context();
    ctx.logs = Some(log_input(&lines));
    ctx.run = Some(run);
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "logs-fields",
        Status::Pass,
        &[
            "6 request lines, each with timestamp, level, service, endpoint, method, status_code, duration_ms",
        ],
    );
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Pass,
        &["12 JSON lines"],
    );
    assert_check(
        &report,
        "accounting-logs",
        Status::Pass,
        &["every one of 6 answered requests has its request log line"],
    );
}

#[tokio::test]
async fn a_string_status_is_a_type_finding_yet_its_request_is_accounted_for() {
    let run = run_report(&answered(SIX), &[]);
    // Request 1 logged str(response.status_code).
    let lines = six_request_lines(&run, |seq, code| {
        if seq == 1 {
            json!(code.to_string())
        } else {
            json!(code)
        }
    });
    let mut ctx = context();
    ctx.logs = Some(log_input(&lines));
    ctx.run = Some(run);
    ctx.exclusive = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "accounting-logs",
        Status::Pass,
        &["every one of 6 answered requests has its request log line"],
    );
    assert_check(
        &report,
        "logs-fields",
        Status::Fail,
        &[
            "`status_code` is a string (\"200\"), not a number (1 of 6 request lines)",
            "line 4:",
            "not str(...)",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 8. and 9. The run's traces: the request span's kind, the tree, obsctl's own losses.

#[tokio::test]
async fn request_spans_of_kind_internal_fail_accounting_without_blaming_traceparent() {
    // A hand-made request span continued the caller's trace but kept the default kind.
    let run = run_report(&answered(SIX), &[]);
    let receiver = receiver_with(&run, |seq| {
        vec![
            child(&run, seq, 1, CALLER, SpanKind::Internal, route_of(seq)),
            child(&run, seq, 2, 1, SpanKind::Internal, "get_user"),
        ]
    })
    .await;
    let report = run_checks(&traced_context(run, receiver)).await;
    let result = assert_check(
        &report,
        "accounting-traces",
        Status::Fail,
        &[
            "6 of the run's traces have spans, but none of kind SERVER (kinds seen: INTERNAL)",
            "kind=SpanKind.SERVER",
            "the trace context was continued correctly",
        ],
    );
    assert!(
        !said(result).contains("traceparent"),
        "the caller's trace was continued: {result:#?}"
    );
    assert_check(
        &report,
        "traces-structure",
        Status::Fail,
        &[
            "6 of 6 traces are not rooted at a SERVER span of \"fastapi-backend\"",
            "(Internal)",
        ],
    );
}

#[tokio::test]
async fn a_span_whose_parent_never_arrived_breaks_the_tree() {
    // Request 2's handler span names a parent that was never exported.
    let run = run_report(&answered(SIX), &[]);
    let receiver = receiver_with(&run, |seq| {
        let parent = if seq == 2 { 0xdd } else { 1 };
        vec![
            child(&run, seq, 1, CALLER, SpanKind::Server, route_of(seq)),
            child(&run, seq, 2, parent, SpanKind::Internal, "get_user"),
        ]
    })
    .await;
    let trace = run.trace_id(2);
    let report = run_checks(&traced_context(run, receiver)).await;
    let result = assert_check(
        &report,
        "traces-structure",
        Status::Fail,
        &[
            "1 spans in 1 traces have a parent that never arrived: the tree is broken in Tempo",
            &format!("trace {trace}: 1 spans whose parent is not in the trace, e.g. \"get_user\""),
        ],
    );
    assert_eq!(result.findings.len(), 1, "{result:#?}");
    assert_check(
        &report,
        "accounting-traces",
        Status::Pass,
        &["6 of 6 answered requests have a SERVER span in their own trace"],
    );
}

#[tokio::test]
async fn two_server_roots_in_one_trace_are_a_request_traced_twice() {
    // FastAPIInstrumentor.instrument_app under opentelemetry-instrument, for request 4.
    let run = run_report(&answered(SIX), &[]);
    let receiver = receiver_with(&run, |seq| {
        let mut spans = vec![child(&run, seq, 1, CALLER, SpanKind::Server, route_of(seq))];
        if seq == 4 {
            spans.push(child(&run, seq, 2, CALLER, SpanKind::Server, route_of(seq)));
        }
        spans
    })
    .await;
    let trace = run.trace_id(4);
    let report = run_checks(&traced_context(run, receiver)).await;
    assert_check(
        &report,
        "traces-structure",
        Status::Fail,
        &[
            "1 of 6 traces have several SERVER roots: the request is traced twice",
            &format!("trace {trace}: 2 SERVER roots"),
            "instrument the HTTP server once",
        ],
    );
}

#[tokio::test]
async fn one_server_span_per_request_at_the_root_of_its_trace_passes_the_structure() {
    let run = run_report(&answered(SIX), &[]);
    let receiver = receiver_with(&run, |seq| {
        vec![
            child(&run, seq, 1, CALLER, SpanKind::Server, route_of(seq)),
            child(&run, seq, 2, 1, SpanKind::Internal, "get_user"),
            child(&run, seq, 3, 2, SpanKind::Client, "SELECT users"),
        ]
    })
    .await;
    let report = run_checks(&traced_context(run, receiver)).await;
    assert_check(
        &report,
        "traces-structure",
        Status::Pass,
        &["6 traces of the run, 18 spans: each one tree under one SERVER span"],
    );
}

#[tokio::test]
async fn spans_obsctls_own_receiver_dropped_are_an_error_not_the_services_loss() {
    let options = OtlpOptions {
        max_spans: 3,
        ..OtlpOptions::default()
    };
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("a literal address");
    let receiver = Arc::new(
        OtlpReceiver::start_with(bind, options)
            .await
            .expect("the receiver binds an ephemeral port"),
    );
    let run = run_report(&answered(SIX), &[]);
    let spans = (0..run.seq_count)
        .map(|seq| child(&run, seq, 1, CALLER, SpanKind::Server, route_of(seq)))
        .collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    assert_eq!(receiver.dropped_spans(), 3);
    let report = run_checks(&traced_context(run, receiver)).await;
    assert_check(
        &report,
        "accounting-traces",
        Status::Error,
        &[
            "3 of 6 answered requests have a SERVER span, but obsctl's own receiver dropped 3 spans past its cap",
            "the loss may be obsctl's, not the service's",
        ],
    );
}

#[tokio::test]
async fn trees_broken_by_spans_obsctl_dropped_are_an_error_not_a_verdict() {
    // The handlers' spans arrive first; the SERVER spans of requests 3 to 5 are past the cap.
    let options = OtlpOptions {
        max_spans: 9,
        ..OtlpOptions::default()
    };
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("a literal address");
    let receiver = Arc::new(
        OtlpReceiver::start_with(bind, options)
            .await
            .expect("the receiver binds an ephemeral port"),
    );
    let run = run_report(&answered(SIX), &[]);
    let handlers =
        (0..run.seq_count).map(|seq| child(&run, seq, 2, 1, SpanKind::Internal, "get_user"));
    let servers =
        (0..run.seq_count).map(|seq| child(&run, seq, 1, CALLER, SpanKind::Server, route_of(seq)));
    send(
        &receiver,
        export(
            vec![attribute("service.name", SERVICE)],
            handlers.chain(servers).collect(),
        ),
    )
    .await;
    assert_eq!(receiver.dropped_spans(), 3);
    let report = run_checks(&traced_context(run, receiver)).await;
    assert_check(
        &report,
        "traces-structure",
        Status::Error,
        &[
            "judged on the spans kept; 3 dropped past obsctl's budget",
            "3 of 6 traces are not rooted at a SERVER span",
        ],
    );
}

#[tokio::test]
async fn log_lines_whose_spans_obsctl_dropped_are_not_compared_and_say_so() {
    let options = OtlpOptions {
        max_spans: 3,
        ..OtlpOptions::default()
    };
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("a literal address");
    let receiver = Arc::new(
        OtlpReceiver::start_with(bind, options)
            .await
            .expect("the receiver binds an ephemeral port"),
    );
    let run = run_report(&answered(SIX), &[]);
    let spans = (0..run.seq_count)
        .map(|seq| child(&run, seq, 1, CALLER, SpanKind::Server, route_of(seq)))
        .collect();
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    let lines: Vec<String> = (0..run.seq_count)
        .map(|seq| {
            let mut line = request_line(&run, seq, "GET", "/api/users/1", json!(200));
            line["span_id"] = json!("0101010101010101");
            line.to_string()
        })
        .collect();
    let mut ctx = traced_context(run, receiver);
    ctx.logs = Some(log_input(&lines));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "logs-trace-correlation",
        Status::Pass,
        &[
            "3 request lines carry the trace_id and span_id of their request's SERVER span",
            "3 request lines not compared: judged on the spans kept; 3 dropped past obsctl's budget",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 10. The load run: thresholds, answers, expected statuses.

fn load_context(run: RunReport) -> CheckContext {
    let mut ctx = context();
    ctx.run = Some(run);
    ctx
}

#[tokio::test]
async fn each_missed_threshold_is_a_finding_naming_its_limit_and_measure() {
    let run = run_report(
        &answered(SIX),
        &[
            ("p99_ms", 5.0, Some(6.0), false),
            ("error_rate", 0.01, Some(0.0), true),
            ("min_rate", 10.0, Some(6.0), false),
        ],
    );
    let report = run_checks(&load_context(run)).await;
    let result = assert_check(
        &report,
        "load-thresholds",
        Status::Fail,
        &[
            "p99_ms was 6.000, the scenario allows at most 5",
            "min_rate was 6.000, the scenario allows at least 10",
            "sent 6 requests",
        ],
    );
    assert_eq!(result.findings.len(), 2, "{result:#?}");
    assert!(!said(result).contains("error_rate was"), "{result:#?}");

    let held = run_report(&answered(SIX), &[("p99_ms", 50.0, Some(6.0), true)]);
    let report = run_checks(&load_context(held)).await;
    assert_check(
        &report,
        "load-thresholds",
        Status::Pass,
        &["all 1 thresholds held"],
    );
}

#[tokio::test]
async fn a_run_in_which_no_request_got_an_answer_fails_even_without_thresholds() {
    let refused = [Req {
        name: "get user",
        method: "GET",
        path: "/api/users/1",
        status: None,
        error: Some("connect"),
        count: 5,
    }];
    let report = run_checks(&load_context(run_report(&refused, &[]))).await;
    assert_check(
        &report,
        "load-thresholds",
        Status::Fail,
        &[
            "none of the 5 requests got an answer",
            "check that the service listens at the target URL",
        ],
    );
    assert_check(
        &report,
        "load-expected-status",
        Status::Fail,
        &["request `get user` got answers its scenario does not expect: connect x5"],
    );
}

#[tokio::test]
async fn answers_a_scenario_does_not_expect_are_named_per_request() {
    let requests = [
        Req::answered("GET", "/api/users/1", 200, 4),
        Req {
            name: "missing user",
            method: "GET",
            path: "/api/users/999",
            status: Some(200),
            error: Some("unexpected_status"),
            count: 3,
        },
        Req {
            name: "missing user",
            method: "GET",
            path: "/api/users/999",
            status: None,
            error: Some("timeout"),
            count: 1,
        },
    ];
    let report = run_checks(&load_context(run_report(&requests, &[]))).await;
    let result = assert_check(
        &report,
        "load-expected-status",
        Status::Fail,
        &[
            "request `missing user` got answers its scenario does not expect: 200 x3, timeout x1",
            "the scenario's `expect` list",
        ],
    );
    assert_eq!(result.findings.len(), 1, "{result:#?}");
    assert_eq!(result.findings[0].count, 4, "{result:#?}");

    let report = run_checks(&load_context(run_report(&answered(SIX), &[]))).await;
    assert_check(
        &report,
        "load-expected-status",
        Status::Pass,
        &["all 6 answered requests got an expected status"],
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Levels through the policy.

/// A target that labels raw URLs: metrics-cardinality finds it, at level `warn` by default.
async fn raw_path_target() -> FakeServer {
    let raw: &[Series] = &[
        ("GET", "/api/users/1", 200, 2),
        ("GET", "/api/users/2", 200, 1),
    ];
    FakeServer::exposition(&exposition_of(raw)).await
}

async fn run_with(ctx: &CheckContext, policy: &Policy) -> CheckReport {
    bounded(obsctl::check::run(ctx, policy)).await
}

fn policy(overrides: Overrides) -> Policy {
    let dir = tempfile::tempdir().expect("a temp dir");
    Policy::load(&overrides, dir.path()).expect("a valid policy")
}

#[tokio::test]
async fn a_denied_warning_check_fails_the_run() {
    let target = raw_path_target().await;
    let ctx = target_context(&target.url());
    let report = run_with(&ctx, &Policy::defaults()).await;
    let warned = assert_check(
        &report,
        "metrics-cardinality",
        Status::Warn,
        &["the path label carries raw URLs"],
    );
    assert_eq!(warned.level, Level::Warn);
    assert!(report.succeeded(), "a warning does not fail the run");

    let denied = policy(Overrides {
        deny: vec!["metrics-cardinality".into()],
        ..Overrides::default()
    });
    let report = run_with(&target_context(&target.url()), &denied).await;
    let failed = assert_check(
        &report,
        "metrics-cardinality",
        Status::Fail,
        &[
            "the path label carries raw URLs (2 of 2 values look like concrete paths)",
            "/api/users/1",
        ],
    );
    assert_eq!(failed.level, Level::Deny);
    assert_eq!(failed.default_level, Level::Warn);
    assert!(!report.succeeded(), "a denied finding fails the run");
    let failing: Vec<&str> = report.failing().map(|c| c.id.as_str()).collect();
    assert_eq!(failing, ["metrics-cardinality"]);
}

#[tokio::test]
async fn an_allowed_check_is_not_run() {
    let target = raw_path_target().await;
    let allowed = policy(Overrides {
        allow: vec!["metrics-cardinality".into()],
        ..Overrides::default()
    });
    let report = run_with(&target_context(&target.url()), &allowed).await;
    let result = assert_check(
        &report,
        "metrics-cardinality",
        Status::Allowed,
        &["not run: the policy allows it"],
    );
    assert_eq!(result.level, Level::Allow);
    assert!(result.findings.is_empty(), "{result:#?}");
    assert_eq!(result.duration_ms, 0);
    assert!(report.succeeded());

    // With every check allowed, not one of them asks the target anything.
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let body = contract_body();
    let watched = FakeServer::start(move |_: &Asked| {
        counter.fetch_add(1, Ordering::SeqCst);
        Reply::ok(PROMETHEUS_TEXT, body.clone())
    })
    .await;
    let all = policy(Overrides {
        allow: vec![CHECKS.iter().map(|c| c.id).collect::<Vec<_>>().join(",")],
        ..Overrides::default()
    });
    let report = run_with(&target_context(&watched.url()), &all).await;
    assert!(
        report.checks.iter().all(|c| c.status == Status::Allowed),
        "{report:#?}"
    );
    assert_eq!(report.summary.allowed, CHECKS.len());
    assert_eq!(asked.load(Ordering::SeqCst), 0, "an allowed check ran");
}

#[tokio::test]
async fn strict_turns_warnings_into_failures_and_skips_fail_the_run() {
    let target = raw_path_target().await;
    let report = run_with(&target_context(&target.url()), &Policy::strict()).await;
    let result = assert_check(
        &report,
        "metrics-cardinality",
        Status::Fail,
        &["the path label carries raw URLs"],
    );
    assert_eq!(result.level, Level::Deny);
    assert!(!report.succeeded());

    // A target that honours the contract: every check it can prove passes, the others skip,
    // and under strict the skips alone fail the run, with the one piece of advice it does not
    // take (it serves no OpenMetrics, so no exemplars).
    let good = FakeServer::exposition(&contract_body()).await;
    let report = run_with(&target_context(&good.url()), &Policy::defaults()).await;
    assert!(report.succeeded(), "{report:#?}");
    let report = run_with(&target_context(&good.url()), &Policy::strict()).await;
    assert!(report.strict);
    assert!(!report.succeeded(), "strict: skips fail the run");
    let failing: Vec<&obsctl::check::model::CheckResult> = report.failing().collect();
    assert!(!failing.is_empty());
    assert!(
        failing
            .iter()
            .all(|c| c.status == Status::Skip || c.id == "exemplars"),
        "only the skips and the exemplars advice fail: {failing:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 12. prometheus-scrape: a target found by its series, not its address.

/// A fake Prometheus (<https://prometheus.io/docs/prometheus/latest/querying/api/>) whose one
/// active target scrapes the service as `backend:8000` (a compose service name), up, with the
/// request counter among its series.
async fn prometheus_scraping_by_another_name() -> FakeServer {
    let instance = "backend:8000";
    let targets = json!({
        "status": "success",
        "data": {
            "activeTargets": [{
                "discoveredLabels": {
                    "__address__": instance, "__metrics_path__": "/metrics",
                    "__scheme__": "http", "job": "fastapi-backend"
                },
                "labels": { "instance": instance, "job": "fastapi-backend" },
                "scrapePool": "fastapi-backend",
                "scrapeUrl": format!("http://{instance}/metrics"),
                "globalUrl": format!("http://{instance}/metrics"),
                "lastError": "",
                "lastScrape": "2026-11-25T09:30:01.123456789Z",
                "lastScrapeDuration": 0.002164,
                "health": "up",
                "scrapeInterval": "1s",
                "scrapeTimeout": "1s"
            }],
            "droppedTargets": []
        }
    })
    .to_string();
    let vector = |metric: Value, value: &str| {
        json!({
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{ "metric": metric, "value": [1_764_063_001.5, value] }]
            }
        })
        .to_string()
    };
    let empty = json!({ "status": "success", "data": { "resultType": "vector", "result": [] } })
        .to_string();
    FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        "/-/ready" => Reply::ok("text/plain; charset=utf-8", "Prometheus Server is Ready.\n"),
        "/api/v1/targets" => Reply::json(&targets),
        "/api/v1/query" => {
            let promql = asked.param("query").unwrap_or_default();
            let labels = json!({ "job": "fastapi-backend", "instance": instance });
            if promql.starts_with("count by (job, instance)") {
                Reply::json(&vector(labels, "4"))
            } else if promql.starts_with("fastapi_requests_total{") {
                let mut metric = labels;
                metric["__name__"] = json!("fastapi_requests_total");
                Reply::json(&vector(metric, "3"))
            } else {
                Reply::json(&empty)
            }
        }
        _ => Reply::not_found(),
    })
    .await
}

#[tokio::test]
async fn a_prometheus_target_found_by_its_series_passes_saying_so() {
    let target = FakeServer::exposition(&contract_body()).await;
    let prometheus = prometheus_scraping_by_another_name().await;
    let mut ctx = target_context(&target.url());
    ctx.prometheus = Some(Prometheus::new(client(), prometheus.url()));
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Pass,
        &[
            "target http://backend:8000/metrics is up",
            "matched by its series, not its address",
        ],
    );
}

#[tokio::test]
async fn an_exact_prometheus_target_is_not_matched_by_series() {
    // obsctl verify configured Prometheus itself: only the target's own address counts.
    let target = FakeServer::exposition(&contract_body()).await;
    let prometheus = prometheus_scraping_by_another_name().await;
    let mut ctx = target_context(&target.url());
    ctx.prometheus = Some(Prometheus::new(client(), prometheus.url()));
    ctx.exact_prometheus_target = true;
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Fail,
        &[
            &format!("no Prometheus target scrapes {}/metrics", target.url()),
            "add a scrape job for the service",
        ],
    );
    assert_eq!(result(&report, "metrics-endpoint").status, Status::Pass);
}
