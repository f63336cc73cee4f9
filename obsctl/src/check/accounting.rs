//! Accounting: given the run report of `obsctl load`, every request that got a response must be
//! found in each signal: as a counter increment, as a request log line, as a trace.
//!
//! A series or log path matches a request when it equals the concrete path sent or is a route
//! template that matches it (`/api/users/{user_id}` matches `/api/users/7`), so a backend that
//! labels raw paths is judged as correctly as one that labels templates.

use std::collections::{BTreeMap, BTreeSet};

use super::context::CheckContext;
use super::model::{Outcome, Status};
use crate::report::RunReport;
use crate::sources::exposition::Exposition;
use crate::sources::span::SpanKind;

const NO_RUN: &str =
    "pass --run-report FILE from `obsctl load --report FILE`, or use `obsctl verify`";

/// The path scrapers use; its requests are not the run's alone.
const SCRAPE_PATH: &str = "/metrics";

/// A request's identity in a signal: method, path as the signal names it, status.
pub type Key = (String, String, u16);

/// Expected and observed counts per key, and what could not be matched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Requests the run sent and got a response for, per key as the signal names the path.
    pub expected: BTreeMap<Key, u64>,
    /// What the signal shows per key.
    pub observed: BTreeMap<Key, u64>,
}

impl Tally {
    /// `(key, expected, observed)` where the signal shows fewer than were sent.
    pub fn missing(&self) -> Vec<(Key, u64, u64)> {
        self.expected
            .iter()
            .filter_map(|(key, want)| {
                let have = self.observed.get(key).copied().unwrap_or(0);
                (have < *want).then(|| (key.clone(), *want, have))
            })
            .collect()
    }

    /// `(key, expected, observed)` where the signal shows more than were sent. `/metrics` is
    /// left out: scrapers (Prometheus, obsctl itself) hit it besides the run.
    pub fn extra(&self) -> Vec<(Key, u64, u64)> {
        self.expected
            .iter()
            .filter(|((_, path, _), _)| path != SCRAPE_PATH)
            .filter_map(|(key, want)| {
                let have = self.observed.get(key).copied().unwrap_or(0);
                (have > *want).then(|| (key.clone(), *want, have))
            })
            .collect()
    }

    /// Requests expected in total.
    pub fn total_expected(&self) -> u64 {
        self.expected.values().sum()
    }
}

/// Whether `candidate` (a concrete path or a route template) names `path`.
pub fn path_matches(candidate: &str, path: &str) -> bool {
    if candidate == path {
        return true;
    }
    let want: Vec<&str> = candidate.split('/').collect();
    let have: Vec<&str> = path.split('/').collect();
    want.len() == have.len()
        && want
            .iter()
            .zip(&have)
            .all(|(w, h)| w == h || (w.starts_with('{') && w.ends_with('}') && !h.is_empty()))
}

/// The name a signal most likely gives `path` among `candidates`: itself, else the most specific
/// matching template, else a catch-all label such as `<unmatched>` (one not starting with `/`).
pub fn resolve<'a>(path: &str, candidates: &'a BTreeSet<String>) -> Option<&'a str> {
    if let Some(exact) = candidates.get(path) {
        return Some(exact);
    }
    let placeholders = |c: &str| c.split('/').filter(|s| s.starts_with('{')).count();
    candidates
        .iter()
        .filter(|c| path_matches(c, path))
        .min_by_key(|c| placeholders(c))
        .or_else(|| candidates.iter().find(|c| !c.starts_with('/')))
        .map(String::as_str)
}

/// Builds the tally of a signal whose observations are `observed` (keyed by the signal's own
/// path names): the run's requests are mapped onto those names.
pub fn tally(run: &RunReport, observed: BTreeMap<Key, u64>) -> Tally {
    let mut by_group: BTreeMap<(String, u16), BTreeSet<String>> = BTreeMap::new();
    for (method, path, status) in observed.keys() {
        by_group
            .entry((method.clone(), *status))
            .or_default()
            .insert(path.clone());
    }
    let mut expected: BTreeMap<Key, u64> = BTreeMap::new();
    for request in &run.requests {
        let Some(status) = request.status else {
            continue;
        };
        let candidates = by_group.get(&(request.method.clone(), status));
        let name = candidates
            .and_then(|c| resolve(&request.path, c))
            .unwrap_or(&request.path)
            .to_owned();
        *expected
            .entry((request.method.clone(), name, status))
            .or_default() += request.count;
    }
    Tally { expected, observed }
}

/// Counter increments between two scrapes, per (method, path, status).
pub fn counter_deltas(before: Option<&Exposition>, after: &Exposition) -> BTreeMap<Key, u64> {
    series_deltas(
        before,
        after,
        &["fastapi_requests_total", "fastapi_requests"],
        "fastapi_requests_total",
    )
}

/// Observations of the duration histogram (its `_count`) between two scrapes, per
/// (method, path, status).
pub fn histogram_count_deltas(
    before: Option<&Exposition>,
    after: &Exposition,
) -> BTreeMap<Key, u64> {
    series_deltas(
        before,
        after,
        &["fastapi_request_duration_seconds"],
        "fastapi_request_duration_seconds_count",
    )
}

/// Increments of the samples named `sample` (in the first of `families` present) between two
/// scrapes, per (method, path, status).
fn series_deltas(
    before: Option<&Exposition>,
    after: &Exposition,
    families: &[&str],
    sample_name: &str,
) -> BTreeMap<Key, u64> {
    let read = |exposition: &Exposition| -> BTreeMap<Key, f64> {
        let mut values = BTreeMap::new();
        let family = families.iter().find_map(|name| exposition.family(name));
        for sample in family.into_iter().flat_map(|f| &f.samples) {
            if sample.name != sample_name {
                continue;
            }
            let label = |k: &str| sample.labels.get(k).cloned().unwrap_or_default();
            let Ok(status) = label("status_code").parse::<u16>() else {
                continue;
            };
            *values
                .entry((label("method"), label("path"), status))
                .or_insert(0.0) += sample.value;
        }
        values
    };
    let before = before.map(read).unwrap_or_default();
    read(after)
        .into_iter()
        .map(|(key, value)| {
            let delta = value - before.get(&key).copied().unwrap_or(0.0);
            (key, delta.max(0.0).round() as u64)
        })
        .collect()
}

/// `accounting-metrics`: the counter rose by exactly the requests sent, per method/path/status.
pub async fn metrics(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let after = match ctx.scrape().await {
        None => return Outcome::skip("no target given", "pass --target URL"),
        Some(Err(message)) => {
            return Outcome::error(
                format!("could not scrape /metrics: {}", message.message),
                "see metrics-endpoint",
            );
        }
        Some(Ok(scrape)) => match &scrape.parsed {
            Ok(parsed) => parsed,
            Err(_) => {
                return Outcome::fail(
                    "/metrics does not parse, so nothing can be counted",
                    "see the metrics-endpoint check",
                );
            }
        },
    };
    let Some(before) = ctx.baseline.as_ref() else {
        let tally = tally(run, counter_deltas(None, after));
        return judge(&tally, "counter", true, ctx.exclusive).evidence(
            "no baseline scrape: compared to the counter's totals (a lower bound, not exact)",
        );
    };
    let counted = judge(
        &tally(run, counter_deltas(Some(before), after)),
        "counter increment",
        false,
        ctx.exclusive,
    );
    // The histogram must see the same requests: a middleware that observes the duration only
    // on success (or twice) skews every latency panel while the counter looks right.
    let observed = histogram_count_deltas(Some(before), after);
    if counted.status != Status::Pass || observed.is_empty() {
        return counted;
    }
    let timed = judge(
        &tally(run, observed),
        "fastapi_request_duration_seconds observation",
        false,
        ctx.exclusive,
    );
    if timed.status == Status::Pass {
        counted.evidence("fastapi_request_duration_seconds_count rose by the same, per series")
    } else {
        timed
    }
}

/// `accounting-logs`: one request log line per request, per method/path/status.
pub async fn logs(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let Some(input) = &ctx.logs else {
        return Outcome::skip(
            "no log source given",
            "pass --logs FILE with the service's stdout",
        );
    };
    let expected = answered(run);
    let prefix = run.trace_id_prefix.as_str();
    let dropped = input.buffer.dropped_lines();
    if dropped > 0 && input.buffer.run_request_lines(prefix).is_none() {
        return Outcome::error(
            format!(
                "{} held {} lines; obsctl keeps the newest {}, too few to account for {expected} requests",
                input.origin,
                input.buffer.total_lines(),
                input.buffer.total_lines() - dropped
            ),
            "account over a shorter run, or count the run's lines (its trace_id prefix) in the file itself",
        );
    }
    let count_lines = || {
        // Past the line cap, only the run's lines counted as they arrived are complete.
        if input.buffer.dropped_lines() > 0
            && let Some(observed) = input.buffer.run_request_lines(prefix)
        {
            return (true, observed);
        }
        let lines = input.buffer.lines();
        let tagged = lines.iter().any(|l| l.str_field("trace_id").is_some());
        let mut observed: BTreeMap<Key, u64> = BTreeMap::new();
        for line in &lines {
            if tagged
                && !line
                    .str_field("trace_id")
                    .is_some_and(|t| t.starts_with(prefix))
            {
                continue;
            }
            if let Some(key) = line.request_key() {
                *observed.entry(key).or_default() += 1;
            }
        }
        (tagged, observed)
    };
    let (tagged, observed) = ctx
        .poll(|| async {
            let (tagged, observed) = count_lines();
            (observed.values().sum::<u64>() >= expected).then_some((tagged, observed))
        })
        .await
        .unwrap_or_else(count_lines);
    let tally = tally(run, observed);
    let outcome = judge(&tally, "request log line", !tagged, ctx.exclusive && tagged);
    let dropped = input.buffer.dropped_lines();
    if tagged && dropped > 0 {
        outcome.evidence(format!(
            "lines attributed to the run by trace_id prefix {prefix}, counted while {} was read \
             ({} lines, more than the {} kept)",
            input.origin,
            input.buffer.total_lines(),
            input.buffer.total_lines() - dropped
        ))
    } else if tagged {
        outcome.evidence(format!(
            "lines attributed to the run by trace_id prefix {prefix}"
        ))
    } else {
        outcome
            .evidence("lines carry no trace_id: every request line was counted, not only the run's")
    }
}

/// `accounting-traces`: one SERVER span in the run's own trace for every request.
pub async fn traces(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let Some(receiver) = &ctx.otlp else {
        return Outcome::skip(
            "no OTLP receiver in this run",
            "use `obsctl verify`, which receives the spans itself",
        );
    };
    let expected = answered(run);
    let prefix = run.trace_id_prefix.as_str();
    let traces_of_run = || -> BTreeSet<String> {
        receiver
            .spans()
            .into_iter()
            .filter(|s| s.kind == SpanKind::Server && s.trace_id.starts_with(prefix))
            .map(|s| s.trace_id)
            .collect()
    };
    let found = ctx
        .poll(|| async {
            let traces = traces_of_run();
            (traces.len() as u64 >= expected).then_some(traces)
        })
        .await
        .unwrap_or_else(traces_of_run);
    let found = found.len() as u64;
    if found == expected {
        return Outcome::pass(format!(
            "{found} of {expected} answered requests have a SERVER span in their own trace"
        ));
    }
    if found == 0 && !receiver.spans().is_empty() {
        return Outcome::fail(
            format!("spans arrived, but none in the traces obsctl started ({expected} expected)"),
            "continue the caller's trace: extract the W3C traceparent header (FastAPIInstrumentor does)",
        );
    }
    Outcome::fail(
        format!(
            "{found} of {expected} answered requests have a SERVER span; {} missing",
            expected.saturating_sub(found)
        ),
        "spans are lost: check otel_spans_dropped_total or the exporter's errors, and that the \
         batch processor is flushed at shutdown",
    )
}

/// Requests of the run that got a response (the others cannot be accounted for exactly).
pub fn answered(run: &RunReport) -> u64 {
    run.requests
        .iter()
        .filter(|r| r.status.is_some())
        .map(|r| r.count)
        .sum()
}

fn judge(tally: &Tally, what: &str, lower_bound: bool, exclusive: bool) -> Outcome {
    let missing = tally.missing();
    let extra = if lower_bound || !exclusive {
        Vec::new()
    } else {
        tally.extra()
    };
    let total = tally.total_expected();
    let describe = |rows: &[(Key, u64, u64)]| -> String {
        rows.iter()
            .take(5)
            .map(|((m, p, s), want, have)| format!("{m} {p} {s}: sent {want}, seen {have}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if missing.is_empty() && extra.is_empty() {
        return Outcome::pass(format!(
            "every one of {total} answered requests has its {what}"
        ));
    }
    if !missing.is_empty() {
        let lost: u64 = missing.iter().map(|(_, want, have)| want - have).sum();
        return Outcome::fail(
            format!("{lost} of {total} answered requests have no {what}"),
            "every request must be recorded exactly once, whatever its route or status (404s, 422s and 5xx included)",
        )
        .evidence(describe(&missing));
    }
    let doubled: u64 = extra.iter().map(|(_, want, have)| have - want).sum();
    Outcome::fail(
        format!("{doubled} more {what}s than requests sent ({total}): something is recorded twice"),
        "record each request once, in one middleware",
    )
    .evidence(describe(&extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn templates_and_raw_paths_both_resolve() {
        let templates = set(&["/api/users/{user_id}", "/health", "<unmatched>"]);
        assert_eq!(
            resolve("/api/users/7", &templates),
            Some("/api/users/{user_id}")
        );
        assert_eq!(resolve("/health", &templates), Some("/health"));
        assert_eq!(resolve("/nope", &templates), Some("<unmatched>"));
        let raw = set(&["/api/users/7", "/api/users/8"]);
        assert_eq!(resolve("/api/users/8", &raw), Some("/api/users/8"));
        assert_eq!(resolve("/api/users/9", &raw), None);
    }

    #[test]
    fn template_segments_need_a_value() {
        assert!(path_matches("/api/users/{id}", "/api/users/1"));
        assert!(!path_matches("/api/users/{id}", "/api/users/"));
        assert!(!path_matches("/api/users/{id}", "/api/users/1/x"));
    }
}
