//! The metrics checks against targets whose `/metrics` has exactly one defect each, and against
//! one that honours the whole contract.

use std::time::{Duration, Instant};

use obsctl::check::model::Status;
use obsctl::sources::http::{HttpClient, HttpOptions};

use crate::exposition::{
    CONTRACT_BUCKETS, PYTHON_DEFAULT_BUCKETS, TRAFFIC, contract_body, duration_histogram,
    duration_summary, family, process_metrics, python_client_body, requests_counter,
};
use crate::helpers::{
    FakeServer, Reply, SilentServer, assert_check, client_with_timeout, refused_url, result,
    run_checks, target_context, target_context_with,
};

/// The checks that read only the target's `/metrics`.
const METRICS_CHECKS: [&str; 5] = [
    "metrics-endpoint",
    "requests-counter",
    "duration-histogram",
    "metrics-cardinality",
    "process-metrics",
];

/// A contract body with the request counter replaced by `counter`.
fn body_with_counter(counter: &str) -> String {
    [
        counter.to_owned(),
        duration_histogram(&CONTRACT_BUCKETS, TRAFFIC),
        process_metrics(),
    ]
    .concat()
}

/// A contract body with the duration family replaced by `duration`.
fn body_with_duration(duration: &str) -> String {
    [
        requests_counter(TRAFFIC),
        duration.to_owned(),
        process_metrics(),
    ]
    .concat()
}

#[tokio::test]
async fn a_target_honouring_the_contract_passes_every_metrics_check() {
    let target = FakeServer::exposition(&contract_body()).await;
    let report = run_checks(&target_context(&target.url())).await;
    for id in METRICS_CHECKS {
        assert_check(&report, id, Status::Pass, &[]);
    }
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Pass,
        &["content type text/plain; version=0.0.4; charset=utf-8"],
    );
    assert_check(
        &report,
        "duration-histogram",
        Status::Pass,
        &["10 buckets, cumulative and consistent: 5 series"],
    );
}

#[tokio::test]
async fn a_json_encoded_metrics_body_fails_as_a_json_string() {
    // FastAPI's `return generate_latest()` (the spec's sample): the exposition text serialised
    // as one JSON string, served as application/json.
    let body = serde_json::to_string(&contract_body()).expect("a string encodes");
    assert!(body.starts_with("\"# HELP fastapi_requests_total"));
    let target = FakeServer::metrics(Reply::json(&body)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &[
            "JSON string",
            "body starts: \"# HELP fastapi_requests_total",
        ],
    );
    for id in METRICS_CHECKS {
        assert_ne!(result(&report, id).status, Status::Pass, "{id}");
    }
}

#[tokio::test]
async fn prometheus_text_served_as_application_json_fails_on_its_content_type() {
    let target = FakeServer::metrics(Reply::ok("application/json", contract_body())).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &["content type application/json"],
    );
}

#[tokio::test]
async fn prometheus_text_served_as_html_fails_on_its_content_type() {
    let target = FakeServer::metrics(Reply::ok("text/html; charset=utf-8", contract_body())).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &["content type text/html; charset=utf-8"],
    );
}

#[tokio::test]
async fn a_counter_without_status_code_fails_naming_the_missing_label() {
    let counter = family(
        "fastapi_requests_total",
        "counter",
        &[
            (&[("method", "GET"), ("path", "/api/users/{user_id}")], 3.0),
            (&[("method", "POST"), ("path", "/api/users")], 1.0),
        ],
    );
    let target = FakeServer::exposition(&body_with_counter(&counter)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "requests-counter",
        Status::Fail,
        &["missing: status_code"],
    );
}

#[tokio::test]
async fn a_counter_with_an_extra_label_fails_naming_the_unexpected_label() {
    let counter = family(
        "fastapi_requests_total",
        "counter",
        &[(
            &[
                ("handler", "get_user"),
                ("method", "GET"),
                ("path", "/api/users/{user_id}"),
                ("status_code", "200"),
            ],
            3.0,
        )],
    );
    let target = FakeServer::exposition(&body_with_counter(&counter)).await;
    let report = run_checks(&target_context(&target.url())).await;
    let failed = assert_check(
        &report,
        "requests-counter",
        Status::Fail,
        &["unexpected: handler"],
    );
    assert!(!failed.detail.contains("missing"), "{failed:#?}");
}

#[tokio::test]
async fn a_counter_series_missing_status_code_fails_even_beside_complete_series() {
    // Labels are per series: one series without status_code cannot be summed by status, however
    // many complete series sit beside it.
    let counter = family(
        "fastapi_requests_total",
        "counter",
        &[
            (
                &[
                    ("method", "GET"),
                    ("path", "/api/users/{user_id}"),
                    ("status_code", "200"),
                ],
                3.0,
            ),
            (&[("method", "GET"), ("path", "/health")], 2.0),
        ],
    );
    let target = FakeServer::exposition(&body_with_counter(&counter)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(&report, "requests-counter", Status::Fail, &["status_code"]);
}

#[tokio::test]
async fn a_missing_request_counter_fails_and_names_similar_families() {
    let renamed = family(
        "http_requests_total",
        "counter",
        &[(
            &[
                ("method", "GET"),
                ("path", "/api/users/{user_id}"),
                ("status_code", "200"),
            ],
            3.0,
        )],
    );
    let target = FakeServer::exposition(&body_with_counter(&renamed)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "requests-counter",
        Status::Fail,
        &["no fastapi_requests_total", "http_requests_total"],
    );
}

#[tokio::test]
async fn a_request_counter_declared_as_a_gauge_fails() {
    let gauge = requests_counter(TRAFFIC).replace(
        "# TYPE fastapi_requests_total counter",
        "# TYPE fastapi_requests_total gauge",
    );
    let target = FakeServer::exposition(&body_with_counter(&gauge)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "requests-counter",
        Status::Fail,
        &["gauge, not a counter"],
    );
}

#[tokio::test]
async fn default_python_buckets_fail_with_both_bucket_lists() {
    let histogram = duration_histogram(&PYTHON_DEFAULT_BUCKETS, TRAFFIC);
    let target = FakeServer::exposition(&body_with_duration(&histogram)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &[
            "0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10",
            "0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10",
        ],
    );
}

#[tokio::test]
async fn a_duration_summary_fails_as_a_summary() {
    let target = FakeServer::exposition(&body_with_duration(&duration_summary(TRAFFIC))).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "duration-histogram",
        Status::Fail,
        &["summary, not a histogram"],
    );
}

#[tokio::test]
async fn raw_url_path_labels_fail_cardinality() {
    let raw: &[crate::exposition::Series] = &[
        ("GET", "/api/users/1", 200, 2),
        ("GET", "/api/users/2", 200, 1),
        ("GET", "/health", 200, 1),
    ];
    let body = [
        requests_counter(raw),
        duration_histogram(&CONTRACT_BUCKETS, raw),
        process_metrics(),
    ]
    .concat();
    let target = FakeServer::exposition(&body).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-cardinality",
        Status::Warn,
        &["raw URLs", "2 of 3", "/api/users/1", "/api/users/2"],
    );
    // The labels themselves are the contract's: only the values are wrong.
    assert_check(&report, "requests-counter", Status::Pass, &[]);
}

#[tokio::test]
async fn missing_process_metrics_fail_naming_both_families() {
    let body = [
        requests_counter(TRAFFIC),
        duration_histogram(&CONTRACT_BUCKETS, TRAFFIC),
    ]
    .concat();
    let target = FakeServer::exposition(&body).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "process-metrics",
        Status::Fail,
        &["process_cpu_seconds_total", "process_resident_memory_bytes"],
    );
}

#[tokio::test]
async fn an_html_page_on_metrics_fails_with_the_parse_error() {
    let page = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\
                <body><h1>It works!</h1></body></html>\n";
    let target = FakeServer::metrics(Reply::ok("text/html", page)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &["not valid Prometheus text", "HTML page"],
    );
}

#[tokio::test]
async fn an_invalid_exposition_line_fails_naming_the_line() {
    let body = "# HELP fastapi_requests_total Total HTTP requests\n\
                # TYPE fastapi_requests_total counter\n\
                fastapi_requests_total{method=\"GET\" 3\n";
    let target = FakeServer::exposition(body).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &["not valid Prometheus text", "line 3"],
    );
}

#[tokio::test]
async fn a_missing_metrics_route_is_never_a_pass() {
    let target = FakeServer::start(|_| Reply::not_found()).await;
    let report = run_checks(&target_context(&target.url())).await;
    for id in METRICS_CHECKS {
        assert_ne!(result(&report, id).status, Status::Pass, "{id}");
    }
    assert!(
        result(&report, "metrics-endpoint").detail.contains("404"),
        "{:#?}",
        result(&report, "metrics-endpoint")
    );
}

#[tokio::test]
async fn an_unreachable_target_is_an_error_within_the_deadline() {
    let started = Instant::now();
    let report = run_checks(&target_context(&refused_url().await)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // One cause, one error: the checks built on the scrape are not judged.
    for id in METRICS_CHECKS
        .iter()
        .filter(|id| **id != "metrics-endpoint")
    {
        assert_check(
            &report,
            id,
            Status::Skip,
            &["not judged: /metrics could not be read"],
        );
    }
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Error,
        &["could not scrape /metrics", "connection refused"],
    );
}

#[tokio::test]
async fn a_target_that_never_answers_is_an_error_within_the_http_timeout() {
    let silent = SilentServer::start().await;
    let timeout = Duration::from_millis(500);
    let ctx = target_context_with(&silent.url(), client_with_timeout(timeout));
    let started = Instant::now();
    let report = run_checks(&ctx).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout,
        "answered before the timeout: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    // One cause, one error: the checks built on the scrape are not judged.
    for id in METRICS_CHECKS
        .iter()
        .filter(|id| **id != "metrics-endpoint")
    {
        assert_check(
            &report,
            id,
            Status::Skip,
            &["not judged: /metrics could not be read"],
        );
    }
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Error,
        &["no answer", "500ms"],
    );
}

#[tokio::test]
async fn prometheus_text_without_a_version_parameter_is_accepted() {
    // Content-Type `text/plain` alone is the text format to Prometheus; only another version
    // or media type is wrong.
    let target = FakeServer::metrics(Reply::ok("text/plain", contract_body())).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(&report, "metrics-endpoint", Status::Pass, &[]);
}

#[tokio::test]
async fn the_text_format_version_1_0_0_of_prometheus_client_0_22_is_accepted() {
    // Found by verifying a real FastAPI app built from the spec: prometheus_client 0.22+
    // answers CONTENT_TYPE_LATEST = `text/plain; version=1.0.0; charset=utf-8`, which
    // Prometheus scrapes like 0.0.4.
    let target = FakeServer::metrics(Reply::ok(
        "text/plain; version=1.0.0; charset=utf-8",
        contract_body(),
    ))
    .await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(&report, "metrics-endpoint", Status::Pass, &[]);
}

#[tokio::test]
async fn a_python_prometheus_client_body_that_follows_the_contract_passes() {
    // A FastAPI service built from the spec, with its /metrics bug fixed: `_created` gauges
    // and the python_* collectors beside the contract's families must not disturb any check.
    let target = FakeServer::metrics(Reply::ok(
        "text/plain; version=0.0.4; charset=utf-8",
        python_client_body(),
    ))
    .await;
    let report = run_checks(&target_context(&target.url())).await;
    for id in METRICS_CHECKS {
        assert_check(&report, id, Status::Pass, &[]);
    }
}

#[tokio::test]
async fn a_metrics_body_over_the_size_limit_is_an_error_not_a_hang() {
    let client = HttpClient::new(HttpOptions {
        max_body: 1024,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
    })
    .expect("the HTTP client builds");
    let body = contract_body();
    assert!(body.len() > 1024);
    let target = FakeServer::exposition(&body).await;
    let report = run_checks(&target_context_with(&target.url(), client)).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Error,
        &["larger than 1024 bytes"],
    );
}

#[tokio::test]
async fn a_metrics_body_that_is_not_utf8_fails() {
    let mut body = contract_body().into_bytes();
    body.splice(0..0, [0xff, 0xfe]);
    let target = FakeServer::metrics(Reply::ok("text/plain; version=0.0.4", body)).await;
    let report = run_checks(&target_context(&target.url())).await;
    assert_check(
        &report,
        "metrics-endpoint",
        Status::Fail,
        &["not valid Prometheus text", "not UTF-8"],
    );
}
