//! The OpenTelemetry tracer provider: OTLP/gRPC through a batch processor, configured by the
//! standard environment, with every span counted from the moment it ends to its export or loss.

use opentelemetry::{Key, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus::{IntCounter, Registry};

use super::otlp::batch::{BatchProcessor, BatchSettings};
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
    /// The export thread could not be started.
    #[error("trace export thread: {0}")]
    Thread(#[source] std::io::Error),
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

/// Builds the tracer provider. Spans are exported only when the SDK is enabled, through
/// [`BatchProcessor`] (configured by `OTEL_BSP_*`) and [`OtlpExporter`].
pub fn provider(resource: Resource, registry: &Registry) -> Result<SdkTracerProvider, TracesError> {
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if sdk_disabled() {
        return Ok(builder.build());
    }
    let stats = ExportStats::register(registry)?;
    let settings = BatchSettings::from_env();
    let mut config = OtlpConfig::from_env()?;
    config.timeout = config.timeout.min(settings.export_timeout);
    let exporter = OtlpExporter::new(&config, stats.counters.clone())?;
    let processor = BatchProcessor::start(exporter, settings, stats.counters, stats.ended)
        .map_err(TracesError::Thread)?;
    Ok(builder.with_span_processor(processor).build())
}

/// The trace pipeline's own counters, on `/metrics`: with them, lost spans are visible.
#[derive(Debug, Clone)]
struct ExportStats {
    /// Sampled spans handed to the batch processor.
    ended: IntCounter,
    /// Spans exported, and spans lost: refused or unreachable collector, or a full queue.
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
