//! Telemetry wiring: JSON logs on stdout, OpenTelemetry traces, Prometheus metrics.
//!
//! The subscriber is built separately from being installed, so tests choose the sink; the
//! returned [`TelemetryGuard`] flushes spans with a bounded wait when the service stops.

pub mod exemplars;
pub mod hex;
pub mod logs;
pub mod metrics;
pub mod openmetrics;
pub mod otlp;
pub mod process;
pub mod propagation;
pub mod stdout;
pub mod traces;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogLevel;
use logs::{JsonLogLayer, LineSink};

/// Libraries whose INFO and DEBUG events are noise in a service log; their warnings still show.
const QUIET_LIBRARIES: [&str; 6] = [
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
];

/// Keeps the tracer provider and the log flusher alive; [`TelemetryGuard::shutdown`] flushes
/// both.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    flusher: Option<stdout::Flusher>,
}

impl TelemetryGuard {
    /// Exports the spans still queued, waiting at most `timeout` (a collector that is down must
    /// not hold the process: opentelemetry's plain `shutdown()` can hang on a full queue).
    pub fn shutdown(self, timeout: Duration) {
        if let Err(error) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(error = %error, "Trace provider did not flush cleanly");
        }
        if let Some(flusher) = self.flusher {
            flusher.stop();
        }
    }

    /// Keeps `flusher` running until shutdown, then writes what it still holds.
    pub fn with_flusher(mut self, flusher: stdout::Flusher) -> Self {
        self.flusher = Some(flusher);
        self
    }
}

/// Builds the subscriber: the JSON log layer at `level` writing to `sink`, and the
/// OpenTelemetry layer exporting this crate's spans through `provider`.
pub fn subscriber(
    service: &str,
    level: LogLevel,
    sink: impl LineSink,
    provider: &SdkTracerProvider,
) -> impl Subscriber + Send + Sync {
    let tracer = provider.tracer("backend");
    let spans = Targets::new().with_target("backend", Level::TRACE);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(spans);
    let logs = JsonLogLayer::new(service, sink).with_filter(log_filter(level));
    Registry::default().with(otel).with(logs)
}

/// Installs the global subscriber and a panic hook that logs panics as contract lines.
pub fn install(
    service: &str,
    level: LogLevel,
    sink: impl LineSink,
    provider: SdkTracerProvider,
) -> Result<TelemetryGuard, tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(subscriber(service, level, sink, &provider))?;
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %payload, location = %location, "Panic");
    }));
    Ok(TelemetryGuard {
        provider,
        flusher: None,
    })
}

fn log_filter(level: LogLevel) -> Targets {
    let max = match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Off => LevelFilter::OFF,
    };
    QUIET_LIBRARIES
        .iter()
        .fold(Targets::new().with_default(max), |targets, lib| {
            targets.with_target(*lib, max.min(LevelFilter::WARN))
        })
}
