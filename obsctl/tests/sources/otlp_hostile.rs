//! The embedded OTLP receiver against hostile exporters, over real OTLP/gRPC on 127.0.0.1: a
//! 1 MiB resource attribute on 4,000 tiny spans (which once aborted obsctl: the resource was
//! copied into every span), floods of tiny and of empty spans (two bytes each on the wire,
//! several hundred once decoded into structs), many connections at once, malformed bytes. The
//! receiver keeps answering, stays within its byte budget, bounds every string it keeps, counts
//! what it drops, and this process's resident memory stays within a stated bound.

use bytes::{Buf as _, BufMut as _};
use obsctl::sources::otlp::{OtlpOptions, OtlpReceiver, SpanRecords};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::helpers::bounded;

/// How much this process may grow, at its peak, while a hostile exporter is served (the
/// 4,000 copies of a 1 MiB resource once took 4 GiB).
const GROWTH_LIMIT: u64 = 200 * 1024 * 1024;

/// How far past its budget the store may be: the one span being kept when it crossed it, its
/// records at their largest (128 attributes of 256-byte keys and values).
const OVERSHOOT: usize = 256 * 1024;

const MIB: usize = 1024 * 1024;

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// A tiny span: ids only, the `n`-th of its trace `trace`.
fn tiny_span(trace: u8, n: u32) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: [n.to_be_bytes(), [1; 4]].concat(),
        name: "s".to_owned(),
        kind: 2,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
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

async fn start(options: OtlpOptions) -> OtlpReceiver {
    let bind = "127.0.0.1:0".parse().expect("a literal address");
    OtlpReceiver::start_with(bind, options)
        .await
        .expect("the receiver binds an ephemeral port")
}

/// The gRPC codec of a hand-made request: bytes as they are.
#[derive(Debug, Clone, Copy)]
struct Raw;

impl Codec for Raw {
    type Encode = bytes::Bytes;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for Raw {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: bytes::Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// A gRPC connection that sends hand-made Export requests.
async fn raw_client(receiver: &OtlpReceiver) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(receiver.endpoint())
        .expect("the endpoint is a URL")
        .connect()
        .await
        .expect("connect to the receiver");
    tonic::client::Grpc::new(channel)
}

/// Sends `body` as an Export request; the decoded response, or the status.
async fn export_raw(
    client: &mut tonic::client::Grpc<tonic::transport::Channel>,
    body: bytes::Bytes,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let answer = client
        .unary(tonic::Request::new(body), path, Raw)
        .await?
        .into_inner();
    ExportTraceServiceResponse::decode(answer.as_slice())
        .map_err(|e| tonic::Status::internal(e.to_string()))
}

fn put_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag << 3 | 2);
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

/// An Export request of `count` spans encoded by hand, each `span(i)` (a `Span` message's
/// bytes), under the resource `service.name = "flood"`: built without the structs a decoder
/// would make of it.
fn hand_made_request(count: usize, span: impl Fn(usize) -> Vec<u8>) -> bytes::Bytes {
    let mut scope = Vec::new();
    for i in 0..count {
        put_field(&mut scope, 2, &span(i));
    }
    let mut service = Vec::new();
    put_field(&mut service, 1, b"flood");
    let mut kv = Vec::new();
    put_field(&mut kv, 1, b"service.name");
    put_field(&mut kv, 2, &service);
    let mut resource = Vec::new();
    put_field(&mut resource, 1, &kv);
    let mut resource_spans = Vec::new();
    put_field(&mut resource_spans, 1, &resource);
    put_field(&mut resource_spans, 2, &scope);
    let mut request = Vec::new();
    put_field(&mut request, 1, &resource_spans);
    request.into()
}

/// A span with a trace id and a span id only (28 bytes on the wire).
fn id_only_span(i: usize) -> Vec<u8> {
    let mut span = Vec::new();
    put_field(&mut span, 1, &[7; 16]);
    put_field(&mut span, 2, &(i as u64 + 1).to_be_bytes());
    span
}

/// This process's resident memory and its peak so far, bytes, from /proc/self/status.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
    };
    (kib("VmRSS:") * 1024, kib("VmHWM:") * 1024)
}

/// Asserts the peak resident memory since `rss_before` grew less than [`GROWTH_LIMIT`].
fn assert_bounded_growth(rss_before: u64, what: &str) {
    let (_, peak) = memory();
    let growth = peak.saturating_sub(rss_before);
    println!("{what}: peak {} KiB above the start", growth / 1024);
    assert!(
        growth < GROWTH_LIMIT,
        "{what}: this process peaked {} MiB above where it started",
        growth / MIB as u64
    );
}

#[tokio::test]
async fn a_mebibyte_resource_attribute_on_4000_spans_is_kept_once_and_truncated() {
    bounded(async {
        let (rss_before, _) = memory();
        let receiver = start(OtlpOptions::default()).await;
        let huge = "r".repeat(MIB);
        let mut spans: Vec<Span> = (0..4000).map(|n| tiny_span(0xab, n)).collect();
        spans[0].name = "n".repeat(100_000);
        spans[0]
            .attributes
            .push(string_kv("http.route", "v".repeat(100_000)));
        let resource = vec![
            string_kv("service.name", "hostile".to_owned()),
            string_kv("huge", huge),
        ];
        let mut client = TraceServiceClient::connect(receiver.endpoint())
            .await
            .expect("connect");
        let answer = client
            .export(request(resource, spans))
            .await
            .expect("a 1.2 MB export is accepted")
            .into_inner();
        assert_eq!(answer.partial_success, None, "nothing was dropped");

        let records = receiver.spans();
        assert_eq!(records.len(), 4000);
        for span in &records {
            let kept = span.resource().get("huge").and_then(|v| v.as_str());
            let kept = kept.expect("the resource attribute is kept");
            assert!(kept.len() < 300, "{} bytes kept", kept.len());
            assert!(
                kept.ends_with(&format!("…[+{} bytes]", MIB - 256)),
                "{kept}"
            );
            assert_eq!(span.service_name(), Some("hostile"));
        }
        let first = &records[0];
        assert!(
            first.name().ends_with("…[+99744 bytes]"),
            "{}",
            first.name()
        );
        let route = first.attr("http.route").and_then(|v| v.as_str());
        assert!(route.is_some_and(|r| r.len() < 300), "{route:?}");
        // One copy of the resource, a small record per span.
        let stored = receiver.stored_bytes();
        assert!(
            stored < 2 * MIB,
            "{stored} bytes stored for 4000 tiny spans"
        );
        assert_bounded_growth(rss_before, "a 1 MiB resource on 4000 spans");

        // The receiver keeps answering.
        let more = request(Vec::new(), vec![tiny_span(0xcd, 1)]);
        client.export(more).await.expect("a later export");
        assert_eq!(receiver.span_count(), 4001);
    })
    .await;
}

#[tokio::test]
async fn a_flood_of_tiny_spans_stays_within_the_budget_and_every_drop_is_counted() {
    bounded(async {
        let (rss_before, _) = memory();
        let budget = 4 * MIB;
        let receiver = start(OtlpOptions {
            budget_bytes: budget,
            ..OtlpOptions::default()
        })
        .await;
        let mut client = raw_client(&receiver).await;
        // 110,000 spans of 32 bytes per request: 3.5 MB, under the 4 MiB message limit.
        let per_request = 110_000;
        let body = hand_made_request(per_request, id_only_span);
        let mut rejected = 0;
        for _ in 0..6 {
            let answer = export_raw(&mut client, body.clone())
                .await
                .expect("every export is answered");
            rejected += answer.partial_success.map_or(0, |p| p.rejected_spans);
        }
        let sent = 6 * per_request as u64;
        let (kept, dropped) = (receiver.span_count(), receiver.dropped_spans());
        assert!(dropped > 0, "{kept} kept of {sent}");
        assert_eq!(kept + dropped, sent, "every span is kept or counted");
        assert_eq!(
            rejected, dropped as i64,
            "the exporter is told what was dropped"
        );
        let stored = receiver.stored_bytes();
        assert!(
            stored <= budget + OVERSHOOT,
            "{stored} bytes for a budget of {budget}"
        );
        assert_bounded_growth(rss_before, "660,000 tiny spans");
    })
    .await;
}

#[tokio::test]
async fn four_mebibytes_of_empty_spans_cost_their_bytes_not_their_structs() {
    bounded(async {
        let (rss_before, _) = memory();
        let receiver = start(OtlpOptions::compact()).await;
        let mut client = raw_client(&receiver).await;
        // Two bytes a span: 2 million spans, about 600 MB as opentelemetry-proto structs.
        let count = 2_000_000;
        let body = hand_made_request(count, |_| Vec::new());
        assert!(body.len() < 4 * MIB, "{}", body.len());
        let answer = export_raw(&mut client, body)
            .await
            .expect("the export is answered");
        assert_eq!(answer.partial_success, None);
        assert_eq!(receiver.span_count(), count as u64);
        // Every span has the same shape and none is in a run: a few hundred bytes in all.
        assert!(
            receiver.stored_bytes() < 4096,
            "{}",
            receiver.stored_bytes()
        );
        assert_bounded_growth(rss_before, "2 million empty spans");
    })
    .await;
}

#[tokio::test]
async fn many_connections_exporting_at_once_are_all_answered_within_the_budget() {
    bounded(async {
        let (rss_before, _) = memory();
        let budget = 8 * MIB;
        let receiver = start(OtlpOptions {
            budget_bytes: budget,
            records: SpanRecords::Checked,
            ..OtlpOptions::default()
        })
        .await;
        // 16 connections, 2 requests in flight on each: 32 streams of 1 MB.
        let per_request = 30_000;
        let body = hand_made_request(per_request, id_only_span);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let client = raw_client(&receiver).await;
            for _ in 0..2 {
                let (mut client, body) = (client.clone(), body.clone());
                tasks.push(tokio::spawn(
                    async move { export_raw(&mut client, body).await },
                ));
            }
        }
        for task in tasks {
            task.await
                .expect("the exporting task joins")
                .expect("every stream is answered");
        }
        let sent = 32 * per_request as u64;
        assert_eq!(receiver.span_count() + receiver.dropped_spans(), sent);
        assert_eq!(receiver.export_requests(), 32);
        let stored = receiver.stored_bytes();
        assert!(
            stored <= budget + OVERSHOOT,
            "{stored} bytes for a budget of {budget}"
        );
        assert_bounded_growth(rss_before, "32 concurrent streams");
    })
    .await;
}

#[tokio::test]
async fn malformed_bytes_are_refused_whole_and_the_receiver_keeps_answering() {
    bounded(async {
        let receiver = start(OtlpOptions::default()).await;
        let mut client = raw_client(&receiver).await;
        // A valid span, then a field whose length runs past the end of the message.
        let mut body = hand_made_request(1, id_only_span).to_vec();
        body.extend_from_slice(&[0x0a, 0x7f, 0x01]);
        let refused = export_raw(&mut client, body.into())
            .await
            .expect_err("a malformed request is refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert_eq!(receiver.span_count(), 0, "nothing of it is kept");
        let fine = hand_made_request(3, id_only_span);
        export_raw(&mut client, fine)
            .await
            .expect("the next export is accepted");
        assert_eq!(receiver.span_count(), 3);
    })
    .await;
}
