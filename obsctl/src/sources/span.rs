//! The span model shared by every trace source: the embedded OTLP receiver and Tempo both map
//! what they receive into [`ReceivedSpan`], so checks treat spans alike whatever their origin.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, Status, status};

/// One span, flattened with its resource and instrumentation scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 lowercase hex digits.
    pub span_id: String,
    /// Parent span id (16 lowercase hex digits), `None` for a root span.
    pub parent_span_id: Option<String>,
    /// Span name, e.g. `GET /api/users/{user_id}`.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// The resource's `service.name`, when it has one.
    pub service_name: Option<String>,
    /// Every resource attribute.
    pub resource: BTreeMap<String, AttrValue>,
    /// Every span attribute.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Span status.
    pub status: SpanStatus,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Name of the instrumentation scope that produced the span (empty when none).
    pub scope_name: String,
}

impl ReceivedSpan {
    /// The span attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// Whether this span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}

/// The kind of a span, as OTLP defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Not specified by the producer.
    Unspecified,
    /// An internal operation.
    Internal,
    /// The server side of a synchronous request.
    Server,
    /// The client side of a synchronous request.
    Client,
    /// The producer of an asynchronous message.
    Producer,
    /// The consumer of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// The kind for an OTLP enum value; unknown values are `Unspecified`.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// The kind for an OTLP/JSON name (`SPAN_KIND_SERVER`) or number; unknown names are
    /// `Unspecified`.
    pub fn from_name(name: &str) -> Self {
        match name.trim_start_matches("SPAN_KIND_") {
            "INTERNAL" | "1" => Self::Internal,
            "SERVER" | "2" => Self::Server,
            "CLIENT" | "3" => Self::Client,
            "PRODUCER" | "4" => Self::Producer,
            "CONSUMER" | "5" => Self::Consumer,
            _ => Self::Unspecified,
        }
    }
}

/// The status of a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// No status was set.
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed, with the producer's message (possibly empty).
    Error {
        /// The status message.
        message: String,
    },
}

impl SpanStatus {
    /// Whether the status is `Error`.
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error { .. })
    }
}

/// An attribute value, with the common scalar types kept typed.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// Anything else (arrays, maps, bytes), rendered as text for evidence.
    Other(String),
}

impl AttrValue {
    /// The string, when this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is an integer value or a string holding one (some SDKs record
    /// integers as strings).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Str(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The value as a display string, whatever its type.
    pub fn to_text(&self) -> String {
        match self {
            Self::Str(s) | Self::Other(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Double(d) => d.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Convert an OTLP attribute value.
pub(crate) fn attr_from_any(value: Option<&AnyValue>) -> AttrValue {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s.clone()),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(*d),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(any_value::Value::BytesValue(b)) => AttrValue::Other(to_hex(b)),
        Some(other) => AttrValue::Other(format!("{other:?}")),
        None => AttrValue::Other(String::new()),
    }
}

/// Convert OTLP key-values into an attribute map.
pub(crate) fn attrs_from_kvs(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), attr_from_any(kv.value.as_ref())))
        .collect()
}

fn status_from_otlp(status: Option<&Status>) -> SpanStatus {
    match status {
        Some(s) if s.code == status::StatusCode::Error as i32 => SpanStatus::Error {
            message: s.message.clone(),
        },
        Some(s) if s.code == status::StatusCode::Ok as i32 => SpanStatus::Ok,
        _ => SpanStatus::Unset,
    }
}

/// Flatten one OTLP `ResourceSpans` into spans, calling `sink` for each.
pub(crate) fn flatten_resource_spans(rs: &ResourceSpans, sink: &mut impl FnMut(ReceivedSpan)) {
    let resource = rs
        .resource
        .as_ref()
        .map(|r| attrs_from_kvs(&r.attributes))
        .unwrap_or_default();
    let service_name = service_name_of(&resource);
    for ss in &rs.scope_spans {
        let scope_name = ss
            .scope
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        for span in &ss.spans {
            sink(span_from_otlp(span, &resource, &service_name, &scope_name));
        }
    }
}

/// The `service.name` string of a resource attribute map.
pub(crate) fn service_name_of(resource: &BTreeMap<String, AttrValue>) -> Option<String> {
    resource
        .get("service.name")
        .and_then(AttrValue::as_str)
        .map(str::to_owned)
}

fn span_from_otlp(
    span: &Span,
    resource: &BTreeMap<String, AttrValue>,
    service_name: &Option<String>,
    scope_name: &str,
) -> ReceivedSpan {
    ReceivedSpan {
        trace_id: to_hex(&span.trace_id),
        span_id: to_hex(&span.span_id),
        parent_span_id: parent_id(&to_hex(&span.parent_span_id)),
        name: span.name.clone(),
        kind: SpanKind::from_otlp(span.kind),
        service_name: service_name.clone(),
        resource: resource.clone(),
        attributes: attrs_from_kvs(&span.attributes),
        status: status_from_otlp(span.status.as_ref()),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        scope_name: scope_name.to_owned(),
    }
}

/// `None` for an empty or all-zero parent id (both mean "root").
pub(crate) fn parent_id(hex: &str) -> Option<String> {
    if hex.is_empty() || hex.bytes().all(|b| b == b'0') {
        None
    } else {
        Some(hex.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(to_hex(&[0x0a, 0xff, 0x00]), "0aff00");
    }

    #[test]
    fn zero_parent_is_root() {
        assert_eq!(parent_id("0000000000000000"), None);
        assert_eq!(parent_id(""), None);
        assert_eq!(
            parent_id("00000000000000a1").as_deref(),
            Some("00000000000000a1")
        );
    }

    #[test]
    fn integer_strings_read_as_integers() {
        assert_eq!(AttrValue::Str("200".into()).as_i64(), Some(200));
        assert_eq!(AttrValue::Int(7).as_i64(), Some(7));
        assert_eq!(AttrValue::Bool(true).as_i64(), None);
    }

    #[test]
    fn span_kind_names_map() {
        assert_eq!(SpanKind::from_name("SPAN_KIND_SERVER"), SpanKind::Server);
        assert_eq!(SpanKind::from_otlp(3), SpanKind::Client);
        assert_eq!(SpanKind::from_name("weird"), SpanKind::Unspecified);
    }
}
