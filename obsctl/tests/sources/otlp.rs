//! The embedded OTLP/gRPC receiver, fed by a real tonic `TraceServiceClient`.

use std::time::Duration;

use obsctl::sources::otlp::{
    AttrValue, OtlpOptions, OtlpReceiver, ReceivedSpan, SpanKind, SpanStatus,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use crate::helpers::bounded;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn server_span(trace: u8, span: u8, parent: Option<u8>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![span; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: "GET /api/users/{user_id}".into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_005_000_000,
        attributes: vec![
            str_kv("http.route", "/api/users/{user_id}"),
            kv("http.response.status_code", any_value::Value::IntValue(500)),
            kv("sampled", any_value::Value::BoolValue(true)),
            kv("ratio", any_value::Value::DoubleValue(0.5)),
        ],
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![str_kv("service.name", service), str_kv("run.id", "r1")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "backend".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

async fn start(max_spans: usize) -> OtlpReceiver {
    let bind = "127.0.0.1:0".parse().expect("literal address");
    OtlpReceiver::start_with(
        bind,
        OtlpOptions {
            max_spans,
            ..OtlpOptions::default()
        },
    )
    .await
    .expect("bind an ephemeral port")
}

async fn send(receiver: &OtlpReceiver, req: ExportTraceServiceRequest) {
    let mut client = TraceServiceClient::connect(receiver.endpoint())
        .await
        .expect("connect to the receiver");
    client.export(req).await.expect("export accepted");
}

#[tokio::test]
async fn received_spans_are_flattened_with_resource_and_hex_ids() {
    bounded(async {
        let receiver = start(100).await;
        assert!(receiver.endpoint().starts_with("http://127.0.0.1:"));
        send(
            &receiver,
            request("fastapi-backend", vec![server_span(0xab, 0x01, None)]),
        )
        .await;
        send(
            &receiver,
            request("fastapi-backend", vec![server_span(0xab, 0x02, Some(1))]),
        )
        .await;

        let spans = receiver.spans();
        assert_eq!(receiver.export_requests(), 2);
        assert_eq!(spans.len(), 2);
        let root: &ReceivedSpan = &spans[0];
        assert_eq!(root.trace_id(), "ab".repeat(16));
        assert_eq!(root.span_id(), "0101010101010101");
        assert_eq!(root.parent_span_id(), None);
        assert_eq!(
            spans[1].parent_span_id().map(|p| p.hex()).as_deref(),
            Some("0101010101010101")
        );
        assert_eq!(root.kind(), SpanKind::Server);
        assert_eq!(root.service_name(), Some("fastapi-backend"));
        assert_eq!(
            root.resource()
                .get("run.id")
                .expect("resource attribute")
                .as_str(),
            Some("r1")
        );
        assert_eq!(
            root.attributes()["http.response.status_code"].as_i64(),
            Some(500)
        );
        assert_eq!(root.attributes()["sampled"], AttrValue::Bool(true));
        assert_eq!(root.attributes()["ratio"], AttrValue::Double(0.5));
        assert_eq!(
            *root.status(),
            SpanStatus::Error {
                message: "boom".into()
            }
        );
        assert_eq!(root.scope_name(), "backend");
        assert_eq!(root.end_unix_nanos() - root.start_unix_nanos(), 5_000_000);
    })
    .await;
}

#[tokio::test]
async fn spans_beyond_the_cap_are_dropped_and_counted() {
    bounded(async {
        let receiver = start(3).await;
        let spans = (1..=5).map(|i| server_span(1, i, None)).collect();
        send(&receiver, request("svc", spans)).await;
        assert_eq!(receiver.spans().len(), 3);
        assert_eq!(receiver.dropped_spans(), 2);
    })
    .await;
}

#[tokio::test]
async fn wait_for_spans_returns_as_soon_as_the_predicate_holds() {
    bounded(async {
        let receiver = start(100).await;
        let endpoint = receiver.endpoint();
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut client = TraceServiceClient::connect(endpoint)
                .await
                .expect("connect");
            client
                .export(request("late", vec![server_span(2, 2, None)]))
                .await
                .expect("export");
        });
        let started = std::time::Instant::now();
        let spans = receiver
            .wait_for_spans(
                |s| s.iter().any(|x| x.service_name() == Some("late")),
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(spans.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(5));
        sender.await.expect("sender task");
    })
    .await;
}

#[tokio::test]
async fn wait_for_spans_gives_up_at_the_deadline() {
    bounded(async {
        let receiver = start(100).await;
        let started = std::time::Instant::now();
        let spans = receiver
            .wait_for_spans(|s| !s.is_empty(), Duration::from_millis(300))
            .await;
        assert!(spans.is_empty());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn dropping_the_receiver_stops_the_server() {
    bounded(async {
        let receiver = start(100).await;
        let addr = receiver.local_addr();
        drop(receiver);
        // The listener closes once the aborted task is dropped: connections are then refused.
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "receiver still listening on {addr} after drop");
    })
    .await;
}

#[tokio::test]
async fn binding_a_taken_port_is_a_typed_error() {
    bounded(async {
        let first = start(10).await;
        let err = OtlpReceiver::start(first.local_addr())
            .await
            .expect_err("port is taken");
        assert!(
            err.to_string().contains(&first.local_addr().to_string()),
            "{err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_opentelemetry_otlp_exporter_is_received() {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_otlp::WithExportConfig as _;
    bounded(async {
        let receiver = start(100).await;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.endpoint())
            .build()
            .expect("build exporter");
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("exporter-test")
                    .build(),
            )
            .build();
        // The simple processor blocks on export: end the span off the async workers.
        let ended = provider.clone();
        tokio::task::spawn_blocking(move || {
            let tracer = ended.tracer("obsctl-test");
            let mut span = tracer.start("GET /health");
            span.set_attribute(opentelemetry::KeyValue::new(
                "http.response.status_code",
                200i64,
            ));
            span.end();
        })
        .await
        .expect("span task");
        let spans = receiver
            .wait_for_spans(|s| !s.is_empty(), Duration::from_secs(10))
            .await;
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].service_name(), Some("exporter-test"));
        assert_eq!(spans[0].name(), "GET /health");
        assert_eq!(spans[0].scope_name(), "obsctl-test");
        assert_eq!(spans[0].trace_id().hex().len(), 32);
        assert_eq!(
            spans[0].attributes()["http.response.status_code"].as_i64(),
            Some(200)
        );
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    })
    .await;
}

#[tokio::test]
async fn the_receiver_listens_with_the_kernels_backlog_not_tokios_128() {
    let receiver = start(10).await;
    let port = receiver.local_addr().port();
    let filter = format!("sport = :{port}");
    let Ok(out) = std::process::Command::new("ss")
        .args(["-ltnH", &filter])
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs ss (iproute2)"
        );
        eprintln!("SKIPPED: no `ss` to read the backlog back");
        return;
    };
    // A listening socket's Send-Q is its backlog.
    let text = String::from_utf8_lossy(&out.stdout);
    let backlog: u32 = text
        .split_whitespace()
        .nth(2)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("no listening socket in {text:?}"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    assert_eq!(backlog, somaxconn.min(4096), "{text}");
}
