//! OpenMetrics exemplars on `/metrics`: content negotiation both ways, exemplar ids that are the
//! SERVER spans a real OTLP receiver got, only for sampled spans, read back by an independent
//! parser (Python's prometheus_client) and by a real Prometheus with exemplar storage.

use std::collections::BTreeSet;
use std::time::Duration;

use obsctl::sources::exposition::{self, Exposition, Format};
use obsctl::sources::span::{ReceivedSpan, SpanKind};

use crate::helpers::{Options, TestApp, receiver, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);

/// What Prometheus 2.x sends when scraping (its default scrape Accept header).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// GET /metrics with `accept`: the content type and the body.
async fn scrape(app: &TestApp, accept: Option<&str>) -> (String, String) {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    (content_type, response.text().await.expect("a body"))
}

/// `(trace_id, span_id)` of every exemplar on the duration histogram's buckets of `path`.
fn bucket_exemplars(metrics: &Exposition, path: &str) -> Vec<(String, String)> {
    let family = metrics
        .family("fastapi_request_duration_seconds")
        .expect("the histogram");
    family
        .samples
        .iter()
        .filter(|s| s.name.ends_with("_bucket") && s.labels.get("path") == Some(path))
        .filter_map(|s| s.exemplar)
        .map(|e| {
            let id = |k: &str| e.labels.get(k).expect("trace_id and span_id").to_owned();
            (id("trace_id"), id("span_id"))
        })
        .collect()
}

fn server_ids(spans: &[ReceivedSpan]) -> BTreeSet<(String, String)> {
    spans
        .iter()
        .filter(|s| s.kind() == SpanKind::Server)
        .map(|s| (s.trace_id().hex(), s.span_id().hex()))
        .collect()
}

#[tokio::test]
async fn a_plain_scrape_keeps_the_text_format_without_exemplars() {
    let app = spawn_app().await;
    app.get("/api/users/1").await;
    for accept in [
        None,
        Some("*/*"),
        Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
        Some("application/openmetrics-text;q=0.2,text/plain;q=0.5"),
    ] {
        let (content_type, body) = scrape(&app, accept).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!body.contains(" # {"), "no exemplar in the text format");
        assert!(!body.contains("# EOF"));
        assert!(body.contains("# TYPE fastapi_requests_total counter\n"));
        exposition::parse(&body).expect("valid text format");
    }
}

#[tokio::test]
async fn prometheus_gets_openmetrics_with_exemplars_ending_with_eof() {
    let app = spawn_app().await;
    app.get("/api/users/1").await;
    for accept in [
        PROMETHEUS_ACCEPT,
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
        "application/openmetrics-text",
    ] {
        let (content_type, body) = scrape(&app, Some(accept)).await;
        assert_eq!(content_type, OPENMETRICS, "{accept}");
        assert!(body.ends_with("\n# EOF\n"), "{body}");
        let metrics = exposition::parse_as(&body, Format::OpenMetrics).expect("valid OpenMetrics");
        assert_eq!(
            metrics.family("fastapi_requests_total").map(|f| f.name),
            Some("fastapi_requests"),
            "the counter's family is named without _total"
        );
        let exemplars = bucket_exemplars(&metrics, "/api/users/{user_id}");
        assert_eq!(
            exemplars.len(),
            1,
            "one bucket holds the one request: {body}"
        );
        assert!(metrics.family("process_cpu_seconds_total").is_some());
    }
}

#[tokio::test]
async fn exemplar_ids_are_the_server_spans_the_receiver_got() {
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    app.client
        .get(app.url("/api/users/2"))
        .header("traceparent", format!("00-{caller}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    app.post_json("/api/users", r#"{"name":"Eve"}"#).await;
    app.get("/api/users/999").await;
    let spans = otlp
        .wait_for_spans(|s| server_ids(s).len() >= 3, WAIT)
        .await;
    let servers = server_ids(&spans);
    let (_, body) = scrape(&app, Some(PROMETHEUS_ACCEPT)).await;
    let metrics = exposition::parse_as(&body, Format::OpenMetrics).expect("valid OpenMetrics");
    let mut seen = Vec::new();
    for path in ["/api/users/{user_id}", "/api/users"] {
        for ids in bucket_exemplars(&metrics, path) {
            assert!(
                servers.contains(&ids),
                "exemplar {ids:?} is no SERVER span the receiver got: {servers:?}"
            );
            seen.push(ids);
        }
    }
    // GET 200, GET 404 and POST 201: three series, one exemplar each.
    assert_eq!(seen.len(), 3, "{body}");
    assert!(
        seen.iter().any(|(trace, _)| trace == caller),
        "the caller's trace continued is the exemplar's trace: {seen:?}"
    );
    // The counter carries its series' newest exemplar too.
    let counter = metrics.family("fastapi_requests_total").expect("counter");
    let with: Vec<_> = counter
        .samples
        .iter()
        .filter(|s| s.labels.get("path") == Some("/api/users"))
        .filter_map(|s| s.exemplar)
        .collect();
    assert_eq!(with.len(), 1);
    assert_eq!(with[0].value, 1.0);
}

#[tokio::test]
async fn unsampled_requests_give_no_exemplars() {
    // Sampled out by the caller (flags 00, honoured by the default parentbased sampler) ...
    let app = spawn_app().await;
    app.client
        .get(app.url("/api/users/1"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )
        .send()
        .await
        .unwrap();
    let (_, body) = scrape(&app, Some(PROMETHEUS_ACCEPT)).await;
    let metrics = exposition::parse_as(&body, Format::OpenMetrics).expect("valid");
    assert!(
        bucket_exemplars(&metrics, "/api/users/{user_id}").is_empty(),
        "{body}"
    );
    assert!(!body.contains("4bf92f3577b34da6a3ce929d0e0e4736"));

    // ... or by the service's own sampler.
    let app = spawn_app_with(Options::default().env("OTEL_TRACES_SAMPLER", "always_off")).await;
    app.get("/api/users/1").await;
    let (_, body) = scrape(&app, Some(PROMETHEUS_ACCEPT)).await;
    assert!(!body.contains(" # {"), "{body}");
}

/// The venv examples/setup-python.sh makes, with prometheus_client pinned.
fn python() -> Option<std::path::PathBuf> {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/.venv/bin/python");
    if python.is_file() {
        return Some(python);
    }
    let message = "no examples/.venv (bash examples/setup-python.sh installs prometheus_client)";
    assert!(std::env::var_os("CI").is_none(), "{message}; CI is set");
    eprintln!("SKIPPED: {message}");
    None
}

/// Python's prometheus_client reads the body with its OpenMetrics parser (which rejects what
/// the specification forbids: a missing `# EOF`, `_total` in a counter's TYPE line, exemplars
/// on other samples than buckets and counters, label sets over 128 characters) and prints
/// every exemplar it found.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        if s.exemplar is not None:
            out.append({"family": family.name, "type": family.type, "sample": s.name,
                        "le": s.labels.get("le"), "labels": s.exemplar.labels,
                        "value": s.exemplar.value,
                        "timestamp": None if s.exemplar.timestamp is None
                                     else float(s.exemplar.timestamp)})
print(json.dumps(out))
"#;

#[tokio::test]
async fn python_prometheus_clients_openmetrics_parser_reads_the_exposition() {
    let Some(python) = python() else { return };
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    app.get("/api/users/1").await;
    app.get("/no/such/route").await;
    let spans = otlp
        .wait_for_spans(|s| server_ids(s).len() >= 2, WAIT)
        .await;
    let servers = server_ids(&spans);
    let (_, body) = scrape(&app, Some(PROMETHEUS_ACCEPT)).await;

    let mut child = tokio::process::Command::new(python)
        .arg("-c")
        .arg(PARSE)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, body.as_bytes())
        .await
        .expect("the body is written");
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("python ends within the wait")
        .expect("python runs");
    assert!(
        output.status.success(),
        "prometheus_client rejects the exposition:\n{}\n{body}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let buckets: Vec<&serde_json::Value> = found
        .iter()
        .filter(|e| e["family"] == "fastapi_request_duration_seconds")
        .collect();
    let counters = found
        .iter()
        .filter(|e| e["family"] == "fastapi_requests" && e["type"] == "counter")
        .count();
    assert_eq!(
        buckets.len(),
        2,
        "one bucket per request's series: {found:?}"
    );
    assert_eq!(counters, 2, "and each series' counter: {found:?}");
    for exemplar in buckets {
        let ids = (
            exemplar["labels"]["trace_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            exemplar["labels"]["span_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        assert!(servers.contains(&ids), "{ids:?} not in {servers:?}");
        assert_eq!(
            exemplar["sample"],
            "fastapi_request_duration_seconds_bucket"
        );
        let value = exemplar["value"].as_f64().expect("a value");
        let le = exemplar["le"]
            .as_str()
            .and_then(|le| le.parse::<f64>().ok());
        assert!(le.is_some_and(|le| value <= le), "{exemplar}");
        assert!(exemplar["timestamp"].as_f64().is_some_and(|t| t > 1.6e9));
    }
}

/// Whether a real Prometheus can be started; SKIPPED without one, except under CI.
fn prometheus_binary() -> Option<std::path::PathBuf> {
    let found = obsctl::sources::prometheus_server::find_binary();
    if found.is_none() {
        let message = "no `prometheus` on the PATH (apt-get install prometheus)";
        assert!(std::env::var_os("CI").is_none(), "{message}; CI is set");
        eprintln!("SKIPPED: {message}");
    }
    found
}

#[tokio::test]
async fn a_real_prometheus_stores_the_exemplars_and_returns_them() {
    use obsctl::sources::prometheus::Prometheus;
    use obsctl::sources::prometheus_server::{PrometheusServer, PrometheusServerConfig, ScrapeJob};

    let Some(binary) = prometheus_binary() else {
        return;
    };
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    for id in 1..=3 {
        app.get(&format!("/api/users/{id}")).await;
    }
    let spans = otlp
        .wait_for_spans(|s| server_ids(s).len() >= 3, WAIT)
        .await;
    let servers = server_ids(&spans);
    // Started with --enable-feature=exemplar-storage; its default Accept prefers OpenMetrics.
    let server = PrometheusServer::start(&PrometheusServerConfig {
        binary,
        scrape_interval: Duration::from_secs(1),
        jobs: vec![ScrapeJob {
            job_name: "fastapi-backend".to_owned(),
            targets: vec![app.addr.to_string()],
            metrics_path: "/metrics".to_owned(),
            bearer_token: None,
            tls: None,
        }],
        ready_timeout: Duration::from_secs(15),
    })
    .await
    .expect("prometheus starts");
    let client = obsctl::sources::http::HttpClient::new(obsctl::sources::http::HttpOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .expect("a client");
    let prometheus = Prometheus::new(client, server.url());
    let query = r#"fastapi_request_duration_seconds_bucket{path="/api/users/{user_id}"}"#;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let start = now() - 60.0;
    let mut stored = Vec::new();
    for _ in 0..100 {
        if let Ok((series, _)) = prometheus.query_exemplars(query, start, now()).await {
            stored = series;
            if !stored.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        !stored.is_empty(),
        "Prometheus returned no exemplar within 15 s:\n{}",
        server.log_tail()
    );
    for series in &stored {
        assert_eq!(
            series.series_labels.get("job").map(String::as_str),
            Some("fastapi-backend")
        );
        for exemplar in &series.exemplars {
            let ids = (
                exemplar.labels.get("trace_id").cloned().unwrap_or_default(),
                exemplar.labels.get("span_id").cloned().unwrap_or_default(),
            );
            assert!(
                servers.contains(&ids),
                "Prometheus's exemplar {ids:?} is no SERVER span the receiver got: {servers:?}"
            );
        }
    }
}
