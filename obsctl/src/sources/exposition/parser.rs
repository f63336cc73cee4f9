//! The line grammar of the text format and of OpenMetrics: comments (`# HELP`, `# TYPE`,
//! `# UNIT`, `# EOF`), samples with their exemplars, label sets with quoted and escaped values,
//! and a cursor that reports errors with line and column. It writes straight into the compact
//! [`Store`]: no string is allocated per sample.

use super::store::{
    ExemplarRecord, FamilyRecord, Interner, LabelRecord, NONE, SampleRecord, Span, Store, Sym,
};
use super::{ExpositionError, Format, MetricType};

/// Most characters an exemplar's label names and values may have together (OpenMetrics 1.0).
pub const EXEMPLAR_MAX_CHARS: usize = 128;

/// Accumulates families while lines are parsed.
pub(super) struct Builder<'b> {
    /// The body being parsed; every span points into it.
    body: &'b str,
    format: Format,
    /// The line of OpenMetrics' `# EOF`, once seen.
    eof: Option<usize>,
    store: Store,
    interner: Interner,
    /// Per name: the family named exactly so, or [`NONE`].
    named: Vec<u32>,
    /// Per sample name: the family its samples join, once known, or [`NONE`].
    route: Vec<u32>,
    /// The previous sample's name and label names by position: the next sample mostly repeats
    /// them, and a comparison is cheaper than a hash look-up.
    previous: Vec<Sym>,
}

/// Label sets up to this size are searched for a repeated name as each label is read.
const EAGER_REPEATS: usize = 32;

impl<'b> Builder<'b> {
    pub(super) fn new(body: &'b str, format: Format) -> Self {
        // Sized once from upper bounds (a sample per line, a label per `=`, each at least four
        // bytes): growing by doubling would hold the old array and the new one at once, and
        // once the allocator has seen large frees it copies instead of remapping. Capacity
        // left unused is never touched, so it takes no memory.
        let most = body.len() / 4 + 1;
        let store = Store {
            samples: Vec::with_capacity(most.min(body.matches('\n').count() + 1)),
            labels: Vec::with_capacity(most.min(body.matches('=').count())),
            format,
            ..Store::default()
        };
        Self {
            body,
            format,
            eof: None,
            store,
            interner: Interner::default(),
            named: Vec::new(),
            route: Vec::new(),
            previous: Vec::new(),
        }
    }

    /// Parse every line (as `str::lines` splits them: at `\n`, a `\r` before it dropped).
    pub(super) fn lines(&mut self) -> Result<(), ExpositionError> {
        let body = self.body;
        let mut offset = 0;
        let mut lines = 0;
        for (i, segment) in body.split_inclusive('\n').enumerate() {
            let raw = segment
                .strip_suffix('\n')
                .map_or(segment, |l| l.strip_suffix('\r').unwrap_or(l));
            self.line(i + 1, offset, raw)?;
            offset += segment.len();
            lines = i + 1;
        }
        if self.format == Format::OpenMetrics && self.eof.is_none() {
            return Err(invalid(
                lines,
                "the OpenMetrics exposition does not end with `# EOF` (Prometheus rejects the \
                 scrape as truncated)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Whether no family was found.
    pub(super) fn is_empty(&self) -> bool {
        self.store.families.is_empty()
    }

    /// The parsed form, samples grouped by family (the caller adds the body text).
    pub(super) fn finish(mut self) -> Store {
        self.store.samples.shrink_to_fit();
        self.store.labels.shrink_to_fit();
        self.store.group_by_family();
        self.store.exemplars.shrink_to_fit();
        let (body, names) = (self.body, &self.store.names);
        self.store.le = self.interner.get(body, names, "le");
        self.store.quantile = self.interner.get(body, names, "quantile");
        self.store
    }

    /// One line, starting at byte `offset` of the body.
    fn line(&mut self, line: usize, offset: usize, raw: &str) -> Result<(), ExpositionError> {
        let bytes = raw.as_bytes();
        let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
        let lead = bytes.iter().take_while(|b| blank(b)).count();
        let trail = bytes[lead..].iter().rev().take_while(|b| blank(b)).count();
        let text = &raw[lead..raw.len() - trail];
        if text.is_empty() {
            return Ok(());
        }
        if let Some(eof) = self.eof {
            return Err(invalid(
                line,
                format!("a line after `# EOF` (line {eof}): OpenMetrics ends there"),
            ));
        }
        if let Some(comment) = text.strip_prefix('#') {
            return self.comment(line, offset + lead + 1, comment);
        }
        self.sample(line, offset, raw)
    }

    /// `# HELP name text`, `# TYPE name type`, and in OpenMetrics `# UNIT name unit` and
    /// `# EOF`; other comments are ignored.
    fn comment(
        &mut self,
        line: usize,
        offset: usize,
        comment: &str,
    ) -> Result<(), ExpositionError> {
        let mut cur = Cursor::new(line, comment, 1, offset);
        cur.skip_ws();
        let keyword = cur.token();
        let openmetrics = self.format == Format::OpenMetrics;
        if openmetrics && keyword == "EOF" {
            cur.skip_ws();
            if !cur.rest().is_empty() {
                return Err(cur.expected("nothing after `# EOF`"));
            }
            self.eof = Some(line);
            return Ok(());
        }
        let unit = openmetrics && keyword == "UNIT";
        if keyword != "HELP" && keyword != "TYPE" && !unit {
            return Ok(());
        }
        cur.skip_ws();
        let start = cur.pos;
        let name = cur.metric_name()?;
        let sym = self.intern(cur.span_from(start));
        cur.skip_ws();
        let rest = cur.rest().trim_end();
        let rest_span = Span {
            len: rest.len() as u32,
            ..cur.span_from(cur.pos)
        };
        let index = self.declared(sym);
        if unit {
            if self.store.families[index].unit.is_some() {
                return Err(invalid(line, format!("second UNIT line for {name}")));
            }
            if !rest.is_empty() && !name.ends_with(&format!("_{rest}")) {
                return Err(invalid(
                    line,
                    format!("the unit {rest} is not the suffix of the family name {name}"),
                ));
            }
            self.store.families[index].unit = Some(rest_span);
            return Ok(());
        }
        if keyword == "HELP" {
            if self.store.families[index].help.is_some() {
                return Err(invalid(line, format!("second HELP line for {name}")));
            }
            let help = self.unescape_help(rest, rest_span);
            self.store.families[index].help = Some(help);
            return Ok(());
        }
        let kind = MetricType::parse(rest, self.format).ok_or_else(|| match self.format {
            Format::Text => cur.expected("a type (counter, gauge, histogram, summary, untyped)"),
            Format::OpenMetrics => cur.expected(
                "a type (counter, gauge, histogram, gaugehistogram, stateset, info, summary, \
                 unknown)",
            ),
        })?;
        let family = &mut self.store.families[index];
        if family.type_declared {
            return Err(invalid(line, format!("second TYPE line for {name}")));
        }
        if family.len > 0 {
            return Err(invalid(
                line,
                format!("TYPE line for {name} after its samples"),
            ));
        }
        family.kind = kind;
        family.type_declared = true;
        Ok(())
    }

    /// `name{labels} value [timestamp]`.
    fn sample(&mut self, line: usize, offset: usize, raw: &str) -> Result<(), ExpositionError> {
        let mut cur = Cursor::new(line, raw, 0, offset);
        cur.skip_ws();
        let start = cur.pos;
        cur.metric_name()?;
        let name = self.intern_like(cur.span_from(start), 0);
        let mut spaced = cur.skip_ws();
        let labels = self.store.labels.len();
        if cur.text.as_bytes().get(cur.pos) == Some(&b'{') {
            self.labels(&mut cur)?;
            spaced = cur.skip_ws();
        }
        if !spaced {
            return Err(cur.expected("whitespace before the value"));
        }
        let token = cur.token();
        let value = parse_float(token).ok_or_else(|| cur.expected_at(token, "a number value"))?;
        cur.skip_ws();
        let timestamp_ms = match cur.peek() {
            None | Some('#') => None,
            Some(_) => Some(self.timestamp(&mut cur)?),
        };
        cur.skip_ws();
        if cur.peek() == Some('#') && self.format == Format::OpenMetrics {
            self.exemplar(&mut cur, line)?;
            cur.skip_ws();
        }
        if !cur.rest().is_empty() {
            return Err(cur.expected(match self.format {
                Format::Text => "the end of the line (exemplars are OpenMetrics only)",
                Format::OpenMetrics => "the end of the line",
            }));
        }
        let family = self.family_for(name);
        self.store.families[family].len += 1;
        self.store.samples.push(SampleRecord {
            value,
            line: line as u32,
            name,
            labels: labels as u32,
            family: family as u32,
        });
        if let Some(ts) = timestamp_ms {
            self.store.timestamps.push((line as u32, ts));
        }
        Ok(())
    }

    /// A sample's or an exemplar's timestamp: integer milliseconds in the text format, seconds
    /// (fractions allowed) in OpenMetrics; kept as milliseconds.
    fn timestamp(&self, cur: &mut Cursor<'_>) -> Result<i64, ExpositionError> {
        let token = cur.token();
        match self.format {
            Format::Text => token
                .parse::<i64>()
                .map_err(|_| cur.expected_at(token, "an integer timestamp in milliseconds")),
            Format::OpenMetrics => parse_float(token)
                .filter(|seconds| seconds.is_finite() && seconds.abs() < 9.2e15)
                .map(|seconds| (seconds * 1000.0).round() as i64)
                .ok_or_else(|| cur.expected_at(token, "a timestamp in seconds")),
        }
    }

    /// ` # {labels} value [timestamp]` after an OpenMetrics sample, kept by its line.
    fn exemplar(&mut self, cur: &mut Cursor<'_>, line: usize) -> Result<(), ExpositionError> {
        cur.bump(); // '#'
        if !cur.skip_ws() {
            return Err(cur.expected("a space after the exemplar's '#'"));
        }
        if cur.peek() != Some('{') {
            return Err(cur.expected("the exemplar's label set '{...}'"));
        }
        let start = self.store.labels.len();
        self.labels(cur)?;
        // Parsed where sample labels go, then moved aside: samples' labels stay contiguous.
        let labels: Vec<LabelRecord> = self.store.labels.drain(start..).collect();
        if !cur.skip_ws() {
            return Err(cur.expected("whitespace before the exemplar's value"));
        }
        let token = cur.token();
        let value =
            parse_float(token).ok_or_else(|| cur.expected_at(token, "the exemplar's value"))?;
        cur.skip_ws();
        let timestamp_ms = match cur.peek() {
            None => None,
            Some(_) => Some(self.timestamp(cur)?),
        };
        self.store.exemplars.push(ExemplarRecord {
            line: line as u32,
            labels: self.store.exemplar_labels.len() as u32,
            len: labels.len() as u32,
            value,
            timestamp_ms,
        });
        self.store.exemplar_labels.extend(labels);
        Ok(())
    }

    /// `{name="value", ...}` with an optional trailing comma, appended to the label array and
    /// sorted by name.
    fn labels(&mut self, cur: &mut Cursor<'_>) -> Result<(), ExpositionError> {
        cur.bump(); // '{'
        let start = self.store.labels.len();
        loop {
            cur.skip_ws();
            if cur.eat(b'}') {
                break;
            }
            let name_start = cur.pos;
            cur.label_name()?;
            let name_span = cur.span_from(name_start);
            let name = self.intern_like(name_span, 1 + self.store.labels.len() - start);
            cur.skip_ws();
            if !cur.eat(b'=') {
                return Err(cur.expected("'=' after the label name"));
            }
            cur.skip_ws();
            let value = cur.quoted(&mut self.store.text.extra, self.body.len())?;
            // A repeat is reported where it appears (the sort below catches it in long sets).
            let so_far = &self.store.labels[start..];
            if so_far.len() < EAGER_REPEATS && so_far.iter().any(|l| l.name == name) {
                let text = slice(self.body, name_span);
                return Err(invalid(cur.line, format!("label {text} appears twice")));
            }
            self.store.labels.push(LabelRecord { name, value });
            cur.skip_ws();
            if cur.eat(b'}') {
                break;
            }
            if !cur.eat(b',') {
                return Err(cur.expected("',' or '}' after a label value"));
            }
        }
        let (body, names) = (self.body, &self.store.names);
        let text = |sym: Sym| {
            names
                .get(sym as usize)
                .map_or("", |span| slice(body, *span))
        };
        let labels = &mut self.store.labels[start..];
        labels.sort_unstable_by(|a, b| text(a.name).cmp(text(b.name)));
        match labels.windows(2).find(|w| w[0].name == w[1].name) {
            Some(twice) => Err(invalid(
                cur.line,
                format!("label {} appears twice", text(twice[0].name)),
            )),
            None => Ok(()),
        }
    }

    /// The symbol of the name `span` covers, when it is the one at `slot` of the previous
    /// sample (0: its name, 1..: its label names), else looked up and remembered there.
    fn intern_like(&mut self, span: Span, slot: usize) -> Sym {
        let (body, names) = (self.body, &self.store.names);
        if let Some(&sym) = self.previous.get(slot)
            && names
                .get(sym as usize)
                .is_some_and(|known| slice(body, *known) == slice(body, span))
        {
            return sym;
        }
        let sym = self.intern(span);
        if slot < self.previous.len() {
            self.previous[slot] = sym;
        } else if slot == self.previous.len() {
            self.previous.push(sym);
        }
        sym
    }

    /// The symbol of the name `span` covers.
    fn intern(&mut self, span: Span) -> Sym {
        let sym = self.interner.intern(self.body, &mut self.store.names, span);
        if sym as usize == self.named.len() {
            self.named.push(NONE);
            self.route.push(NONE);
        }
        sym
    }

    /// The family named exactly `name`, created when absent.
    fn declared(&mut self, name: Sym) -> usize {
        let slot = name as usize;
        if self.named[slot] != NONE {
            return self.named[slot] as usize;
        }
        self.store.families.push(FamilyRecord {
            name,
            help: None,
            unit: None,
            kind: MetricType::Untyped,
            type_declared: false,
            start: 0,
            len: 0,
        });
        let index = self.store.families.len() - 1;
        self.named[slot] = index as u32;
        self.route[slot] = index as u32;
        index
    }

    /// The family a sample belongs to: its own name, or the histogram/summary/counter family
    /// its suffix points at, or a new untyped family. Remembered per sample name: once a
    /// family has the sample, its type can no longer change, and a family declared later under
    /// the sample's own name takes its later samples, as a fresh look-up would.
    fn family_for(&mut self, name: Sym) -> usize {
        let slot = name as usize;
        if self.route[slot] != NONE {
            return self.route[slot] as usize;
        }
        let text = slice(self.body, self.store.names[slot]);
        for (suffix, kinds) in SUFFIXES {
            let Some(base) = text.strip_suffix(suffix) else {
                continue;
            };
            let Some(base) = self.interner.get(self.body, &self.store.names, base) else {
                continue;
            };
            let family = self.named[base as usize];
            if family != NONE && kinds.contains(&self.store.families[family as usize].kind) {
                self.route[slot] = family;
                return family as usize;
            }
        }
        self.declared(name)
    }

    /// The span of the HELP text (`\\` and `\n` escapes, and `\"` in OpenMetrics; any other
    /// backslash is kept),
    /// unescaped into the side buffer when it has escapes.
    fn unescape_help(&mut self, text: &str, span: Span) -> Span {
        if !text.contains('\\') {
            return span;
        }
        let extra = &mut self.store.text.extra;
        let start = self.body.len() + extra.len();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                extra.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => extra.push('\n'),
                Some('\\') => extra.push('\\'),
                Some('"') if self.format == Format::OpenMetrics => extra.push('"'),
                Some(other) => {
                    extra.push('\\');
                    extra.push(other);
                }
                None => extra.push('\\'),
            }
        }
        Span {
            start: start as u32,
            len: (self.body.len() + extra.len() - start) as u32,
        }
    }
}

/// The part of `body` that `span` covers.
fn slice(body: &str, span: Span) -> &str {
    let start = span.start as usize;
    body.get(start..start + span.len as usize)
        .unwrap_or_default()
}

/// Sample-name suffixes and the family types they belong to.
const SUFFIXES: [(&str, &[MetricType]); 8] = [
    (
        "_bucket",
        &[MetricType::Histogram, MetricType::GaugeHistogram],
    ),
    ("_gsum", &[MetricType::GaugeHistogram]),
    ("_gcount", &[MetricType::GaugeHistogram]),
    ("_info", &[MetricType::Info]),
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

/// Parse a sample value as Go's ParseFloat does for exposition text: decimals, exponents,
/// `NaN`, `+Inf`, `-Inf` (case-insensitive).
pub fn parse_float(token: &str) -> Option<f64> {
    if token.is_empty() || token.chars().any(|c| c == '_') {
        return None;
    }
    token.parse::<f64>().ok()
}

/// A position in one line, with error helpers that report line and column.
struct Cursor<'a> {
    line: usize,
    text: &'a str,
    pos: usize,
    /// Column offset of `text` within the physical line (1 after a stripped `#`).
    column_base: usize,
    /// Byte offset of `text` within the body, for spans.
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: usize, text: &'a str, column_base: usize, offset: usize) -> Self {
        Self {
            line,
            text,
            pos: 0,
            column_base,
            offset,
        }
    }

    /// The body span from `start` (a position in this line) to the current position.
    fn span_from(&self, start: usize) -> Span {
        Span {
            start: (self.offset + start) as u32,
            len: self.pos.saturating_sub(start) as u32,
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

    /// Consume the ASCII character `want` if it is next.
    fn eat(&mut self, want: u8) -> bool {
        let next = self.text.as_bytes().get(self.pos);
        if next == Some(&want) {
            self.pos += 1;
        }
        next == Some(&want)
    }

    /// The length of the ASCII run from the current position whose bytes satisfy `pred` (byte
    /// loops: the parser's hot path, fast in unoptimised builds too).
    fn ascii_run(&self, pred: impl Fn(u8) -> bool) -> usize {
        let bytes = self.text.as_bytes();
        let mut end = self.pos;
        while end < bytes.len() && pred(bytes[end]) {
            end += 1;
        }
        end - self.pos
    }

    /// Skip spaces and tabs; whether any were skipped.
    fn skip_ws(&mut self) -> bool {
        let len = self.ascii_run(|b| b == b' ' || b == b'\t' || b == b'\r');
        self.pos += len;
        len > 0
    }

    /// The token up to the next whitespace (Unicode whitespace, as `char::is_whitespace`).
    fn token(&mut self) -> &'a str {
        let len = self.ascii_run(|b| b.is_ascii() && !(b as char).is_whitespace());
        if self
            .text
            .as_bytes()
            .get(self.pos + len)
            .is_some_and(|b| !b.is_ascii())
        {
            return self.take_while(|c| !c.is_whitespace());
        }
        let token = &self.text[self.pos..self.pos + len];
        self.pos += len;
        token
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
        let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || (colons && b == b':');
        match self.text.as_bytes().get(self.pos) {
            Some(&b) if ok(b) && !b.is_ascii_digit() => {
                let len = self.ascii_run(ok);
                let name = &self.text[self.pos..self.pos + len];
                self.pos += len;
                Ok(name)
            }
            _ => Err(self.expected(what)),
        }
    }

    /// A double-quoted label value, unescaped (`\"`, `\\`, `\n`; other escapes kept as is):
    /// a span of the body when it has no escape, else of `extra` (addressed from `body_len`
    /// on), where the unescaped value is written.
    fn quoted(&mut self, extra: &mut String, body_len: usize) -> Result<Span, ExpositionError> {
        if !self.eat(b'"') {
            return Err(self.expected("a double-quoted label value"));
        }
        let start = self.pos;
        let rest = self.rest();
        let stop = self.ascii_run(|b| b != b'"' && b != b'\\');
        self.pos += stop;
        if self.pos == self.text.len() {
            return Err(self.expected("a closing '\"' of the label value"));
        }
        if self.eat(b'"') {
            return Ok(Span {
                start: (self.offset + start) as u32,
                len: stop as u32,
            });
        }
        let out = extra.len();
        extra.push_str(&rest[..stop]);
        loop {
            match self.bump() {
                None => return Err(self.expected("a closing '\"' of the label value")),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some('n') => extra.push('\n'),
                    Some('"') => extra.push('"'),
                    Some('\\') => extra.push('\\'),
                    Some(other) => {
                        extra.push('\\');
                        extra.push(other);
                    }
                    None => return Err(self.expected("an escaped character after '\\'")),
                },
                Some(c) => extra.push(c),
            }
        }
        Ok(Span {
            start: (body_len + out) as u32,
            len: (extra.len() - out) as u32,
        })
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
