//! OTLP trace export requests in protobuf wire format, written straight from the SDK's span
//! records.
//!
//! opentelemetry-otlp first copies each batch (for retries), converts it into a tree of
//! generated message structs (a `String` per attribute key and value), then encodes that tree:
//! at three spans per request that was most of the exporter's CPU. Writing the bytes directly
//! produces the same message (`collector/trace/v1/trace_service.proto`, field numbers below)
//! with one buffer per batch. The tests decode the output with opentelemetry-proto and compare
//! it with the official conversion.

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wire types used by OTLP messages.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// `SpanFlags`: the flags carry whether the parent is remote (OTLP 1.1).
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// Encodes batches for one resource: the resource message is encoded once, up front.
#[derive(Debug, Clone, Default)]
pub struct RequestEncoder {
    /// The body of the `Resource` message (its attributes).
    resource: Vec<u8>,
    resource_schema_url: String,
}

impl RequestEncoder {
    /// An encoder stamping every request with `resource`.
    pub fn new(resource: &Resource) -> Self {
        let mut body = Vec::new();
        for (key, value) in resource.iter() {
            message(&mut body, 1, |buf| key_value(buf, key.as_str(), value));
        }
        Self {
            resource: body,
            resource_schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }

    /// The `ExportTraceServiceRequest` carrying `spans`, grouped by instrumentation scope.
    pub fn encode(&self, spans: &[SpanData]) -> Vec<u8> {
        let mut parts: Vec<(&InstrumentationScope, Vec<u8>)> = Vec::new();
        for span in spans {
            let at = match parts
                .iter()
                .position(|(scope, _)| **scope == span.instrumentation_scope)
            {
                Some(at) => at,
                None => {
                    parts.push((&span.instrumentation_scope, Vec::new()));
                    parts.len() - 1
                }
            };
            span_entry(&mut parts[at].1, span);
        }
        self.assemble(
            parts
                .iter()
                .map(|(scope, spans)| (*scope, spans.as_slice())),
        )
    }

    /// The `ExportTraceServiceRequest` made of spans already encoded by [`span_entry`], given
    /// as (scope, entries) parts; parts of the same scope are grouped into one `ScopeSpans`.
    pub fn assemble<'a>(
        &self,
        parts: impl IntoIterator<Item = (&'a InstrumentationScope, &'a [u8])>,
    ) -> Vec<u8> {
        let mut scopes: Vec<(&InstrumentationScope, Vec<&[u8]>)> = Vec::new();
        let mut total = 0;
        for (scope, entries) in parts {
            total += entries.len();
            match scopes.iter_mut().find(|(known, _)| *known == scope) {
                Some((_, members)) => members.push(entries),
                None => scopes.push((scope, vec![entries])),
            }
        }
        let mut buf = Vec::with_capacity(256 + self.resource.len() + total);
        // ExportTraceServiceRequest.resource_spans = 1
        message(&mut buf, 1, |buf| {
            // ResourceSpans.resource = 1, .scope_spans = 2, .schema_url = 3
            message(buf, 1, |buf| buf.extend_from_slice(&self.resource));
            for (scope, members) in &scopes {
                message(buf, 2, |buf| scope_spans(buf, scope, members));
            }
            string(buf, 3, &self.resource_schema_url);
        });
        buf
    }
}

/// Appends `span` to `buf` as one `ScopeSpans.spans` entry (field 2): buffers of these, one
/// per scope, are what [`RequestEncoder::assemble`] takes.
pub fn span_entry(buf: &mut Vec<u8>, span: &SpanData) {
    message(buf, 2, |buf| span_body(buf, span));
}

/// `ScopeSpans`: scope = 1, spans = 2, schema_url = 3.
fn scope_spans(buf: &mut Vec<u8>, scope: &InstrumentationScope, entries: &[&[u8]]) {
    message(buf, 1, |buf| {
        // InstrumentationScope: name = 1, version = 2, attributes = 3
        string(buf, 1, scope.name());
        string(buf, 2, scope.version().unwrap_or_default());
        attributes(buf, 3, scope.attributes());
    });
    for entries in entries {
        buf.extend_from_slice(entries);
    }
    string(buf, 3, scope.schema_url().unwrap_or_default());
}

/// `Span`, fields in number order.
fn span_body(buf: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(buf, 1, &context.trace_id().to_bytes());
    bytes(buf, 2, &context.span_id().to_bytes());
    string(buf, 3, &context.trace_state().header());
    if span.parent_span_id != SpanId::INVALID {
        bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    string(buf, 5, &span.name);
    uint(buf, 6, span_kind(&span.span_kind));
    fixed64(buf, 7, unix_nanos(span.start_time));
    fixed64(buf, 8, unix_nanos(span.end_time));
    attributes(buf, 9, &span.attributes);
    uint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in &span.events.events {
        // Span.Event: time_unix_nano = 1, name = 2, attributes = 3, dropped = 4
        message(buf, 11, |buf| {
            fixed64(buf, 1, unix_nanos(event.timestamp));
            string(buf, 2, &event.name);
            attributes(buf, 3, &event.attributes);
            uint(buf, 4, u64::from(event.dropped_attributes_count));
        });
    }
    uint(buf, 12, u64::from(span.events.dropped_count));
    for link in &span.links.links {
        // Span.Link: trace_id = 1, span_id = 2, trace_state = 3, attributes = 4,
        // dropped = 5, flags = 6
        message(buf, 13, |buf| {
            let linked = &link.span_context;
            bytes(buf, 1, &linked.trace_id().to_bytes());
            bytes(buf, 2, &linked.span_id().to_bytes());
            string(buf, 3, &linked.trace_state().header());
            attributes(buf, 4, &link.attributes);
            uint(buf, 5, u64::from(link.dropped_attributes_count));
            fixed32(
                buf,
                6,
                flags(linked.trace_flags().to_u8(), linked.is_remote()),
            );
        });
    }
    uint(buf, 14, u64::from(span.links.dropped_count));
    // Status: message = 2, code = 3 (UNSET 0, OK 1, ERROR 2); always present, as the
    // official conversion writes it.
    message(buf, 15, |buf| match &span.status {
        Status::Unset => {}
        Status::Ok => uint(buf, 3, 1),
        Status::Error { description } => {
            string(buf, 2, description);
            uint(buf, 3, 2);
        }
    });
    fixed32(
        buf,
        16,
        flags(context.trace_flags().to_u8(), span.parent_span_is_remote),
    );
}

fn flags(trace_flags: u8, remote: bool) -> u32 {
    let mut flags = u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE;
    if remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

/// `Span.SpanKind`: INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5.
fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    })
}

/// Repeated `KeyValue` entries under `field`.
fn attributes<'a>(buf: &mut Vec<u8>, field: u32, attrs: impl IntoIterator<Item = &'a KeyValue>) {
    for attr in attrs {
        message(buf, field, |buf| {
            key_value(buf, attr.key.as_str(), &attr.value)
        });
    }
}

/// `KeyValue`: key = 1, value = 2.
fn key_value(buf: &mut Vec<u8>, key: &str, value: &Value) {
    string(buf, 1, key);
    message(buf, 2, |buf| any_value(buf, value));
}

/// `AnyValue`, a oneof: string = 1, bool = 2, int = 3, double = 4, array = 5. A oneof member
/// is written even when it holds its type's default.
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(text) => string_value(buf, text.as_str()),
        Value::Bool(flag) => {
            tag(buf, 2, VARINT);
            varint(buf, u64::from(*flag));
        }
        // int64 is the two's complement bit pattern as a varint.
        Value::I64(number) => {
            tag(buf, 3, VARINT);
            varint(buf, *number as u64);
        }
        Value::F64(number) => {
            tag(buf, 4, FIXED64);
            buf.extend_from_slice(&number.to_bits().to_le_bytes());
        }
        // ArrayValue: values = 1.
        Value::Array(array) => message(buf, 5, |buf| match array {
            Array::Bool(items) => array_values(buf, items, |b| Value::Bool(*b)),
            Array::I64(items) => array_values(buf, items, |n| Value::I64(*n)),
            Array::F64(items) => array_values(buf, items, |n| Value::F64(*n)),
            Array::String(items) => array_values(buf, items, |s| Value::String(s.clone())),
            // A variant added by a later opentelemetry release: keep its text.
            other => message(buf, 1, |buf| string_value(buf, &other.to_string())),
        }),
        other => string_value(buf, &other.to_string()),
    }
}

fn array_values<T>(buf: &mut Vec<u8>, items: &[T], to_value: impl Fn(&T) -> Value) {
    for item in items {
        message(buf, 1, |buf| any_value(buf, &to_value(item)));
    }
}

fn string_value(buf: &mut Vec<u8>, text: &str) {
    tag(buf, 1, LEN);
    length_prefixed(buf, text.as_bytes());
}

/// A nested message under `field`: written in place, then its length is inserted before it.
/// Most bodies fit a one-byte length; longer ones shift the body by a byte or two.
fn message(buf: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, LEN);
    let len_at = buf.len();
    buf.push(0);
    body(buf);
    let len = buf.len() - len_at - 1;
    let mut prefix = [0u8; 10];
    let prefix_len = encode_varint(&mut prefix, len as u64);
    if prefix_len > 1 {
        let extra = prefix_len - 1;
        buf.resize(buf.len() + extra, 0);
        buf.copy_within(len_at + 1..len_at + 1 + len, len_at + prefix_len);
    }
    buf[len_at..len_at + prefix_len].copy_from_slice(&prefix[..prefix_len]);
}

/// A `string` field; proto3 leaves empty strings out.
fn string(buf: &mut Vec<u8>, field: u32, text: &str) {
    bytes(buf, field, text.as_bytes());
}

/// A `bytes` field; proto3 leaves empty ones out.
fn bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    if !data.is_empty() {
        tag(buf, field, LEN);
        length_prefixed(buf, data);
    }
}

fn length_prefixed(buf: &mut Vec<u8>, data: &[u8]) {
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// A `uint32`, `uint64` or enum field; zero is the default and left out.
fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(buf, field, VARINT);
        varint(buf, value);
    }
}

fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tag(buf, field, FIXED64);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        tag(buf, field, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn tag(buf: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(buf, (u64::from(field) << 3) | u64::from(wire_type));
}

fn varint(buf: &mut Vec<u8>, value: u64) {
    let mut bytes = [0u8; 10];
    let len = encode_varint(&mut bytes, value);
    buf.extend_from_slice(&bytes[..len]);
}

/// Base-128 varint, least significant group first; returns the number of bytes written.
fn encode_varint(out: &mut [u8; 10], mut value: u64) -> usize {
    let mut i = 0;
    while value >= 0x80 {
        out[i] = (value as u8) | 0x80;
        value >>= 7;
        i += 1;
    }
    out[i] = value as u8;
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, Link, SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;
    use std::borrow::Cow;
    use std::time::Duration;

    fn context(trace: u128, span: u64, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        )
    }

    fn span(name: &'static str, scope: &InstrumentationScope, status: Status) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "retry",
            start + Duration::from_micros(5),
            vec![KeyValue::new("attempt", 2_i64)],
            1,
        ));
        events.dropped_count = 3;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            context(7, 8, true),
            vec![KeyValue::new("link.kind", "follows")],
            0,
        ));
        SpanData {
            span_context: context(
                0x0af7651916cd43dd8448eb211c80319c,
                0xb7ad6b7169203331,
                false,
            ),
            parent_span_id: SpanId::from(0x00f067aa0ba902b7),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: start + Duration::from_micros(1500),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.response.status_code", 200_i64),
                KeyValue::new("zero", 0_i64),
                KeyValue::new("negative", -42_i64),
                KeyValue::new("ratio", 0.25),
                KeyValue::new("flag", false),
                KeyValue::new("empty", ""),
                KeyValue::new("long", "é".repeat(200)),
                KeyValue::new("ids", Value::Array(Array::I64(vec![1, -1, 0]))),
                KeyValue::new(
                    "names",
                    Value::Array(Array::String(vec!["a".into(), "".into()])),
                ),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("floats", Value::Array(Array::F64(vec![1.5]))),
            ],
            dropped_attributes_count: 1,
            events,
            links,
            status,
            instrumentation_scope: scope.clone(),
        }
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_service_name("fastapi-backend")
            .with_attribute(KeyValue::new("deployment.environment", "test"))
            .with_schema_url([], "https://opentelemetry.io/schemas/1.26.0")
            .build()
    }

    /// What opentelemetry-proto's own conversion makes of the same spans.
    fn official(spans: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(resource),
            ),
        }
    }

    #[test]
    fn the_request_decodes_to_what_the_official_conversion_builds() {
        let backend = InstrumentationScope::builder("backend").build();
        let other = InstrumentationScope::builder("other")
            .with_version("1.2.3")
            .with_schema_url("https://example.test/schema")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build();
        let spans = vec![
            span("GET /api/users/{user_id}", &backend, Status::Unset),
            span("SELECT users", &other, Status::error("disk I/O error")),
            span("get_user", &backend, Status::Ok),
        ];
        let resource = resource();
        let bytes = RequestEncoder::new(&resource).encode(&spans);
        let ours = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid protobuf");
        assert_eq!(ours, official(spans, &resource));
        assert_eq!(
            ours.resource_spans[0].scope_spans.len(),
            2,
            "grouped by scope"
        );
    }

    #[test]
    fn an_empty_batch_and_a_bare_span_encode_too() {
        let resource = resource();
        let encoder = RequestEncoder::new(&resource);
        let empty = ExportTraceServiceRequest::decode(encoder.encode(&[]).as_slice()).unwrap();
        assert_eq!(empty, official(Vec::new(), &resource));

        let scope = InstrumentationScope::builder("backend").build();
        let bare = SpanData {
            span_context: context(1, 2, false),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(""),
            start_time: UNIX_EPOCH,
            end_time: UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope,
        };
        let batch = vec![bare];
        let ours = ExportTraceServiceRequest::decode(encoder.encode(&batch).as_slice()).unwrap();
        assert_eq!(ours, official(batch, &resource));
    }

    #[test]
    fn lengths_are_minimal_varints_at_every_size_boundary() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_152] {
            let mut buf = Vec::new();
            message(&mut buf, 1, |buf| buf.resize(buf.len() + len, 7));
            let mut expected = vec![0x0a];
            varint(&mut expected, len as u64);
            expected.resize(expected.len() + len, 7);
            assert_eq!(buf, expected, "body of {len} bytes");
        }
    }
}
