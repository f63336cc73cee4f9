//! A parser for the Prometheus text exposition format 0.0.4: families with `# HELP` / `# TYPE`,
//! samples whose label values may hold `{` `}` `,` `=` and the escapes `\"` `\\` `\n`, special
//! values (`NaN`, `+Inf`, `-Inf`), exponents and optional timestamps. Histogram and summary
//! series (`_bucket`, `_sum`, `_count`) are grouped under their family.
//!
//! With [`Format::OpenMetrics`] it reads OpenMetrics 1.0 text as well: exemplars after a
//! sample (` # {trace_id="..."} 0.03 1700000000.123`), `# UNIT`, timestamps in seconds, the
//! types `gaugehistogram`, `stateset` and `info`, counters whose family is declared without
//! `_total` (their `_total` and `_created` samples join it; [`Exposition::family`] finds it by
//! either name), and the closing `# EOF`, which must be there and be last.
//!
//! Written here because prometheus-parse 0.2.5 silently drops every sample whose label value
//! contains `}`, i.e. every route-template series such as `path="/api/users/{user_id}"`.
//! Bodies that are not exposition text at all (a JSON-encoded string, HTML, nothing) are errors
//! with their own variants, so a check can say exactly what the endpoint returned.
//!
//! Memory follows the body, not the number of samples: the parsed value keeps the body text and
//! indexes it (interned names, 24-byte sample records, 12-byte labels; see `store`), and what
//! checks read are views that borrow it ([`MetricFamily`], [`Sample`], [`Labels`]). Parsed, a
//! 16 MB body of short labelled samples takes 3.3 times its size, body included (3.9 while
//! [`Exposition::duplicates`] searches it).

mod parser;
mod store;
mod view;

use std::fmt;

use parser::Builder;
pub use parser::{EXEMPLAR_MAX_CHARS, parse_float};
use store::Store;
pub use view::{Exemplar, HistogramSeries, Labels, MetricFamily, Sample, SampleIter, Samples};

/// The exposition format a body is read as, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The classic text format (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` value announces: OpenMetrics for
    /// `application/openmetrics-text`, the text format for anything else (as Prometheus reads it).
    pub fn of_content_type(content_type: Option<&str>) -> Self {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "Prometheus text",
            Self::OpenMetrics => "OpenMetrics",
        }
    }
}

/// Why a body is not valid exposition text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpositionError {
    /// The body is empty or only whitespace.
    #[error("the body is empty: no metrics")]
    Empty,
    /// The body is a JSON-encoded string (the FastAPI sample returns `generate_latest()` as JSON).
    #[error(
        "the body is a JSON-encoded string (it starts with a double quote), not Prometheus text: \
         return the exposition bytes as the response body, not serialised as JSON"
    )]
    JsonString,
    /// The body is a JSON object or array.
    #[error("the body is JSON, not Prometheus text")]
    Json,
    /// The body is an HTML page (an error page or a proxy's answer).
    #[error("the body is an HTML page, not Prometheus text")]
    Html,
    /// The body is not valid UTF-8.
    #[error("the body is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A line does not follow the grammar.
    #[error("line {line}, column {column}: expected {expected}, found {found}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// 1-based column (in characters) where parsing stopped.
        column: usize,
        /// What the grammar expected there.
        expected: &'static str,
        /// An excerpt of what was there instead.
        found: String,
    },
    /// The body is larger than the parsed form can address (scrapes are bounded far below).
    #[error("the body is {bytes} bytes, more than the {limit} bytes obsctl parses")]
    TooLarge {
        /// The body's size.
        bytes: usize,
        /// The largest body parsed.
        limit: usize,
    },
    /// A line is well formed but contradicts an earlier one or the format's rules.
    #[error("line {line}: {message}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The type a family declares with `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A monotonically increasing counter.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Buckets (`_bucket{le=...}`), `_sum` and `_count`.
    Histogram,
    /// Quantiles (`{quantile=...}`), `_sum` and `_count`.
    Summary,
    /// Declared `untyped` (OpenMetrics: `unknown`), or not declared at all.
    Untyped,
    /// OpenMetrics: buckets (`_bucket{le=...}`), `_gsum` and `_gcount`, as gauges.
    GaugeHistogram,
    /// OpenMetrics: one 0/1 sample per state.
    StateSet,
    /// OpenMetrics: `_info` samples of value 1 carrying labels.
    Info,
}

impl MetricType {
    fn parse(word: &str, format: Format) -> Option<Self> {
        Some(match (word, format) {
            ("counter", _) => Self::Counter,
            ("gauge", _) => Self::Gauge,
            ("histogram", _) => Self::Histogram,
            ("summary", _) => Self::Summary,
            ("untyped" | "unknown", _) => Self::Untyped,
            ("gaugehistogram", Format::OpenMetrics) => Self::GaugeHistogram,
            ("stateset", Format::OpenMetrics) => Self::StateSet,
            ("info", Format::OpenMetrics) => Self::Info,
            _ => return None,
        })
    }

    /// The word used in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
            Self::GaugeHistogram => "gaugehistogram",
            Self::StateSet => "stateset",
            Self::Info => "info",
        }
    }
}

/// A parsed exposition body: its families in order of first appearance, read through views.
#[derive(Clone, PartialEq, Default)]
pub struct Exposition {
    store: Store,
}

/// Samples that repeat an earlier sample's name and labels (invalid exposition: Prometheus
/// rejects the scrape).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duplicates<'a> {
    /// How many samples repeat an earlier one.
    pub count: u64,
    /// The first of them, in body order.
    pub first: Sample<'a>,
    /// The line of the sample it repeats.
    pub original_line: usize,
}

impl Exposition {
    /// The family named `name`, if any. A counter is also found by its sample name: OpenMetrics
    /// declares `fastapi_requests` for the samples `fastapi_requests_total`.
    pub fn family(&self, name: &str) -> Option<MetricFamily<'_>> {
        self.families().find(|f| f.name == name).or_else(|| {
            let base = name.strip_suffix("_total")?;
            self.families()
                .find(|f| f.name == base && f.kind == MetricType::Counter)
        })
    }

    /// The format the body was read as.
    pub fn format(&self) -> Format {
        self.store.format
    }

    /// How many samples carry an exemplar.
    pub fn exemplar_count(&self) -> usize {
        self.store.exemplars.len()
    }

    /// Every family, in body order.
    pub fn families(&self) -> impl ExactSizeIterator<Item = MetricFamily<'_>> + '_ {
        let store = &self.store;
        store
            .families
            .iter()
            .map(move |record| MetricFamily::new(store, record))
    }

    /// Total number of samples.
    pub fn sample_count(&self) -> usize {
        self.store.samples.len()
    }

    /// The body text that was parsed.
    pub fn text(&self) -> &str {
        &self.store.text.body
    }

    /// The samples that repeat an earlier sample's name and labels, when there are any. One
    /// pass over the samples; a table of 4 to 10 bytes per distinct series while it runs.
    pub fn duplicates(&self) -> Option<Duplicates<'_>> {
        let (count, dup, original) = store::duplicates(&self.store)?;
        Some(Duplicates {
            count,
            first: view::sample(&self.store, dup)?,
            original_line: self.store.samples.get(original)?.line as usize,
        })
    }
}

impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exposition")
            .field("families", &self.families().collect::<Vec<_>>())
            .finish()
    }
}

/// Largest body parsed: spans are 32-bit offsets into the body and its unescaped strings (which
/// are never longer than the body).
const MAX_BODY: usize = (u32::MAX / 2) as usize;

/// Parse a body given as bytes (checks UTF-8 first), as the text format.
pub fn parse_bytes(body: &[u8]) -> Result<Exposition, ExpositionError> {
    parse_bytes_as(body, Format::Text)
}

/// Parse a body given as bytes (checks UTF-8 first) as `format`.
pub fn parse_bytes_as(body: &[u8], format: Format) -> Result<Exposition, ExpositionError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse_as(text, format),
        Err(e) => Err(ExpositionError::NotUtf8 {
            offset: e.valid_up_to(),
        }),
    }
}

/// Parse a text-format exposition body (copied into the parsed value).
pub fn parse(body: &str) -> Result<Exposition, ExpositionError> {
    parse_as(body, Format::Text)
}

/// Parse an exposition body in `format` (copied into the parsed value).
pub fn parse_as(body: &str, format: Format) -> Result<Exposition, ExpositionError> {
    let mut store = build(body, format)?;
    store.text.body = body.to_owned();
    Ok(Exposition { store })
}

/// Parse a text-format body handed over whole; see [`parse_owned_as`].
pub fn parse_owned(body: Vec<u8>) -> Result<Exposition, (ExpositionError, Vec<u8>)> {
    parse_owned_as(body, Format::Text)
}

/// Parse a body in `format` handed over whole (a scrape): it becomes the parsed value's text,
/// without a copy. When it is not exposition text, it comes back with the reason.
pub fn parse_owned_as(
    body: Vec<u8>,
    format: Format,
) -> Result<Exposition, (ExpositionError, Vec<u8>)> {
    let text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            return Err((ExpositionError::NotUtf8 { offset }, e.into_bytes()));
        }
    };
    match build(&text, format) {
        Ok(mut store) => {
            store.text.body = text;
            Ok(Exposition { store })
        }
        Err(error) => Err((error, text.into_bytes())),
    }
}

/// The parsed form of `body`, without its text.
fn build(body: &str, format: Format) -> Result<Store, ExpositionError> {
    reject_non_text(body)?;
    if body.len() > MAX_BODY {
        return Err(ExpositionError::TooLarge {
            bytes: body.len(),
            limit: MAX_BODY,
        });
    }
    let mut builder = Builder::new(body, format);
    builder.lines()?;
    if builder.is_empty() {
        return Err(ExpositionError::Empty);
    }
    Ok(builder.finish())
}

/// Recognise whole bodies that are something else than exposition text.
fn reject_non_text(body: &str) -> Result<(), ExpositionError> {
    let trimmed = body.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(ExpositionError::Empty);
    }
    if trimmed.starts_with('"') {
        return Err(ExpositionError::JsonString);
    }
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        // Validated without building it: a large JSON answer must not become a larger tree.
        && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok()
    {
        return Err(ExpositionError::Json);
    }
    let head: String = trimmed
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<?xml")
    {
        return Err(ExpositionError::Html);
    }
    Ok(())
}
