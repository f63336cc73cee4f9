//! The OpenTelemetry tracer provider: OTLP/gRPC through a batch processor, configured by the
//! standard environment, with every span counted from the moment it ends to its export or loss.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::{Context, Key, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanProcessor,
};
use prometheus::{IntCounter, Registry};

use super::otlp::{ConfigError, ExportCounters, OtlpConfig, OtlpExporter};

/// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "fastapi-backend";

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// The OTLP exporter's environment is invalid.
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] ConfigError),
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
    let stats = ExportStats::register(registry)?;
    let exporter = OtlpExporter::new(&OtlpConfig::from_env()?, stats.counters.clone())?;
    // The batch config reads OTEL_BSP_*; only the queue's default is ours, and the queue size
    // is set here so that the counting processor knows it.
    let capacity = std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|raw| raw.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_QUEUE_SIZE);
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(capacity)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    Ok(builder
        .with_span_processor(CountingProcessor {
            inner: processor,
            stats,
            capacity,
            queue_full: AtomicU64::new(0),
        })
        .build())
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
    /// Spans exported, and spans lost: refused or unreachable collector, or a full queue
    /// (counted at shutdown).
    counters: ExportCounters,
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
            counters: ExportCounters {
                pending: Arc::new(AtomicUsize::new(0)),
                exported: counter(
                    "otel_spans_exported_total",
                    "Spans accepted by the OTLP collector",
                )?,
                dropped: counter(
                    "otel_spans_dropped_total",
                    "Spans lost: collector unreachable or refusing, or export queue full",
                )?,
            },
        })
    }
}

/// Counts the spans that enter the batch processor, and drops (and counts, at once) those its
/// queue has no room for: the SDK drops them too, but only counts them internally.
#[derive(Debug)]
struct CountingProcessor<P> {
    inner: P,
    stats: ExportStats,
    /// The batch processor's queue size: never more spans are pending than this, so its queue
    /// never overflows on its own.
    capacity: usize,
    /// Spans dropped here because the queue was full, for the shutdown summary.
    queue_full: AtomicU64,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.stats.ended.inc();
        }
        let pending = &self.stats.counters.pending;
        if pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            pending.fetch_sub(1, Ordering::AcqRel);
            self.stats.counters.dropped.inc();
            self.queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.inner.shutdown_with_timeout(timeout);
        let ended = self.stats.ended.get();
        let ExportCounters {
            exported, dropped, ..
        } = &self.stats.counters;
        let lost = ended.saturating_sub(exported.get() + dropped.get());
        let queue_full = self.queue_full.load(Ordering::Relaxed);
        if queue_full > 0 {
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = queue_full,
                "Spans dropped because the export queue was full (counted in \
                 otel_spans_dropped_total as it happened; raise OTEL_BSP_MAX_QUEUE_SIZE)"
            );
        }
        if lost > 0 {
            dropped.inc_by(lost);
            tracing::warn!(
                target: "backend::telemetry",
                dropped_spans = lost,
                "Spans still queued when the final flush timed out were dropped"
            );
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
