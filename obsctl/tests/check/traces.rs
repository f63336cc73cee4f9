//! The trace checks on obsctl's embedded OTLP receiver, fed over real OTLP/gRPC by a
//! `TraceServiceClient`: nothing received, spans without `service.name`, no SERVER span.

use std::sync::Arc;

use obsctl::check::context::CheckContext;
use obsctl::check::model::Status;
use obsctl::sources::otlp::OtlpReceiver;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::helpers::{SERVICE, assert_check, bounded, context, run_checks};

/// A string attribute.
pub fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// A span of `kind` in trace `trace_id` (16 bytes).
pub fn span(trace_id: [u8; 16], span_id: u8, kind: SpanKind, name: &str) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: vec![span_id; 8],
        name: name.to_owned(),
        kind: kind as i32,
        start_time_unix_nano: 1_764_063_000_000_000_000,
        end_time_unix_nano: 1_764_063_000_004_000_000,
        attributes: vec![attribute("http.route", "/api/users/{user_id}")],
        ..Default::default()
    }
}

/// An Export request of `spans` under a resource with `resource` attributes.
pub fn export(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A receiver on an ephemeral loopback port.
pub async fn receiver() -> Arc<OtlpReceiver> {
    let bind = "127.0.0.1:0".parse().expect("a literal address");
    Arc::new(
        OtlpReceiver::start(bind)
            .await
            .expect("the receiver binds an ephemeral port"),
    )
}

/// Sends `request` to `receiver` over OTLP/gRPC, as an exporter does.
pub async fn send(receiver: &OtlpReceiver, request: ExportTraceServiceRequest) {
    let mut client = bounded(TraceServiceClient::connect(receiver.endpoint()))
        .await
        .expect("connect to the receiver");
    bounded(client.export(request))
        .await
        .expect("the receiver accepts the export");
}

fn with_receiver(receiver: &Arc<OtlpReceiver>) -> CheckContext {
    let mut ctx = context();
    ctx.otlp = Some(Arc::clone(receiver));
    ctx
}

#[tokio::test]
async fn server_spans_of_the_service_pass() {
    let receiver = receiver().await;
    let spans = vec![
        span([7; 16], 1, SpanKind::Server, "GET /api/users/{user_id}"),
        span([7; 16], 2, SpanKind::Internal, "get_user"),
    ];
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    let report = run_checks(&with_receiver(&receiver)).await;
    assert_check(
        &report,
        "traces-otlp",
        Status::Pass,
        &["2 spans", "1 of kind SERVER", "GET /api/users/{user_id}"],
    );
}

#[tokio::test]
async fn a_receiver_that_gets_nothing_fails_with_no_spans() {
    let receiver = receiver().await;
    let report = run_checks(&with_receiver(&receiver)).await;
    assert_check(
        &report,
        "traces-otlp",
        Status::Fail,
        &["no spans arrived", &receiver.endpoint()],
    );
}

#[tokio::test]
async fn spans_without_service_name_fail_mentioning_service_name() {
    let receiver = receiver().await;
    let spans = vec![span(
        [8; 16],
        1,
        SpanKind::Server,
        "GET /api/users/{user_id}",
    )];
    send(&receiver, export(Vec::new(), spans)).await;
    let report = run_checks(&with_receiver(&receiver)).await;
    assert_check(
        &report,
        "traces-otlp",
        Status::Fail,
        &["1 without service.name", "OTEL_SERVICE_NAME"],
    );
}

#[tokio::test]
async fn spans_of_another_service_fail_naming_the_service_seen() {
    // What an SDK sends when OTEL_SERVICE_NAME is not set.
    let receiver = receiver().await;
    let spans = vec![span(
        [9; 16],
        1,
        SpanKind::Server,
        "GET /api/users/{user_id}",
    )];
    let resource = vec![attribute("service.name", "unknown_service:python")];
    send(&receiver, export(resource, spans)).await;
    let report = run_checks(&with_receiver(&receiver)).await;
    assert_check(
        &report,
        "traces-otlp",
        Status::Fail,
        &[
            "none with service.name \"fastapi-backend\"",
            "unknown_service:python",
        ],
    );
}

#[tokio::test]
async fn spans_of_the_service_without_a_server_span_fail() {
    // Manual spans only, no HTTP server instrumentation.
    let receiver = receiver().await;
    let spans = vec![
        span([10; 16], 1, SpanKind::Internal, "get_user"),
        span([10; 16], 2, SpanKind::Client, "SELECT users"),
    ];
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    let report = run_checks(&with_receiver(&receiver)).await;
    assert_check(
        &report,
        "traces-otlp",
        Status::Fail,
        &["2 spans of \"fastapi-backend\"", "no SERVER span"],
    );
}

/// A SERVER span as an HTTP instrumentation writes it: method, route and status attributes
/// (stable or older names), status Error when `error`.
fn http_span(name: &str, method: (&str, &str), status: (&str, i64), error: bool) -> Span {
    let mut span = span([9; 16], 3, SpanKind::Server, name);
    span.attributes.push(attribute(method.0, method.1));
    span.attributes.push(KeyValue {
        key: status.0.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(status.1)),
        }),
        ..Default::default()
    });
    if error {
        span.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
            code: opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32,
            ..Default::default()
        });
    }
    span
}

async fn shape_report(spans: Vec<Span>) -> obsctl::check::report::CheckReport {
    let receiver = receiver().await;
    send(
        &receiver,
        export(vec![attribute("service.name", SERVICE)], spans),
    )
    .await;
    run_checks(&with_receiver(&receiver)).await
}

const GET: (&str, &str) = ("http.request.method", "GET");

#[tokio::test]
async fn server_spans_shaped_by_the_http_conventions_pass_in_either_vocabulary() {
    let report = shape_report(vec![
        http_span(
            "GET /api/users/{user_id}",
            GET,
            ("http.response.status_code", 200),
            false,
        ),
        http_span(
            "GET /api/users/{user_id}",
            GET,
            ("http.response.status_code", 404),
            false,
        ),
        http_span(
            "GET /api/users/{user_id}",
            ("http.method", "GET"),
            ("http.status_code", 500),
            true,
        ),
    ])
    .await;
    assert_check(
        &report,
        "traces-server-spans",
        Status::Pass,
        &["3 SERVER spans, 1 distinct names"],
    );
}

#[tokio::test]
async fn misshapen_server_spans_warn_naming_each_defect() {
    let mut raw = http_span(
        "GET /api/users/17",
        GET,
        ("http.response.status_code", 200),
        false,
    );
    raw.attributes.retain(|kv| kv.key != "http.route");
    let report = shape_report(vec![
        raw,
        http_span(
            "GET /api/users/{user_id}",
            GET,
            ("http.response.status_code", 503),
            false,
        ),
        span([9; 16], 4, SpanKind::Server, "GET /api/users/{user_id}"),
    ])
    .await;
    assert_check(
        &report,
        "traces-server-spans",
        Status::Warn,
        &[
            "span names with the raw URL (one name per id) (1 of 3 SERVER spans)",
            "\"GET /api/users/17\"",
            "5xx answers without status Error (1 of 3 SERVER spans)",
            "answered 503",
            "spans without http.request.method (1 of 3 SERVER spans)",
        ],
    );
}

#[tokio::test]
async fn a_4xx_span_marked_error_is_a_warning() {
    // The contract asks for Error on 5xx; the HTTP conventions leave 4xx unset on SERVER spans.
    let report = shape_report(vec![http_span(
        "GET /api/users/{user_id}",
        GET,
        ("http.response.status_code", 404),
        true,
    )])
    .await;
    assert_check(
        &report,
        "traces-server-spans",
        Status::Warn,
        &[
            "4xx answers marked Error (1 of",
            "leave it unset on 4xx ones",
        ],
    );
}
