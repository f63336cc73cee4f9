//! The outermost hoop: one SERVER span, one metrics observation and one `Request completed`
//! log line for every request, whatever its route or outcome (panics included).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use salvo::http::{Method, StatusCode, Version};
use salvo::prelude::*;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::error::ApiError;
use crate::telemetry::exemplars::Exemplar;
use crate::telemetry::hex::{SpanHex, TraceHex};
use crate::telemetry::metrics::{HttpMetrics, UNMATCHED_PATH};
use crate::telemetry::propagation::parent_context;

/// Measures every request; see the module docs.
pub struct Observe {
    metrics: HttpMetrics,
}

impl Observe {
    /// A hoop recording into `metrics`.
    pub fn new(metrics: HttpMetrics) -> Self {
        Self { metrics }
    }
}

#[async_trait]
impl Handler for Observe {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let started = Instant::now();
        let method = method_label(req.method());
        // Routing has run before service hoops: the template is known, empty when unmatched.
        let route = match req.matched_path() {
            "" => None,
            template => Some(format!("/{template}")),
        };
        let endpoint = req.uri().path().to_owned();
        let span = server_span(method, route.as_deref(), &endpoint, req.version());
        // An absent or malformed traceparent leaves the span as a new root.
        let _ = span.set_parent(parent_context(req.headers()));
        let mut record = Record {
            metrics: &self.metrics,
            started,
            method,
            route,
            endpoint,
            span,
            done: false,
        };

        let outcome = AssertUnwindSafe(ctrl.call_next(req, depot, res))
            .catch_unwind()
            .instrument(record.span.clone())
            .await;
        if outcome.is_err() {
            // The panic hook has already logged the panic itself.
            res.render(ApiError::internal("internal server error"));
            ctrl.skip_rest();
        }
        record.finish(res.status_code.unwrap_or(StatusCode::OK).as_u16());
    }
}

/// Status of a request whose client went away before its answer (nginx's convention): hyper
/// then drops the handler, and the request is still counted, logged and traced once.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The one account of a request: made by [`Record::finish`], or on drop (the client closed the
/// connection mid-request) with [`CLIENT_CLOSED_REQUEST`].
struct Record<'a> {
    metrics: &'a HttpMetrics,
    started: Instant,
    method: &'static str,
    route: Option<String>,
    endpoint: String,
    span: Span,
    done: bool,
}

impl Record<'_> {
    fn finish(&mut self, status: u16) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let route = self.route.as_deref().unwrap_or(UNMATCHED_PATH);
        let ids = span_context(&self.span);
        self.metrics
            .observe(self.method, route, status, elapsed, exemplar_of(&ids));
        self.span
            .record("http.response.status_code", i64::from(status));
        if status >= 500 {
            self.span.record("otel.status_code", "ERROR");
        }
        let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
        log_completed(&ids, &self.endpoint, self.method, status, duration_ms);
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.finish(CLIENT_CLOSED_REQUEST);
    }
}

/// Accounts for a request that hyper refused before the service saw it (a malformed request
/// line or header, an over-long URI, too many or too large headers): counted under
/// `method="_OTHER"`, `path="<unmatched>"` (nothing of it was parsed), logged with an empty
/// `endpoint`, and traced as a SERVER span named `HTTP`.
pub fn record_rejected(metrics: &HttpMetrics, status: u16, elapsed: std::time::Duration) {
    const METHOD: &str = "_OTHER";
    let span = server_span(METHOD, None, "", Version::HTTP_11);
    let ids = span_context(&span);
    metrics.observe(METHOD, UNMATCHED_PATH, status, elapsed, exemplar_of(&ids));
    span.record("otel.name", "HTTP");
    span.record("http.response.status_code", i64::from(status));
    let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    log_completed(&ids, "", METHOD, status, duration_ms);
}

/// The SERVER span, named `{METHOD} {route}` (just `{METHOD}` when no route matched, as the
/// HTTP semantic conventions say), with only attributes the client cannot inflate.
fn server_span(method: &str, route: Option<&str>, path: &str, version: Version) -> Span {
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = path,
        url.scheme = "http",
        network.protocol.name = "http",
        network.protocol.version = protocol_version(version),
    );
    if let Some(route) = route {
        span.record("http.route", route);
    }
    span
}

/// The ids of a request's SERVER span, looked up once for its metrics and its log line (the
/// look-up builds an OpenTelemetry context).
fn span_context(span: &Span) -> SpanContext {
    span.context().span().span_context().clone()
}

/// The exemplar of a request's metrics: its SERVER span's ids, when the span is sampled (an
/// unsampled span is never exported, so its ids would lead nowhere).
fn exemplar_of(ids: &SpanContext) -> Option<Exemplar> {
    (ids.is_valid() && ids.is_sampled()).then(|| Exemplar {
        trace_id: ids.trace_id().to_bytes(),
        span_id: ids.span_id().to_bytes(),
    })
}

/// The one request line, carrying the request span's ids (explicitly: the log layer does not
/// look into spans, and the event is not copied into the span as an event).
fn log_completed(ids: &SpanContext, endpoint: &str, method: &str, status: u16, duration_ms: f64) {
    let trace_id = TraceHex::new(&ids.trace_id().to_bytes());
    let span_id = SpanHex::new(&ids.span_id().to_bytes());
    let status_code = i64::from(status);
    macro_rules! completed {
        ($level:expr) => {
            tracing::event!(
                $level,
                endpoint,
                method,
                status_code,
                duration_ms,
                trace_id = trace_id.as_str(),
                span_id = span_id.as_str(),
                "Request completed"
            )
        };
    }
    match status {
        500.. => completed!(tracing::Level::ERROR),
        400..=499 => completed!(tracing::Level::WARN),
        _ => completed!(tracing::Level::INFO),
    }
}

/// Methods outside the HTTP standard collapse into `_OTHER`, as the semantic conventions do, so
/// that a client cannot create metric series by inventing methods.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
