//! `accounting-loki` and `accounting-tempo` against fake servers answering the documented
//! bodies of a Loki metric query (`resultType: vector`,
//! <https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-at-a-single-point-in-time>)
//! and of Tempo's trace by id (200 with the trace, 404 when it has none,
//! <https://grafana.com/docs/tempo/latest/api_docs/#query-v2>): exact when every line and trace
//! is there, a finding naming what was lost otherwise.

use std::sync::{Arc, Mutex};

use obsctl::check::model::Status;
use obsctl::sources::loki::Loki;
use obsctl::sources::tempo::Tempo;
use serde_json::json;

use crate::accounting::{RUN_ID, SENT, run_report};
use crate::helpers::{Asked, FakeServer, Reply, client, context};

/// A Loki whose metric query answers `(method, endpoint, status_code, count)` samples, and
/// which records the queries it was asked.
async fn counting_loki(
    samples: &'static [(&str, &str, u16, u64)],
) -> (FakeServer, Arc<Mutex<Vec<String>>>) {
    let asked_queries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked_queries);
    let server = FakeServer::start(move |asked: &Asked| {
        if asked.path != "/loki/api/v1/query" {
            return Reply::not_found();
        }
        if let (Ok(mut seen), Some(query)) = (seen.lock(), asked.param("query")) {
            seen.push(query.to_owned());
        }
        let result: Vec<serde_json::Value> = samples
            .iter()
            .map(|(method, endpoint, status, count)| {
                json!({
                    "metric": { "method": method, "endpoint": endpoint, "status_code": status.to_string() },
                    "value": [1764063001.5, count.to_string()]
                })
            })
            .collect();
        Reply::json(
            &json!({ "status": "success", "data": { "resultType": "vector", "result": result } })
                .to_string(),
        )
    })
    .await;
    (server, asked_queries)
}

async fn loki_verdict(samples: &'static [(&str, &str, u16, u64)]) -> (Status, String, Vec<String>) {
    let (server, queries) = counting_loki(samples).await;
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.loki = Some(Loki::new(client(), server.url()));
    ctx.exclusive = true;
    let outcome = obsctl::check::accounting_stack::loki(&ctx).await;
    let queries = queries.lock().map(|q| q.clone()).unwrap_or_default();
    (outcome.status, format!("{outcome:#?}"), queries)
}

#[tokio::test]
async fn loki_counting_every_line_of_the_run_passes_and_a_lost_line_fails() {
    const ALL: &[(&str, &str, u16, u64)] = &[
        ("GET", "/api/users/1", 200, 3),
        ("GET", "/api/users/2", 200, 2),
        ("GET", "/api/users/999", 404, 2),
        ("POST", "/api/users", 201, 4),
    ];
    let (status, text, queries) = loki_verdict(ALL).await;
    assert_eq!(status, Status::Pass, "{text}");
    let query = queries.first().cloned().unwrap_or_default();
    assert!(
        query.contains("count_over_time({service=\"fastapi-backend\"}")
            && query.contains(&format!("|= \"{RUN_ID}\""))
            && query.contains("sum by (method, endpoint, status_code)"),
        "{query}"
    );

    const LOST: &[(&str, &str, u16, u64)] = &[
        ("GET", "/api/users/1", 200, 3),
        ("GET", "/api/users/2", 200, 1),
        ("GET", "/api/users/999", 404, 2),
        ("POST", "/api/users", 201, 4),
    ];
    let (status, text, _) = loki_verdict(LOST).await;
    assert_eq!(status, Status::Fail, "{text}");
    assert!(
        text.contains("GET /api/users/2 200: sent 2, seen 1"),
        "{text}"
    );
}

/// A trace with a SERVER span of the service, in Tempo's v2 shape.
fn trace() -> String {
    json!({ "trace": { "resourceSpans": [{
        "resource": { "attributes": [
            { "key": "service.name", "value": { "stringValue": "fastapi-backend" } } ] },
        "scopeSpans": [{ "scope": { "name": "backend" }, "spans": [{
            "traceId": "AAAAAAAAAKsAAAAAAAAAAA==", "spanId": "APBnqgupArc=",
            "name": "GET /api/users/{user_id}", "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": "1764063001000000000", "endTimeUnixNano": "1764063001005000000",
            "status": {} }] }] }] } })
    .to_string()
}

/// A Tempo holding every trace of the fixture run except request `lost`'s.
async fn tempo_without(lost: Option<u64>) -> FakeServer {
    let lost = lost.map(|seq| format!("/api/v2/traces/{RUN_ID}{seq:016x}"));
    FakeServer::start(move |asked: &Asked| {
        let ours = asked.path.starts_with(&format!("/api/v2/traces/{RUN_ID}"));
        if ours && Some(&asked.path) != lost.as_ref() {
            Reply::json(&trace())
        } else {
            Reply::with(404, "text/plain; charset=utf-8", "trace not found\n")
        }
    })
    .await
}

async fn tempo_verdict(lost: Option<u64>) -> (Status, String) {
    let server = tempo_without(lost).await;
    let mut ctx = context();
    ctx.run = Some(run_report(SENT));
    ctx.tempo = Some(Tempo::new(client(), server.url()));
    let outcome = obsctl::check::accounting_stack::tempo(&ctx).await;
    (outcome.status, format!("{outcome:#?}"))
}

#[tokio::test]
async fn tempo_holding_every_trace_of_the_run_passes_and_a_lost_trace_is_named() {
    let (status, text) = tempo_verdict(None).await;
    assert_eq!(status, Status::Pass, "{text}");
    assert!(text.contains("11 of 11 traces found in Tempo"), "{text}");
    assert!(
        text.contains("all 11 trace ids of the run fetched by id"),
        "{text}"
    );

    let (status, text) = tempo_verdict(Some(5)).await;
    assert_eq!(status, Status::Fail, "{text}");
    assert!(
        text.contains("1 of 11 traces of the run are not in Tempo"),
        "{text}"
    );
    assert!(
        text.contains(&format!("trace {RUN_ID}0000000000000005")),
        "{text}"
    );
}
