//! A parser for the Prometheus text exposition format 0.0.4: families with `# HELP` / `# TYPE`,
//! samples whose label values may hold `{` `}` `,` `=` and the escapes `\"` `\\` `\n`, special
//! values (`NaN`, `+Inf`, `-Inf`), exponents and optional timestamps. Histogram and summary
//! series (`_bucket`, `_sum`, `_count`) are grouped under their family.
//!
//! Written here because prometheus-parse 0.2.5 silently drops every sample whose label value
//! contains `}`, i.e. every route-template series such as `path="/api/users/{user_id}"`.
//! Bodies that are not exposition text at all (a JSON-encoded string, HTML, nothing) are errors
//! with their own variants, so a check can say exactly what the endpoint returned.

use std::collections::{BTreeMap, HashMap};

mod parser;

use parser::Builder;
pub use parser::parse_float;

/// Label names to values of one sample.
pub type Labels = BTreeMap<String, String>;

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

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full sample name, suffix included (`fastapi_request_duration_seconds_bucket`).
    pub name: String,
    /// The sample's labels, unescaped.
    pub labels: Labels,
    /// The value (may be NaN or infinite).
    pub value: f64,
    /// The optional timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// 1-based line number in the body, for evidence.
    pub line: usize,
}

impl Sample {
    /// Whether every `(name, value)` pair in `matcher` is among this sample's labels.
    pub fn matches(&self, matcher: &[(&str, &str)]) -> bool {
        matcher
            .iter()
            .all(|(k, v)| self.labels.get(*k).is_some_and(|have| have == v))
    }
}

/// A metric family: its metadata and every sample that belongs to it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// The family name (as in `# TYPE`; for undeclared samples, the sample name).
    pub name: String,
    /// The `# HELP` text, unescaped.
    pub help: Option<String>,
    /// The declared type (`Untyped` when no `# TYPE` line).
    pub kind: MetricType,
    /// Whether a `# TYPE` line declared the type.
    pub type_declared: bool,
    /// The samples, in body order.
    pub samples: Vec<Sample>,
}

/// One histogram series: the samples of a histogram family that share labels (apart from `le`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// The series labels, without `le`.
    pub labels: Labels,
    /// `(upper bound, cumulative count)` pairs in body order; `le` values that are not numbers
    /// are left out.
    pub buckets: Vec<(f64, f64)>,
    /// The `_sum` sample's value, if present.
    pub sum: Option<f64>,
    /// The `_count` sample's value, if present.
    pub count: Option<f64>,
}

impl MetricFamily {
    /// Samples whose labels include every pair of `matcher`.
    pub fn samples_matching<'a>(
        &'a self,
        matcher: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.matches(matcher))
    }

    /// The sum of values of samples named exactly `name` whose labels include `matcher`.
    pub fn sum_matching(&self, name: &str, matcher: &[(&str, &str)]) -> f64 {
        self.samples_matching(matcher)
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// The set of label names used by the family's samples (without `le` and `quantile`).
    pub fn label_names(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .iter()
            .flat_map(|s| s.labels.keys())
            .filter(|k| *k != "le" && *k != "quantile")
            .cloned()
            .collect()
    }

    /// The distinct label sets of the family's series (without `le` and `quantile`), in order of
    /// first appearance: one per time series Prometheus would store for the family.
    pub fn series(&self) -> Vec<Labels> {
        let mut seen = std::collections::HashSet::new();
        self.samples
            .iter()
            .map(|s| {
                let mut labels = s.labels.clone();
                labels.remove("le");
                labels.remove("quantile");
                labels
            })
            .filter(|labels| seen.insert(labels.clone()))
            .collect()
    }

    /// The family's samples grouped as histogram series (by labels without `le`), in order of
    /// first appearance. Meaningful for histogram families; empty buckets otherwise.
    pub fn histogram_series(&self) -> Vec<HistogramSeries> {
        let mut series: Vec<HistogramSeries> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for sample in &self.samples {
            let mut labels = sample.labels.clone();
            let le = labels.remove("le");
            let i = *index.entry(labels.clone()).or_insert_with(|| {
                series.push(HistogramSeries {
                    labels,
                    buckets: Vec::new(),
                    sum: None,
                    count: None,
                });
                series.len() - 1
            });
            let entry = &mut series[i];
            match sample.name.strip_prefix(self.name.as_str()) {
                Some("_bucket") => {
                    if let Some(bound) = le.as_deref().and_then(parse_float) {
                        entry.buckets.push((bound, sample.value));
                    }
                }
                Some("_sum") => entry.sum = Some(sample.value),
                Some("_count") => entry.count = Some(sample.value),
                _ => {}
            }
        }
        series
    }
}

/// A parsed exposition body: its families in order of first appearance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    /// Every family, in body order.
    pub families: Vec<MetricFamily>,
}

impl Exposition {
    /// The family named `name`, if any.
    pub fn family(&self, name: &str) -> Option<&MetricFamily> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Total number of samples.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// Parse a body given as bytes (checks UTF-8 first).
pub fn parse_bytes(body: &[u8]) -> Result<Exposition, ExpositionError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse(text),
        Err(e) => Err(ExpositionError::NotUtf8 {
            offset: e.valid_up_to(),
        }),
    }
}

/// Parse an exposition body.
pub fn parse(body: &str) -> Result<Exposition, ExpositionError> {
    reject_non_text(body)?;
    let mut builder = Builder::default();
    for (i, raw) in body.lines().enumerate() {
        builder.line(i + 1, raw)?;
    }
    if builder.families.is_empty() {
        return Err(ExpositionError::Empty);
    }
    Ok(Exposition {
        families: builder.families,
    })
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
        && serde_json::from_str::<serde_json::Value>(trimmed).is_ok()
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
