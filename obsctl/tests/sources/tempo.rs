//! The Tempo adapter against the documented answers of
//! https://grafana.com/docs/tempo/latest/api_docs/ and against broken servers.

use std::time::{Duration, UNIX_EPOCH};

use obsctl::sources::http::SourceError;
use obsctl::sources::span::{AttrValue, SpanKind, SpanStatus};
use obsctl::sources::tempo::{SearchFilter, Tempo, TempoError, TraceSearch};
use obsctl::sources::window::TimeWindow;

use crate::helpers::{FakeServer, Reply, bounded, client, client_with, refused_url};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

// https://grafana.com/docs/tempo/latest/api_docs/#search ("Example of tags-based search"; note
// the 16-digit trace ids: Tempo drops leading zeros).
const SEARCH_TAGS: &str = r#"{
  "traces": [
    {
      "traceID": "d6e9329d67b6146a",
      "rootServiceName": "frontend",
      "rootTraceName": "/cart",
      "startTimeUnixNano": "1634727903545000000",
      "durationMs": 611
    },
    {
      "traceID": "1b1ba462b409200d",
      "rootServiceName": "frontend",
      "rootTraceName": "/cart",
      "startTimeUnixNano": "1634727775935000000",
      "durationMs": 611
    }
  ],
  "metrics": {
    "inspectedTraces": 3100,
    "inspectedBytes": "3811736",
    "totalBlocks": 3
  }
}"#;

// https://grafana.com/docs/tempo/latest/api_docs/#search ("Example of TraceQL search", with the
// documentation's missing closing brace restored).
const SEARCH_TRACEQL: &str = r#"{
  "traces": [
    {
      "traceID": "2f3e0cee77ae5dc9c17ade3689eb2e54",
      "rootServiceName": "shop-backend",
      "rootTraceName": "update-billing",
      "startTimeUnixNano": "1684778327699392724",
      "durationMs": 557,
      "spanSets": [
        {
          "spans": [
            {
              "spanID": "563d623c76514f8e",
              "startTimeUnixNano": "1684778327735077898",
              "durationNanos": "446979497",
              "attributes": [
                {"key": "status", "value": {"stringValue": "error"}}
              ]
            }
          ],
          "matched": 1
        }
      ]
    }
  ],
  "metrics": {
    "totalBlocks": 13
  }
}"#;

// https://grafana.com/docs/tempo/latest/api_docs/#query-v2: "Query response with an
// OpenTelemetry JSON trace" (protobuf JSON: ids base64, 64-bit numbers as strings, enums as
// names; see https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).
const TRACE_V2: &str = r#"{
  "trace": {
    "resourceSpans": [
      {
        "resource": {
          "attributes": [
            {"key": "service.name", "value": {"stringValue": "fastapi-backend"}},
            {"key": "service.version", "value": {"stringValue": "0.1.0"}}
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
                "startTimeUnixNano": "1716235200000000000",
                "endTimeUnixNano": "1716235200005000000",
                "attributes": [
                  {"key": "http.request.method", "value": {"stringValue": "GET"}},
                  {"key": "http.route", "value": {"stringValue": "/api/users/{user_id}"}},
                  {"key": "http.response.status_code", "value": {"intValue": "500"}}
                ],
                "status": {"code": "STATUS_CODE_ERROR", "message": "internal error"}
              },
              {
                "traceId": "S/kvNXezTaajzpKdDg5HNg==",
                "spanId": "t61rcWkgMzE=",
                "parentSpanId": "APBnqgupArc=",
                "name": "get_user",
                "kind": "SPAN_KIND_INTERNAL",
                "startTimeUnixNano": "1716235200001000000",
                "endTimeUnixNano": "1716235200004000000",
                "attributes": [
                  {"key": "user_id", "value": {"intValue": "1"}},
                  {"key": "cache.hit", "value": {"boolValue": false}},
                  {"key": "ratio", "value": {"doubleValue": 0.25}}
                ],
                "status": {}
              }
            ]
          }
        ]
      }
    ]
  },
  "status": "COMPLETE"
}"#;

// https://grafana.com/docs/tempo/latest/api_docs/#query: v1 "mostly compatible OpenTelemetry
// JSON", the resource spans under `batches`, here in the older `instrumentationLibrarySpans` form
// with numeric enums.
const TRACE_V1: &str = r#"{
  "batches": [
    {
      "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "fastapi-backend"}}]},
      "instrumentationLibrarySpans": [
        {
          "instrumentationLibrary": {"name": "legacy"},
          "spans": [
            {
              "traceId": "S/kvNXezTaajzpKdDg5HNg==",
              "spanId": "APBnqgupArc=",
              "parentSpanId": "",
              "name": "GET /health",
              "kind": 2,
              "startTimeUnixNano": 1716235200000000000,
              "endTimeUnixNano": 1716235200001000000,
              "status": {"code": 1}
            }
          ]
        }
      ]
    }
  ]
}"#;

fn window() -> TimeWindow {
    TimeWindow::new(
        UNIX_EPOCH + Duration::from_millis(1_716_235_199_500),
        UNIX_EPOCH + Duration::from_millis(1_716_235_260_500),
    )
}

async fn fake_tempo(has_v2: bool) -> FakeServer {
    FakeServer::start(move |seen| {
        let v1_path = format!("/api/traces/{TRACE_ID}");
        let v2_path = format!("/api/v2/traces/{TRACE_ID}");
        match seen.path.as_str() {
            // https://grafana.com/docs/tempo/latest/api_docs/#readiness-probe
            "/ready" => Reply::with(200, "text/plain; charset=utf-8", "ready"),
            "/api/search" if seen.query.contains_key("q") => Reply::json(SEARCH_TRACEQL),
            "/api/search" => Reply::json(SEARCH_TAGS),
            p if p == v2_path && has_v2 => Reply::json(TRACE_V2),
            p if p == v1_path => Reply::json(TRACE_V1),
            p if p.starts_with("/api/v2/traces/") && has_v2 => {
                Reply::with(404, "text/plain; charset=utf-8", "trace not found")
            }
            _ => Reply::with(404, "text/plain; charset=utf-8", "404 page not found\n"),
        }
    })
    .await
}

#[tokio::test]
async fn a_tag_search_sends_logfmt_and_the_window_and_pads_trace_ids() {
    bounded(async {
        let server = fake_tempo(true).await;
        let tempo = Tempo::new(client(), server.url());
        tempo.ready().await.expect("ready");
        let found = tempo
            .search(&TraceSearch::service("fastapi-backend", Some(window()), 50))
            .await
            .expect("search");
        assert_eq!(found.traces.len(), 2);
        assert_eq!(found.traces[0].trace_id, "0000000000000000d6e9329d67b6146a");
        assert_eq!(
            found.traces[0].root_service_name.as_deref(),
            Some("frontend")
        );
        assert_eq!(
            found.traces[0].start_unix_nanos,
            Some(1_634_727_903_545_000_000)
        );
        assert_eq!(found.traces[0].duration_ms, Some(611));
        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path == "/api/search")
            .expect("asked");
        assert_eq!(asked.query["tags"], "service.name=fastapi-backend");
        assert_eq!(asked.query["start"], "1716235199");
        assert_eq!(asked.query["end"], "1716235261");
        assert_eq!(asked.query["limit"], "50");
    })
    .await;
}

#[tokio::test]
async fn a_traceql_search_sends_q() {
    bounded(async {
        let server = fake_tempo(true).await;
        let search = TraceSearch {
            filter: SearchFilter::TraceQl("{ status = error }".into()),
            window: None,
            limit: 20,
        };
        let found = Tempo::new(client(), server.url())
            .search(&search)
            .await
            .expect("search");
        assert_eq!(found.traces[0].trace_id, "2f3e0cee77ae5dc9c17ade3689eb2e54");
        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path == "/api/search")
            .expect("asked");
        assert_eq!(asked.query["q"], "{ status = error }");
        assert!(!asked.query.contains_key("start"));
    })
    .await;
}

#[tokio::test]
async fn a_v2_trace_maps_base64_ids_and_attributes_into_spans() {
    bounded(async {
        let server = fake_tempo(true).await;
        let trace = Tempo::new(client(), server.url())
            .trace(&TRACE_ID.to_uppercase(), Some(window()))
            .await
            .expect("trace");
        assert_eq!(trace.spans.len(), 2);
        let root = &trace.spans[0];
        assert_eq!(root.trace_id(), TRACE_ID);
        assert_eq!(root.span_id(), "00f067aa0ba902b7");
        assert_eq!(root.parent_span_id(), None);
        assert_eq!(root.kind(), SpanKind::Server);
        assert_eq!(root.service_name(), Some("fastapi-backend"));
        assert_eq!(root.scope_name(), "backend");
        assert_eq!(
            root.attributes()["http.response.status_code"],
            AttrValue::Int(500)
        );
        assert_eq!(
            *root.status(),
            SpanStatus::Error {
                message: "internal error".into()
            }
        );
        assert_eq!(root.end_unix_nanos() - root.start_unix_nanos(), 5_000_000);
        let child = &trace.spans[1];
        assert_eq!(
            child.parent_span_id().map(|p| p.hex()).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(child.kind(), SpanKind::Internal);
        assert_eq!(child.attributes()["user_id"].as_i64(), Some(1));
        assert_eq!(child.attributes()["cache.hit"], AttrValue::Bool(false));
        assert_eq!(child.attributes()["ratio"], AttrValue::Double(0.25));
        assert_eq!(*child.status(), SpanStatus::Unset);
        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path.starts_with("/api/v2/"))
            .expect("asked");
        assert_eq!(asked.headers["accept"], "application/json");
        assert_eq!(asked.query["start"], "1716235199");
    })
    .await;
}

#[tokio::test]
async fn an_old_tempo_without_v2_falls_back_to_v1_batches() {
    bounded(async {
        let server = fake_tempo(false).await;
        let trace = Tempo::new(client(), server.url())
            .trace(TRACE_ID, None)
            .await
            .expect("v1");
        assert_eq!(trace.spans.len(), 1);
        let span = &trace.spans[0];
        assert_eq!(span.trace_id(), TRACE_ID);
        assert_eq!(span.kind(), SpanKind::Server);
        assert_eq!(*span.status(), SpanStatus::Ok);
        assert_eq!(span.scope_name(), "legacy");
        assert_eq!(span.start_unix_nanos(), 1_716_235_200_000_000_000);
        assert!(span.is_root());
    })
    .await;
}

#[tokio::test]
async fn an_unknown_trace_is_not_found_and_a_bad_id_is_refused_before_asking() {
    bounded(async {
        let server = fake_tempo(true).await;
        let tempo = Tempo::new(client(), server.url());
        let missing = tempo.trace("abc", None).await;
        assert!(
            matches!(&missing, Err(TempoError::TraceNotFound { trace_id, .. }) if trace_id == &format!("{:0>32}", "abc")),
            "{missing:?}"
        );
        let requests = server.seen().len();
        assert!(matches!(tempo.trace("not-hex", None).await, Err(TempoError::InvalidTraceId(_))));
        assert_eq!(server.seen().len(), requests, "no request for an invalid id");
    })
    .await;
}

#[tokio::test]
async fn errors_html_garbage_slow_and_refused_are_distinguished() {
    bounded(async {
        let server = FakeServer::start(|seen| match seen.path.as_str() {
            "/ready" => Reply::with(503, "text/plain", "Ingester not ready: waiting for 15s after being ready"),
            "/api/search" if seen.query.contains_key("q") => {
                Reply::with(400, "text/plain", "invalid TraceQL query: parse error at line 1, col 3: syntax error")
            }
            "/api/search" => Reply::with(502, "text/html", "<html><body>Bad Gateway</body></html>"),
            p if p.ends_with("0abc") => Reply::json(r#"{"trace": {"unexpected": true}}"#),
            _ => Reply::json("{}").after(Duration::from_secs(20)),
        })
        .await;
        let tempo = Tempo::new(client_with(Duration::from_millis(300), 1 << 20), server.url());
        assert!(matches!(tempo.ready().await, Err(TempoError::NotReady(_))));
        let bad_q = TraceSearch { filter: SearchFilter::TraceQl("{ .".into()), window: None, limit: 1 };
        let err = tempo.search(&bad_q).await.expect_err("400");
        assert!(matches!(&err, TempoError::Source(SourceError::Status(e)) if e.body_excerpt.contains("TraceQL")), "{err:?}");
        let html = tempo.search(&TraceSearch::service("x", None, 1)).await;
        assert!(matches!(html, Err(TempoError::Source(SourceError::HtmlPage(_)))), "{html:?}");
        let odd = tempo.trace("0abc", None).await;
        assert!(matches!(odd, Err(TempoError::Unexpected { .. })), "{odd:?}");
        let slow = tempo.trace("1abc", None).await;
        assert!(matches!(slow, Err(TempoError::Source(SourceError::Timeout { .. }))), "{slow:?}");
        let refused = Tempo::new(client(), refused_url().await).ready().await;
        assert!(matches!(refused, Err(TempoError::Source(SourceError::ConnectRefused { .. }))));
    })
    .await;
}
