//! The Prometheus collectors of the contract, owned by one struct on an injected registry, and
//! the two expositions of them: the classic text format, and OpenMetrics with exemplars.

use std::sync::Arc;
use std::time::Duration;

use std::io::Write as _;

use prometheus::proto::{Metric, MetricType};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use super::exemplars::{Exemplar, ExemplarStore, SLOTS, Stored};
use super::openmetrics::{self, ExemplarSource};

/// Content type of the text exposition format that Prometheus scrapes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The contract's histogram buckets, in seconds.
pub const DURATION_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label names of both request metrics, in order.
pub const LABELS: [&str; 3] = ["method", "path", "status_code"];

/// The `path` label of requests that matched no route: one shared series instead of one per URL.
pub const UNMATCHED_PATH: &str = "<unmatched>";

/// The request counter and duration histogram, plus the process collector, on one registry,
/// and the newest exemplar of each of the histogram's buckets.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    exemplars: Arc<ExemplarStore>,
    /// Whether observations keep exemplars (off when no span is exported).
    keep_exemplars: bool,
}

/// Why the collectors could not be set up or encoded.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl HttpMetrics {
    /// Registers the request metrics and the process collector on `registry`.
    pub fn new(registry: Registry) -> Result<Self, MetricsError> {
        let requests = IntCounterVec::new(Opts::new(REQUESTS, REQUESTS_HELP), &LABELS)?;
        let duration = HistogramVec::new(
            HistogramOpts::new(DURATION, DURATION_HELP).buckets(DURATION_BUCKETS.to_vec()),
            &LABELS,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(super::process::ProcessMetrics::for_self()?))?;
        Ok(Self {
            registry,
            requests,
            duration,
            exemplars: Arc::default(),
            keep_exemplars: true,
        })
    }

    /// Keeps exemplars (the default) or not: without a span exporter (`OTEL_SDK_DISABLED`) no
    /// trace id they could name is ever exported.
    pub fn with_exemplars(mut self, keep: bool) -> Self {
        self.keep_exemplars = keep;
        self
    }

    /// Counts one finished request. `path` must be a route template or [`UNMATCHED_PATH`] and
    /// `method` a normalised method, so that clients cannot create series at will. `exemplar`
    /// is the request's SERVER span when it is sampled: it may become its bucket's exemplar.
    pub fn observe(
        &self,
        method: &str,
        path: &str,
        status: u16,
        elapsed: Duration,
        exemplar: Option<Exemplar>,
    ) {
        if let Some(ids) = exemplar.filter(|_| self.keep_exemplars) {
            self.exemplars.record(method, path, status, elapsed, ids);
        }
        let status = status.to_string();
        let labels = [method, path, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Encodes every collector in the text exposition format. The request families are declared
    /// (HELP and TYPE) even before their first observation: the `prometheus` crate leaves out a
    /// labelled family with no series, and a fresh start must still show the contract's names.
    pub fn encode(&self) -> Result<Vec<u8>, MetricsError> {
        let families = self.registry.gather();
        let mut body = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&families, &mut body)?;
        for (name, help, kind) in [
            (REQUESTS, REQUESTS_HELP, "counter"),
            (DURATION, DURATION_HELP, "histogram"),
        ] {
            if !families.iter().any(|family| family.name() == name) {
                // Writing to a Vec cannot fail.
                let _ = write!(body, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            }
        }
        Ok(body)
    }

    /// Encodes every collector in OpenMetrics 1.0 text, the request histogram's buckets and
    /// the request counter with their exemplars, the request families declared even before
    /// their first observation, ending with `# EOF`.
    pub fn encode_openmetrics(&self) -> Vec<u8> {
        let families = self.registry.gather();
        let mut body = String::with_capacity(12 * 1024);
        openmetrics::encode(&families, self, &mut body);
        for (name, help, kind) in [
            (REQUESTS, REQUESTS_HELP, MetricType::COUNTER),
            (DURATION, DURATION_HELP, MetricType::HISTOGRAM),
        ] {
            if !families.iter().any(|family| family.name() == name) {
                openmetrics::declare(name, help, kind, &mut body);
            }
        }
        openmetrics::eof(&mut body);
        body.into_bytes()
    }

    /// The exemplars of the request series `metric` labels.
    fn series_exemplars(&self, metric: &Metric) -> Option<[Option<Stored>; SLOTS]> {
        let label = |name: &str| {
            metric
                .get_label()
                .iter()
                .find(|pair| pair.name() == name)
                .map(|pair| pair.value())
        };
        let status = label("status_code")?.parse().ok()?;
        Some(
            self.exemplars
                .buckets(label("method")?, label("path")?, status),
        )
    }
}

impl ExemplarSource for HttpMetrics {
    fn buckets(&self, family: &str, metric: &Metric) -> Option<Vec<Option<Stored>>> {
        (family == DURATION)
            .then(|| self.series_exemplars(metric))
            .flatten()
            .map(Vec::from)
    }

    /// The newest of the series' bucket exemplars: the request counted last, as far as kept.
    fn counter(&self, family: &str, metric: &Metric) -> Option<Stored> {
        if family != REQUESTS {
            return None;
        }
        self.series_exemplars(metric)?
            .into_iter()
            .flatten()
            .max_by_key(|stored| stored.unix_ms)
    }
}

const REQUESTS: &str = "fastapi_requests_total";
const REQUESTS_HELP: &str = "Total HTTP requests";
const DURATION: &str = "fastapi_request_duration_seconds";
const DURATION_HELP: &str = "HTTP request duration in seconds";

/// The server's connection counters: what happens before a request exists.
#[derive(Clone)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: IntGauge,
    /// Connections answered 503 and closed at once because the connection cap was reached.
    pub shed: IntCounter,
    /// Idle connections closed to make room for new ones.
    pub evicted: IntCounter,
    /// Failed `accept` calls (out of descriptors, out of memory...).
    pub accept_errors: IntCounter,
}

impl ConnectionMetrics {
    /// Registers the counters on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, MetricsError> {
        let open = IntGauge::new("backend_connections_open", "Client connections open now")?;
        registry.register(Box::new(open.clone()))?;
        let counter = |name: &str, help: &str| -> Result<IntCounter, MetricsError> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(Self {
            open,
            shed: counter(
                "backend_connections_shed_total",
                "Connections answered 503 and closed at once: the connection cap was reached",
            )?,
            evicted: counter(
                "backend_connections_evicted_total",
                "Idle connections closed to make room for new ones near the connection cap",
            )?,
            accept_errors: counter(
                "backend_accept_errors_total",
                "Failed accepts of new connections (descriptors or memory exhausted)",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_contract_series() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        metrics.observe(
            "GET",
            "/api/users/{user_id}",
            200,
            Duration::from_millis(30),
            None,
        );
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(text.contains("# TYPE fastapi_requests_total counter"));
        assert!(text.contains("# TYPE fastapi_request_duration_seconds histogram"));
        assert!(text.contains(
            r#"fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="200"} 1"#
        ));
        assert!(text.contains(r#"le="0.05"} 1"#));
        assert!(text.contains(r#"le="0.025"} 0"#));
        assert!(text.contains("process_cpu_seconds_total"));
        assert!(text.contains("process_resident_memory_bytes"));
    }

    #[test]
    fn a_fresh_registry_declares_the_request_families() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(text.contains("# HELP fastapi_requests_total Total HTTP requests\n"));
        assert!(text.contains("# TYPE fastapi_requests_total counter\n"));
        assert!(text.contains("# TYPE fastapi_request_duration_seconds histogram\n"));
        metrics.observe("GET", "/health", 200, Duration::from_millis(1), None);
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert_eq!(text.matches("# TYPE fastapi_requests_total").count(), 1);
        assert_eq!(
            text.matches("# TYPE fastapi_request_duration_seconds")
                .count(),
            1
        );
    }

    const IDS: Exemplar = Exemplar {
        trace_id: *b"\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36",
        span_id: *b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7",
    };
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn openmetrics_has_bucket_and_counter_exemplars_and_ends_with_eof() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        let route = "/api/users/{user_id}";
        metrics.observe("GET", route, 200, Duration::from_millis(30), Some(IDS));
        let text = String::from_utf8(metrics.encode_openmetrics()).unwrap();
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert!(text.contains("# TYPE fastapi_requests counter\n"), "{text}");
        assert!(text.contains("# HELP fastapi_requests Total HTTP requests\n"));
        assert!(!text.contains("# TYPE fastapi_requests_total"));
        assert!(
            text.contains("# TYPE process_cpu_seconds counter\n"),
            "{text}"
        );
        assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
        let exemplar = format!(r#" # {{trace_id="{TRACE}",span_id="{SPAN}"}}"#);
        let counter = text
            .lines()
            .find(|l| l.starts_with("fastapi_requests_total{"))
            .unwrap();
        assert!(
            counter.starts_with(&format!(
                r#"fastapi_requests_total{{method="GET",path="{route}",status_code="200"}} 1{exemplar} 1 "#
            )),
            "{counter}"
        );
        let bucket = |le: &str| {
            text.lines()
                .find(|l| l.contains("_bucket{") && l.contains(&format!(r#"le="{le}""#)))
                .unwrap_or_else(|| panic!("no le={le} in {text}"))
        };
        assert!(
            bucket("0.05").contains(&format!("}} 1{exemplar} 0.03 ")),
            "{}",
            bucket("0.05")
        );
        // Buckets below and above the observation carry no exemplar; le values are canonical.
        assert!(!bucket("0.025").contains(" # "));
        assert!(!bucket("1.0").contains(" # "));
        assert!(bucket("10.0").ends_with("} 1"));
        assert!(bucket("+Inf").ends_with("} 1"));
    }

    #[test]
    fn the_text_format_stays_without_exemplars() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        metrics.observe("GET", "/health", 200, Duration::from_millis(3), Some(IDS));
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(!text.contains(TRACE));
        assert!(!text.contains(" # "));
        assert!(!text.contains("# EOF"));
        assert!(text.contains(r#"le="1"} 1"#), "{text}");
    }

    #[test]
    fn a_fresh_openmetrics_exposition_declares_the_request_families() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        let text = String::from_utf8(metrics.encode_openmetrics()).unwrap();
        assert!(text.contains(
            "# TYPE fastapi_requests counter\n# HELP fastapi_requests Total HTTP requests\n"
        ));
        assert!(text.contains("# TYPE fastapi_request_duration_seconds histogram\n"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn requests_without_a_sampled_span_give_no_exemplar() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        metrics.observe("GET", "/health", 200, Duration::from_millis(3), None);
        let text = String::from_utf8(metrics.encode_openmetrics()).unwrap();
        assert!(text.contains("fastapi_requests_total{"));
        assert!(!text.contains(" # {"), "{text}");
    }
}
