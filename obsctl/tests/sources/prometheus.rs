//! The Prometheus API adapter against the documented answers
//! (https://prometheus.io/docs/prometheus/latest/querying/api/) and against a real Prometheus.

use std::time::Duration;

use obsctl::sources::http::SourceError;
use obsctl::sources::prometheus::{Prometheus, PrometheusError, QueryData, TargetHealth};

use crate::helpers::{FakeServer, Reply, bounded, client, refused_url};

// https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
// (the documented `up` example).
const QUERY_VECTOR: &str = r#"{
   "status" : "success",
   "data" : {
      "resultType" : "vector",
      "result" : [
         {
            "metric" : {
               "__name__" : "up",
               "job" : "prometheus",
               "instance" : "localhost:9090"
            },
            "value": [ 1435781451.781, "1" ]
         },
         {
            "metric" : {
               "__name__" : "up",
               "job" : "node",
               "instance" : "localhost:9100"
            },
            "value" : [ 1435781451.781, "0" ]
         }
      ]
   }
}"#;

// https://prometheus.io/docs/prometheus/latest/querying/api/#range-queries
const QUERY_MATRIX: &str = r#"{
   "status" : "success",
   "data" : {
      "resultType" : "matrix",
      "result" : [
         {
            "metric" : {
               "__name__" : "up",
               "job" : "prometheus",
               "instance" : "localhost:9090"
            },
            "values" : [
               [ 1435781430.781, "1" ],
               [ 1435781445.781, "1" ],
               [ 1435781460.781, "1" ]
            ]
         }
      ]
   }
}"#;

// https://prometheus.io/docs/prometheus/latest/querying/api/#scalars
const QUERY_SCALAR: &str =
    r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"NaN"]}}"#;

// https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview (error envelope;
// the message is what Prometheus 2.x sends for a parse error).
const QUERY_ERROR: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}"#;

// https://prometheus.io/docs/prometheus/latest/querying/api/#targets (documented example, with a
// second, failing target added).
const TARGETS: &str = r#"{
  "status": "success",
  "data": {
    "activeTargets": [
      {
        "discoveredLabels": {
          "__address__": "127.0.0.1:9090",
          "__metrics_path__": "/metrics",
          "__scheme__": "http",
          "job": "prometheus"
        },
        "labels": {
          "instance": "127.0.0.1:9090",
          "job": "prometheus"
        },
        "scrapePool": "prometheus",
        "scrapeUrl": "http://127.0.0.1:9090/metrics",
        "globalUrl": "http://example-prometheus:9090/metrics",
        "lastError": "",
        "lastScrape": "2017-01-17T15:07:44.723715405+01:00",
        "lastScrapeDuration": 0.050688943,
        "health": "up",
        "scrapeInterval": "1m",
        "scrapeTimeout": "10s"
      },
      {
        "discoveredLabels": {"__address__": "127.0.0.1:8000", "job": "fastapi-backend"},
        "labels": {"instance": "127.0.0.1:8000", "job": "fastapi-backend"},
        "scrapePool": "fastapi-backend",
        "scrapeUrl": "http://127.0.0.1:8000/metrics",
        "globalUrl": "http://example:8000/metrics",
        "lastError": "received unsupported Content-Type \"application/json\" and no fallback_scrape_protocol specified for target",
        "lastScrape": "2017-01-17T15:07:44.723715405+01:00",
        "lastScrapeDuration": 0.002,
        "health": "down",
        "scrapeInterval": "1s",
        "scrapeTimeout": "1s"
      }
    ],
    "droppedTargets": [
      {
        "discoveredLabels": {
          "__address__": "127.0.0.1:9100",
          "__metrics_path__": "/metrics",
          "__scheme__": "http",
          "__scrape_interval__": "1m",
          "__scrape_timeout__": "10s",
          "job": "node"
        }
      }
    ]
  }
}"#;

async fn fake_prometheus() -> FakeServer {
    FakeServer::start(|seen| {
        match (
            seen.path.as_str(),
            seen.query.get("query").map(String::as_str),
        ) {
            ("/-/ready", _) => Reply::with(200, "text/plain", "Prometheus Server is Ready.\n"),
            ("/api/v1/query", Some("up")) => Reply::json(QUERY_VECTOR),
            ("/api/v1/query", Some("scalar(1)")) => Reply::json(QUERY_SCALAR),
            ("/api/v1/query", _) => Reply::with(400, "application/json", QUERY_ERROR),
            ("/api/v1/query_range", _) => Reply::json(QUERY_MATRIX),
            ("/api/v1/targets", _) => Reply::json(TARGETS),
            _ => Reply::with(404, "text/plain", "404 page not found\n"),
        }
    })
    .await
}

#[tokio::test]
async fn an_instant_vector_query_reads_labels_and_values() {
    bounded(async {
        let server = fake_prometheus().await;
        let prom = Prometheus::new(client(), server.url());
        prom.ready().await.expect("ready");
        let result = prom.query("up", Some(1435781451.781)).await.expect("query");
        let samples = result.data.samples();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["job"], "prometheus");
        assert_eq!(samples[0].value, 1.0);
        assert_eq!(samples[1].value, 0.0);
        assert_eq!(samples[0].timestamp, 1435781451.781);
        assert_eq!(result.data.first_value(), Some(1.0));
        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path == "/api/v1/query")
            .expect("asked");
        assert_eq!(asked.query["time"], "1435781451.781");
    })
    .await;
}

#[tokio::test]
async fn range_and_scalar_answers_parse() {
    bounded(async {
        let server = fake_prometheus().await;
        let prom = Prometheus::new(client(), server.url());
        let range = prom
            .query_range(
                "up",
                1435781430.781,
                1435781460.781,
                Duration::from_secs(15),
            )
            .await
            .expect("range");
        match &range.data {
            QueryData::Matrix(series) => assert_eq!(series[0].points.len(), 3),
            other => panic!("expected a matrix, got {other:?}"),
        }
        let asked = server
            .seen()
            .into_iter()
            .find(|s| s.path == "/api/v1/query_range")
            .expect("asked");
        assert_eq!(asked.query["step"], "15.000");
        let scalar = prom.query("scalar(1)", None).await.expect("scalar");
        assert!(matches!(scalar.data, QueryData::Scalar(_, v) if v.is_nan()));
        assert!(!scalar.data.is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_error_envelope_is_a_typed_api_error() {
    bounded(async {
        let server = fake_prometheus().await;
        let err = Prometheus::new(client(), server.url())
            .query("sum(", None)
            .await
            .expect_err("bad query");
        match err {
            PrometheusError::Api {
                error_type,
                error,
                evidence,
            } => {
                assert_eq!(error_type, "bad_data");
                assert!(error.contains("parse error"), "{error}");
                assert_eq!(evidence.status, Some(400));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn targets_report_health_and_last_error() {
    bounded(async {
        let server = fake_prometheus().await;
        let targets = Prometheus::new(client(), server.url())
            .targets()
            .await
            .expect("targets");
        assert_eq!(targets.active.len(), 2);
        assert_eq!(targets.dropped, 1);
        let backend: Vec<_> = targets.scraping("127.0.0.1:8000/metrics").collect();
        assert_eq!(backend.len(), 1);
        assert_eq!(backend[0].health, TargetHealth::Down);
        assert!(backend[0].last_error.contains("unsupported Content-Type"));
        assert_eq!(backend[0].labels["job"], "fastapi-backend");
        assert_eq!(targets.active[0].health, TargetHealth::Up);
        assert_eq!(targets.active[0].last_scrape_duration, 0.050688943);
    })
    .await;
}

#[tokio::test]
async fn not_ready_html_garbage_and_unreachable_are_distinguished() {
    bounded(async {
        let server = FakeServer::start(|seen| match seen.path.as_str() {
            "/-/ready" => Reply::with(503, "text/plain", "Service Unavailable"),
            "/api/v1/targets" => Reply::with(
                502,
                "text/html",
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            ),
            "/api/v1/query_range" => {
                Reply::json(r#"{"status":"success","data":{"resultType":"weird","result":[]}}"#)
            }
            _ => Reply::json("[1, 2"),
        })
        .await;
        let prom = Prometheus::new(client(), server.url());
        assert!(
            matches!(prom.ready().await, Err(PrometheusError::NotReady(e)) if e.status == Some(503))
        );
        let targets = prom.targets().await;
        assert!(
            matches!(
                targets,
                Err(PrometheusError::Source(SourceError::HtmlPage(_)))
            ),
            "{targets:?}"
        );
        let garbage = prom.query("up", None).await;
        assert!(
            matches!(
                garbage,
                Err(PrometheusError::Source(SourceError::InvalidJson { .. }))
            ),
            "{garbage:?}"
        );
        let weird = prom
            .query_range("up", 0.0, 1.0, Duration::from_secs(1))
            .await;
        assert!(
            matches!(weird, Err(PrometheusError::Unexpected { .. })),
            "{weird:?}"
        );
        let refused = Prometheus::new(client(), refused_url().await).ready().await;
        assert!(
            matches!(
                refused,
                Err(PrometheusError::Source(SourceError::ConnectRefused { .. }))
            ),
            "{refused:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_slow_prometheus_is_bounded_by_the_client_timeout() {
    bounded(async {
        let server =
            FakeServer::start(|_| Reply::json(QUERY_VECTOR).after(Duration::from_secs(20))).await;
        let client = crate::helpers::client_with(Duration::from_millis(300), 1 << 20);
        let err = Prometheus::new(client, server.url())
            .query("up", None)
            .await
            .expect_err("slow");
        assert!(
            matches!(err, PrometheusError::Source(SourceError::Timeout { .. })),
            "{err:?}"
        );
    })
    .await;
}
