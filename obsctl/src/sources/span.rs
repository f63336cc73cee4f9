//! The span model shared by every trace source: the embedded OTLP receiver and Tempo both map
//! what they receive into [`ReceivedSpan`], so checks treat spans alike whatever their origin.
//!
//! Records are compact: ids are bytes (rendered as hex only when shown or compared with text),
//! names, keys and resources are shared (`Arc`), and every kept string is bounded
//! ([`bounded`]). What the trace checks judge of a span besides its ids is its [`SpanShape`]:
//! spans alike in all of it are counted together ([`ShapeCounts`]), which is how obsctl's
//! receiver keeps a long run's spans in memory that does not grow with every request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// An id of `N` bytes (a trace id has 16, a span id 8), shown as `2N` lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id<const N: usize>([u8; N]);

/// A trace id: 16 bytes, 32 lowercase hex digits.
pub type TraceId = Id<16>;

/// A span id: 8 bytes, 16 lowercase hex digits.
pub type SpanId = Id<8>;

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<const N: usize> Id<N> {
    /// The all-zero id, which OTLP uses for "none".
    pub const ZERO: Self = Self([0; N]);

    /// The id of exactly `N` bytes, `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The id of exactly `2N` hex digits (either case), `None` otherwise.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 2 * N {
            return None;
        }
        let mut out = [0u8; N];
        for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(digits, 16).ok()?;
        }
        Some(Self(out))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// Whether every byte is zero (OTLP's "no id").
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// The lowercase hex digits.
    pub fn hex(&self) -> String {
        self.to_string()
    }

    /// The `i`-th lowercase hex digit.
    fn digit(&self, i: usize) -> u8 {
        let byte = self.0[i / 2];
        let nibble = if i.is_multiple_of(2) {
            byte >> 4
        } else {
            byte & 0xf
        };
        HEX[usize::from(nibble)]
    }

    /// Whether the lowercase hex of this id starts with `prefix` (compared without allocating;
    /// upper-case digits never match, as with the hex text).
    pub fn starts_with(&self, prefix: &str) -> bool {
        prefix.len() <= 2 * N && prefix.bytes().enumerate().all(|(i, b)| b == self.digit(i))
    }
}

impl<const N: usize> fmt::Display for Id<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in 0..2 * N {
            fmt::Write::write_char(f, char::from(self.digit(i)))?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Id<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<const N: usize> PartialEq<str> for Id<N> {
    /// Equal to its own lowercase hex, and to nothing else.
    fn eq(&self, other: &str) -> bool {
        other.len() == 2 * N && self.starts_with(other)
    }
}

impl<const N: usize> PartialEq<&str> for Id<N> {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl<const N: usize> PartialEq<String> for Id<N> {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// `s` when it fits in `max` bytes; otherwise its first bytes (cut at a character boundary)
/// followed by a marker saying how long it was, e.g. `abc…[+1048573 bytes]`. The result is at
/// most `max` bytes plus the marker (under 24 bytes).
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}…[+{} bytes]", &s[..cut], s.len() - cut))
}

/// One span, with its resource and instrumentation scope shared with the spans that came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) name: Arc<str>,
    pub(crate) kind: SpanKind,
    pub(crate) status: SpanStatus,
    pub(crate) resource: Arc<Resource>,
    pub(crate) scope_name: Arc<str>,
    pub(crate) attributes: Attributes,
    pub(crate) start_unix_nanos: u64,
    pub(crate) end_unix_nanos: u64,
}

impl ReceivedSpan {
    /// The trace id (its `Display` is 32 lowercase hex digits).
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span id (its `Display` is 16 lowercase hex digits).
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The parent's span id, `None` for a root span (an empty or all-zero parent id).
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// Whether this span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }

    /// The span name, e.g. `GET /api/users/{user_id}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The span kind.
    pub fn kind(&self) -> SpanKind {
        self.kind
    }

    /// The span status.
    pub fn status(&self) -> &SpanStatus {
        &self.status
    }

    /// The resource's `service.name`, when it has one.
    pub fn service_name(&self) -> Option<&str> {
        self.resource.service_name()
    }

    /// The resource the span came with (only `service.name` when obsctl kept the checked
    /// attributes only).
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The span attribute `key`, if kept.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The span attributes kept.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// Name of the instrumentation scope that produced the span (empty when none).
    pub fn scope_name(&self) -> &str {
        &self.scope_name
    }

    /// Start time, nanoseconds since the Unix epoch.
    pub fn start_unix_nanos(&self) -> u64 {
        self.start_unix_nanos
    }

    /// End time, nanoseconds since the Unix epoch.
    pub fn end_unix_nanos(&self) -> u64 {
        self.end_unix_nanos
    }

    /// What the checks judge of this span besides its ids.
    pub fn shape(&self) -> SpanShape {
        let values = self.attributes.iter().map(|(k, v)| (k, ValueRef::from(v)));
        SpanShape {
            service: self.resource.service_name.clone(),
            kind: self.kind,
            name: Arc::clone(&self.name),
            error: self.status.is_error(),
            http: HttpFields::from_attributes(values, &mut |s| Arc::from(s)),
        }
    }
}

/// Attributes in arrival order (a key sent twice keeps its first value).
#[derive(Clone, PartialEq, Default)]
pub struct Attributes(Box<[(Arc<str>, AttrValue)]>);

impl Attributes {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Approximate heap bytes held besides the shared keys.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len() * std::mem::size_of::<(Arc<str>, AttrValue)>()
            + self.0.iter().map(|(_, v)| v.heap_bytes()).sum::<usize>()
    }
}

impl FromIterator<(Arc<str>, AttrValue)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, AttrValue)>>(iter: I) -> Self {
        let mut kept: Vec<(Arc<str>, AttrValue)> = Vec::new();
        for (key, value) in iter {
            if !kept.iter().any(|(k, _)| *k == key) {
                kept.push((key, value));
            }
        }
        Self(kept.into_boxed_slice())
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = AttrValue;

    /// The value of `key`; panics when there is none, as a map's index does (use
    /// [`Attributes::get`] on data from outside).
    fn index(&self, key: &str) -> &AttrValue {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no attribute {key:?}"),
        }
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A resource: the attributes describing what produced a batch of spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    attributes: Attributes,
    service_name: Option<Arc<str>>,
}

impl Resource {
    /// A resource of `attributes`; its service name is their `service.name` string.
    pub fn new(attributes: Attributes) -> Self {
        let service_name = attributes
            .get("service.name")
            .and_then(AttrValue::as_str)
            .map(Arc::from);
        Self {
            attributes,
            service_name,
        }
    }

    /// The attribute `key`, if present.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// Every attribute.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The `service.name` string, when there is one.
    pub fn service_name(&self) -> Option<&str> {
        self.service_name.as_deref()
    }

    /// Approximate bytes held, for the receiver's budget.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.attributes.heap_bytes()
            + self.service_name.as_ref().map_or(0, |s| s.len())
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

    /// The status of an OTLP status code and message.
    pub(crate) fn from_otlp(code: i32, message: &str) -> Self {
        match code {
            2 => Self::Error {
                message: message.to_owned(),
            },
            1 => Self::Ok,
            _ => Self::Unset,
        }
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
        ValueRef::from(self).as_i64()
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

    fn heap_bytes(&self) -> usize {
        match self {
            Self::Str(s) | Self::Other(s) => s.capacity(),
            _ => 0,
        }
    }
}

/// A borrowed attribute value, as far as the HTTP fields need to tell values apart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueRef<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// Anything else.
    Other,
}

impl<'a> ValueRef<'a> {
    fn as_str(self) -> Option<&'a str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_i64(self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(i),
            Self::Str(s) => s.parse().ok(),
            Self::Other => None,
        }
    }
}

impl<'a> From<&'a AttrValue> for ValueRef<'a> {
    fn from(value: &'a AttrValue) -> Self {
        match value {
            AttrValue::Str(s) => Self::Str(s),
            AttrValue::Int(i) => Self::Int(*i),
            _ => Self::Other,
        }
    }
}

/// The attributes the checks read, besides the HTTP fields' and `service.name`.
pub const CHECKED_ATTRIBUTES: [&str; 7] = [
    "http.request.method",
    "http.method",
    "http.route",
    "http.response.status_code",
    "http.status_code",
    "url.path",
    "http.target",
];

/// What the HTTP semantic conventions put on a span, under the stable or the older names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HttpFields {
    /// `http.request.method` (or, when it is not a string, the older `http.method`).
    pub method: Option<Arc<str>>,
    /// `http.response.status_code` (or the older `http.status_code`) as an integer; SDKs that
    /// record it as a string of digits count too.
    pub status_code: Option<i64>,
    /// `http.route`, when a string.
    pub route: Option<Arc<str>>,
}

impl HttpFields {
    /// The fields among `attributes` (the first value of a key counts), each string made shared
    /// by `share`.
    pub(crate) fn from_attributes<'a>(
        attributes: impl Iterator<Item = (&'a str, ValueRef<'a>)>,
        share: &mut impl FnMut(&str) -> Arc<str>,
    ) -> Self {
        // [stable name, older name] for the method and the status; the first value seen of each.
        let mut method: [Option<ValueRef<'a>>; 2] = [None, None];
        let mut status: [Option<ValueRef<'a>>; 2] = [None, None];
        let mut route: Option<ValueRef<'a>> = None;
        for (key, value) in attributes {
            let slot = match key {
                "http.request.method" => &mut method[0],
                "http.method" => &mut method[1],
                "http.response.status_code" => &mut status[0],
                "http.status_code" => &mut status[1],
                "http.route" => &mut route,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        Self {
            method: method
                .iter()
                .flatten()
                .find_map(|v| v.as_str())
                .map(&mut *share),
            status_code: status.iter().flatten().find_map(|v| v.as_i64()),
            route: route.and_then(ValueRef::as_str).map(share),
        }
    }
}

/// What the checks judge of a span besides its ids and times: spans alike in all of it are
/// counted together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpanShape {
    /// The resource's `service.name`.
    pub service: Option<Arc<str>>,
    /// The span kind.
    pub kind: SpanKind,
    /// The span name.
    pub name: Arc<str>,
    /// Whether the status is `Error`.
    pub error: bool,
    /// The HTTP fields.
    pub http: HttpFields,
}

impl SpanShape {
    /// Whether this is a SERVER span of `service`.
    pub fn is_server_of(&self, service: &str) -> bool {
        self.kind == SpanKind::Server && self.service.as_deref() == Some(service)
    }
}

/// Spans counted per distinct [`SpanShape`], in order of first arrival.
#[derive(Debug, Clone, Default)]
pub struct ShapeCounts(Vec<(Arc<SpanShape>, u64)>);

impl ShapeCounts {
    /// The shapes of `spans`, counted.
    pub fn from_spans(spans: &[ReceivedSpan]) -> Self {
        let mut index: HashMap<SpanShape, usize> = HashMap::new();
        let mut counts: Vec<(Arc<SpanShape>, u64)> = Vec::new();
        for span in spans {
            let shape = span.shape();
            match index.get(&shape) {
                Some(&i) => counts[i].1 += 1,
                None => {
                    index.insert(shape.clone(), counts.len());
                    counts.push((Arc::new(shape), 1));
                }
            }
        }
        Self(counts)
    }

    /// Shapes counted elsewhere (the receiver counts them on arrival).
    pub(crate) fn from_counts(counts: Vec<(Arc<SpanShape>, u64)>) -> Self {
        Self(counts)
    }

    /// Each shape seen, with how many spans had it.
    pub fn iter(&self) -> impl Iterator<Item = (&SpanShape, u64)> {
        self.0.iter().map(|(shape, n)| (&**shape, *n))
    }

    /// How many spans in all.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// How many spans have a shape that `pred` accepts.
    pub fn count(&self, pred: impl Fn(&SpanShape) -> bool) -> u64 {
        self.iter().filter(|(s, _)| pred(s)).map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_as_lowercase_padded_hex_and_compare_with_text() {
        let id = SpanId::from_bytes(&[0x0a, 0xff, 0, 0, 0, 0, 0, 1]).expect("8 bytes");
        assert_eq!(id.to_string(), "0aff000000000001");
        assert_eq!(id, "0aff000000000001");
        assert_ne!(id, "0AFF000000000001");
        assert!(id.starts_with("0aff"));
        assert!(!id.starts_with("0aff0000000000011"));
        assert_eq!(SpanId::from_hex("0AFF000000000001"), Some(id));
        assert_eq!(SpanId::from_hex("0aff"), None);
        assert_eq!(TraceId::from_bytes(&[1; 8]), None);
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary_with_a_marker() {
        assert_eq!(bounded("short", 8), "short");
        assert_eq!(bounded("ééééé", 3), "é…[+8 bytes]");
        let huge = "x".repeat(1 << 20);
        let kept = bounded(&huge, 256);
        assert!(kept.len() < 256 + 24, "{}", kept.len());
        assert!(kept.ends_with(&format!("…[+{} bytes]", (1 << 20) - 256)));
    }

    #[test]
    fn integer_strings_read_as_integers() {
        assert_eq!(AttrValue::Str("200".into()).as_i64(), Some(200));
        assert_eq!(AttrValue::Int(7).as_i64(), Some(7));
        assert_eq!(AttrValue::Bool(true).as_i64(), None);
    }

    #[test]
    fn http_fields_prefer_the_stable_names_and_skip_values_of_the_wrong_type() {
        let attributes = [
            ("http.method", ValueRef::Str("GET")),
            ("http.request.method", ValueRef::Int(1)),
            ("http.status_code", ValueRef::Int(404)),
            ("http.response.status_code", ValueRef::Str("200")),
            ("http.route", ValueRef::Str("/a/{id}")),
        ];
        let fields = HttpFields::from_attributes(attributes.into_iter(), &mut |s| Arc::from(s));
        assert_eq!(fields.method.as_deref(), Some("GET"));
        assert_eq!(fields.status_code, Some(200));
        assert_eq!(fields.route.as_deref(), Some("/a/{id}"));
    }

    #[test]
    fn span_kind_names_map() {
        assert_eq!(SpanKind::from_name("SPAN_KIND_SERVER"), SpanKind::Server);
        assert_eq!(SpanKind::from_otlp(3), SpanKind::Client);
        assert_eq!(SpanKind::from_name("weird"), SpanKind::Unspecified);
    }
}
