//! Collector faults: down, blackholed (accepts, never answers), and back again. Requests never
//! wait on the exporter; lost spans are counted and logged at a bounded rate.

use std::time::Duration;

use obsctl::sources::exposition::Exposition;
use obsctl::sources::otlp::OtlpReceiver;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::helpers::{Options, TestApp, free_port, spawn_app_with};

/// A collector that accepts connections and never answers, the worst kind: its endpoint, and
/// the task holding the connections open (abort it to let them go).
async fn blackhole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    (endpoint, held)
}

async fn dropped_spans(app: &TestApp) -> f64 {
    counter_in(&app.metrics().await, "otel_spans_dropped_total")
}

/// The value of the unlabelled counter `name` in one scrape (0 when absent).
fn counter_in(metrics: &Exposition, name: &str) -> f64 {
    metrics
        .family(name)
        .and_then(|f| f.samples.first())
        .map_or(0.0, |s| s.value)
}

/// A collector that records the `api-key` header of each export and rejects one span of the
/// first batch through OTLP's partial success.
#[derive(Default, Clone)]
struct PickyCollector {
    seen: std::sync::Arc<std::sync::Mutex<Vec<SeenExport>>>,
}

/// The `api-key` header of one export call and the number of spans it carried.
type SeenExport = (Option<String>, usize);

#[tonic::async_trait]
impl TraceService for PickyCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let key = request
            .metadata()
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let spans = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        let first = {
            let mut seen = self.seen.lock().unwrap();
            seen.push((key, spans));
            seen.len() == 1
        };
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: first.then(|| ExportTracePartialSuccess {
                rejected_spans: 1,
                error_message: "one span too many".into(),
            }),
        }))
    }
}

#[tokio::test]
async fn exports_carry_the_configured_headers_and_partial_rejections_count_as_dropped() {
    let collector = PickyCollector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let app = spawn_app_with(
        Options::default()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=s%3Dcret")
            .env("OTEL_BSP_SCHEDULE_DELAY", "50"),
    )
    .await;
    send_within_two_seconds(&app, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while collector.seen.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = collector.seen.lock().unwrap()[0].clone();
    assert_eq!(
        first,
        (Some("s=cret".to_owned()), 3),
        "the request's 3 spans"
    );
    // The collector records a call before it answers; the counters move on the answer. Reading
    // /metrics makes spans too (later batches, not rejected): compare the counters with the
    // spans the collector had received when they were read, once the two have settled.
    let received = || -> f64 {
        collector
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, n)| *n as f64)
            .sum()
    };
    let (exported, dropped, total) = loop {
        let before = received();
        let metrics = app.metrics().await;
        let after = received();
        let exported = counter_in(&metrics, "otel_spans_exported_total");
        let dropped = counter_in(&metrics, "otel_spans_dropped_total");
        let settled = before == after && exported + dropped == after;
        if settled || tokio::time::Instant::now() >= deadline {
            break (exported, dropped, after);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (exported, dropped),
        (total - 1.0, 1.0),
        "every received span counted once: the rejected one as lost, the others as exported"
    );
    let seen = collector.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(key, _)| key.as_deref() == Some("s=cret")),
        "every export carries the header: {seen:?}"
    );
    let warnings = app
        .stdout()
        .iter()
        .filter(|l| l.contains("Trace export failed") && l.contains("rejected"))
        .count();
    assert_eq!(warnings, 1, "the rejection is logged");
    server.abort();
}

async fn send_within_two_seconds(app: &TestApp, n: usize) {
    for _ in 0..n {
        let response = app
            .client
            .get(app.url("/api/users/1"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .expect("answered within 2 s while the collector misbehaves");
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_dead_collector_costs_counted_spans_and_one_log_line_not_requests() {
    let app = spawn_app_with(Options::default().env("OTEL_BSP_SCHEDULE_DELAY", "50")).await;
    for _ in 0..5 {
        send_within_two_seconds(&app, 20).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dropped_spans(&app).await < 1.0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dropped_spans(&app).await >= 1.0,
        "dropped spans are counted"
    );
    let warnings = app
        .stdout()
        .iter()
        .filter(|l| l.contains("Trace export failed"))
        .count();
    assert_eq!(warnings, 1, "many failed exports, one log line per 30 s");
}

#[tokio::test]
async fn a_blackholed_collector_does_not_hold_requests() {
    let (endpoint, held) = blackhole().await;
    let options = Options::default()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "500");
    let app = spawn_app_with(options).await;
    send_within_two_seconds(&app, 200).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while dropped_spans(&app).await < 1.0 && tokio::time::Instant::now() < deadline {
        send_within_two_seconds(&app, 5).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dropped_spans(&app).await >= 1.0,
        "timed-out exports are counted as dropped"
    );
    held.abort();
}

#[tokio::test]
async fn spans_flow_again_when_the_collector_comes_back() {
    let addr = free_port();
    let options = Options::default()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let app = spawn_app_with(options).await;
    send_within_two_seconds(&app, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let receiver = OtlpReceiver::start(addr)
        .await
        .expect("the collector's port is free again");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut spans = Vec::new();
    while spans.is_empty() && tokio::time::Instant::now() < deadline {
        send_within_two_seconds(&app, 5).await;
        spans = receiver
            .wait_for_spans(|s| !s.is_empty(), Duration::from_millis(500))
            .await;
    }
    assert!(
        !spans.is_empty(),
        "the exporter reconnected and spans arrive"
    );
}

#[tokio::test]
async fn a_full_queue_drops_are_counted_as_they_happen_and_logged_at_shutdown() {
    // The queue cannot drain into a collector that never answers, so a small one must overflow.
    let (endpoint, held) = blackhole().await;
    let options = Options::default()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "8")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8");
    let app = spawn_app_with(options).await;
    send_within_two_seconds(&app, 50).await;
    // Live: what did not fit is already counted, long before shutdown. At most the queue (8)
    // and one batch in export (8) are neither exported nor dropped yet.
    let metrics = app.metrics().await;
    let ended = counter_in(&metrics, "otel_spans_ended_total");
    let dropped = counter_in(&metrics, "otel_spans_dropped_total");
    assert!(ended >= 150.0, "three spans per request: {ended}");
    assert!(
        dropped >= ended - 16.0,
        "{dropped} of {ended} spans counted as dropped while running"
    );
    let (exit, stdout) = app.terminate().await;
    assert!(exit.success());
    let warning = stdout
        .iter()
        .find(|l| l.contains("export queue was full"))
        .unwrap_or_else(|| panic!("a line reports the queue drops: {stdout:?}"));
    let line: serde_json::Value = serde_json::from_str(warning).unwrap();
    assert_eq!(line["level"], "WARNING");
    assert!(
        line["dropped_spans"].as_u64().is_some_and(|n| n > 0),
        "{line}"
    );
    held.abort();
}

#[tokio::test]
async fn shutdown_keeps_its_flush_bound_when_a_stalled_collector_has_filled_the_export_queue() {
    // Batches of 4 spans: 100 requests make 75 of them, far more than the export thread's
    // queue holds while it waits out its first call to a collector that never answers (10 s,
    // the default timeout). Shutdown must still give up on the spans after its 5 s bound.
    let (endpoint, held) = blackhole().await;
    let options = Options::default()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4");
    let app = spawn_app_with(options).await;
    send_within_two_seconds(&app, 100).await;
    let started = std::time::Instant::now();
    app.sigterm();
    let (exit, stdout) = app.wait_exit(Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert!(exit.success(), "{stdout:?}");
    assert!(
        took < Duration::from_secs(9),
        "exited {took:?} after SIGTERM: the span flush is bounded by 5 s, not by the collector"
    );
    held.abort();
}
