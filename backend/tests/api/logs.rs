//! stdout: one JSON object per line, the contract's keys and types, one line per request.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Options, receiver, spawn_app, spawn_app_with};

fn assert_contract_keys(line: &Value) {
    let ts = line["timestamp"].as_str().expect("timestamp is a string");
    assert!(
        ts.ends_with('Z') && ts.len() == 24,
        "RFC 3339 UTC with milliseconds: {ts}"
    );
    OffsetDateTime::parse(ts, &Rfc3339).expect("timestamp parses as RFC 3339");
    let level = line["level"].as_str().expect("level is a string");
    assert!(
        ["DEBUG", "INFO", "WARNING", "ERROR"].contains(&level),
        "{level}"
    );
    assert_eq!(line["service"], "fastapi-backend");
    assert!(line["message"].is_string());
}

fn is_hex(value: &Value, len: usize) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[tokio::test]
async fn every_stdout_line_is_a_json_object_with_the_contract_keys() {
    let app = spawn_app().await;
    app.get("/api/users/1").await;
    app.get("/api/users/x").await;
    app.post_json("/api/users", "{").await;
    app.wait_for_request_lines(3).await;
    let stdout = app.stdout();
    assert!(stdout.len() >= 4, "startup and request lines: {stdout:?}");
    for raw in &stdout {
        let line: Value =
            serde_json::from_str(raw).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"));
        assert!(line.is_object(), "{raw}");
        assert_contract_keys(&line);
    }
    assert!(
        app.stderr().is_empty(),
        "nothing on stderr: {:?}",
        app.stderr()
    );
}

#[tokio::test]
async fn one_request_line_per_request_with_typed_fields_and_level_by_status() {
    let app = spawn_app().await;
    let requests = [
        ("/api/users/2", 200, "INFO"),
        ("/api/users/999999", 404, "WARNING"),
        ("/nowhere", 404, "WARNING"),
        ("/health", 200, "INFO"),
    ];
    for (path, _, _) in requests {
        app.get(path).await;
    }
    let lines = app.wait_for_request_lines(requests.len()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.request_lines().len(),
        requests.len(),
        "exactly one line per request"
    );
    for ((path, status, level), line) in requests.iter().zip(&lines) {
        assert_contract_keys(line);
        assert_eq!(line["endpoint"], *path);
        assert_eq!(line["method"], "GET");
        assert_eq!(line["status_code"].as_u64(), Some(*status), "{line}");
        assert!(line["duration_ms"].is_number(), "{line}");
        assert_eq!(line["level"], *level, "{line}");
        assert!(is_hex(&line["trace_id"], 32), "{line}");
        assert!(is_hex(&line["span_id"], 16), "{line}");
    }
}

#[tokio::test]
async fn server_errors_log_at_error_level() {
    let app = spawn_app_with(Options::default().arg("--fault-error-rate").arg("1")).await;
    let response = app.get("/api/users/1").await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "injected fault");
    let lines = app.wait_for_request_lines(1).await;
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["status_code"], 500);
}

#[tokio::test]
async fn the_request_line_carries_the_trace_and_span_ids_of_the_request_span() {
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    app.get("/api/users/3").await;
    let line = app.wait_for_request_lines(1).await.remove(0);
    let trace_id = line["trace_id"].as_str().unwrap().to_owned();
    let span_id = line["span_id"].as_str().unwrap().to_owned();
    let spans = otlp
        .wait_for_spans(
            |s| s.iter().any(|s| s.span_id() == span_id),
            Duration::from_secs(10),
        )
        .await;
    let server = spans
        .iter()
        .find(|s| s.span_id() == span_id)
        .expect("the logged span id was exported");
    assert_eq!(server.trace_id(), trace_id);
    assert_eq!(server.name(), "GET /api/users/{user_id}");
}

#[tokio::test]
async fn log_level_off_prints_nothing_and_warning_hides_successes() {
    let app = spawn_app_with(Options::default().env("LOG_LEVEL", "warning")).await;
    app.get("/health").await;
    app.get("/missing").await;
    let lines = app.wait_for_request_lines(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status_code"], 404);
}
