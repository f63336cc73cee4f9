//! OTLP trace data in its JSON encoding (as Tempo returns it) mapped into [`ReceivedSpan`]s.
//! Accepts both protobuf-JSON conventions seen in the wild: ids as base64 (Tempo) or hex (the
//! OTLP/JSON spec), 64-bit numbers as strings or numbers, enums as names or numbers, and the
//! old `instrumentationLibrarySpans` key next to `scopeSpans`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use super::span::{
    AttrValue, ReceivedSpan, SpanKind, SpanStatus, parent_id, service_name_of, to_hex,
};

/// Flatten a list of OTLP/JSON `ResourceSpans` objects into spans.
pub fn spans_from_resource_spans(resource_spans: &[Value]) -> Result<Vec<ReceivedSpan>, String> {
    let mut out = Vec::new();
    for rs in resource_spans {
        let resource = attributes(rs.get("resource").and_then(|r| r.get("attributes")));
        let service_name = service_name_of(&resource);
        let scopes = rs
            .get("scopeSpans")
            .or_else(|| rs.get("instrumentationLibrarySpans"))
            .and_then(Value::as_array);
        for scope in scopes.into_iter().flatten() {
            let scope_name = scope
                .get("scope")
                .or_else(|| scope.get("instrumentationLibrary"))
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let spans = scope.get("spans").and_then(Value::as_array);
            for span in spans.into_iter().flatten() {
                out.push(span_from_json(span, &resource, &service_name, scope_name)?);
            }
        }
    }
    Ok(out)
}

fn span_from_json(
    span: &Value,
    resource: &BTreeMap<String, AttrValue>,
    service_name: &Option<String>,
    scope_name: &str,
) -> Result<ReceivedSpan, String> {
    let text = |key: &str| span.get(key).and_then(Value::as_str).unwrap_or_default();
    let trace_id = id_to_hex(text("traceId"), 16).ok_or_else(|| bad_id("traceId", span))?;
    let span_id = id_to_hex(text("spanId"), 8).ok_or_else(|| bad_id("spanId", span))?;
    let parent = match text("parentSpanId") {
        "" => None,
        raw => parent_id(&id_to_hex(raw, 8).ok_or_else(|| bad_id("parentSpanId", span))?),
    };
    Ok(ReceivedSpan {
        trace_id,
        span_id,
        parent_span_id: parent,
        name: text("name").to_owned(),
        kind: kind(span.get("kind")),
        service_name: service_name.clone(),
        resource: resource.clone(),
        attributes: attributes(span.get("attributes")),
        status: status(span.get("status")),
        start_unix_nanos: u64_of(span.get("startTimeUnixNano")).unwrap_or_default(),
        end_unix_nanos: u64_of(span.get("endTimeUnixNano")).unwrap_or_default(),
        scope_name: scope_name.to_owned(),
    })
}

fn bad_id(field: &str, span: &Value) -> String {
    let value = span.get(field).map(Value::to_string).unwrap_or_default();
    format!("span {field} {value} is neither hex nor base64 of the right length")
}

/// An id as lowercase hex: accepted as hex of exactly `bytes` bytes, or as base64 of them.
pub fn id_to_hex(raw: &str, bytes: usize) -> Option<String> {
    if raw.len() == bytes * 2 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(raw.to_ascii_lowercase());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    (decoded.len() == bytes).then(|| to_hex(&decoded))
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

/// OTLP/JSON `[{"key": .., "value": {"stringValue": ..}}]` into a map.
fn attributes(value: Option<&Value>) -> BTreeMap<String, AttrValue> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
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
