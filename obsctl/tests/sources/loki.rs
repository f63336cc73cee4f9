//! The Loki adapter against the documented answers of
//! https://grafana.com/docs/loki/latest/reference/loki-http-api/ and against broken servers.

use std::time::{Duration, UNIX_EPOCH};

use obsctl::sources::http::SourceError;
use obsctl::sources::loki::{Direction, LogQuery, Loki, LokiError};
use obsctl::sources::window::TimeWindow;

use crate::helpers::{FakeServer, Reply, bounded, client, client_with, refused_url};

// https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-within-a-range-of-time
// (the documented `{job="varlogs"}` example, `stats` trimmed, plus a JSON line from our backend).
const QUERY_RANGE_STREAMS: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "streams",
    "result": [
      {
        "stream": {
          "filename": "/var/log/myproject.log",
          "job": "varlogs",
          "level": "info"
        },
        "values": [
          [
            "1569266497240578000",
            "foo"
          ],
          [
            "1569266492548155000",
            "bar"
          ]
        ]
      },
      {
        "stream": {"service": "fastapi-backend"},
        "values": [
          ["1569266497240579000", "{\"level\":\"INFO\",\"message\":\"Request completed\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}", {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}]
        ]
      }
    ],
    "stats": {}
  }
}"#;

// https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-within-a-range-of-time
// (the documented metric-query example: a matrix, which a log query must not return).
const QUERY_RANGE_MATRIX: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "matrix",
    "result": [
      {"metric": {"level": "info"}, "values": [[1588889221, "137.95"], [1588889221, "467.115"]]}
    ],
    "stats": {}
  }
}"#;

// https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-labels
const LABELS: &str = r#"{
  "status": "success",
  "data": [
    "foo",
    "bar",
    "baz"
  ]
}"#;

// https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-label-values
const LABEL_VALUES: &str = r#"{
  "status": "success",
  "data": [
    "cat",
    "dog",
    "axolotl"
  ]
}"#;

// What Loki sends for a LogQL syntax error: plain text with HTTP 400.
const PARSE_ERROR: &str = "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER\n";

fn window() -> TimeWindow {
    TimeWindow::new(
        UNIX_EPOCH + Duration::from_secs(1_569_266_000),
        UNIX_EPOCH + Duration::from_secs(1_569_267_000),
    )
}

fn query(q: &str) -> LogQuery {
    LogQuery {
        query: q.to_owned(),
        window: window(),
        limit: 500,
        direction: Direction::Forward,
    }
}

async fn fake_loki() -> FakeServer {
    FakeServer::start(|seen| match seen.path.as_str() {
        // https://grafana.com/docs/loki/latest/reference/loki-http-api/#readiness-probe
        "/ready" => Reply::with(200, "text/plain; charset=utf-8", "ready\n"),
        "/loki/api/v1/labels" => Reply::json(LABELS),
        "/loki/api/v1/label/foo/values" => Reply::json(LABEL_VALUES),
        "/loki/api/v1/label/service/values" => Reply::json(r#"{"status":"success"}"#),
        "/loki/api/v1/query_range" => match seen.query.get("query").map(String::as_str) {
            Some("sum(rate({job=\"varlogs\"}[10m])) by (level)") => Reply::json(QUERY_RANGE_MATRIX),
            Some(q) if q.starts_with('{') => Reply::json(QUERY_RANGE_STREAMS),
            _ => Reply::with(400, "text/plain; charset=utf-8", PARSE_ERROR),
        },
        _ => Reply::with(404, "text/plain", "404 page not found\n"),
    })
    .await
}

#[tokio::test]
async fn streams_come_back_with_labels_timestamps_and_lines() {
    bounded(async {
        let server = fake_loki().await;
        let loki = Loki::new(client(), server.url());
        loki.ready().await.expect("ready");
        let answer = loki
            .query_range(&query("{job=\"varlogs\"}"))
            .await
            .expect("streams");
        assert_eq!(answer.streams.len(), 2);
        assert_eq!(answer.entry_count(), 3);
        let first = &answer.streams[0];
        assert_eq!(first.labels["job"], "varlogs");
        assert_eq!(first.entries[0].timestamp_ns, 1_569_266_497_240_578_000);
        assert_eq!(first.entries[0].line, "foo");
        let (labels, entry) = answer.entries().last().expect("an entry");
        assert_eq!(labels["service"], "fastapi-backend");
        assert!(
            entry.line.contains("Request completed"),
            "structured metadata ignored"
        );

        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path == "/loki/api/v1/query_range")
            .expect("asked");
        assert_eq!(asked.query["start"], "1569266000000000000");
        assert_eq!(asked.query["end"], "1569267000000000000");
        assert_eq!(asked.query["limit"], "500");
        assert_eq!(asked.query["direction"], "forward");
    })
    .await;
}

#[tokio::test]
async fn labels_and_label_values_are_listed() {
    bounded(async {
        let server = fake_loki().await;
        let loki = Loki::new(client(), server.url());
        let labels = loki.labels(Some(window())).await.expect("labels");
        assert_eq!(labels.values, ["foo", "bar", "baz"]);
        let values = loki.label_values("foo", None).await.expect("values");
        assert_eq!(values.values, ["cat", "dog", "axolotl"]);
        let none = loki
            .label_values("service", None)
            .await
            .expect("no data is empty");
        assert!(none.values.is_empty());
        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path == "/loki/api/v1/labels")
            .expect("asked");
        assert_eq!(asked.query["start"], "1569266000000000000");
    })
    .await;
}

#[tokio::test]
async fn a_metric_answer_to_a_log_query_is_unexpected() {
    bounded(async {
        let server = fake_loki().await;
        let err = Loki::new(client(), server.url())
            .query_range(&query("sum(rate({job=\"varlogs\"}[10m])) by (level)"))
            .await
            .expect_err("matrix");
        assert!(
            matches!(&err, LokiError::Unexpected { detail, .. } if detail.contains("matrix")),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_plain_text_parse_error_keeps_its_message() {
    bounded(async {
        let server = fake_loki().await;
        let err = Loki::new(client(), server.url())
            .query_range(&query("bogus"))
            .await
            .expect_err("400");
        match err {
            LokiError::Source(SourceError::Status(e)) => {
                assert_eq!(e.status, Some(400));
                assert!(e.body_excerpt.contains("parse error"));
            }
            other => panic!("expected a status error, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn not_ready_html_garbage_slow_and_refused_are_distinguished() {
    bounded(async {
        let server = FakeServer::start(|seen| match seen.path.as_str() {
            "/ready" => Reply::with(
                503,
                "text/plain",
                "Ingester not ready: waiting for 15s after being ready\n",
            ),
            "/loki/api/v1/labels" => Reply::with(
                200,
                "text/html",
                "<!DOCTYPE html><html><title>Grafana</title></html>",
            ),
            "/loki/api/v1/label/x/values" => {
                Reply::json(r#"{"status":"success","data":{"not":"a list"}}"#)
            }
            "/loki/api/v1/query_range" => Reply::json("garbage").after(Duration::from_secs(20)),
            _ => Reply::json(r#"{"status":"error","errorType":"bad_data","error":"bad"}"#),
        })
        .await;
        let loki = Loki::new(
            client_with(Duration::from_millis(300), 1 << 20),
            server.url(),
        );
        let ready = loki.ready().await;
        assert!(
            matches!(&ready, Err(LokiError::NotReady(e)) if e.body_excerpt.contains("not ready")),
            "{ready:?}"
        );
        assert!(matches!(
            loki.labels(None).await,
            Err(LokiError::Source(SourceError::HtmlPage(_)))
        ));
        assert!(matches!(
            loki.label_values("x", None).await,
            Err(LokiError::Unexpected { .. })
        ));
        let slow = loki.query_range(&query("{a=\"b\"}")).await;
        assert!(
            matches!(slow, Err(LokiError::Source(SourceError::Timeout { .. }))),
            "{slow:?}"
        );
        let api = loki.label_values("y", None).await;
        assert!(
            matches!(&api, Err(LokiError::Api { error_type, .. }) if error_type == "bad_data"),
            "{api:?}"
        );
        let refused = Loki::new(client(), refused_url().await).ready().await;
        assert!(matches!(
            refused,
            Err(LokiError::Source(SourceError::ConnectRefused { .. }))
        ));
    })
    .await;
}
