//! Turns a scenario file into a checked [`Scenario`], reporting the first problem with its file,
//! line, column and field, and saying in plain words what the field expects.

use super::duration::{self, Use};
use super::error::{SourceMap, key_on_line};
use super::explain::{self, key_text};
use super::header::{self, Header};
use super::raw::{RawHeaders, RawRequest, RawScenario, RawStage, RawThresholds};
use super::{
    Expect, Percentile, RenderContext, RequestSpec, Scenario, ScenarioError, Stage, Target,
    Template, Thresholds,
};
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::uri::PathAndQuery;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// `content-type` sent with a body when the request does not name one.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/json";

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const MAX_WEIGHT: i64 = 1000;

/// Validation context: the source (for positions) and the file name (for messages).
struct Checker<'a> {
    map: SourceMap<'a>,
    path: &'a Path,
}

impl Checker<'_> {
    fn fail<T>(
        &self,
        span: std::ops::Range<usize>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> Result<T, ScenarioError> {
        Err(self
            .map
            .error_at(self.path, Some(span.start), Some(field.into()), msg))
    }

    fn duration(
        &self,
        value: &Spanned<String>,
        field: &str,
        what: Use,
    ) -> Result<Duration, ScenarioError> {
        duration::parse(value.get_ref(), what)
            .or_else(|e| self.fail(value.span(), field, e.to_string()))
    }

    /// A finite number, zero or more; `words` say what it counts (`a latency in milliseconds`).
    fn non_negative(
        &self,
        value: &Spanned<f64>,
        field: &str,
        words: &str,
    ) -> Result<f64, ScenarioError> {
        let v = *value.get_ref();
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            self.fail(
                value.span(),
                field,
                format!("expected {words}, 0 or more, found {v}"),
            )
        }
    }

    fn template(&self, value: &Spanned<String>, field: &str) -> Result<Template, ScenarioError> {
        Template::parse(value.get_ref()).or_else(|e| self.fail(value.span(), field, e.to_string()))
    }
}

/// Words for rates, wherever a rate is written.
const RATE: &str = "a number of requests per second";

/// Parses and checks `source`, which was read from `path`.
pub(crate) fn parse(source: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let checker = Checker {
        map: SourceMap::new(source),
        path,
    };
    let raw: RawScenario = toml::from_str(source).map_err(|e| toml_error(&checker, source, &e))?;
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty() {
        return checker.fail(raw.name.span(), "name", "the scenario name is empty");
    }
    let target = match &raw.target {
        Some(t) => Some(
            Target::parse(t.get_ref())
                .or_else(|e| checker.fail(t.span(), "target", e.to_string()))?,
        ),
        None => None,
    };
    let start_rate = match &raw.start_rate {
        Some(r) => Some(checker.non_negative(r, "start_rate", RATE)?),
        None => None,
    };
    let max_in_flight = match &raw.max_in_flight {
        Some(m) if *m.get_ref() == 0 => {
            let msg = "expected a whole number of requests, 1 or more (e.g. 256), found 0";
            return checker.fail(m.span(), "max_in_flight", msg);
        }
        Some(m) => Some(*m.get_ref() as usize),
        None => None,
    };
    let timeout = match &raw.timeout {
        Some(t) => Some(checker.duration(t, "timeout", Use::Timeout)?),
        None => None,
    };
    let headers = headers(&checker, raw.headers.as_ref(), "headers")?;
    Ok(Scenario {
        name,
        description: raw.description.clone(),
        file: Some(path.to_path_buf()),
        target,
        start_rate,
        stages: stages(&checker, &raw.stages, start_rate)?,
        requests: requests(&checker, &raw.requests, &headers)?,
        headers,
        thresholds: thresholds(&checker, raw.thresholds.as_ref(), "thresholds")?,
        max_in_flight,
        timeout,
    })
}

/// A TOML error: a shape error explained with its field path and plain words, or the parser's
/// own message for a file that is not TOML at all.
fn toml_error(checker: &Checker<'_>, source: &str, error: &toml::de::Error) -> ScenarioError {
    if let Some(e) = explain::explain(source, error) {
        return checker
            .map
            .error_at(checker.path, e.offset, e.field, e.message);
    }
    let offset = error.span().map(|s| s.start);
    let message = error.message().trim().to_owned();
    let field = offset
        .and_then(|o| key_on_line(checker.map.locate(o).2))
        .filter(|key| !message.contains(&format!("`{key}`")));
    checker.map.error_at(checker.path, offset, field, message)
}

fn stages(
    checker: &Checker<'_>,
    raw: &Spanned<Vec<RawStage>>,
    start_rate: Option<f64>,
) -> Result<Vec<Stage>, ScenarioError> {
    if raw.get_ref().is_empty() {
        return checker.fail(raw.span(), "stages", "at least one stage is needed");
    }
    let mut out = Vec::with_capacity(raw.get_ref().len());
    for (i, stage) in raw.get_ref().iter().enumerate() {
        let field = |f: &str| format!("stages[{i}].{f}");
        out.push(Stage {
            duration: checker.duration(&stage.duration, &field("duration"), Use::Run)?,
            rate: checker.non_negative(&stage.rate, &field("rate"), RATE)?,
        });
    }
    let total: Duration = out.iter().map(|s| s.duration).sum();
    if total > duration::MAX_RUN {
        let msg = format!(
            "the stages last {} in all: {}",
            humantime::format_duration(total),
            Use::Run.limit_words()
        );
        return checker.fail(raw.span(), "stages", msg);
    }
    let silent = start_rate.unwrap_or(0.0) == 0.0 && out.iter().all(|s| s.rate == 0.0);
    if silent {
        return checker.fail(
            raw.span(),
            "stages",
            "every rate is 0: the plan sends nothing",
        );
    }
    Ok(out)
}

fn requests(
    checker: &Checker<'_>,
    raw: &Spanned<Vec<RawRequest>>,
    wide: &[Header],
) -> Result<Vec<RequestSpec>, ScenarioError> {
    if raw.get_ref().is_empty() {
        let msg = "the request list is empty: add at least one [[requests]] with a name and a path";
        return checker.fail(raw.span(), "requests", msg);
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.get_ref().len());
    for (i, req) in raw.get_ref().iter().enumerate() {
        let spec = request(checker, req, i, wide)?;
        if !names.insert(spec.name.clone()) {
            let msg = format!("duplicate request name `{}`", spec.name);
            return checker.fail(req.name.span(), format!("requests[{i}].name"), msg);
        }
        out.push(spec);
    }
    Ok(out)
}

fn request(
    checker: &Checker<'_>,
    raw: &RawRequest,
    i: usize,
    wide: &[Header],
) -> Result<RequestSpec, ScenarioError> {
    let field = |f: &str| format!("requests[{i}].{f}");
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty() {
        return checker.fail(raw.name.span(), field("name"), "the request name is empty");
    }
    if !raw.path.get_ref().starts_with('/') {
        let msg = format!("`{}` must start with `/`", raw.path.get_ref());
        return checker.fail(raw.path.span(), field("path"), msg);
    }
    let path = checker.template(&raw.path, &field("path"))?;
    check_renders_as_path(checker, &path, &raw.path, &field("path"))?;
    let body = match &raw.body {
        Some(b) => Some(checker.template(b, &field("body"))?),
        None => None,
    };
    let headers = headers(checker, raw.headers.as_ref(), &field("headers"))?;
    if let Some(ct) = &raw.content_type {
        content_type_set_once(checker, ct, &field("content_type"), &headers, wide)?;
    }
    Ok(RequestSpec {
        name,
        method: method(checker, raw.method.as_ref(), &field("method"))?,
        path,
        weight: weight(checker, raw.weight.as_ref(), &field("weight"))?,
        body,
        content_type: content_type(checker, raw.content_type.as_ref(), &field("content_type"))?,
        headers,
        expect: expect(checker, raw.expect.as_ref(), &field("expect"))?,
        thresholds: request_thresholds(checker, raw.thresholds.as_ref(), &field("thresholds"))?,
    })
}

/// A request's own `thresholds`: as the scenario's, but `abort_on_fail` is the run's to set.
fn request_thresholds(
    checker: &Checker<'_>,
    raw: Option<&RawThresholds>,
    field: &str,
) -> Result<Thresholds, ScenarioError> {
    if let Some(abort) = raw.and_then(|r| r.abort_on_fail.as_ref()) {
        let msg = "abort_on_fail applies to the whole run: set it in the top-level [thresholds]";
        return checker.fail(abort.span(), format!("{field}.abort_on_fail"), msg);
    }
    thresholds(checker, raw, field)
}

/// Checks a `headers` table (`field` names it: `headers`, `requests[2].headers`): names are
/// HTTP tokens obsctl does not own, each once whatever its case; values are one line of text
/// with valid placeholders. Reports the first problem in file order.
fn headers(
    checker: &Checker<'_>,
    raw: Option<&RawHeaders>,
    field: &str,
) -> Result<Vec<Header>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    let mut out: Vec<Header> = Vec::with_capacity(entries.len());
    let mut written: Vec<&str> = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let field = format!("{field}.{}", key_text(name.get_ref()));
        let checked = header::check_name(name.get_ref())
            .or_else(|e| checker.fail(name.span(), &field, e.to_string()))?;
        if let Some(i) = out.iter().position(|h| h.name == checked) {
            let msg = format!(
                "`{}` is the same header as `{}` above (header names ignore case): keep one",
                name.get_ref(),
                written.get(i).copied().unwrap_or_default()
            );
            return checker.fail(name.span(), &field, msg);
        }
        written.push(name.get_ref());
        let header = Header::parse(name.get_ref(), value.get_ref())
            .or_else(|e| checker.fail(value.span(), &field, e.to_string()))?;
        out.push(header);
    }
    Ok(out)
}

/// A request's `content_type` and a `Content-Type` header in its own `headers` or in `[headers]`
/// would compete: the file must say it once.
fn content_type_set_once(
    checker: &Checker<'_>,
    raw: &Spanned<String>,
    field: &str,
    own: &[Header],
    wide: &[Header],
) -> Result<(), ScenarioError> {
    let sets = |headers: &[Header]| headers.iter().any(|h| h.name == CONTENT_TYPE);
    if sets(own) {
        let msg = "this request's `headers` set Content-Type too: set it in one place";
        return checker.fail(raw.span(), field, msg);
    }
    if sets(wide) {
        let msg = "[headers] sets Content-Type for every request: set this request's in its own \
                   `headers`, which win over [headers]";
        return checker.fail(raw.span(), field, msg);
    }
    Ok(())
}

/// Renders the template once and checks that the result is a valid request path, so that no
/// request can fail to build at run time (placeholders only produce digits and hex).
fn check_renders_as_path(
    checker: &Checker<'_>,
    template: &Template,
    raw: &Spanned<String>,
    field: &str,
) -> Result<(), ScenarioError> {
    let ctx = RenderContext {
        seq: 0,
        run_id: "0000000000000000",
    };
    let rendered = template.render(ctx, &mut rand::rng());
    match rendered.parse::<PathAndQuery>() {
        Ok(_) => Ok(()),
        Err(e) => checker.fail(
            raw.span(),
            field,
            format!("`{rendered}` is not a valid request path ({e}); percent-encode spaces and special characters"),
        ),
    }
}

fn content_type(
    checker: &Checker<'_>,
    raw: Option<&Spanned<String>>,
    field: &str,
) -> Result<String, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_CONTENT_TYPE.to_owned());
    };
    match HeaderValue::from_str(raw.get_ref()) {
        Ok(_) if !raw.get_ref().trim().is_empty() => Ok(raw.get_ref().clone()),
        _ => checker.fail(
            raw.span(),
            field,
            "not a valid header value, e.g. \"application/json\"",
        ),
    }
}

fn method(
    checker: &Checker<'_>,
    raw: Option<&Spanned<String>>,
    field: &str,
) -> Result<Method, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Method::GET);
    };
    let upper = raw.get_ref().trim().to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        let msg = format!(
            "unknown method `{}`; expected one of {}",
            raw.get_ref(),
            METHODS.join(", ")
        );
        return checker.fail(raw.span(), field, msg);
    }
    Method::from_bytes(upper.as_bytes()).or_else(|e| checker.fail(raw.span(), field, e.to_string()))
}

fn weight(
    checker: &Checker<'_>,
    raw: Option<&Spanned<i64>>,
    field: &str,
) -> Result<u32, ScenarioError> {
    let Some(raw) = raw else { return Ok(1) };
    match u32::try_from(*raw.get_ref()) {
        Ok(w) if (1..=MAX_WEIGHT).contains(&i64::from(w)) => Ok(w),
        _ => checker.fail(
            raw.span(),
            field,
            format!(
                "expected a whole number from 1 to {MAX_WEIGHT} (e.g. 3), found {}",
                raw.get_ref()
            ),
        ),
    }
}

fn expect(
    checker: &Checker<'_>,
    raw: Option<&Spanned<Vec<Spanned<i64>>>>,
    field: &str,
) -> Result<Expect, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Expect::Success);
    };
    if raw.get_ref().is_empty() {
        return checker.fail(
            raw.span(),
            field,
            "list at least one status, or leave `expect` out",
        );
    }
    let mut statuses = Vec::new();
    for status in raw.get_ref() {
        match u16::try_from(*status.get_ref()) {
            Ok(s) if (100..=599).contains(&s) => statuses.push(s),
            _ => {
                let msg = format!("`{}` is not an HTTP status (100..=599)", status.get_ref());
                return checker.fail(status.span(), field, msg);
            }
        }
    }
    Ok(Expect::Statuses(statuses))
}

/// A `thresholds` table (`field` names it: `thresholds`, `requests[2].thresholds`).
fn thresholds(
    checker: &Checker<'_>,
    raw: Option<&RawThresholds>,
    field: &str,
) -> Result<Thresholds, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Thresholds::default());
    };
    let latency = [
        (Percentile::P50, &raw.p50_ms),
        (Percentile::P90, &raw.p90_ms),
        (Percentile::P95, &raw.p95_ms),
        (Percentile::P99, &raw.p99_ms),
        (Percentile::P99_9, &raw.p99_9_ms),
        (Percentile::Max, &raw.max_ms),
    ];
    let mut latency_ms = Vec::new();
    for (p, value) in latency {
        if let Some(v) = value {
            let field = format!("{field}.{}", p.key());
            let words = "a latency in milliseconds";
            latency_ms.push((p, checker.non_negative(v, &field, words)?));
        }
    }
    let error_rate = match &raw.error_rate {
        Some(v) if !(0.0..=1.0).contains(v.get_ref()) => {
            let msg = format!(
                "expected a fraction from 0 to 1 (e.g. 0.01 for 1%), found {}",
                v.get_ref()
            );
            return checker.fail(v.span(), format!("{field}.error_rate"), msg);
        }
        Some(v) => Some(*v.get_ref()),
        None => None,
    };
    let min_rate = match &raw.min_rate {
        Some(v) => Some(checker.non_negative(v, &format!("{field}.min_rate"), RATE)?),
        None => None,
    };
    Ok(Thresholds {
        latency_ms,
        error_rate,
        min_rate,
        abort_on_fail: raw.abort_on_fail.as_ref().is_some_and(|a| *a.get_ref()),
    })
}
