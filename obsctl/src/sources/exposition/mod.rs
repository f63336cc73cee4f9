//! A parser for the Prometheus text exposition format 0.0.4: families with `# HELP` / `# TYPE`,
//! samples whose label values may hold `{` `}` `,` `=` and the escapes `\"` `\\` `\n`, special
//! values (`NaN`, `+Inf`, `-Inf`), exponents and optional timestamps. Histogram and summary
//! series (`_bucket`, `_sum`, `_count`) are grouped under their family.
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
pub use parser::parse_float;
use store::Store;
pub use view::{HistogramSeries, Labels, MetricFamily, Sample, SampleIter, Samples};

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
    /// Declared `untyped`, or not declared at all.
    Untyped,
}

impl MetricType {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" | "unknown" => Self::Untyped,
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
    /// The family named `name`, if any.
    pub fn family(&self, name: &str) -> Option<MetricFamily<'_>> {
        self.families().find(|f| f.name == name)
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

/// Parse a body given as bytes (checks UTF-8 first).
pub fn parse_bytes(body: &[u8]) -> Result<Exposition, ExpositionError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse(text),
        Err(e) => Err(ExpositionError::NotUtf8 {
            offset: e.valid_up_to(),
        }),
    }
}

/// Parse an exposition body (copied into the parsed value).
pub fn parse(body: &str) -> Result<Exposition, ExpositionError> {
    let mut store = build(body)?;
    store.text.body = body.to_owned();
    Ok(Exposition { store })
}

/// Parse a body handed over whole (a scrape): it becomes the parsed value's text, without a
/// copy. When it is not exposition text, it comes back with the reason.
pub fn parse_owned(body: Vec<u8>) -> Result<Exposition, (ExpositionError, Vec<u8>)> {
    let text = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            return Err((ExpositionError::NotUtf8 { offset }, e.into_bytes()));
        }
    };
    match build(&text) {
        Ok(mut store) => {
            store.text.body = text;
            Ok(Exposition { store })
        }
        Err(error) => Err((error, text.into_bytes())),
    }
}

/// The parsed form of `body`, without its text.
fn build(body: &str) -> Result<Store, ExpositionError> {
    reject_non_text(body)?;
    if body.len() > MAX_BODY {
        return Err(ExpositionError::TooLarge {
            bytes: body.len(),
            limit: MAX_BODY,
        });
    }
    let mut builder = Builder::new(body);
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
