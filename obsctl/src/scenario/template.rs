//! Path and body templates: literal text with `{{...}}` placeholders, parsed once when the
//! scenario loads and rendered per request.
//!
//! Placeholders:
//! - `{{seq}}`: the request's sequence number in this run (0-based, in send order; the same
//!   number that ends its trace id), so every rendered value is unique within a run.
//! - `{{random:LO..HI}}`: a uniformly random integer from LO to HI, both included
//!   (e.g. `{{random:1..100}}`); negative bounds are allowed.
//! - `{{run_id}}`: the run id (16 lowercase hex characters).
//!
//! `{{` always opens a placeholder; an unclosed or unknown placeholder is an error at load time.

use rand::Rng;
use std::fmt::Write as _;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Seq,
    RunId,
    Random { low: i64, high: i64 },
}

/// Why a template did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position} of the template)")]
pub struct TemplateError {
    /// 0-based character position of the placeholder at fault.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

/// The per-request values a template can refer to.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    /// The request's sequence number in the run.
    pub seq: u64,
    /// The run id.
    pub run_id: &'a str,
}

impl Template {
    /// Parses `text`, rejecting unclosed and unknown placeholders.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut consumed = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_owned()));
            }
            let position = consumed + rest[..open].chars().count();
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateError {
                position,
                message: "unclosed placeholder: `{{` without a matching `}}`".to_owned(),
            })?;
            segments.push(parse_placeholder(after[..close].trim(), position)?);
            consumed += rest[..open + 2 + close + 2].chars().count();
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// A template that renders `text` as is, placeholders or not.
    pub fn literal(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            segments: vec![Segment::Literal(text.to_owned())],
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the template has no placeholder: every rendering is the same text.
    pub fn is_constant(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Renders the template for one request.
    pub fn render(&self, ctx: RenderContext<'_>, rng: &mut impl Rng) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Seq => {
                    let _ = write!(out, "{}", ctx.seq);
                }
                Segment::RunId => out.push_str(ctx.run_id),
                Segment::Random { low, high } => {
                    let _ = write!(out, "{}", rng.random_range(*low..=*high));
                }
            }
        }
        out
    }

    /// Whether `text` is one of this template's renderings: its literal text in place, each
    /// placeholder replaced by a value it can render (`{{seq}}` a decimal sequence number,
    /// `{{run_id}}` 16 lowercase hex digits, `{{random:LO..HI}}` an integer in the range).
    /// Accounting uses it to fold the concrete paths a signal saw into the request that sent
    /// them, when a run report keeps counts per template rather than per concrete path.
    pub fn matches_rendering(&self, text: &str) -> bool {
        // Far longer than any path a scenario sends; bounds the backtracking below.
        const LONGEST: usize = 4096;
        text.len() <= LONGEST && matches_from(&self.segments, text)
    }
}

/// Whether `text` is a rendering of `segments`. A placeholder takes at most 20 characters, so a
/// template with `k` adjacent placeholders costs at most 20^k steps (a scenario has few).
fn matches_from(segments: &[Segment], text: &str) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return text.is_empty();
    };
    if let Segment::Literal(literal) = first {
        return text
            .strip_prefix(literal.as_str())
            .is_some_and(|after| matches_from(rest, after));
    }
    let bytes = text.as_bytes();
    let sign = usize::from(matches!(first, Segment::Random { .. }) && bytes.first() == Some(&b'-'));
    let digits = bytes[sign..]
        .iter()
        .take(20)
        .take_while(|b| match first {
            Segment::RunId => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
            _ => b.is_ascii_digit(),
        })
        .count();
    (1..=digits).rev().any(|n| {
        let (value, after) = text.split_at(sign + n);
        renders(first, value) && matches_from(rest, after)
    })
}

/// Whether `value` (a sign and digits) is a value `placeholder` renders, written as it renders
/// it (no leading zeros, no `-0`).
fn renders(placeholder: &Segment, value: &str) -> bool {
    let canonical = |digits: &str| digits == "0" || !digits.starts_with('0');
    match placeholder {
        Segment::Literal(literal) => literal == value,
        Segment::RunId => value.len() == 16,
        Segment::Seq => canonical(value) && value.parse::<u64>().is_ok(),
        Segment::Random { low, high } => {
            canonical(value.trim_start_matches('-'))
                && value != "-0"
                && value
                    .parse::<i64>()
                    .is_ok_and(|n| (*low..=*high).contains(&n))
        }
    }
}

fn parse_placeholder(inner: &str, position: usize) -> Result<Segment, TemplateError> {
    let error = |message: String| TemplateError { position, message };
    match inner {
        "seq" => return Ok(Segment::Seq),
        "run_id" => return Ok(Segment::RunId),
        _ => {}
    }
    let Some(range) = inner.strip_prefix("random:") else {
        return Err(error(format!(
            "unknown placeholder `{{{{{inner}}}}}`; expected `{{{{seq}}}}`, `{{{{run_id}}}}` or `{{{{random:LO..HI}}}}`"
        )));
    };
    let (low, high) = range
        .split_once("..")
        .ok_or_else(|| error(format!("`random:{range}` needs a range such as `1..100`")))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| error(format!("`{s}` in `random:{range}` is not an integer")))
    };
    let (low, high) = (parse(low)?, parse(high)?);
    if low > high {
        return Err(error(format!(
            "empty range `random:{range}`: {low} > {high}"
        )));
    }
    Ok(Segment::Random { low, high })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn render(text: &str, seq: u64) -> String {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ctx = RenderContext {
            seq,
            run_id: "0123456789abcdef",
        };
        Template::parse(text)
            .map(|t| t.render(ctx, &mut rng))
            .unwrap_or_default()
    }

    #[test]
    fn renders_sequence_and_run_id() {
        assert_eq!(
            render("/u/{{seq}}/{{ run_id }}", 42),
            "/u/42/0123456789abcdef"
        );
    }

    #[test]
    fn random_stays_in_its_inclusive_range() {
        for seq in 0..200 {
            let n: i64 = render("{{random:1..3}}", seq).parse().unwrap_or(0);
            assert!((1..=3).contains(&n), "{n}");
        }
    }

    #[test]
    fn rejects_unclosed_unknown_and_empty_placeholders() {
        for bad in [
            "/u/{{seq",
            "/u/{{nope}}",
            "{{random:5..1}}",
            "{{random:a..b}}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renderings_match_their_template_and_nothing_else() {
        let matches = |template: &str, text: &str| {
            Template::parse(template).is_ok_and(|t| t.matches_rendering(text))
        };
        for seq in [0, 7, 123_456] {
            let text = render("/u/{{random:-5..900000000}}/{{seq}}-{{run_id}}.json", seq);
            assert!(
                matches("/u/{{random:-5..900000000}}/{{seq}}-{{run_id}}.json", &text),
                "{text}"
            );
        }
        assert!(matches("/api/users/{{random:1..3}}", "/api/users/3"));
        assert!(matches("/api/users/{{seq}}{{seq}}", "/api/users/12"));
        assert!(matches("/health", "/health"));
        for (template, text) in [
            ("/api/users/{{random:1..3}}", "/api/users/4"),
            ("/api/users/{{random:1..3}}", "/api/users/01"),
            ("/api/users/{{random:1..3}}", "/api/users/{user_id}"),
            ("/api/users/{{random:1..3}}", "/api/users/2/x"),
            ("/api/users/{{random:-3..3}}", "/api/users/-0"),
            ("/api/users/{{seq}}", "/api/users/"),
            ("/r/{{run_id}}", "/r/0123456789ABCDEF"),
            ("/health", "/healthz"),
        ] {
            assert!(!matches(template, text), "{template} {text}");
        }
    }

    #[test]
    fn text_without_placeholders_is_constant() {
        assert!(
            Template::parse("/health")
                .map(|t| t.is_constant())
                .unwrap_or(false)
        );
    }
}
