//! The `dashboard-panels` check: every query of the deployed dashboard evaluated against a fake
//! Prometheus and a fake Loki replaying their documented answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use obsctl::check::dashboard;
use obsctl::check::model::{Outcome, Status};
use obsctl::sources::loki::Loki;
use obsctl::sources::prometheus::Prometheus;

use crate::helpers::{
    FakeServer, Reply, Seen, bounded, client, context, deployed_dashboard, refused_url,
};

// https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
// (the documented example, one sample kept).
const VECTOR: &str = r#"{
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
         }
      ]
   }
}"#;

// The same documented envelope with no sample: a valid query that matched nothing.
const EMPTY_VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

// https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview (error envelope,
// HTTP 400 for bad_data).
const BAD_DATA: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected identifier"}"#;

// https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-within-a-range-of-time
// (the documented streams example, trimmed to one stream of ours).
const STREAMS: &str = r#"{
  "status": "success",
  "data": {
    "resultType": "streams",
    "result": [
      {
        "stream": {"service": "fastapi-backend", "level": "INFO"},
        "values": [
          ["1569266497240578000", "{\"level\":\"INFO\",\"message\":\"Request completed\"}"]
        ]
      }
    ],
    "stats": {}
  }
}"#;

const NO_STREAMS: &str =
    r#"{"status":"success","data":{"resultType":"streams","result":[],"stats":{}}}"#;

/// A fake Prometheus answering `answer(query)` on `/api/v1/query`.
async fn prometheus(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(move |seen: &Seen| match seen.path.as_str() {
        "/api/v1/query" => answer(seen.query.get("query").map_or("", String::as_str)),
        _ => Reply::with(404, "text/plain", "404 page not found"),
    })
    .await
}

async fn loki(body: &'static str) -> FakeServer {
    FakeServer::start(move |seen: &Seen| match seen.path.as_str() {
        "/loki/api/v1/query_range" => Reply::json(body),
        _ => Reply::with(404, "text/plain", "404 page not found"),
    })
    .await
}

async fn run(
    prom: Option<&FakeServer>,
    loki: Option<&FakeServer>,
    file: std::path::PathBuf,
    wait: Duration,
) -> Outcome {
    let mut ctx = context(wait);
    ctx.prometheus = prom.map(|p| Prometheus::new(client(), p.url()));
    ctx.loki = loki.map(|l| Loki::new(client(), l.url()));
    ctx.dashboard = Some(file);
    bounded(dashboard::dashboard_panels(&ctx)).await
}

fn queries(server: &FakeServer) -> Vec<String> {
    let mut all: Vec<String> = server
        .seen()
        .iter()
        .filter_map(|s| s.query.get("query").cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}

#[tokio::test]
async fn without_a_dashboard_the_check_skips_with_the_flag() {
    let outcome = bounded(dashboard::dashboard_panels(&context(Duration::ZERO))).await;
    assert_eq!(outcome.status, Status::Skip);
    assert!(
        outcome
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("--dashboard FILE"))
    );
}

#[tokio::test]
async fn every_promql_panel_returns_data_and_the_loki_panel_is_skipped_without_loki() {
    let prom = prometheus(|_| Reply::json(VECTOR)).await;
    let outcome = run(Some(&prom), None, deployed_dashboard(), Duration::ZERO).await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    assert!(
        outcome.detail.contains("all 7 evaluated"),
        "{}",
        outcome.detail
    );
    assert!(
        outcome.detail.contains("\"Logger Stream\"") && outcome.detail.contains("no --loki given"),
        "{}",
        outcome.detail
    );
    assert_eq!(queries(&prom).len(), 7, "{:?}", queries(&prom));
    assert!(
        queries(&prom)
            .iter()
            .all(|q| q.contains("job=\"fastapi-backend\""))
    );
}

#[tokio::test]
async fn a_panel_whose_query_returns_an_empty_vector_is_named_with_its_query() {
    let prom = prometheus(|query| {
        if query.contains("5..") {
            Reply::json(EMPTY_VECTOR)
        } else {
            Reply::json(VECTOR)
        }
    })
    .await;
    let lines = loki(STREAMS).await;
    let outcome = run(
        Some(&prom),
        Some(&lines),
        deployed_dashboard(),
        Duration::ZERO,
    )
    .await;
    assert_eq!(outcome.status, Status::Fail, "{outcome:#?}");
    assert!(outcome.detail.contains("1 of 8"), "{}", outcome.detail);
    assert!(
        outcome.detail.contains("no data: \"Errors Per Second\""),
        "{}",
        outcome.detail
    );
    assert!(
        outcome
            .evidence
            .iter()
            .any(|e| e.starts_with("Errors Per Second: ")
                && e.contains("status_code=~\"5..\"")
                && e.ends_with("-> no data")),
        "{:?}",
        outcome.evidence
    );
    assert!(
        !outcome.detail.contains("\"Total Requests\""),
        "{}",
        outcome.detail
    );
    assert_eq!(outcome.evidence.len(), 8, "{:?}", outcome.evidence);
}

#[tokio::test]
async fn the_loki_panel_is_evaluated_over_the_window() {
    let prom = prometheus(|_| Reply::json(VECTOR)).await;
    let lines = loki(STREAMS).await;
    let outcome = run(
        Some(&prom),
        Some(&lines),
        deployed_dashboard(),
        Duration::ZERO,
    )
    .await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    let asked = lines.seen();
    assert_eq!(
        asked[0].query.get("query").map(String::as_str),
        Some(r#"{service="fastapi-backend"}"#)
    );
    assert!(asked[0].query.contains_key("start") && asked[0].query.contains_key("end"));
}

#[tokio::test]
async fn a_loki_without_lines_fails_the_logger_stream_panel() {
    let prom = prometheus(|_| Reply::json(VECTOR)).await;
    let lines = loki(NO_STREAMS).await;
    let outcome = run(
        Some(&prom),
        Some(&lines),
        deployed_dashboard(),
        Duration::ZERO,
    )
    .await;
    assert_eq!(outcome.status, Status::Fail, "{outcome:#?}");
    assert!(
        outcome.detail.contains("\"Logger Stream\""),
        "{}",
        outcome.detail
    );
}

#[tokio::test]
async fn a_query_prometheus_rejects_fails_at_once_without_waiting() {
    let prom = prometheus(|query| {
        if query.contains("histogram_quantile") {
            Reply::with(400, "application/json", BAD_DATA)
        } else {
            Reply::json(VECTOR)
        }
    })
    .await;
    let started = Instant::now();
    let outcome = run(
        Some(&prom),
        None,
        deployed_dashboard(),
        Duration::from_secs(20),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome.status, Status::Fail, "{outcome:#?}");
    assert!(
        outcome.detail.contains("\"Request Duration P60\""),
        "{}",
        outcome.detail
    );
    assert!(
        outcome
            .evidence
            .iter()
            .any(|e| e.starts_with("Request Duration P60: ") && e.contains("bad_data")),
        "{:?}",
        outcome.evidence
    );
}

#[tokio::test]
async fn queries_are_polled_until_prometheus_has_two_scrapes() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    // The first 10 answers are empty (no scrape yet), then every query has data.
    let prom = prometheus(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < 10 {
            Reply::json(EMPTY_VECTOR)
        } else {
            Reply::json(VECTOR)
        }
    })
    .await;
    let outcome = run(
        Some(&prom),
        None,
        deployed_dashboard(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    assert!(asked.load(Ordering::SeqCst) > 10);
}

#[tokio::test]
async fn grafana_variables_are_substituted_before_evaluation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vars.json");
    let model = serde_json::json!({
        "uid": "vars",
        "title": "Vars",
        "templating": {"list": [
            {"name": "job", "type": "custom", "current": {"text": "api", "value": "api"}}
        ]},
        "panels": [{
            "type": "timeseries",
            "title": "Rate",
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "targets": [{"refId": "A", "expr": "sum(rate(up{job=\"$job\"}[$__rate_interval]))"}]
        }]
    });
    std::fs::write(&path, model.to_string()).expect("write");
    let prom = prometheus(|_| Reply::json(VECTOR)).await;
    let outcome = run(Some(&prom), None, path, Duration::ZERO).await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:#?}");
    assert_eq!(queries(&prom), vec![r#"sum(rate(up{job="api"}[1m]))"#]);
}

#[tokio::test]
async fn with_neither_prometheus_nor_loki_every_panel_is_skipped() {
    let outcome = run(None, None, deployed_dashboard(), Duration::ZERO).await;
    assert_eq!(outcome.status, Status::Skip, "{outcome:#?}");
    assert!(
        outcome.detail.contains("no --prometheus given"),
        "{}",
        outcome.detail
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_an_error() {
    let mut ctx = context(Duration::ZERO);
    ctx.prometheus = Some(Prometheus::new(client(), refused_url().await));
    ctx.dashboard = Some(deployed_dashboard());
    let outcome = bounded(dashboard::dashboard_panels(&ctx)).await;
    assert_eq!(outcome.status, Status::Error, "{outcome:#?}");
    assert!(
        outcome.detail.contains("connection refused"),
        "{}",
        outcome.detail
    );
}
