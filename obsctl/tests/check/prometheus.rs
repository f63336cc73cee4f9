//! The Prometheus checks against a fake Prometheus that answers with the documented bodies of
//! its HTTP API (<https://prometheus.io/docs/prometheus/latest/querying/api/>): a target that is
//! down with its lastError, a Prometheus that is unreachable or not ready, and a healthy one.

use obsctl::check::context::CheckContext;
use obsctl::check::model::Status;
use obsctl::sources::prometheus::Prometheus;
use serde_json::{Value, json};

use crate::exposition::contract_body;
use crate::helpers::{
    Asked, FakeServer, Reply, assert_check, client, refused_url, result, run_checks, target_context,
};

/// What Prometheus 3 reports for a target whose /metrics is served as application/json.
const LAST_ERROR: &str = "received unsupported Content-Type \"application/json\" and no \
                          fallback_scrape_protocol specified for target";

/// One active target as `/api/v1/targets` lists it
/// (<https://prometheus.io/docs/prometheus/latest/querying/api/#targets>).
fn active_target(scrape_url: &str, instance: &str, health: &str, last_error: &str) -> Value {
    json!({
        "discoveredLabels": {
            "__address__": instance,
            "__metrics_path__": "/metrics",
            "__scheme__": "http",
            "job": "fastapi-backend"
        },
        "labels": { "instance": instance, "job": "fastapi-backend" },
        "scrapePool": "fastapi-backend",
        "scrapeUrl": scrape_url,
        "globalUrl": scrape_url,
        "lastError": last_error,
        "lastScrape": "2026-11-25T09:30:01.123456789Z",
        "lastScrapeDuration": 0.002164,
        "health": health,
        "scrapeInterval": "1s",
        "scrapeTimeout": "1s"
    })
}

/// The `/api/v1/targets` answer listing `active`.
fn targets_body(active: Vec<Value>) -> String {
    json!({
        "status": "success",
        "data": { "activeTargets": active, "droppedTargets": [] }
    })
    .to_string()
}

/// An instant-vector answer of `/api/v1/query` with one sample of `labels` and `value`
/// (<https://prometheus.io/docs/prometheus/latest/querying/api/#instant-vectors>).
fn vector(samples: &[(Value, &str)]) -> String {
    let result: Vec<Value> = samples
        .iter()
        .map(|(metric, value)| json!({ "metric": metric, "value": [1_764_063_001.5, value] }))
        .collect();
    json!({
        "status": "success",
        "data": { "resultType": "vector", "result": result }
    })
    .to_string()
}

/// A fake Prometheus: ready, with `targets` as its active targets; `/api/v1/query` answers
/// `query(promql)`.
async fn fake_prometheus(
    targets: String,
    query: impl Fn(&str) -> String + Send + Sync + 'static,
) -> FakeServer {
    FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        // <https://prometheus.io/docs/prometheus/latest/management_api/#readiness-check>
        "/-/ready" => Reply::ok("text/plain; charset=utf-8", "Prometheus Server is Ready.\n"),
        "/api/v1/targets" => Reply::json(&targets),
        "/api/v1/query" => Reply::json(&query(asked.param("query").unwrap_or_default())),
        _ => Reply::not_found(),
    })
    .await
}

fn with_prometheus(target: &str, prometheus: &str) -> CheckContext {
    let mut ctx = target_context(target);
    ctx.prometheus = Some(Prometheus::new(client(), prometheus));
    ctx
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn a_down_target_fails_quoting_its_last_error() {
    // The spec's JSON-string /metrics, which Prometheus refuses to scrape.
    let body = serde_json::to_string(&contract_body()).expect("a string encodes");
    let target = FakeServer::metrics(Reply::json(&body)).await;
    let scrape_url = format!("{}/metrics", target.url());
    let targets = targets_body(vec![active_target(
        &scrape_url,
        &host_port(&target.url()),
        "down",
        LAST_ERROR,
    )]);
    let prometheus = fake_prometheus(targets, |_| vector(&[])).await;
    let report = run_checks(&with_prometheus(&target.url(), &prometheus.url())).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Fail,
        &["is down", LAST_ERROR, &scrape_url],
    );
    assert_check(
        &report,
        "process-metrics-prometheus",
        Status::Skip,
        &["not judged: no healthy target", "prometheus-scrape"],
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_an_error() {
    let target = FakeServer::exposition(&contract_body()).await;
    let report = run_checks(&with_prometheus(&target.url(), &refused_url().await)).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Error,
        &["not ready", "connection refused"],
    );
    assert_check(
        &report,
        "process-metrics-prometheus",
        Status::Error,
        &["cannot list Prometheus targets"],
    );
}

#[tokio::test]
async fn a_prometheus_that_is_not_ready_is_an_error() {
    // While it replays its WAL, /-/ready answers 503 with this text.
    let prometheus = FakeServer::start(|_| {
        Reply::with(503, "text/plain; charset=utf-8", "Service Unavailable\n")
    })
    .await;
    let target = FakeServer::exposition(&contract_body()).await;
    let report = run_checks(&with_prometheus(&target.url(), &prometheus.url())).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Error,
        &["not ready", "503"],
    );
}

#[tokio::test]
async fn no_target_scraping_the_service_fails() {
    let target = FakeServer::exposition(&contract_body()).await;
    let elsewhere = active_target("http://127.0.0.1:9090/metrics", "127.0.0.1:9090", "up", "");
    let prometheus = fake_prometheus(targets_body(vec![elsewhere]), |_| vector(&[])).await;
    let report = run_checks(&with_prometheus(&target.url(), &prometheus.url())).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Fail,
        &[
            "no Prometheus target scrapes",
            &format!("{}/metrics", target.url()),
        ],
    );
}

#[tokio::test]
async fn an_up_target_with_queryable_data_passes_both_prometheus_checks() {
    // Prometheus configured with `localhost:PORT`, obsctl given 127.0.0.1: the same target.
    let target = FakeServer::exposition(&contract_body()).await;
    let instance = host_port(&target.url()).replace("127.0.0.1", "localhost");
    let targets = targets_body(vec![active_target(
        &format!("http://{instance}/metrics"),
        &instance,
        "up",
        "",
    )]);
    let labels = json!({ "job": "fastapi-backend", "instance": instance });
    let prometheus = fake_prometheus(targets, move |promql| {
        let metric = |name: &str| {
            let mut m = labels.clone();
            m["__name__"] = json!(name);
            m
        };
        let name = promql.split('{').next().unwrap_or_default();
        match name {
            "fastapi_requests_total" => vector(&[(metric(name), "3")]),
            "process_cpu_seconds_total" => vector(&[(metric(name), "0.42")]),
            "process_resident_memory_bytes" => vector(&[(metric(name), "24576000")]),
            _ => vector(&[]),
        }
    })
    .await;
    let report = run_checks(&with_prometheus(&target.url(), &prometheus.url())).await;
    assert_check(
        &report,
        "prometheus-scrape",
        Status::Pass,
        &["is up", "returns 1 series"],
    );
    let process = assert_check(
        &report,
        "process-metrics-prometheus",
        Status::Pass,
        &["process_cpu_seconds_total", "process_resident_memory_bytes"],
    );
    assert!(
        process.evidence.join(" ").contains("= 0.42"),
        "{process:#?}"
    );
    assert_eq!(result(&report, "metrics-endpoint").status, Status::Pass);
}

#[tokio::test]
async fn a_url_that_serves_html_instead_of_the_prometheus_api_is_an_error() {
    // --prometheus pointed at Grafana: every path answers its login page with 200.
    let grafana = FakeServer::start(|_| {
        Reply::ok(
            "text/html; charset=UTF-8",
            "<!DOCTYPE html><html lang=\"en\"><head><title>Grafana</title></head></html>",
        )
    })
    .await;
    let target = FakeServer::exposition(&contract_body()).await;
    let report = run_checks(&with_prometheus(&target.url(), &grafana.url())).await;
    for id in ["prometheus-scrape", "process-metrics-prometheus"] {
        assert_check(&report, id, Status::Error, &["HTML page"]);
    }
}
