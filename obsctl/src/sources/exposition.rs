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
    let head: String = trimmed.chars().take(15).collect::<String>().to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<?xml")
    {
        return Err(ExpositionError::Html);
    }
    Ok(())
}

/// Accumulates families while lines are parsed.
#[derive(Default)]
struct Builder {
    families: Vec<MetricFamily>,
    by_name: HashMap<String, usize>,
}

impl Builder {
    fn line(&mut self, line: usize, raw: &str) -> Result<(), ExpositionError> {
        let text = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if text.is_empty() {
            return Ok(());
        }
        if let Some(comment) = text.strip_prefix('#') {
            return self.comment(line, comment);
        }
        let sample = parse_sample(line, raw)?;
        let index = self.family_for(&sample.name);
        self.families[index].samples.push(sample);
        Ok(())
    }

    /// `# HELP name text`, `# TYPE name type`; other comments are ignored.
    fn comment(&mut self, line: usize, comment: &str) -> Result<(), ExpositionError> {
        let mut cur = Cursor::new(line, comment, 1);
        cur.skip_ws();
        let keyword = cur.take_while(|c| !c.is_whitespace());
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        cur.skip_ws();
        let name = cur.metric_name()?;
        cur.skip_ws();
        let rest = cur.rest().trim_end();
        let index = self.declared(name);
        let family = &mut self.families[index];
        if keyword == "HELP" {
            if family.help.is_some() {
                return Err(invalid(line, format!("second HELP line for {name}")));
            }
            family.help = Some(unescape_help(rest));
            return Ok(());
        }
        let kind = MetricType::parse(rest)
            .ok_or_else(|| cur.expected("a type (counter, gauge, histogram, summary, untyped)"))?;
        if family.type_declared {
            return Err(invalid(line, format!("second TYPE line for {name}")));
        }
        if !family.samples.is_empty() {
            return Err(invalid(line, format!("TYPE line for {name} after its samples")));
        }
        family.kind = kind;
        family.type_declared = true;
        Ok(())
    }

    /// The family named exactly `name`, created when absent.
    fn declared(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.families.push(MetricFamily {
            name: name.to_owned(),
            help: None,
            kind: MetricType::Untyped,
            type_declared: false,
            samples: Vec::new(),
        });
        self.by_name.insert(name.to_owned(), self.families.len() - 1);
        self.families.len() - 1
    }

    /// The family a sample belongs to: its own name, or the histogram/summary/counter family
    /// its suffix points at, or a new untyped family.
    fn family_for(&mut self, sample_name: &str) -> usize {
        if let Some(&i) = self.by_name.get(sample_name) {
            return i;
        }
        for (suffix, kinds) in SUFFIXES {
            let Some(base) = sample_name.strip_suffix(suffix) else {
                continue;
            };
            if let Some(&i) = self.by_name.get(base)
                && kinds.contains(&self.families[i].kind)
            {
                return i;
            }
        }
        self.declared(sample_name)
    }
}

/// Sample-name suffixes and the family types they belong to.
const SUFFIXES: [(&str, &[MetricType]); 5] = [
    ("_bucket", &[MetricType::Histogram]),
    ("_sum", &[MetricType::Histogram, MetricType::Summary]),
    ("_count", &[MetricType::Histogram, MetricType::Summary]),
    ("_created", &[MetricType::Histogram, MetricType::Summary, MetricType::Counter]),
    ("_total", &[MetricType::Counter]),
];

fn invalid(line: usize, message: String) -> ExpositionError {
    ExpositionError::Invalid { line, message }
}

/// `name{labels} value [timestamp]`.
fn parse_sample(line: usize, raw: &str) -> Result<Sample, ExpositionError> {
    let mut cur = Cursor::new(line, raw, 0);
    cur.skip_ws();
    let name = cur.metric_name()?.to_owned();
    let mut spaced = cur.skip_ws();
    let mut labels = Labels::new();
    if cur.peek() == Some('{') {
        labels = parse_labels(&mut cur)?;
        spaced = cur.skip_ws();
    }
    if !spaced {
        return Err(cur.expected("whitespace before the value"));
    }
    let token = cur.take_while(|c| !c.is_whitespace());
    let value = parse_float(token).ok_or_else(|| cur.expected_at(token, "a number value"))?;
    cur.skip_ws();
    let timestamp_ms = match cur.take_while(|c| !c.is_whitespace()) {
        "" => None,
        ts => Some(
            ts.parse::<i64>()
                .map_err(|_| cur.expected_at(ts, "an integer timestamp in milliseconds"))?,
        ),
    };
    cur.skip_ws();
    if !cur.rest().is_empty() {
        return Err(cur.expected("the end of the line"));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
        line,
    })
}

/// `{name="value", ...}` with an optional trailing comma.
fn parse_labels(cur: &mut Cursor<'_>) -> Result<Labels, ExpositionError> {
    cur.bump(); // '{'
    let mut labels = Labels::new();
    loop {
        cur.skip_ws();
        if cur.eat('}') {
            return Ok(labels);
        }
        let name = cur.label_name()?.to_owned();
        cur.skip_ws();
        if !cur.eat('=') {
            return Err(cur.expected("'=' after the label name"));
        }
        cur.skip_ws();
        let value = cur.quoted()?;
        if labels.insert(name.clone(), value).is_some() {
            return Err(invalid(cur.line, format!("label {name} appears twice")));
        }
        cur.skip_ws();
        if cur.eat('}') {
            return Ok(labels);
        }
        if !cur.eat(',') {
            return Err(cur.expected("',' or '}' after a label value"));
        }
    }
}

/// Parse a sample value as Go's ParseFloat does for exposition text: decimals, exponents,
/// `NaN`, `+Inf`, `-Inf` (case-insensitive).
pub fn parse_float(token: &str) -> Option<f64> {
    if token.is_empty() || token.chars().any(|c| c == '_') {
        return None;
    }
    token.parse::<f64>().ok()
}

/// HELP text escapes: `\\` and `\n`; any other backslash is kept.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A position in one line, with error helpers that report line and column.
struct Cursor<'a> {
    line: usize,
    text: &'a str,
    pos: usize,
    /// Column offset of `text` within the physical line (1 after a stripped `#`).
    column_base: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: usize, text: &'a str, column_base: usize) -> Self {
        Self {
            line,
            text,
            pos: 0,
            column_base,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.pos += want.len_utf8();
            true
        } else {
            false
        }
    }

    /// Skip spaces and tabs; whether any were skipped.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        self.take_while(|c| c == ' ' || c == '\t' || c == '\r');
        self.pos > start
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !pred(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn metric_name(&mut self) -> Result<&'a str, ExpositionError> {
        self.identifier(true, "a metric name")
    }

    fn label_name(&mut self) -> Result<&'a str, ExpositionError> {
        self.identifier(false, "a label name")
    }

    fn identifier(&mut self, colons: bool, what: &'static str) -> Result<&'a str, ExpositionError> {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
        match self.peek() {
            Some(c) if ok(c) && !c.is_ascii_digit() => Ok(self.take_while(ok)),
            _ => Err(self.expected(what)),
        }
    }

    /// A double-quoted label value, unescaped (`\"`, `\\`, `\n`; other escapes kept as is).
    fn quoted(&mut self) -> Result<String, ExpositionError> {
        if !self.eat('"') {
            return Err(self.expected("a double-quoted label value"));
        }
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.expected("a closing '\"' of the label value")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return Err(self.expected("an escaped character after '\\'")),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn column(&self, pos: usize) -> usize {
        self.column_base + self.text[..pos].chars().count() + 1
    }

    fn expected(&self, expected: &'static str) -> ExpositionError {
        let found = match self.rest() {
            "" => "the end of the line".to_owned(),
            rest => format!("{:?}", excerpt(rest)),
        };
        ExpositionError::Syntax {
            line: self.line,
            column: self.column(self.pos),
            expected,
            found,
        }
    }

    /// An error about `token`, which ends at the current position.
    fn expected_at(&self, token: &str, expected: &'static str) -> ExpositionError {
        let start = self.pos - token.len();
        let found = if token.is_empty() {
            "the end of the line".to_owned()
        } else {
            format!("{:?}", excerpt(token))
        };
        ExpositionError::Syntax {
            line: self.line,
            column: self.column(start),
            expected,
            found,
        }
    }
}

/// At most 40 characters of `text`.
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}
