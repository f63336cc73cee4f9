//! The OpenTelemetry tracer provider: OTLP/gRPC through a batch processor, configured by the
//! standard environment, with export failures counted and logged at a bounded rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::{Key, Value};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use prometheus::{IntCounter, Registry};

/// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "fastapi-backend";

/// At most one export-failure log line per this interval, however many batches fail.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// The OTLP exporter rejected its configuration (usually the endpoint).
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The export counters could not be registered.
    #[error("trace export metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The resource of this process: the SDK's detectors (`OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, telemetry.sdk.*) with the contract's default service name.
pub fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&Key::from_static_str("service.name"))
        .map(|value| value.to_string())
        .filter(|name| !name.starts_with("unknown_service"));
    match named {
        Some(_) => detected,
        None => Resource::builder()
            .with_service_name(Value::from(DEFAULT_SERVICE_NAME))
            .build(),
    }
}

/// The service name a resource carries, for the `service` key of log lines.
pub fn service_name(resource: &Resource) -> String {
    resource
        .get(&Key::from_static_str("service.name"))
        .map_or_else(
            || DEFAULT_SERVICE_NAME.to_owned(),
            |value| value.to_string(),
        )
}

/// `OTEL_SDK_DISABLED=true`: the SDK still assigns trace ids (logs keep their correlation ids)
/// but exports nothing. opentelemetry-rust does not implement the variable itself.
pub fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Builds the tracer provider. Must run inside a Tokio runtime: the tonic channel spawns its
/// connection task on it. Spans are exported only when the SDK is enabled.
pub fn provider(resource: Resource, registry: &Registry) -> Result<SdkTracerProvider, TracesError> {
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if sdk_disabled() {
        return Ok(builder.build());
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(endpoint) = endpoint_from_env() {
        exporter = exporter.with_endpoint(endpoint);
    }
    let exporter = CountingExporter::new(exporter.build()?, registry)?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// The OTLP endpoint from the environment, with `http://` added when the scheme is missing
/// (the spec's own example sets `localhost:4317`, which tonic would reject).
fn endpoint_from_env() -> Option<String> {
    let raw = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .filter_map(|name| std::env::var(name).ok())
    .map(|value| value.trim().to_owned())
    .find(|value| !value.is_empty())?;
    if raw.contains("://") {
        Some(raw)
    } else {
        Some(format!("http://{raw}"))
    }
}

/// Wraps an exporter to count exported and dropped spans on `/metrics` and to log failures at
/// most once per [`FAILURE_LOG_INTERVAL`].
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    exported: IntCounter,
    dropped: IntCounter,
    /// Seconds since `started` of the last failure line, 0 for never: a lock-free rate limit.
    last_failure_log: Arc<AtomicU64>,
    started: Instant,
}

impl<E: SpanExporter> CountingExporter<E> {
    fn new(inner: E, registry: &Registry) -> Result<Self, prometheus::Error> {
        let exported = IntCounter::new(
            "otel_spans_exported_total",
            "Spans accepted by the OTLP collector",
        )?;
        let dropped = IntCounter::new(
            "otel_spans_dropped_total",
            "Spans lost because the OTLP collector could not be reached or refused them",
        )?;
        registry.register(Box::new(exported.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        Ok(Self {
            inner,
            exported,
            dropped,
            last_failure_log: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        })
    }

    fn log_failure(&self, spans: usize, error: &dyn std::fmt::Display) {
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.last_failure_log.load(Ordering::Relaxed);
        let due = last == 0 || now >= last + FAILURE_LOG_INTERVAL.as_secs();
        if due
            && self
                .last_failure_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = spans as u64,
                dropped_total = self.dropped.get(),
                error = %error,
                "Trace export failed; spans dropped (logged at most every 30 s, see otel_spans_dropped_total)"
            );
        }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.exported.inc_by(spans as u64),
            Err(error) => {
                self.dropped.inc_by(spans as u64);
                self.log_failure(spans, error);
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
