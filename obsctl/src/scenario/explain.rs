//! Turns the TOML deserializer's shape errors (`invalid type: string "20", expected f64`,
//! `missing field `requests``) into words a scenario's author understands: the field's path
//! (`stages[0].rate`), what the field expects with an example, and what the file has instead.
//!
//! The typed parse knows what is wrong but not where in the tree; the untyped parse of the same
//! text ([`DeTable`]) knows every node's span, so the error's span leads to the path.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A shape error, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Explained {
    /// The field at fault (`stages[0].rate`), or `None` for the file as a whole.
    pub field: Option<String>,
    /// What is wrong, in plain words.
    pub message: String,
    /// Where to point: the error's own span, or none when the file as a whole is at fault.
    pub offset: Option<usize>,
}

/// Explains `error`, raised by the typed parse of `source`; `None` when `source` is not even
/// valid TOML (the parser's own message says it best then).
pub(crate) fn explain(source: &str, error: &toml::de::Error) -> Option<Explained> {
    let root = DeTable::parse(source).ok()?;
    let span = error.span()?;
    let root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let found = locate(&root, &span, &mut Vec::new())?;
    let message = error.message().trim();
    Some(match Shape::of(message) {
        Shape::Missing(key) => missing(&found.path, key, span.start),
        Shape::Unknown(rest) => Explained {
            field: Some(render(&found.path)),
            message: format!("unknown field; {rest}"),
            offset: Some(span.start),
        },
        Shape::Type(serde_expected) => {
            let words = expectation(&pattern(&found.path)).map_or_else(
                || serde_expected.to_owned(),
                |(words, example)| format!("{words} (e.g. {example})"),
            );
            Explained {
                field: Some(render(&found.path)),
                message: format!("expected {words}, found {}", describe(found.value?)),
                offset: Some(span.start),
            }
        }
        Shape::Other => Explained {
            field: (!found.path.is_empty()).then(|| render(&found.path)),
            message: message.to_owned(),
            offset: Some(span.start),
        },
    })
}

/// The kinds of message serde's derive produces.
enum Shape<'a> {
    /// `missing field `x``: the key.
    Missing(&'a str),
    /// `unknown field `x`, expected ...`: the part after the key.
    Unknown(&'a str),
    /// `invalid type: ..., expected X` or `invalid value: ..., expected X`: X.
    Type(&'a str),
    Other,
}

impl<'a> Shape<'a> {
    fn of(message: &'a str) -> Self {
        if let Some(rest) = message.strip_prefix("missing field `") {
            return rest.strip_suffix('`').map_or(Self::Other, Self::Missing);
        }
        if message.starts_with("unknown field `") {
            return message
                .split_once("`, ")
                .map_or(Self::Other, |(_, rest)| Self::Unknown(rest));
        }
        if message.starts_with("invalid type: ") || message.starts_with("invalid value: ") {
            return message
                .rsplit_once(", expected ")
                .map_or(Self::Other, |(_, expected)| Self::Type(expected));
        }
        Self::Other
    }
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The node an error's span points at: its path, and its value unless the span is a key's.
struct Found<'a, 'i> {
    path: Vec<Step>,
    value: Option<&'a DeValue<'i>>,
}

/// The deepest node (value or key) whose span is `span`.
fn locate<'a, 'i>(
    node: &'a Spanned<DeValue<'i>>,
    span: &std::ops::Range<usize>,
    path: &mut Vec<Step>,
) -> Option<Found<'a, 'i>> {
    match node.get_ref() {
        DeValue::Table(table) => {
            for (key, child) in table.iter() {
                path.push(Step::Key(key.get_ref().to_string()));
                if key.span() == *span {
                    return Some(Found {
                        path: path.clone(),
                        value: None,
                    });
                }
                if let Some(found) = locate(child, span, path) {
                    return Some(found);
                }
                path.pop();
            }
        }
        DeValue::Array(array) => {
            for (i, child) in array.iter().enumerate() {
                path.push(Step::Index(i));
                if let Some(found) = locate(child, span, path) {
                    return Some(found);
                }
                path.pop();
            }
        }
        _ => {}
    }
    (node.span() == *span).then(|| Found {
        path: path.clone(),
        value: Some(node.get_ref()),
    })
}

/// A missing `key` in the table at `table`.
fn missing(table: &[Step], key: &str, offset: usize) -> Explained {
    if table.is_empty() {
        let top = match key {
            "requests" => Some(
                "the file has no [[requests]]: add at least one, e.g. [[requests]] with \
                 name = \"home\" and path = \"/\"",
            ),
            "stages" => Some(
                "the file has no [[stages]]: add at least one, e.g. [[stages]] with \
                 duration = \"10s\" and rate = 20",
            ),
            _ => None,
        };
        if let Some(message) = top {
            return Explained {
                field: None,
                message: message.to_owned(),
                offset: None,
            };
        }
    }
    let mut path = table.to_vec();
    path.push(Step::Key(key.to_owned()));
    let message = match expectation(&pattern(&path)) {
        Some((words, example)) => format!("missing; expected {words} (e.g. {key} = {example})"),
        None => "missing".to_owned(),
    };
    Explained {
        field: Some(render(&path)),
        message,
        // The top-level table's span is the whole file: no line to point at.
        offset: (!table.is_empty()).then_some(offset),
    }
}

/// `stages[0].rate`, `headers."X b"`.
fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key_text(key));
            }
        }
    }
    out
}

/// A key as TOML would write it: bare when it can be, quoted otherwise.
pub(crate) fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The path as a pattern: the indices of `stages` and `requests` dropped, other indices and
/// header names as `*`: `stages.rate`, `requests.expect.*`, `requests.headers.*`.
fn pattern(path: &[Step]) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for step in path {
        let last = keys.last().copied();
        match step {
            Step::Index(_) if matches!(last, Some("stages" | "requests")) => {}
            Step::Index(_) => keys.push("*"),
            Step::Key(_) if last == Some("headers") => keys.push("*"),
            Step::Key(key) => keys.push(key),
        }
    }
    keys.join(".")
}

/// What a field holds, in words, and an example value.
fn expectation(pattern: &str) -> Option<(&'static str, &'static str)> {
    const RATE: (&str, &str) = ("a number of requests per second", "20");
    const LATENCY: (&str, &str) = ("a latency in milliseconds", "250");
    Some(match pattern {
        "name" => ("the scenario's name in quotes", "\"smoke\""),
        "description" => ("text in quotes", "\"what this run is for\""),
        "target" => ("a URL in quotes", "\"http://127.0.0.1:8000\""),
        "start_rate" | "stages.rate" | "thresholds.min_rate" => RATE,
        "max_in_flight" => ("a whole number of requests, 1 or more", "256"),
        "timeout" => ("a duration in quotes", "\"5s\""),
        "stages" => (
            "a list of [[stages]] tables, each with a duration and a rate",
            "[[stages]]",
        ),
        "stages.duration" => ("a duration in quotes", "\"10s\""),
        "requests" => (
            "a list of [[requests]] tables, each with a name and a path",
            "[[requests]]",
        ),
        "requests.name" => ("the request's name in quotes", "\"get_user\""),
        "requests.method" => ("an HTTP method in quotes", "\"GET\""),
        "requests.path" => ("a path in quotes", "\"/api/users/{{seq}}\""),
        "requests.weight" => ("a whole number from 1 to 1000", "3"),
        "requests.body" => ("the body in quotes", "'{\"name\": \"u-{{seq}}\"}'"),
        "requests.content_type" => ("a media type in quotes", "\"application/json\""),
        "requests.expect" => ("a list of HTTP statuses", "[200, 404]"),
        "requests.expect.*" => ("an HTTP status", "200"),
        "headers" | "requests.headers" => (
            "a table of header names and values",
            "{ \"X-Api-Key\" = \"k-{{run_id}}\" }",
        ),
        "headers.*" | "requests.headers.*" => ("a header value in quotes", "\"k-{{run_id}}\""),
        "thresholds" => ("a table of limits", "p99_ms = 250"),
        "thresholds.p50_ms"
        | "thresholds.p90_ms"
        | "thresholds.p95_ms"
        | "thresholds.p99_ms"
        | "thresholds.p99_9_ms"
        | "thresholds.max_ms" => LATENCY,
        "thresholds.error_rate" => ("a fraction from 0 to 1", "0.01 for 1%"),
        _ => return None,
    })
}

/// What the file has: `the string "20"`, `the integer 5`, `a table`.
fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date {d}"),
        DeValue::Array(_) => "a list".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(source: &str) -> Option<Explained> {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Stage {
            rate: f64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            stages: Vec<Stage>,
            requests: Vec<Stage>,
        }
        let error = toml::from_str::<Doc>(source).err()?;
        explain(source, &error)
    }

    #[test]
    fn a_wrong_type_names_the_path_the_expectation_and_the_value() {
        let e = explained("requests = []\n[[stages]]\nrate = 1\n[[stages]]\nrate = \"20\"\n");
        assert_eq!(
            e,
            Some(Explained {
                field: Some("stages[1].rate".to_owned()),
                message:
                    "expected a number of requests per second (e.g. 20), found the string \"20\""
                        .to_owned(),
                offset: Some(52),
            })
        );
    }

    #[test]
    fn a_missing_top_level_list_says_so_without_a_position() {
        let e = explained("[[stages]]\nrate = 1\n");
        assert_eq!(e.as_ref().and_then(|e| e.offset), None);
        assert_eq!(
            e.map(|e| e.message).as_deref(),
            Some(
                "the file has no [[requests]]: add at least one, e.g. [[requests]] with \
                 name = \"home\" and path = \"/\""
            )
        );
    }

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(key_text("X-Api-Key"), "X-Api-Key");
        assert_eq!(key_text("X b"), "\"X b\"");
    }
}
