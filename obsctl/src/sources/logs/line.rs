//! One log line as a buffer keeps it: what the log checks read of it, and nothing else.
//!
//! A line that is a JSON object keeps only the fields of the contract ([`FIELDS`]) and the names
//! other loggers give them ([`ALIASES`]), each as a small typed value clipped to
//! [`MAX_VALUE_BYTES`]; every other key is skipped while parsing, never copied. The text is kept
//! as an excerpt for evidence ([`EXCERPT_CHARS`]), or not at all when it is exactly the compact
//! JSON of the kept fields, as a well-behaved service writes it: it is then rebuilt on demand.
//! A request line of the reference backend costs about 300 bytes this way, where its text plus
//! a parsed map cost about 3 KB. Lines are shared, not copied, by snapshots of a buffer.

mod parse;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use serde_json::Value;

use parse::{issue_record, parse_record};

/// The contract's fields a check reads: the seven of a request line, `message`, and the ids
/// that tie a line to its trace.
pub const FIELDS: [&str; 10] = [
    "timestamp",
    "level",
    "service",
    "message",
    "endpoint",
    "method",
    "status_code",
    "duration_ms",
    "trace_id",
    "span_id",
];

/// Names other loggers give the contract's fields (pino, pino-http, structlog, python-json-logger
/// defaults, OpenTelemetry's log attributes), so a missing field can be named with its cause.
/// Lines keep these fields too.
pub const ALIASES: &[(&str, &[&str])] = &[
    (
        "timestamp",
        &["time", "@timestamp", "ts", "asctime", "datetime", "date"],
    ),
    (
        "level",
        &["levelname", "severity", "lvl", "log.level", "severity_text"],
    ),
    ("message", &["msg", "event", "@message", "body"]),
    (
        "service",
        &["service.name", "service_name", "app", "application"],
    ),
    (
        "endpoint",
        &[
            "path",
            "url",
            "route",
            "http.target",
            "url.path",
            "uri",
            "req",
        ],
    ),
    (
        "method",
        &["http.method", "http.request.method", "verb", "req"],
    ),
    (
        "status_code",
        &[
            "status",
            "statusCode",
            "http.status_code",
            "http.response.status_code",
            "res",
        ],
    ),
    (
        "duration_ms",
        &[
            "duration",
            "latency",
            "responseTime",
            "response_time",
            "elapsed",
            "took",
            "duration_s",
        ],
    ),
];

/// Characters of a line's text kept for evidence; a longer text ends in `…`.
pub const EXCERPT_CHARS: usize = 160;

/// Bytes kept of one field's value. A longer string is clipped (and ends in `…`); a longer array
/// or object becomes one of the same kind holding the clipped start of its JSON, so that its
/// type, which checks judge, survives. No value a check compares is anywhere near this long.
pub const MAX_VALUE_BYTES: usize = 1024;

/// Every key a line keeps, sorted: a key's id is its index.
static KEPT: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let aliases = ALIASES.iter().flat_map(|(_, names)| names.iter().copied());
    let mut names: Vec<&'static str> = FIELDS.iter().copied().chain(aliases).collect();
    names.sort_unstable();
    names.dedup();
    names
});

fn key_id(name: &str) -> Option<u8> {
    let index = KEPT.binary_search(&name).ok()?;
    u8::try_from(index).ok()
}

/// Why a line is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineIssue {
    /// The line is empty or whitespace.
    Empty,
    /// The line is not JSON at all.
    NotJson {
        /// The JSON parser's complaint.
        error: String,
    },
    /// The line is JSON, but not an object.
    NotAnObject {
        /// What it is instead: `string`, `number`, `array`, `bool`, `null`.
        found: &'static str,
    },
    /// The line exceeded the per-line limit and was truncated before parsing.
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for LineIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty line"),
            Self::NotJson { error } => write!(f, "not JSON: {error}"),
            Self::NotAnObject { found } => write!(f, "JSON {found}, not an object"),
            Self::TooLong { limit } => write!(f, "longer than {limit} bytes"),
        }
    }
}

/// What a request line names: method, raw path (`endpoint`) and status code.
pub type RequestKey = (String, String, u16);

/// One log line: its number, the fields the checks read, and its text for evidence.
/// Clones share the line (a snapshot of a buffer costs a pointer per line).
#[derive(Clone, PartialEq)]
pub struct LogLine {
    /// 1-based line number in its source.
    pub number: u64,
    record: Arc<Record>,
}

/// The stored form of a line.
#[derive(Debug, PartialEq)]
struct Record {
    /// The kept values' text, one after another in slot order, then the excerpt (if stored).
    data: Box<str>,
    /// The kept fields of a JSON object in the line's order, or why the line is not one.
    shape: Result<Box<[Slot]>, LineIssue>,
    /// Where the excerpt starts in `data`; `None` when the text is the fields' compact JSON.
    excerpt_at: Option<u32>,
}

/// A kept field: which key, what kind of value, and how many bytes of `data` its value takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key: u8,
    kind: Kind,
    len: u16,
}

/// A kept value's JSON type; the value's text (if any) is in `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    True,
    False,
    /// The number as JSON writes it.
    Number,
    /// The string, unescaped (clipped past [`MAX_VALUE_BYTES`]).
    String,
    /// The array's compact JSON.
    Array,
    /// The object's compact JSON.
    Object,
    /// The clipped start of a longer array's JSON.
    ClippedArray,
    /// The clipped start of a longer object's JSON.
    ClippedObject,
}

impl fmt::Debug for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLine")
            .field("number", &self.number)
            .field("text", &self.text())
            .field("issue", &self.issue())
            .finish()
    }
}

impl LogLine {
    /// Parse `text` as line `number`, keeping what the checks read of it.
    pub fn parse(number: u64, text: &str) -> Self {
        Self {
            number,
            record: Arc::new(parse_record(text)),
        }
    }

    /// Line `number`, whose text is the first `limit` bytes of a longer line: not parsed.
    pub fn too_long(number: u64, text: &str, limit: usize) -> Self {
        Self {
            number,
            record: Arc::new(issue_record(text, LineIssue::TooLong { limit })),
        }
    }

    /// The line's text (lossy UTF-8, without the line ending), clipped to [`EXCERPT_CHARS`]
    /// characters: for evidence.
    pub fn text(&self) -> Cow<'_, str> {
        let record = &*self.record;
        match (record.excerpt_at, &record.shape) {
            (Some(at), _) => Cow::Borrowed(record.data.get(at as usize..).unwrap_or_default()),
            (None, Ok(slots)) => Cow::Owned(excerpt(
                &compact_pieces(slots, &record.data).collect::<String>(),
            )),
            (None, Err(_)) => Cow::Borrowed(""),
        }
    }

    /// Why the line is not a JSON object; `None` when it is one.
    pub fn issue(&self) -> Option<&LineIssue> {
        self.record.shape.as_ref().err()
    }

    /// Whether the line is a JSON object.
    pub fn is_object(&self) -> bool {
        self.record.shape.is_ok()
    }

    /// The JSON field `key`, when the line is an object that has it. Only the contract's
    /// fields and their aliases are kept ([`FIELDS`], [`ALIASES`]): any other key reads `None`.
    pub fn field(&self, key: &str) -> Option<Value> {
        let (kind, text) = self.raw(key)?;
        Some(match kind {
            Kind::Null => Value::Null,
            Kind::True => Value::Bool(true),
            Kind::False => Value::Bool(false),
            Kind::Number => text.parse().map_or(Value::Null, Value::Number),
            Kind::String => Value::String(text.to_owned()),
            Kind::Array | Kind::Object => serde_json::from_str(text).unwrap_or(Value::Null),
            Kind::ClippedArray => Value::Array(vec![Value::String(text.to_owned())]),
            Kind::ClippedObject => Value::Object(
                std::iter::once(("…".to_owned(), Value::String(text.to_owned()))).collect(),
            ),
        })
    }

    /// The JSON field `key` as a string.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        match self.raw(key)? {
            (Kind::String, text) => Some(text),
            _ => None,
        }
    }

    /// Whether the line describes a request: its request fields hold request values
    /// (`status_code` a status, as a number or a numeric string, or `endpoint` a path together
    /// with a `method`). `null`s, which a formatter prints for the fields other lines lack, are
    /// not a request.
    pub fn is_request_line(&self) -> bool {
        let endpoint = self
            .str_field("endpoint")
            .is_some_and(|e| e.starts_with('/'));
        let method = self.str_field("method").is_some_and(|m| !m.is_empty());
        self.status_code().is_some() || (endpoint && method)
    }

    /// The `status_code` field as a status, whether written as a number (as the contract says)
    /// or as a numeric string (`"200"`, a type error the checks report).
    pub fn status_code(&self) -> Option<u16> {
        let status: u64 = match self.raw("status_code")? {
            (Kind::Number, text) => text.parse().ok()?,
            (Kind::String, text) => text.trim().parse().ok()?,
            _ => return None,
        };
        u16::try_from(status)
            .ok()
            .filter(|s| (100..600).contains(s))
    }

    /// `(method, endpoint, status_code)` of a request line, when the line has all three (a
    /// status written as a string counts: its type is a finding, the request still happened).
    pub fn request_key(&self) -> Option<RequestKey> {
        Some((
            self.str_field("method")?.to_owned(),
            self.str_field("endpoint")?.to_owned(),
            self.status_code()?,
        ))
    }

    /// The bytes this line holds in a buffer, allocator overhead included (an estimate that
    /// errs high): what a buffer's byte budget counts.
    pub fn stored_bytes(&self) -> usize {
        /// Heap bytes an allocation costs beyond what it holds: malloc's header and rounding.
        const ALLOCATION: usize = 16;
        let record = &*self.record;
        let shape = match &record.shape {
            Ok(slots) => slots.len() * size_of::<Slot>() + ALLOCATION,
            Err(LineIssue::NotJson { error }) => error.capacity() + ALLOCATION,
            Err(_) => 0,
        };
        size_of::<Self>()
            + 2 * size_of::<usize>()
            + size_of::<Record>()
            + ALLOCATION
            + record.data.len()
            + ALLOCATION
            + shape
    }

    /// The kind and text of kept field `key`.
    fn raw(&self, key: &str) -> Option<(Kind, &str)> {
        let id = key_id(key)?;
        let slots = self.record.shape.as_ref().ok()?;
        values(slots, &self.record.data)
            .find_map(|(slot, text)| (slot.key == id).then_some((slot.kind, text)))
    }
}

/// Each slot with its value's text.
fn values<'a>(slots: &'a [Slot], data: &'a str) -> impl Iterator<Item = (Slot, &'a str)> + 'a {
    slots.iter().scan(0usize, move |at, slot| {
        let start = *at;
        *at += usize::from(slot.len);
        Some((*slot, data.get(start..*at).unwrap_or_default()))
    })
}

/// The first [`EXCERPT_CHARS`] characters of `text`, with `…` when there were more.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The kept fields as one compact JSON object, in pieces, in their order. Strings are written
/// as stored, without escapes: the pieces spell a line's text only when none needed one, and
/// then they rebuild it exactly.
fn compact_pieces<'a>(slots: &'a [Slot], data: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let fields = values(slots, data)
        .enumerate()
        .flat_map(|(i, (slot, text))| {
            let name = KEPT.get(usize::from(slot.key)).copied().unwrap_or_default();
            let (quote, value) = match slot.kind {
                Kind::Null => ("", "null"),
                Kind::True => ("", "true"),
                Kind::False => ("", "false"),
                Kind::Number | Kind::Array | Kind::Object => ("", text),
                Kind::String | Kind::ClippedArray | Kind::ClippedObject => ("\"", text),
            };
            let comma = if i == 0 { "" } else { "," };
            [comma, "\"", name, "\":", quote, value, quote]
        });
    std::iter::once("{")
        .chain(fields)
        .chain(std::iter::once("}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kept_key_has_an_id_and_every_value_fits_its_slot() {
        assert!(KEPT.len() <= usize::from(u8::MAX));
        for name in FIELDS {
            assert!(key_id(name).is_some(), "{name}");
        }
        assert!(MAX_VALUE_BYTES + '…'.len_utf8() <= usize::from(u16::MAX));
    }

    #[test]
    fn a_compact_line_is_rebuilt_exactly_and_other_lines_keep_an_excerpt() {
        let compact = r#"{"timestamp":"2026-01-01T00:00:00.000Z","level":"INFO","status_code":200,"duration_ms":0.5,"trace_id":null,"ok":true}"#;
        let line = LogLine::parse(1, compact);
        // `ok` is not kept: the text is stored, not rebuilt.
        assert!(line.record.excerpt_at.is_some());
        assert_eq!(line.text(), compact);
        let kept = r#"{"level":"INFO","message":"plain é","status_code":200,"duration_ms":1.0,"span_id":null,"req":{"a":[1,2]}}"#;
        let line = LogLine::parse(2, kept);
        assert_eq!(line.record.excerpt_at, None, "rebuilt from the fields");
        assert_eq!(line.text(), kept);
        // An escape in a string: the text is stored, so that it is shown as written.
        let escaped = r#"{"level":"INFO","message":"a \"quoted\"\n"}"#;
        let line = LogLine::parse(3, escaped);
        assert!(line.record.excerpt_at.is_some());
        assert_eq!(line.text(), escaped);
        assert_eq!(line.str_field("message"), Some("a \"quoted\"\n"));
        // Spaces after the colons: not the compact form, so stored.
        let spaced = r#"{"level": "INFO"}"#;
        assert_eq!(LogLine::parse(4, spaced).text(), spaced);
    }

    #[test]
    fn long_values_are_clipped_and_keep_their_type() {
        let long = "x".repeat(5_000);
        let text =
            format!(r#"{{"message":"{long}","endpoint":{{"deep":"{long}"}},"method":["{long}"]}}"#);
        let line = LogLine::parse(1, &text);
        let message = line.str_field("message").unwrap_or_default();
        assert_eq!(message.len(), MAX_VALUE_BYTES + '…'.len_utf8());
        assert!(line.field("endpoint").is_some_and(|v| v.is_object()));
        assert!(line.field("method").is_some_and(|v| v.is_array()));
        assert!(line.stored_bytes() < 4 * MAX_VALUE_BYTES);
    }
}
