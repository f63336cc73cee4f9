//! The Loki and Tempo checks against fake servers answering with the documented bodies of
//! their HTTP APIs (<https://grafana.com/docs/loki/latest/reference/loki-http-api/>,
//! <https://grafana.com/docs/tempo/latest/api_docs/>): an empty Loki (the spec's compose file
//! ships no logs), logs without the `service` label, Tempo with and without the service's traces.

use obsctl::check::context::CheckContext;
use obsctl::check::model::Status;
use obsctl::sources::loki::Loki;
use obsctl::sources::tempo::Tempo;
use serde_json::json;

use crate::helpers::{
    Asked, FakeServer, Reply, assert_check, client, context, refused_url, run_checks,
};

/// An answer of `query_range` with `lines` in one stream labelled `service="fastapi-backend"`
/// (<https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-within-a-range-of-time>).
fn streams(lines: &[&str]) -> String {
    let result: Vec<serde_json::Value> = if lines.is_empty() {
        Vec::new()
    } else {
        let values: Vec<serde_json::Value> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| json!([format!("17640630012345{i:05}"), line]))
            .collect();
        vec![json!({ "stream": { "service": "fastapi-backend" }, "values": values })]
    };
    json!({
        "status": "success",
        "data": { "resultType": "streams", "result": result, "stats": {} }
    })
    .to_string()
}

/// The documented answer of the label endpoints: `data` is a list of names
/// (<https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-labels>).
fn names(values: &[&str]) -> String {
    json!({ "status": "success", "data": values }).to_string()
}

/// A fake Loki: ready; `query_range` answers `lines`; `labels` lists `labels`; the values of
/// `service` are `services`.
async fn fake_loki(
    lines: &'static [&'static str],
    labels: &'static [&'static str],
    services: &'static [&'static str],
) -> FakeServer {
    FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        "/ready" => Reply::ok("text/plain; charset=utf-8", "ready\n"),
        "/loki/api/v1/query_range" => Reply::json(&streams(lines)),
        "/loki/api/v1/labels" => Reply::json(&names(labels)),
        "/loki/api/v1/label/service/values" => Reply::json(&names(services)),
        _ => Reply::not_found(),
    })
    .await
}

fn with_loki(url: &str) -> CheckContext {
    let mut ctx = context();
    ctx.loki = Some(Loki::new(client(), url));
    ctx
}

fn with_tempo(url: &str) -> CheckContext {
    let mut ctx = context();
    ctx.tempo = Some(Tempo::new(client(), url));
    ctx
}

const LOG_LINE: &str = r#"{"timestamp":"2026-11-25T09:30:00.123Z","level":"INFO","service":"fastapi-backend","message":"Request completed"}"#;

#[tokio::test]
async fn loki_with_the_services_lines_passes() {
    let loki = fake_loki(
        &[LOG_LINE, "plain text"],
        &["service"],
        &["fastapi-backend"],
    )
    .await;
    let report = run_checks(&with_loki(&loki.url())).await;
    assert_check(
        &report,
        "logs-loki",
        Status::Pass,
        &[
            "2 lines for {service=\"fastapi-backend\"}",
            "1 of them JSON",
        ],
    );
}

#[tokio::test]
async fn an_empty_loki_fails_pointing_at_the_missing_log_shipper() {
    let loki = fake_loki(&[], &[], &[]).await;
    let report = run_checks(&with_loki(&loki.url())).await;
    assert_check(
        &report,
        "logs-loki",
        Status::Fail,
        &["no logs at all", "ship the service's stdout"],
    );
}

#[tokio::test]
async fn loki_logs_without_a_service_label_fail_listing_the_labels() {
    let loki = fake_loki(&[], &["filename", "job"], &[]).await;
    let report = run_checks(&with_loki(&loki.url())).await;
    assert_check(
        &report,
        "logs-loki",
        Status::Fail,
        &["no `service` label", "filename, job"],
    );
}

#[tokio::test]
async fn loki_logs_under_another_service_name_fail_naming_it() {
    let loki = fake_loki(&[], &["service"], &["backend"]).await;
    let report = run_checks(&with_loki(&loki.url())).await;
    assert_check(
        &report,
        "logs-loki",
        Status::Fail,
        &["no lines for {service=\"fastapi-backend\"}", "backend"],
    );
}

#[tokio::test]
async fn an_unreachable_loki_is_an_error() {
    let report = run_checks(&with_loki(&refused_url().await)).await;
    assert_check(&report, "logs-loki", Status::Error, &["not ready"]);
}

/// The documented tags-search answer with one trace of the service
/// (<https://grafana.com/docs/tempo/latest/api_docs/#search>).
const SEARCH_ONE: &str = r#"{
  "traces": [
    {
      "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
      "rootServiceName": "fastapi-backend",
      "rootTraceName": "GET /api/users/{user_id}",
      "startTimeUnixNano": "1764063001000000000",
      "durationMs": 5
    }
  ],
  "metrics": { "inspectedTraces": 1, "inspectedBytes": "1024", "totalBlocks": 1 }
}"#;

/// An empty search answer.
const SEARCH_NONE: &str = r#"{"traces": [], "metrics": {"totalBlocks": 1}}"#;

/// The trace by id, v2 shape: OpenTelemetry protobuf JSON, ids in base64
/// (<https://grafana.com/docs/tempo/latest/api_docs/#query-v2>).
pub(crate) const TRACE_V2: &str = r#"{
  "trace": {
    "resourceSpans": [
      {
        "resource": {
          "attributes": [
            {"key": "service.name", "value": {"stringValue": "fastapi-backend"}}
          ]
        },
        "scopeSpans": [
          {
            "scope": {"name": "backend"},
            "spans": [
              {
                "traceId": "S/kvNXezTaajzpKdDg5HNg==",
                "spanId": "APBnqgupArc=",
                "name": "GET /api/users/{user_id}",
                "kind": "SPAN_KIND_SERVER",
                "startTimeUnixNano": "1764063001000000000",
                "endTimeUnixNano": "1764063001005000000",
                "attributes": [
                  {"key": "http.route", "value": {"stringValue": "/api/users/{user_id}"}}
                ],
                "status": {}
              }
            ]
          }
        ]
      }
    ]
  }
}"#;

async fn fake_tempo(search: &'static str) -> FakeServer {
    FakeServer::start(move |asked: &Asked| match asked.path.as_str() {
        "/ready" => Reply::ok("text/plain; charset=utf-8", "ready\n"),
        "/api/search" => Reply::json(search),
        "/api/v2/traces/4bf92f3577b34da6a3ce929d0e0e4736" => Reply::json(TRACE_V2),
        _ => Reply::not_found(),
    })
    .await
}

#[tokio::test]
async fn tempo_with_the_services_server_span_passes() {
    let tempo = fake_tempo(SEARCH_ONE).await;
    let report = run_checks(&with_tempo(&tempo.url())).await;
    for id in ["traces-tempo", "traces-otlp"] {
        assert_check(
            &report,
            id,
            Status::Pass,
            &["1 of kind SERVER", "4bf92f3577b34da6a3ce929d0e0e4736"],
        );
    }
}

#[tokio::test]
async fn tempo_without_the_services_traces_fails() {
    let tempo = fake_tempo(SEARCH_NONE).await;
    let report = run_checks(&with_tempo(&tempo.url())).await;
    assert_check(
        &report,
        "traces-tempo",
        Status::Fail,
        &["no trace of service.name=\"fastapi-backend\""],
    );
}

#[tokio::test]
async fn a_tempo_that_is_not_ready_is_an_error() {
    // Tempo answers /ready 503 with this text while its ring is not ready.
    let tempo = FakeServer::start(|_| {
        Reply::with(503, "text/plain; charset=utf-8", "Ingester not ready\n")
    })
    .await;
    let report = run_checks(&with_tempo(&tempo.url())).await;
    assert_check(&report, "traces-tempo", Status::Error, &["not ready"]);
}
