//! Route templates as frameworks write them, so that a `path` label (or a span's route) can be
//! told from a raw URL and matched against the concrete paths a run sent:
//!
//! - `{id}`, `{id:int}`, `{id:[0-9]+}`, `{id?}` (Starlette/FastAPI, Spring, ASP.NET, axum);
//!   `{p:path}`, `{*rest}`, `{**rest}` match the rest of the path;
//! - `:id`, `:id?`, `:id(\d+)` (Express, Koa, Gin, Echo, Rails, Sinatra); `*`, `*path`,
//!   `:path*`, `:path+` match the rest;
//! - `<id>`, `<int:id>` (Flask, Django; Django's routes have no leading `/`); `<path:p>` matches
//!   the rest;
//! - `[id]` (Next.js); `[...slug]`, `[[...slug]]` match the rest;
//! - `#val` (express-prom-bundle's normalised ids);
//! - regular expressions, as Django's `re_path` routes are named
//!   (`^api/users/(?P<user_id>[0-9]+)$`): matched whole, with or without the leading `/`.
//!
//! A label that is no path at all (`<unmatched>`, `unmatched`, `UNKNOWN`, `other`) is the one
//! value a service gives every request that matched no route: it matches any path, last.

/// How much of a concrete path one template segment takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    /// Exactly this text.
    Literal(&'a str),
    /// One non-empty segment, with literal text around the placeholder (`{name}.json`), of
    /// the kind its converter or pattern allows.
    One {
        prefix: &'a str,
        suffix: &'a str,
        kind: Kind,
    },
    /// Zero or more segments: the rest of the path.
    Rest,
}

/// What a placeholder accepts, from its converter (`<int:id>`, `{id:int}`) or pattern
/// (`:id(\\d+)`, `{id:[0-9]+}`): a request whose segment the converter refuses never reaches
/// the route (Flask answers it 404 as unmatched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    Int,
    Float,
    Uuid,
}

/// Converter names of Werkzeug (Flask), Django and Sanic: the part of `<a:b>` that is no name.
const CONVERTERS: [&str; 11] = [
    "string",
    "str",
    "int",
    "float",
    "path",
    "uuid",
    "slug",
    "alpha",
    "strorempty",
    "ymd",
    "ext",
];

impl Kind {
    /// The kind of a placeholder, read from its converter or pattern only, never from its name
    /// (`{appointment_id}` is no integer): `<int:id>` before the colon, `{id:int}` after it,
    /// `:id(\d+)` in the parentheses.
    fn of(placeholder: &str) -> Self {
        let spec = if let Some(inner) = placeholder.strip_prefix('<') {
            // Flask and Django put the converter first (`<int:id>`), Sanic last (`<id:int>`).
            inner.split_once(':').map_or("", |(first, last)| {
                if CONVERTERS.contains(&first) || first.starts_with("any(") {
                    first
                } else {
                    last
                }
            })
        } else if let Some(inner) = placeholder.strip_prefix('{') {
            inner
                .split_once(':')
                .map_or("", |(_, constraint)| constraint)
        } else if placeholder.starts_with(':') {
            placeholder
                .split_once('(')
                .map_or("", |(_, pattern)| pattern)
        } else {
            ""
        };
        let spec = spec.to_ascii_lowercase();
        if spec.contains("uuid") || spec.contains("guid") {
            Self::Uuid
        } else if spec.contains("float") || spec.contains("double") || spec.contains("decimal") {
            Self::Float
        } else if spec.contains("int")
            || spec.contains("\\d")
            || spec.contains("[0-9]")
            || spec.contains("long")
        {
            Self::Int
        } else {
            Self::Any
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Int => {
                let digits = value.strip_prefix('-').unwrap_or(value);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            }
            Self::Float => value.parse::<f64>().is_ok(),
            Self::Uuid => {
                value.len() == 36 && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            }
        }
    }
}

fn segment(text: &str) -> Segment<'_> {
    if let Some(rest) = rest_placeholder(text) {
        return rest;
    }
    let Some((start, end)) = placeholder_span(text) else {
        return Segment::Literal(text);
    };
    Segment::One {
        prefix: &text[..start],
        suffix: &text[end..],
        kind: Kind::of(&text[start..end]),
    }
}

/// A whole segment that matches the rest of the path.
fn rest_placeholder(text: &str) -> Option<Segment<'static>> {
    let rest = text == "*"
        || text == "**"
        || (text.starts_with('*') && is_name(&text[1..]))
        || (text.starts_with("{*") && text.ends_with('}'))
        || (text.starts_with('{') && text.ends_with(":path}"))
        || (text.starts_with("<path:") && text.ends_with('>'))
        || (text.starts_with("[...") && text.ends_with(']'))
        || (text.starts_with("[[...") && text.ends_with("]]"))
        || (text.starts_with(':') && (text.ends_with('*') || text.ends_with('+')));
    rest.then_some(Segment::Rest)
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Byte range of the placeholder within a segment, if it has one.
fn placeholder_span(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    for (start, &b) in bytes.iter().enumerate() {
        let close = match b {
            b'{' => b'}',
            b'<' => b'>',
            b'[' => b']',
            b':' | b'#' => {
                // `:id`, `:id?`, `:id(\d+)`: a name, then an optional modifier or pattern.
                let name_end = start
                    + 1
                    + bytes[start + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                        .count();
                if name_end == start + 1 {
                    continue;
                }
                let end = match bytes.get(name_end) {
                    Some(b'?') => name_end + 1,
                    Some(b'(') => bytes[name_end..]
                        .iter()
                        .position(|c| *c == b')')
                        .map_or(bytes.len(), |i| name_end + i + 1),
                    _ => name_end,
                };
                return Some((start, end));
            }
            _ => continue,
        };
        let end = bytes[start + 1..].iter().position(|c| *c == close)?;
        let inner = &text[start + 1..start + 1 + end];
        // `{}` or `<>` is no placeholder; `[...]` must hold a name.
        if !inner.is_empty() {
            return Some((start, start + end + 2));
        }
    }
    None
}

/// The segments of a path or template; a template without a leading `/` (Django) is read as
/// if it had one.
fn segments(path: &str) -> Vec<&str> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/').collect()
}

/// Longest label read as a regular expression; longer ones are matched segment by segment.
const MAX_REGEX_LABEL: usize = 512;

/// A label that is a route's regular expression: anchored (`^...`), holding a named group
/// (`(?P<id>...)`, `(?<id>...)`), or a segment that is a group (Tornado's `/users/([0-9]+)`).
/// Compiled to match the whole path, within small size limits: the `regex` crate matches in
/// time linear in the path, so a hostile label costs no more than a route.
fn regex_route(label: &str) -> Option<regex::Regex> {
    if !looks_like_regex(label) || label.len() > MAX_REGEX_LABEL {
        return None;
    }
    regex::RegexBuilder::new(&format!("^(?:{label})$"))
        .size_limit(1 << 16)
        .dfa_size_limit(1 << 16)
        .build()
        .ok()
}

/// The shapes [`regex_route`] reads as a regular expression (a cheap test, before compiling).
fn looks_like_regex(label: &str) -> bool {
    label.starts_with('^')
        || label.contains("(?P<")
        || label.contains("(?<")
        || label.starts_with('(')
        || label.contains("/(")
}

/// Whether `value` is a route template with at least one placeholder (or a regular expression
/// with a group or a character class).
pub fn has_placeholder(value: &str) -> bool {
    if value.contains(['(', '[', '\\']) && with_regex_route(value, |regex| regex.is_some()) {
        return true;
    }
    segments_of_template(value)
        .iter()
        .any(|s| !matches!(s, Segment::Literal(_)))
}

fn segments_of_template(template: &str) -> Vec<Segment<'_>> {
    // `#val` only counts as a whole segment: `#` elsewhere starts a fragment.
    segments_keep_hash(template)
        .into_iter()
        .map(segment)
        .collect()
}

fn segments_keep_hash(path: &str) -> Vec<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/').collect()
}

/// Whether `value` is the shared label of requests that matched no route: not a path, no
/// placeholder (`<unmatched>` counts: its angle brackets hold no converter).
pub fn is_catch_all(value: &str) -> bool {
    if value.contains('/') {
        return false;
    }
    let bare = value
        .trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '(' | ')' | '_'))
        .to_ascii_lowercase();
    matches!(
        bare.as_str(),
        "" | "unmatched"
            | "unknown"
            | "other"
            | "others"
            | "not_found"
            | "notfound"
            | "not found"
            | "none"
            | "null"
            | "no_route"
            | "unmatched_route"
            | "unrouted"
    )
}

/// Whether `template` (a route template, or a concrete path) names `path`.
pub fn matches(template: &str, path: &str) -> bool {
    if template == path {
        return true;
    }
    matches_segments(template, path) || matches_regex(template, path)
}

/// [`matches`] for templates of segments and placeholders.
fn matches_segments(template: &str, path: &str) -> bool {
    let want = segments_of_template(template);
    let have = segments(path);
    // Rest placeholders backtrack: a label a hostile service made of many of them, against a
    // long path, would cost exponential time. Real routes have one, rarely two.
    let rests = want.iter().filter(|s| matches!(s, Segment::Rest)).count();
    if rests > MAX_REST || want.len() > MAX_SEGMENTS || have.len() > MAX_SEGMENTS {
        return false;
    }
    matches_from(&want, &have)
}

/// [`matches`] for templates that are regular expressions, with or without the leading `/`
/// (Django's have none).
fn matches_regex(template: &str, path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    with_regex_route(template, |regex| {
        regex.is_some_and(|regex| {
            regex.is_match(path)
                || path
                    .strip_prefix('/')
                    .is_some_and(|bare| regex.is_match(bare))
        })
    })
}

/// `read` given [`regex_route`] of `label`, compiled once per thread: a check matches each
/// label against every path of the run, and compiling costs far more than matching.
fn with_regex_route<R>(label: &str, read: impl FnOnce(Option<&regex::Regex>) -> R) -> R {
    /// Labels kept compiled at most; the cache starts over beyond.
    const CACHED: usize = 1024;
    type Compiled = std::collections::HashMap<String, Option<regex::Regex>>;
    thread_local! {
        static COMPILED: std::cell::RefCell<Compiled> = std::cell::RefCell::default();
    }
    if !looks_like_regex(label) {
        return read(None);
    }
    COMPILED.with_borrow_mut(|compiled| {
        if !compiled.contains_key(label) {
            if compiled.len() >= CACHED {
                compiled.clear();
            }
            compiled.insert(label.to_owned(), regex_route(label));
        }
        read(compiled.get(label).and_then(Option::as_ref))
    })
}

/// Most rest placeholders in a template that is matched at all.
const MAX_REST: usize = 2;
/// Most segments in a template or a path that is matched at all.
const MAX_SEGMENTS: usize = 64;

fn matches_from(want: &[Segment<'_>], have: &[&str]) -> bool {
    match want.split_first() {
        None => have.is_empty(),
        Some((Segment::Rest, rest)) => (0..=have.len()).any(|i| matches_from(rest, &have[i..])),
        Some((first, rest)) => {
            let Some((segment, others)) = have.split_first() else {
                return false;
            };
            let ok = match first {
                Segment::Literal(text) => text == segment,
                Segment::One {
                    prefix,
                    suffix,
                    kind,
                } => {
                    segment.len() > prefix.len() + suffix.len()
                        && segment.starts_with(prefix)
                        && segment.ends_with(suffix)
                        && kind.accepts(&segment[prefix.len()..segment.len() - suffix.len()])
                }
                Segment::Rest => unreachable!("handled above"),
            };
            ok && matches_from(rest, others)
        }
    }
}

/// How specific a template is: literal segments count most, rest placeholders least, so the
/// most specific matching template is preferred.
fn specificity(template: &str) -> (usize, usize) {
    let segments = segments_of_template(template);
    let literal = segments
        .iter()
        .filter(|s| matches!(s, Segment::Literal(_)))
        .count();
    let rest = segments
        .iter()
        .filter(|s| matches!(s, Segment::Rest))
        .count();
    (literal, usize::MAX - rest)
}

/// The name a signal most likely gives `path` among `candidates`: itself, else the most
/// specific matching template, else the catch-all label.
pub fn resolve<'a, I>(path: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a String> + Clone,
{
    if let Some(exact) = candidates.clone().into_iter().find(|c| c.as_str() == path) {
        return Some(exact);
    }
    candidates
        .clone()
        .into_iter()
        .filter(|c| !is_catch_all(c) && matches(c, path))
        .max_by_key(|c| specificity(c))
        .or_else(|| candidates.into_iter().find(|c| is_catch_all(c)))
        .map(String::as_str)
}

/// A path with a segment that is an id (a number, a UUID, a long hex string): a concrete URL,
/// not a route template.
pub fn looks_concrete(path: &str) -> bool {
    segments(path)
        .iter()
        .any(|segment| placeholder_span(segment).is_none() && looks_like_id(segment))
}

fn looks_like_id(segment: &str) -> bool {
    let numeric = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    let uuid = segment.len() == 36
        && segment.bytes().filter(|b| *b == b'-').count() == 4
        && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let hex = segment.len() >= 16
        && segment.bytes().all(|b| b.is_ascii_hexdigit())
        && segment.bytes().any(|b| b.is_ascii_digit());
    numeric || uuid || hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_framework_spelling_matches_its_concrete_paths() {
        for template in [
            "/api/users/{user_id}",
            "/api/users/{user_id:int}",
            "/api/users/{id:[0-9]+}",
            "/api/users/:user_id",
            "/api/users/:user_id(\\d+)",
            "/api/users/<user_id>",
            "/api/users/<int:user_id>",
            "api/users/<int:user_id>",
            "/api/users/[id]",
            "/api/users/#val",
            "/api/users/*",
            "/api/{*rest}",
            "/api/{rest:path}",
            "/api/<path:rest>",
            "/api/[...slug]",
            "/api/*rest",
            "/api/:rest*",
        ] {
            assert!(matches(template, "/api/users/7"), "{template}");
            assert!(!matches(template, "/health"), "{template}");
            assert!(has_placeholder(template), "{template}");
        }
        assert!(!matches("/api/users/{id}", "/api/users/"));
        assert!(!matches("/api/users/{id}", "/api/users/1/x"));
        assert!(matches("/files/{name}.json", "/files/a.json"));
        assert!(!matches("/files/{name}.json", "/files/a.xml"));
        assert!(!has_placeholder("/api/users"));
    }

    #[test]
    fn regular_expression_routes_match_whole_paths() {
        for template in [
            "^api/users/(?P<user_id>[0-9]+)$",
            "^api/users/(?P<user_id>\\d+)/?$",
            "^/api/users/(?<id>[^/]+)$",
            "api/users/(?P<user_id>[0-9]+)",
            "/api/users/([0-9]+)",
        ] {
            assert!(matches(template, "/api/users/7"), "{template}");
            assert!(matches(template, "/api/users/7?x=1"), "{template}");
            assert!(!matches(template, "/api/users/7/posts"), "{template}");
            assert!(!matches(template, "/health"), "{template}");
            assert!(has_placeholder(template), "{template}");
        }
        assert!(!matches(
            "^api/users/(?P<user_id>[0-9]+)$",
            "/api/users/abc"
        ));
        assert!(matches("^health$", "/health"));
        assert!(!has_placeholder("^health$"));
        // An Express pattern is no regular expression: it keeps its own reading.
        assert!(matches("/api/users/:user_id(\\d+)", "/api/users/7"));
        // Not a valid expression: read segment by segment, as before.
        assert!(!matches("^api/users/(?P<user_id", "/api/users/7"));
    }

    #[test]
    fn a_hostile_regular_expression_label_is_refused_or_cheap() {
        let huge = format!("^{}$", "(?P<a>x{1000}){1000}".repeat(4));
        assert!(regex_route(&huge).is_none(), "over the size limits");
        let long = format!("^{}(?P<id>[0-9]+)$", "a/".repeat(400));
        assert!(regex_route(&long).is_none(), "over the length limit");
        // Catastrophic for a backtracking engine (hours); the regex crate has none.
        let nested = "^((?P<a>a*)*)*b$";
        let path = format!("/{}", "a".repeat(10_000));
        assert!(!matches(nested, &path));
    }

    #[test]
    fn a_label_made_of_wildcards_costs_no_more_than_a_route() {
        let hostile = "/*".repeat(40);
        let path = "/a".repeat(63) + "/b";
        // Without the bound this call backtracks for hours.
        assert!(!matches(&hostile, &path));
        assert!(!matches(&"/*".repeat(3), &path));
    }

    #[test]
    fn a_converter_is_read_on_either_side_of_the_name() {
        assert!(!matches("/api/users/<user_id:int>", "/api/users/abc"));
        assert!(matches("/api/users/<user_id:int>", "/api/users/7"));
        assert!(!matches("/api/users/<int:user_id>", "/api/users/abc"));
        // A name that contains `int` converts nothing.
        assert!(matches("/api/points/<string:point_id>", "/api/points/abc"));
        assert!(matches("/api/points/<point_id:str>", "/api/points/abc"));
    }

    #[test]
    fn converters_refuse_what_their_framework_refuses() {
        for template in [
            "/api/users/<int:user_id>",
            "/api/users/{user_id:int}",
            "/api/users/:id(\\d+)",
            "/api/users/{id:[0-9]+}",
        ] {
            assert!(matches(template, "/api/users/7"), "{template}");
            assert!(!matches(template, "/api/users/not-a-number"), "{template}");
        }
        assert!(matches("/api/users/<user_id>", "/api/users/not-a-number"));
        // The name is no converter.
        assert!(matches(
            "/api/appointments/{appointment_id}",
            "/api/appointments/abc"
        ));
        assert!(matches("/api/points/:point_id", "/api/points/abc"));
        assert!(matches("/api/places/<longitude>", "/api/places/abc"));
        assert!(matches(
            "/items/<uuid:id>",
            "/items/123e4567-e89b-12d3-a456-426614174000"
        ));
        assert!(!matches("/items/<uuid:id>", "/items/7"));
        // Flask answers a non-integer id 404 as unmatched: accounting finds it there.
        let candidates: Vec<String> = vec!["/api/users/<int:user_id>".into(), "<unmatched>".into()];
        assert_eq!(resolve("/api/users/abc", &candidates), Some("<unmatched>"));
    }

    #[test]
    fn the_most_specific_template_wins_and_catch_alls_come_last() {
        let candidates: Vec<String> = [
            "/api/users/{user_id}",
            "/api/{*rest}",
            "<unmatched>",
            "/health",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            resolve("/api/users/7", &candidates),
            Some("/api/users/{user_id}")
        );
        assert_eq!(resolve("/api/other", &candidates), Some("/api/{*rest}"));
        assert_eq!(resolve("/nope", &candidates), Some("<unmatched>"));
        assert_eq!(resolve("/health", &candidates), Some("/health"));
        let raw: Vec<String> = vec!["/api/users/7".into()];
        assert_eq!(resolve("/api/users/9", &raw), None);
    }

    #[test]
    fn catch_all_labels_are_recognised() {
        for label in [
            "<unmatched>",
            "unmatched",
            "UNKNOWN",
            "other",
            "",
            "not_found",
        ] {
            assert!(is_catch_all(label), "{label}");
        }
        for label in ["/api/users/{id}", "health", "/*"] {
            assert!(!is_catch_all(label), "{label}");
        }
    }

    #[test]
    fn concrete_paths_are_told_from_templates() {
        assert!(looks_concrete("/api/users/1"));
        assert!(looks_concrete(
            "/api/users/123e4567-e89b-12d3-a456-426614174000"
        ));
        assert!(!looks_concrete("/api/users/{user_id}"));
        assert!(!looks_concrete("/api/users/:user_id"));
        assert!(!looks_concrete("/api/v2/users"));
        assert!(!looks_concrete("<unmatched>"));
    }
}
