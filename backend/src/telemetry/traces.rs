//! The OpenTelemetry tracer provider: OTLP/gRPC through a batch processor, configured by the
//! standard environment, with export failures counted and logged at a bounded rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::{Context, Key, Value};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanExporter,
    SpanProcessor,
};
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
    let stats = ExportStats::register(registry)?;
    let exporter = CountingExporter {
        inner: exporter.build()?,
        stats: stats.clone(),
        last_failure_log: Arc::new(AtomicU64::new(0)),
        started: Instant::now(),
    };
    // The batch config reads OTEL_BSP_*; only the queue's default is ours.
    let mut batch = BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        batch = batch.with_max_queue_size(DEFAULT_QUEUE_SIZE);
    }
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch.build())
        .build();
    Ok(builder
        .with_span_processor(CountingProcessor {
            inner: processor,
            stats,
        })
        .build())
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

/// Spans the batch queue holds at most. The specification's 2048 overflows within a second at
/// 2,000 requests/s (three spans each) on a busy machine; 32,768 spans (a few tens of MB at
/// most) ride out seconds of collector trouble. `OTEL_BSP_MAX_QUEUE_SIZE` overrides it.
const DEFAULT_QUEUE_SIZE: usize = 32_768;

/// The trace pipeline's own counters, on `/metrics`: with them, lost spans are visible.
#[derive(Debug, Clone)]
struct ExportStats {
    /// Sampled spans handed to the batch processor.
    ended: IntCounter,
    /// Spans the collector accepted.
    exported: IntCounter,
    /// Spans lost: refused or unreachable collector, or a full queue (counted at shutdown).
    dropped: IntCounter,
}

impl ExportStats {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(Self {
            ended: counter(
                "otel_spans_ended_total",
                "Sampled spans handed to the batch processor for export",
            )?,
            exported: counter(
                "otel_spans_exported_total",
                "Spans accepted by the OTLP collector",
            )?,
            dropped: counter(
                "otel_spans_dropped_total",
                "Spans lost: collector unreachable or refusing, or export queue full",
            )?,
        })
    }
}

/// Counts the spans that enter the batch processor, so that what a full queue drops (the SDK
/// only counts it internally) is accounted for at shutdown.
#[derive(Debug)]
struct CountingProcessor<P> {
    inner: P,
    stats: ExportStats,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.stats.ended.inc();
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.inner.shutdown_with_timeout(timeout);
        let s = &self.stats;
        let lost = s
            .ended
            .get()
            .saturating_sub(s.exported.get() + s.dropped.get());
        if lost > 0 {
            s.dropped.inc_by(lost);
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = lost,
                "Spans dropped because the export queue was full or the final flush timed out \
                 (raise OTEL_BSP_MAX_QUEUE_SIZE)"
            );
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Wraps an exporter to count exported and dropped spans on `/metrics` and to log failures at
/// most once per [`FAILURE_LOG_INTERVAL`].
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    stats: ExportStats,
    /// Seconds since `started` of the last failure line, 0 for never: a lock-free rate limit.
    last_failure_log: Arc<AtomicU64>,
    started: Instant,
}

impl<E: SpanExporter> CountingExporter<E> {
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
                dropped_total = self.stats.dropped.get(),
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
            Ok(()) => self.stats.exported.inc_by(spans as u64),
            Err(error) => {
                self.stats.dropped.inc_by(spans as u64);
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
