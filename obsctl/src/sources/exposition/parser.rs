//! The line grammar of the text format: comments (`# HELP`, `# TYPE`), samples, label sets
//! with quoted and escaped values, and a cursor that reports errors with line and column.

use std::collections::HashMap;

use super::{ExpositionError, Labels, MetricFamily, MetricType, Sample};

/// Accumulates families while lines are parsed.
#[derive(Default)]
pub(super) struct Builder {
    pub(super) families: Vec<MetricFamily>,
    by_name: HashMap<String, usize>,
}

impl Builder {
    pub(super) fn line(&mut self, line: usize, raw: &str) -> Result<(), ExpositionError> {
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
            return Err(invalid(
                line,
                format!("TYPE line for {name} after its samples"),
            ));
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
        self.by_name
            .insert(name.to_owned(), self.families.len() - 1);
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
    (
        "_created",
        &[
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Counter,
        ],
    ),
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
