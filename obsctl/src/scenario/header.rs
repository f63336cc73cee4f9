//! Extra request headers: a scenario's `[headers]` table (every request), a request's own
//! `headers`, and `-H 'Name: value'` flags. Names must be HTTP tokens and values one line of
//! header text, both checked before any traffic; the headers obsctl owns are refused with the
//! reason. Values are templates, rendered per request like paths and bodies.
//!
//! Layers: a request sends the scenario's headers, then its own (same name: its own win), then
//! the flags' (same name: the flags win). See [`layered`].

use super::template::{RenderContext, Template, TemplateError};
use hyper::header::{HeaderName, HeaderValue};

/// One extra header: a checked name and its value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name (lowercase: header names ignore case).
    pub name: HeaderName,
    /// The value, with `{{seq}}`, `{{random:LO..HI}}` and `{{run_id}}` placeholders.
    pub value: Template,
}

/// Why a header was refused. Messages never quote the value: it may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// An empty name.
    #[error("a header name cannot be empty")]
    EmptyName,
    /// A name that is not an HTTP token.
    #[error(
        "`{0}` is not a header name: use letters, digits and `-` (or any of !#$%&'*+.^_`|~), \
         with no spaces or `:`"
    )]
    BadName(String),
    /// A header that obsctl sets itself.
    #[error("`{name}` cannot be set: {why}")]
    Owned {
        /// The name as given.
        name: String,
        /// Why obsctl keeps it.
        why: &'static str,
    },
    /// CR, LF or NUL in a value: it would end the header line (request smuggling).
    #[error("the value of `{0}` cannot contain a line break (CR, LF) or NUL: a header is one line")]
    LineBreak(String),
    /// Another control character in a value.
    #[error("the value of `{0}` cannot contain control characters (tab is allowed)")]
    Control(String),
    /// A bad placeholder in a value.
    #[error("the value of `{name}`: {error}")]
    Template {
        /// The header's name.
        name: String,
        /// What is wrong with the placeholder.
        error: TemplateError,
    },
    /// A `-H` flag without a colon.
    #[error("`{0}` is not NAME: VALUE (e.g. -H 'X-Api-Key: k-{{{{run_id}}}}')")]
    Flag(String),
}

/// The headers obsctl sets on every request, and why a scenario or a flag cannot.
const OWNED: [(&str, &str); 6] = [
    (
        "traceparent",
        "obsctl sends its own with every request (its trace id is how `obsctl check` finds the request)",
    ),
    (
        "x-obsctl-run-id",
        "obsctl sends the run id in it (it is how `obsctl check` finds the run)",
    ),
    ("host", "obsctl sets it from the target URL"),
    ("content-length", "the HTTP client sets it from the body"),
    ("transfer-encoding", "the HTTP client sets it from the body"),
    (
        "connection",
        "obsctl manages its keep-alive connections itself",
    ),
];

impl Header {
    /// Checks `name` and `value` (a template) as a header obsctl may send.
    pub fn parse(name: &str, value: &str) -> Result<Self, HeaderError> {
        let checked = check_name(name)?;
        let value = check_value(name, value)?;
        Ok(Self {
            name: checked,
            value,
        })
    }

    /// Parses a `-H 'Name: value'` flag (clap value parser). Spaces around the name and the
    /// value are dropped, as curl does.
    pub fn parse_flag(text: &str) -> Result<Self, HeaderError> {
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| HeaderError::Flag(text.to_owned()))?;
        Self::parse(name.trim(), value.trim_matches([' ', '\t']))
    }

    /// Renders the value for one request. `None` only if a rendering is not header text, which
    /// [`Header::parse`] rules out (placeholders render digits, `-` and hex).
    pub fn render(&self, ctx: RenderContext<'_>, rng: &mut impl rand::Rng) -> Option<HeaderValue> {
        let text = self.value.render(ctx, rng);
        HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).ok()
    }
}

/// Checks a header name: an HTTP token (RFC 9110 `tchar`s) that obsctl does not own.
pub fn check_name(name: &str) -> Result<HeaderName, HeaderError> {
    if name.is_empty() {
        return Err(HeaderError::EmptyName);
    }
    let token = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(HeaderError::BadName(name.to_owned()));
    }
    if let Some((_, why)) = OWNED
        .iter()
        .find(|(owned, _)| owned.eq_ignore_ascii_case(name))
    {
        return Err(HeaderError::Owned {
            name: name.to_owned(),
            why,
        });
    }
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderError::BadName(name.to_owned()))
}

/// Checks a value template of header `name`: no CR, LF, NUL or other control character (tab
/// aside), valid placeholders, and a first rendering that is header text.
fn check_value(name: &str, value: &str) -> Result<Template, HeaderError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(HeaderError::LineBreak(name.to_owned()));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HeaderError::Control(name.to_owned()));
    }
    let template = Template::parse(value).map_err(|error| HeaderError::Template {
        name: name.to_owned(),
        error,
    })?;
    let ctx = RenderContext {
        seq: 0,
        run_id: "0000000000000000",
    };
    let header = Header {
        name: HeaderName::from_static("x-check"),
        value: template,
    };
    match header.render(ctx, &mut rand::rng()) {
        Some(_) => Ok(header.value),
        None => Err(HeaderError::Control(name.to_owned())),
    }
}

/// The headers a request sends: `layers` from the weakest to the strongest (scenario-wide, the
/// request's own, the flags'); a later layer's header replaces an earlier one of the same name.
pub fn layered(layers: &[&[Header]]) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for header in layers.iter().flat_map(|layer| layer.iter()) {
        match out.iter_mut().find(|h| h.name == header.name) {
            Some(existing) => *existing = header.clone(),
            None => out.push(header.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Header {
        Header::parse(name, value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_flag_is_a_name_a_colon_and_a_value() {
        let h = Header::parse_flag("X-Api-Key:  k-{{run_id}} ").map_err(|e| e.to_string());
        assert_eq!(
            h.as_ref().map(|h| (h.name.as_str(), h.value.as_str())),
            Ok(("x-api-key", "k-{{run_id}}"))
        );
        assert_eq!(
            Header::parse_flag("X-Api-Key").map_err(|e| e.to_string()),
            Err("`X-Api-Key` is not NAME: VALUE (e.g. -H 'X-Api-Key: k-{{run_id}}')".to_owned())
        );
    }

    #[test]
    fn owned_names_are_refused_whatever_their_case() {
        for name in [
            "Host",
            "traceparent",
            "X-Obsctl-Run-Id",
            "Content-Length",
            "transfer-encoding",
            "Connection",
        ] {
            assert!(
                matches!(Header::parse(name, "x"), Err(HeaderError::Owned { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn names_are_tokens_and_values_one_line() {
        assert_eq!(
            Header::parse("X Api", "v"),
            Err(HeaderError::BadName("X Api".to_owned()))
        );
        assert_eq!(Header::parse("", "v"), Err(HeaderError::EmptyName));
        assert_eq!(
            Header::parse("X-A", "a\r\nX-B: b"),
            Err(HeaderError::LineBreak("X-A".to_owned()))
        );
        assert_eq!(
            Header::parse("X-A", "a\u{7f}"),
            Err(HeaderError::Control("X-A".to_owned()))
        );
        assert!(Header::parse("X-A", "tab\tand ünïcode").is_ok());
    }

    #[test]
    fn later_layers_win_by_name() {
        let wide = [header("X-A", "wide"), header("X-B", "wide")];
        let own = [header("x-a", "own")];
        let flags = [header("X-B", "flag"), header("X-C", "flag")];
        let got: Vec<(String, String)> = layered(&[&wide, &own, &flags])
            .into_iter()
            .map(|h| (h.name.to_string(), h.value.as_str().to_owned()))
            .collect();
        let want = [("x-a", "own"), ("x-b", "flag"), ("x-c", "flag")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
    }
}
