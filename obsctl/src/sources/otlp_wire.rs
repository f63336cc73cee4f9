//! OTLP trace export requests read straight from their protobuf bytes. Spans, resources and
//! scopes are borrowed views into the request: nothing is copied until the store has decided
//! what to keep and how much of it. Decoding into opentelemetry-proto structs instead would cost
//! over a hundred times the wire size for a request of empty spans (two bytes each on the wire,
//! about 300 in memory), which is how one export could exhaust memory.
//!
//! Field numbers are those of opentelemetry-proto's `collector/trace/v1`, `trace/v1`,
//! `resource/v1` and `common/v1` messages. [`validate`] walks every part that is read later, so
//! a request is refused whole (as prost would refuse it) before anything is stored.

use std::fmt::Write as _;

use super::span::bounded;

/// Why an export request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed OTLP/protobuf export request: {0}")]
pub struct WireError(&'static str);

/// How deep array and map attribute values may nest (deeper ones are refused).
const MAX_VALUE_DEPTH: usize = 16;

/// One protobuf field value.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Field<'a> {
    fn bytes(self) -> Result<&'a [u8], WireError> {
        match self {
            Self::Bytes(b) => Ok(b),
            _ => Err(WireError("a length-delimited field has another wire type")),
        }
    }

    fn text(self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError("a string is not UTF-8"))
    }

    fn varint(self) -> Result<u64, WireError> {
        match self {
            Self::Varint(v) => Ok(v),
            _ => Err(WireError("a varint field has another wire type")),
        }
    }

    fn fixed64(self) -> Result<u64, WireError> {
        match self {
            Self::Fixed64(v) => Ok(v),
            _ => Err(WireError("a fixed64 field has another wire type")),
        }
    }
}

/// The fields of one message, in wire order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError("a varint is truncated or longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.0.len() {
            return Err(WireError("a field runs past the end of its message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u64, Field<'a>), WireError> {
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 {
            return Err(WireError("a field has tag 0"));
        }
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(fixed(self.take(8)?))),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| WireError("a length does not fit in memory"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            _ => return Err(WireError("groups and unknown wire types are not OTLP")),
        };
        Ok((tag, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Field<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // Stop at the first error: what follows cannot be framed.
            self.0 = &[];
        }
        Some(field)
    }
}

fn fixed(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

/// The length-delimited fields numbered `tag` of `message` (other fields skipped). Call only on
/// a message that [`validate`] accepted: a malformed rest is skipped, not reported.
fn repeated(message: &[u8], tag: u64) -> impl Iterator<Item = &[u8]> {
    Fields(message)
        .map_while(Result::ok)
        .filter(move |(t, _)| *t == tag)
        .filter_map(|(_, f)| f.bytes().ok())
}

/// An `ExportTraceServiceRequest`'s `ResourceSpans` (field 1).
pub(crate) fn resource_spans(request: &[u8]) -> impl Iterator<Item = ResourceSpansRef<'_>> {
    repeated(request, 1).map(ResourceSpansRef::read)
}

/// A `ResourceSpans`: its resource's attributes and its scopes.
pub(crate) struct ResourceSpansRef<'a> {
    /// The `Resource` message (field 1), empty when absent.
    resource: &'a [u8],
    raw: &'a [u8],
}

impl<'a> ResourceSpansRef<'a> {
    fn read(raw: &'a [u8]) -> Self {
        // Fields may come in any order; the last `resource` wins, as in protobuf.
        let resource = repeated(raw, 1).last().unwrap_or_default();
        Self { resource, raw }
    }

    /// The resource's attributes (`Resource.attributes`, field 1).
    pub(crate) fn attributes(&self) -> impl Iterator<Item = KeyValueRef<'a>> + use<'a> {
        repeated(self.resource, 1).map(KeyValueRef::read)
    }

    /// The scopes (`scope_spans`, field 2).
    pub(crate) fn scopes(&self) -> impl Iterator<Item = ScopeSpansRef<'a>> + use<'a> {
        repeated(self.raw, 2).map(ScopeSpansRef::read)
    }
}

/// A `ScopeSpans`: the scope's name and its spans.
pub(crate) struct ScopeSpansRef<'a> {
    /// `InstrumentationScope.name`, empty when absent.
    pub(crate) name: &'a str,
    raw: &'a [u8],
}

impl<'a> ScopeSpansRef<'a> {
    fn read(raw: &'a [u8]) -> Self {
        let name = repeated(raw, 1)
            .last()
            .and_then(|scope| last_text(scope, 1))
            .unwrap_or_default();
        Self { name, raw }
    }

    /// The spans (field 2).
    pub(crate) fn spans(&self) -> impl Iterator<Item = SpanRef<'a>> + use<'a> {
        repeated(self.raw, 2).map(SpanRef::read)
    }

    /// How many spans, without reading them.
    pub(crate) fn span_count(&self) -> u64 {
        repeated(self.raw, 2).count() as u64
    }
}

/// The last string field `tag` of `message`.
fn last_text(message: &[u8], tag: u64) -> Option<&str> {
    Fields(message)
        .map_while(Result::ok)
        .filter(|(t, _)| *t == tag)
        .filter_map(|(_, f)| f.text().ok())
        .last()
}

/// A `Span`, the fields obsctl reads borrowed from the request.
#[derive(Debug, Default)]
pub(crate) struct SpanRef<'a> {
    pub(crate) trace_id: &'a [u8],
    pub(crate) span_id: &'a [u8],
    pub(crate) parent_span_id: &'a [u8],
    pub(crate) name: &'a str,
    pub(crate) kind: i32,
    pub(crate) start_unix_nanos: u64,
    pub(crate) end_unix_nanos: u64,
    pub(crate) status_code: i32,
    pub(crate) status_message: &'a str,
    raw: &'a [u8],
}

impl<'a> SpanRef<'a> {
    fn read(raw: &'a [u8]) -> Self {
        let mut span = Self {
            raw,
            ..Self::default()
        };
        for (tag, field) in Fields(raw).map_while(Result::ok) {
            // A field of the wrong type keeps its default: validate() refused such requests.
            match tag {
                1 => span.trace_id = field.bytes().unwrap_or_default(),
                2 => span.span_id = field.bytes().unwrap_or_default(),
                4 => span.parent_span_id = field.bytes().unwrap_or_default(),
                5 => span.name = field.text().unwrap_or_default(),
                6 => span.kind = field.varint().map_or(0, |v| v as i32),
                7 => span.start_unix_nanos = field.fixed64().unwrap_or_default(),
                8 => span.end_unix_nanos = field.fixed64().unwrap_or_default(),
                15 => {
                    let status = field.bytes().unwrap_or_default();
                    span.status_message = last_text(status, 2).unwrap_or_default();
                    span.status_code = Fields(status)
                        .map_while(Result::ok)
                        .filter(|(t, _)| *t == 3)
                        .filter_map(|(_, f)| f.varint().ok())
                        .last()
                        .map_or(0, |v| v as i32);
                }
                _ => {}
            }
        }
        span
    }

    /// The span's attributes (field 9).
    pub(crate) fn attributes(&self) -> impl Iterator<Item = KeyValueRef<'a>> + use<'a> {
        repeated(self.raw, 9).map(KeyValueRef::read)
    }
}

/// A `KeyValue`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyValueRef<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: WireValue<'a>,
}

impl<'a> KeyValueRef<'a> {
    fn read(raw: &'a [u8]) -> Self {
        let key = last_text(raw, 1).unwrap_or_default();
        let value = repeated(raw, 2)
            .last()
            .map_or(WireValue::Empty, WireValue::read);
        Self { key, value }
    }
}

/// An `AnyValue`, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WireValue<'a> {
    /// `string_value`.
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`: an `ArrayValue` message.
    Array(&'a [u8]),
    /// `kvlist_value`: a `KeyValueList` message.
    Map(&'a [u8]),
    /// No value, or one obsctl does not read.
    Empty,
}

impl<'a> WireValue<'a> {
    fn read(raw: &'a [u8]) -> Self {
        let mut value = Self::Empty;
        for (tag, field) in Fields(raw).map_while(Result::ok) {
            value = match (tag, field) {
                (1, f) => f.text().map_or(Self::Empty, Self::Str),
                (2, Field::Varint(v)) => Self::Bool(v != 0),
                (3, Field::Varint(v)) => Self::Int(v as i64),
                (4, Field::Fixed64(v)) => Self::Double(f64::from_bits(v)),
                (5, Field::Bytes(b)) => Self::Array(b),
                (6, Field::Bytes(b)) => Self::Map(b),
                (7, Field::Bytes(b)) => Self::Bytes(b),
                _ => Self::Empty,
            };
        }
        value
    }

    /// Arrays, maps and bytes as text of at most about `max` bytes, for evidence: `[1, "a"]`,
    /// `{k: v}`, bytes in hex.
    pub(crate) fn render(self, max: usize) -> String {
        let mut out = String::new();
        self.render_into(&mut out, max, 0);
        if out.len() > max {
            return bounded(&out, max).into_owned();
        }
        out
    }

    fn render_into(self, out: &mut String, max: usize, depth: usize) {
        if out.len() > max {
            return;
        }
        match self {
            Self::Str(s) => {
                let _ = write!(out, "{:?}", bounded(s, max));
            }
            Self::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Self::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Self::Double(d) => {
                let _ = write!(out, "{d}");
            }
            Self::Bytes(bytes) => {
                for b in bytes.iter().take(max / 2 + 1) {
                    let _ = write!(out, "{b:02x}");
                }
            }
            Self::Array(raw) => {
                out.push('[');
                for (i, item) in repeated(raw, 1).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if out.len() > max || depth >= MAX_VALUE_DEPTH {
                        out.push('…');
                        break;
                    }
                    Self::read(item).render_into(out, max, depth + 1);
                }
                out.push(']');
            }
            Self::Map(raw) => {
                out.push('{');
                for (i, kv) in repeated(raw, 1).map(KeyValueRef::read).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if out.len() > max || depth >= MAX_VALUE_DEPTH {
                        out.push('…');
                        break;
                    }
                    out.push_str(&bounded(kv.key, max));
                    out.push_str(": ");
                    kv.value.render_into(out, max, depth + 1);
                }
                out.push('}');
            }
            Self::Empty => {}
        }
    }
}

/// Checks that every part of `request` read later is well formed (framing, wire types, UTF-8
/// strings, value nesting) and returns its span count; nothing is allocated.
pub(crate) fn validate(request: &[u8]) -> Result<u64, WireError> {
    let mut spans = 0;
    for resource_spans in messages(request, 1) {
        let resource_spans = resource_spans?;
        each_field(resource_spans, |tag, field| match tag {
            1 => each_message(field.bytes()?, 1, validate_key_value),
            2 => each_field(field.bytes()?, |tag, field| match tag {
                1 => each_field(field.bytes()?, |tag, field| {
                    if tag == 1 {
                        field.text()?;
                    }
                    Ok(())
                }),
                2 => {
                    spans += 1;
                    validate_span(field.bytes()?)
                }
                _ => Ok(()),
            }),
            _ => Ok(()),
        })?;
    }
    Ok(spans)
}

fn validate_span(span: &[u8]) -> Result<(), WireError> {
    each_field(span, |tag, field| {
        match tag {
            1 | 2 | 4 => {
                field.bytes()?;
            }
            5 => {
                field.text()?;
            }
            6 => {
                field.varint()?;
            }
            7 | 8 => {
                field.fixed64()?;
            }
            9 => validate_key_value(field.bytes()?)?,
            15 => each_field(field.bytes()?, |tag, field| {
                match tag {
                    2 => {
                        field.text()?;
                    }
                    3 => {
                        field.varint()?;
                    }
                    _ => {}
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })
}

fn validate_key_value(kv: &[u8]) -> Result<(), WireError> {
    validate_key_value_at(kv, 0)
}

fn validate_key_value_at(kv: &[u8], depth: usize) -> Result<(), WireError> {
    each_field(kv, |tag, field| match tag {
        1 => field.text().map(|_| ()),
        2 => validate_value(field.bytes()?, depth),
        _ => Ok(()),
    })
}

fn validate_value(value: &[u8], depth: usize) -> Result<(), WireError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(WireError("attribute values nest too deep"));
    }
    each_field(value, |tag, field| match tag {
        1 => field.text().map(|_| ()),
        5 => each_message(field.bytes()?, 1, |item| validate_value(item, depth + 1)),
        6 => each_message(field.bytes()?, 1, |kv| validate_key_value_at(kv, depth + 1)),
        _ => Ok(()),
    })
}

/// Calls `f` on every field of `message`, stopping at the first error.
fn each_field<'a>(
    message: &'a [u8],
    mut f: impl FnMut(u64, Field<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for field in Fields(message) {
        let (tag, value) = field?;
        f(tag, value)?;
    }
    Ok(())
}

/// Calls `f` on every length-delimited field `tag` of `message`.
fn each_message<'a>(
    message: &'a [u8],
    tag: u64,
    mut f: impl FnMut(&'a [u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for item in messages(message, tag) {
        f(item?)?;
    }
    Ok(())
}

/// The length-delimited fields `tag` of `message`, or the first framing error.
fn messages(message: &[u8], tag: u64) -> impl Iterator<Item = Result<&[u8], WireError>> {
    Fields(message).filter_map(move |field| match field {
        Ok((t, f)) if t == tag => Some(f.bytes()),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// An `ExportTraceServiceResponse`: empty when every span was kept, otherwise a partial success
/// naming how many spans were rejected and why (exporters log it).
pub(crate) fn export_response(rejected: u64, message: &str) -> Vec<u8> {
    if rejected == 0 {
        return Vec::new();
    }
    let mut partial = Vec::new();
    partial.push(0x08); // rejected_spans = 1, varint
    put_varint(&mut partial, rejected);
    partial.push(0x12); // error_message = 2, length-delimited
    put_varint(&mut partial, message.len() as u64);
    partial.extend_from_slice(message.as_bytes());
    let mut out = vec![0x0a]; // partial_success = 1, length-delimited
    put_varint(&mut out, partial.len() as u64);
    out.extend_from_slice(&partial);
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_framing_errors_are_reported_not_panicked() {
        let mut fields = Fields(&[0x08, 0x96, 0x01]);
        assert!(matches!(fields.next(), Some(Ok((1, Field::Varint(150))))));
        assert!(fields.next().is_none());
        // A length past the end, a truncated varint, a group.
        for bad in [&[0x0a, 0x05, 0x01][..], &[0x08, 0xff], &[0x0b]] {
            assert!(validate(&[&[0x0a, bad.len() as u8][..], bad].concat()).is_err());
        }
    }

    #[test]
    fn partial_success_encodes_the_rejected_count() {
        assert!(export_response(0, "x").is_empty());
        assert_eq!(
            export_response(300, "ab"),
            [0x0a, 0x07, 0x08, 0xac, 0x02, 0x12, 0x02, b'a', b'b']
        );
    }
}
