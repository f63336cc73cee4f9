//! OTLP trace data in its JSON encoding (as Tempo returns it) mapped into [`ReceivedSpan`]s.
//! Accepts both protobuf-JSON conventions seen in the wild: ids as base64 (Tempo) or hex (the
//! OTLP/JSON spec), 64-bit numbers as strings or numbers, enums as names or numbers, and the
//! old `instrumentationLibrarySpans` key next to `scopeSpans`.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;

use super::span::{
    AttrValue, Attributes, Id, ReceivedSpan, Resource, SpanId, SpanKind, SpanStatus, TraceId,
};

/// Flatten a list of OTLP/JSON `ResourceSpans` objects into spans.
pub fn spans_from_resource_spans(resource_spans: &[Value]) -> Result<Vec<ReceivedSpan>, String> {
    let mut out = Vec::new();
    for rs in resource_spans {
        let resource = Arc::new(Resource::new(attributes(
            rs.get("resource").and_then(|r| r.get("attributes")),
        )));
        let scopes = rs
            .get("scopeSpans")
            .or_else(|| rs.get("instrumentationLibrarySpans"))
            .and_then(Value::as_array);
        for scope in scopes.into_iter().flatten() {
            let scope_name: Arc<str> = scope
                .get("scope")
                .or_else(|| scope.get("instrumentationLibrary"))
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into();
            let spans = scope.get("spans").and_then(Value::as_array);
            for span in spans.into_iter().flatten() {
                out.push(span_from_json(span, &resource, &scope_name)?);
            }
        }
    }
    Ok(out)
}

fn span_from_json(
    span: &Value,
    resource: &Arc<Resource>,
    scope_name: &Arc<str>,
) -> Result<ReceivedSpan, String> {
    let text = |key: &str| span.get(key).and_then(Value::as_str).unwrap_or_default();
    let trace_id: TraceId = id_of(text("traceId")).ok_or_else(|| bad_id("traceId", span))?;
    let span_id: SpanId = id_of(text("spanId")).ok_or_else(|| bad_id("spanId", span))?;
    let parent_span_id = match text("parentSpanId") {
        "" => None,
        raw => Some(id_of::<8>(raw).ok_or_else(|| bad_id("parentSpanId", span))?)
            .filter(|id| !id.is_zero()),
    };
    Ok(ReceivedSpan {
        trace_id,
        span_id,
        parent_span_id,
        name: text("name").into(),
        kind: kind(span.get("kind")),
        status: status(span.get("status")),
        resource: Arc::clone(resource),
        scope_name: Arc::clone(scope_name),
        attributes: attributes(span.get("attributes")),
        start_unix_nanos: u64_of(span.get("startTimeUnixNano")).unwrap_or_default(),
        end_unix_nanos: u64_of(span.get("endTimeUnixNano")).unwrap_or_default(),
    })
}

fn bad_id(field: &str, span: &Value) -> String {
    let value = span.get(field).map(Value::to_string).unwrap_or_default();
    format!("span {field} {value} is neither hex nor base64 of the right length")
}

/// An id of `N` bytes, sent as hex of exactly `N` bytes or as base64 of them.
fn id_of<const N: usize>(raw: &str) -> Option<Id<N>> {
    if let Some(id) = Id::from_hex(raw) {
        return Some(id);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    Id::from_bytes(&decoded)
}

/// An id as lowercase hex: accepted as hex of exactly `bytes` bytes (8 or 16), or as base64 of
/// them.
pub fn id_to_hex(raw: &str, bytes: usize) -> Option<String> {
    match bytes {
        8 => id_of::<8>(raw).map(|id| id.hex()),
        16 => id_of::<16>(raw).map(|id| id.hex()),
        _ => None,
    }
}

fn kind(value: Option<&Value>) -> SpanKind {
    match value {
        Some(Value::String(s)) => SpanKind::from_name(s),
        Some(Value::Number(n)) => SpanKind::from_otlp(n.as_i64().unwrap_or_default() as i32),
        _ => SpanKind::Unspecified,
    }
}

fn status(value: Option<&Value>) -> SpanStatus {
    let Some(status) = value else {
        return SpanStatus::Unset;
    };
    let code = match status.get("code") {
        Some(Value::String(s)) => s.trim_start_matches("STATUS_CODE_").to_ascii_uppercase(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    match code.as_str() {
        "ERROR" | "2" => SpanStatus::Error {
            message: status
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        },
        "OK" | "1" => SpanStatus::Ok,
        _ => SpanStatus::Unset,
    }
}

/// A 64-bit unsigned number sent as a JSON string or number.
fn u64_of(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// OTLP/JSON `[{"key": .., "value": {"stringValue": ..}}]` into attributes.
fn attributes(value: Option<&Value>) -> Attributes {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key: Arc<str> = kv.get("key")?.as_str()?.into();
            Some((key, any_value(kv.get("value"))))
        })
        .collect()
}

fn any_value(value: Option<&Value>) -> AttrValue {
    let Some(Value::Object(map)) = value else {
        return AttrValue::Other(String::new());
    };
    if let Some(s) = map.get("stringValue").and_then(Value::as_str) {
        return AttrValue::Str(s.to_owned());
    }
    if let Some(i) = map.get("intValue") {
        let parsed = match i {
            Value::String(s) => s.parse().ok(),
            other => other.as_i64(),
        };
        if let Some(i) = parsed {
            return AttrValue::Int(i);
        }
    }
    if let Some(d) = map.get("doubleValue").and_then(Value::as_f64) {
        return AttrValue::Double(d);
    }
    if let Some(b) = map.get("boolValue").and_then(Value::as_bool) {
        return AttrValue::Bool(b);
    }
    AttrValue::Other(Value::Object(map.clone()).to_string())
}

#[cfg(test)]
mod tests {
    use super::id_to_hex;

    #[test]
    fn ids_in_base64_or_hex() {
        assert_eq!(
            id_to_hex("S/kvNXezTaajzpKdDg5HNg==", 16).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            id_to_hex("APBnqgupArc=", 8).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(
            id_to_hex("4BF92F3577B34DA6A3CE929D0E0E4736", 16).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(id_to_hex("APBnqgupArc=", 16), None);
        assert_eq!(id_to_hex("not base64!", 8), None);
    }
}
