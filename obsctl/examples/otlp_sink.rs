//! A null OTLP/gRPC trace collector for benchmarks: `otlp_sink [ADDR]` (default
//! `127.0.0.1:4317`) accepts `TraceService/Export` calls until SIGTERM / Ctrl-C, then prints
//! how many export calls and spans arrived.
//!
//! It counts spans without materialising them: each request is walked on the protobuf wire
//! format, counting `resource_spans[].scope_spans[].spans` entries and skipping their bytes,
//! rather than decoding it into opentelemetry-proto structs. On a small machine the sink shares
//! the CPU with the service under test and the load generator, so every cycle it spends would
//! be charged to the service's instrumentation. At ~70k spans/s on 2 cores, decoding every span
//! took ~10% of a core; counting takes ~2.5%, mostly receiving the bytes.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Buf;
use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, merge_loop, skip_field,
};
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, UnaryService};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// The only method served: OTLP/gRPC trace export.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Largest accepted request: 16 MiB, so that a benchmark never loses a batch to the limit
/// (obsctl's own receiver takes 4 MiB, far above the SDKs' batches of 512 spans).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Export calls accepted so far. Process-wide statics: there is one sink per process, and
/// the request path needs no `Arc` to reach them.
static EXPORT_CALLS: AtomicU64 = AtomicU64::new(0);

/// Spans counted so far, over all export calls.
static SPANS: AtomicU64 = AtomicU64::new(0);

/// Counts the spans in an encoded `ExportTraceServiceRequest` without allocating: only the
/// path `resource_spans = 1` → `scope_spans = 2` → `spans = 2` is entered, and each span and
/// every other field is skipped by its length. Field numbers are those of opentelemetry-proto's
/// `collector/trace/v1` and `trace/v1` messages.
fn count_spans(buf: &mut impl Buf) -> Result<u64, DecodeError> {
    let mut spans = 0;
    // The top-level message is the whole gRPC frame, so it has no length prefix.
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(buf)?;
        if tag == 1 {
            // A known field with the wrong wire type is malformed, as prost's decode would say.
            check_wire_type(WireType::LengthDelimited, wire_type)?;
            merge_loop(
                &mut spans,
                buf,
                DecodeContext::default(),
                resource_spans_field,
            )?;
        } else {
            skip_field(wire_type, tag, buf, DecodeContext::default())?;
        }
    }
    Ok(spans)
}

/// Reads one field of a `ResourceSpans`, entering its `scope_spans = 2`.
fn resource_spans_field<B: Buf>(
    spans: &mut u64,
    buf: &mut B,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let (tag, wire_type) = decode_key(buf)?;
    if tag == 2 {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        merge_loop(spans, buf, ctx, scope_spans_field)
    } else {
        skip_field(wire_type, tag, buf, ctx)
    }
}

/// Reads one field of a `ScopeSpans`, counting its `spans = 2` and skipping their bytes.
fn scope_spans_field<B: Buf>(
    spans: &mut u64,
    buf: &mut B,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    let (tag, wire_type) = decode_key(buf)?;
    if tag == 2 {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        *spans += 1;
    }
    skip_field(wire_type, tag, buf, ctx)
}

/// What the sink keeps of an export request: its span count.
struct SpanCount(u64);

/// The gRPC codec of the sink: decodes a request into a [`SpanCount`] and encodes the empty
/// response, which is a valid `ExportTraceServiceResponse` (all fields default).
#[derive(Clone, Copy)]
struct SinkCodec;

impl Codec for SinkCodec {
    type Encode = ();
    type Decode = SpanCount;
    type Encoder = SinkCodec;
    type Decoder = SinkCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for SinkCodec {
    type Item = ();
    type Error = Status;

    /// An empty message encodes to zero bytes.
    fn encode(&mut self, _item: (), _dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for SinkCodec {
    type Item = SpanCount;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<SpanCount>, Status> {
        // INTERNAL for unparsable messages, as tonic-prost's codec does.
        count_spans(src)
            .map(|spans| Some(SpanCount(spans)))
            .map_err(|error| Status::internal(error.to_string()))
    }
}

/// The Export handler: adds a decoded request to the counters.
struct Export;

impl UnaryService<SpanCount> for Export {
    type Response = ();
    // Nothing to await, so no boxed future.
    type Future = Ready<Result<tonic::Response<()>, Status>>;

    fn call(&mut self, request: tonic::Request<SpanCount>) -> Self::Future {
        EXPORT_CALLS.fetch_add(1, Ordering::Relaxed);
        SPANS.fetch_add(request.into_inner().0, Ordering::Relaxed);
        ready(Ok(tonic::Response::new(())))
    }
}

/// The HTTP/2 service: routes Export to [`Export`], the way tonic-generated servers do, and
/// answers any other path with UNIMPLEMENTED.
#[derive(Clone, Copy)]
struct TraceSink;

impl<B> Service<http::Request<B>> for TraceSink
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() == EXPORT_PATH {
            Box::pin(async move {
                let mut grpc = Grpc::new(SinkCodec).max_decoding_message_size(MAX_MESSAGE_BYTES);
                Ok(grpc.unary(Export, request).await)
            })
        } else {
            Box::pin(ready(Ok(Status::unimplemented(
                "only trace export is served",
            )
            .into_http())))
        }
    }
}

// One thread: the sink does little per request, and on a 2-core machine shared with the
// service and the load generator, worker threads would only add cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".to_owned())
        .parse()?;
    // Binding here (not inside serve) reports the actual port when ADDR asks for port 0.
    // Responses are tiny, so Nagle would only delay them.
    let incoming = TcpIncoming::bind(addr)?.with_nodelay(Some(true));
    eprintln!("otlp_sink: listening on http://{}", incoming.local_addr()?);
    let server = Server::builder()
        // BDP-based flow-control windows, as grpc-go (the OpenTelemetry Collector) uses by
        // default: with the fixed 64 KiB default a 150 KB export waits on WINDOW_UPDATEs.
        .http2_adaptive_window(Some(true))
        .serve_with_incoming(TraceSink, incoming);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Counts are read at the signal, without draining open connections: bench/backend.sh stops
    // (and so flushes) the service under test before it stops the sink.
    tokio::select! {
        served = server => served?,
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    println!(
        "otlp_sink: {} export calls, {} spans",
        EXPORT_CALLS.load(Ordering::Relaxed),
        SPANS.load(Ordering::Relaxed)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::count_spans;

    /// A span with several fields set, so that skipping it has bytes of each wire type to skip.
    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.to_owned(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Default::default()
        }
    }

    /// A request with `per_scope[r][s]` spans in scope `s` of resource `r`.
    fn request(per_scope: &[&[usize]]) -> Vec<u8> {
        let resource_spans = per_scope
            .iter()
            .map(|scopes| ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: scopes
                    .iter()
                    .map(|&n| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "scope".to_owned(),
                            ..Default::default()
                        }),
                        spans: (0..n).map(|i| span(&format!("span {i}"))).collect(),
                        schema_url: "https://example.com/schema".to_owned(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }.encode_to_vec()
    }

    #[test]
    fn counts_spans_across_resources_and_scopes() {
        let cases: [(&[&[usize]], u64); 4] = [
            (&[], 0),
            (&[&[3]], 3),
            (&[&[0, 2], &[], &[5, 1]], 8),
            (&[&[1000]], 1000),
        ];
        for (shape, spans) in cases {
            assert_eq!(count_spans(&mut request(shape).as_slice()), Ok(spans));
        }
    }

    #[test]
    fn rejects_truncated_requests() {
        let bytes = request(&[&[3]]);
        assert!(count_spans(&mut &bytes[..bytes.len() - 1]).is_err());
    }
}
