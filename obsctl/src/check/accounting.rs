//! Accounting: given the run report of `obsctl load`, every request that got a response must be
//! found in each signal: as a counter increment, as a request log line, as a trace.
//!
//! A series or log path matches a request when it equals the concrete path sent or is a route
//! template of any framework that matches it ([`super::paths`]), so a backend that labels raw
//! paths is judged as correctly as one that labels `/api/users/{user_id}`, `/api/users/:id` or
//! `/api/users/<int:id>`.

use std::collections::{BTreeMap, BTreeSet};

use super::context::CheckContext;
use super::model::{Finding, Outcome};
use super::paths;
use crate::report::fold::PathFolder;
use crate::report::{RequestCount, RunReport};
use crate::sources::exposition::Exposition;
use crate::sources::span::SpanKind;
use crate::sources::span_store::RunTraces;

const NO_RUN: &str =
    "pass --run-report FILE from `obsctl load --report FILE`, or use `obsctl verify`";

/// The path scrapers use; its requests are not the run's alone.
const SCRAPE_PATH: &str = "/metrics";

/// Whether a series' `path` label names the scrape path `scrape_path`: as requested
/// (`/metrics`), or as a framework's route names it, without the leading `/` (Django's
/// `metrics`) or with a trailing one (`metrics/`).
fn is_scrape_path(label: &str, scrape_path: &str) -> bool {
    let bare = scrape_path.trim_matches('/');
    label == scrape_path || (!bare.is_empty() && label.trim_matches('/') == bare)
}

/// The counter of the contract, under its text and OpenMetrics family names.
const COUNTER_FAMILIES: [&str; 2] = ["fastapi_requests_total", "fastapi_requests"];

/// Fresh scrapes taken to tell several processes from one when a counter misbehaves. Workers
/// sharing a listening socket race for each connection, and one may win several in a row: 16
/// spaced connections reach both of two workers unless one wins nearly always.
const PROBE_SCRAPES: usize = 16;

/// A request's identity in a signal: method, path as the signal names it, status.
pub type Key = (String, String, u16);

/// Expected and observed counts per key.
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
            .filter(|((_, path, _), _)| !is_scrape_path(path, SCRAPE_PATH))
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

/// Builds the tally of a signal whose observations are `observed` (keyed by the signal's own
/// path names): the run's requests are mapped onto those names. Concrete paths that one of the
/// run's path templates rendered are first summed under that template, as the report counts
/// them ([`PathFolder`]).
pub fn tally(run: &RunReport, observed: BTreeMap<Key, u64>) -> Tally {
    let folder = PathFolder::of_report(run);
    let observed = fold(&folder, observed);
    let mut by_group: BTreeMap<(String, u16), BTreeSet<String>> = BTreeMap::new();
    for (method, path, status) in observed.keys() {
        by_group
            .entry((method.clone(), *status))
            .or_default()
            .insert(path.clone());
    }
    let mut assigned: Vec<(&RequestCount, Key)> = Vec::new();
    for request in &run.requests {
        let Some(status) = request.status else {
            continue;
        };
        let name = by_group
            .get(&(request.method.clone(), status))
            .and_then(|names| signal_name(request, names))
            .unwrap_or(&request.path)
            .to_owned();
        assigned.push((request, (request.method.clone(), name, status)));
    }
    settle_with_catch_all(&mut assigned, &observed, &by_group);
    let mut expected: BTreeMap<Key, u64> = BTreeMap::new();
    for (request, key) in assigned {
        *expected.entry(key).or_default() += request.count;
    }
    Tally { expected, observed }
}

/// Most requests of one route and status among which [`settle_with_catch_all`] looks for
/// those the framework refused (every subset is tried).
const MAX_SETTLED: usize = 12;

/// Moves to the catch-all label (`<unmatched>`) the requests a framework refused to route
/// although the route's label seems to take them: aiohttp labels a `{user_id:\d+}` route
/// `/api/users/{user_id}`, which reads as matching `/api/users/not-a-number`, yet answers that
/// path 404 as unmatched. Where a route's series falls short of the requests mapped to it by
/// exactly what the catch-all series of the same method and status has beyond its own, the
/// requests that make up the difference are the catch-all's: among the subsets of them that
/// sum to it, the one with the fewest paths that look like ids (then the fewest requests).
fn settle_with_catch_all(
    assigned: &mut [(&RequestCount, Key)],
    observed: &BTreeMap<Key, u64>,
    by_group: &BTreeMap<(String, u16), BTreeSet<String>>,
) {
    let expected = |assigned: &[(&RequestCount, Key)], key: &Key| -> u64 {
        assigned
            .iter()
            .filter(|(_, k)| k == key)
            .map(|(request, _)| request.count)
            .sum()
    };
    let seen = |key: &Key| observed.get(key).copied().unwrap_or(0);
    for ((method, status), names) in by_group {
        let Some(catch_all) = names.iter().find(|name| paths::is_catch_all(name)) else {
            continue;
        };
        let catch_all = (method.clone(), catch_all.clone(), *status);
        for name in names.iter().filter(|name| !paths::is_catch_all(name)) {
            let route = (method.clone(), name.clone(), *status);
            let short = expected(assigned, &route).saturating_sub(seen(&route));
            let surplus = seen(&catch_all).saturating_sub(expected(assigned, &catch_all));
            let target = short.min(surplus);
            // Requests sent to the label's own path are that route's, whatever the counts say.
            let movable: Vec<usize> = (0..assigned.len())
                .filter(|&i| assigned[i].1 == route && assigned[i].0.path != *name)
                .collect();
            if target == 0 || movable.is_empty() || movable.len() > MAX_SETTLED {
                continue;
            }
            let looks_like_id = |i: usize| {
                let request = assigned[i].0;
                paths::looks_concrete(request.examples.first().unwrap_or(&request.path))
            };
            let best = (1u32..1 << movable.len())
                .filter(|mask| {
                    let sum: u64 = (0..movable.len())
                        .filter(|bit| mask & (1 << bit) != 0)
                        .map(|bit| assigned[movable[bit]].0.count)
                        .sum();
                    sum == target
                })
                .min_by_key(|mask| {
                    let ids = (0..movable.len())
                        .filter(|bit| mask & (1 << bit) != 0 && looks_like_id(movable[*bit]))
                        .count();
                    (ids, mask.count_ones())
                });
            if let Some(mask) = best {
                for bit in (0..movable.len()).filter(|bit| mask & (1 << bit) != 0) {
                    assigned[movable[bit]].1 = catch_all.clone();
                }
            }
        }
    }
}

/// Sums the observations of concrete paths under the path template that rendered them.
fn fold(folder: &PathFolder, observed: BTreeMap<Key, u64>) -> BTreeMap<Key, u64> {
    if folder.is_empty() {
        return observed;
    }
    let mut folded: BTreeMap<Key, u64> = BTreeMap::new();
    for ((method, path, status), count) in observed {
        let path = match folder.fold(&method, &path) {
            Some(template) => template.to_owned(),
            None => path,
        };
        *folded.entry((method, path, status)).or_default() += count;
    }
    folded
}

/// The name under which a signal recorded `request`'s requests, among `names` (those of its
/// method and status): its own path (a constant path, or the template its concrete paths were
/// folded into), else the route template that matches the paths it sent.
fn signal_name<'a>(request: &RequestCount, names: &'a BTreeSet<String>) -> Option<&'a str> {
    if let Some(own) = names.get(&request.path) {
        return Some(own);
    }
    // A run's own templates (`{{...}}`) are no framework's: never match them as routes.
    let routes = names.iter().filter(|n| !n.contains("{{"));
    let sent = request.examples.first().unwrap_or(&request.path);
    paths::resolve(sent, routes)
}
/// A series whose value went down between two scrapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decrease {
    /// The series.
    pub key: Key,
    /// Its value in the earlier scrape.
    pub before: f64,
    /// Its value in the later scrape.
    pub after: f64,
}

/// Increments between two scrapes, per (method, path, status), and the series that went down.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deltas {
    /// How much each series rose (0 for series that went down).
    pub rose: BTreeMap<Key, u64>,
    /// Series that went down: a counter never does, unless its process restarted or another
    /// process answered the second scrape.
    pub decreased: Vec<Decrease>,
}

/// Counter increments between two scrapes, per (method, path, status).
pub fn counter_deltas(before: Option<&Exposition>, after: &Exposition) -> Deltas {
    series_deltas(before, after, &COUNTER_FAMILIES, "fastapi_requests_total")
}

/// Observations of the duration histogram (its `_count`) between two scrapes, per
/// (method, path, status).
pub fn histogram_count_deltas(before: Option<&Exposition>, after: &Exposition) -> Deltas {
    series_deltas(
        before,
        after,
        &["fastapi_request_duration_seconds"],
        "fastapi_request_duration_seconds_count",
    )
}

/// Values of the samples named `sample_name` (in the first of `families` present), per key.
fn series_values(
    exposition: &Exposition,
    families: &[&str],
    sample_name: &str,
) -> BTreeMap<Key, f64> {
    let mut values = BTreeMap::new();
    let family = families.iter().find_map(|name| exposition.family(name));
    for sample in family.into_iter().flat_map(|f| f.samples) {
        if sample.name != sample_name {
            continue;
        }
        let label = |k: &str| sample.labels.get(k).unwrap_or_default().to_owned();
        let Ok(status) = label("status_code").parse::<u16>() else {
            continue;
        };
        *values
            .entry((label("method"), label("path"), status))
            .or_insert(0.0) += sample.value;
    }
    values
}

fn series_deltas(
    before: Option<&Exposition>,
    after: &Exposition,
    families: &[&str],
    sample_name: &str,
) -> Deltas {
    let before = before
        .map(|b| series_values(b, families, sample_name))
        .unwrap_or_default();
    let mut deltas = Deltas::default();
    for (key, value) in series_values(after, families, sample_name) {
        let was = before.get(&key).copied().unwrap_or(0.0);
        if value < was {
            deltas.decreased.push(Decrease {
                key: key.clone(),
                before: was,
                after: value,
            });
        }
        deltas
            .rose
            .insert(key, (value - was).max(0.0).round() as u64);
    }
    // A series that vanished went down to nothing.
    for (key, was) in before {
        if was > 0.0 && !deltas.rose.contains_key(&key) {
            deltas.decreased.push(Decrease {
                key,
                before: was,
                after: 0.0,
            });
        }
    }
    deltas
}

/// `accounting-metrics`: the counter rose by exactly the requests sent, per method/path/status,
/// and the histogram's `_count` with it.
pub async fn metrics(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let after = match ctx.scrape().await {
        None => return Outcome::skip("no target given", "pass --target URL"),
        Some(Err(failure)) => return super::metrics::unreadable(failure),
        Some(Ok(scrape)) => match &scrape.parsed {
            Ok(parsed) => parsed,
            Err(_) => {
                return Outcome::skip(
                    "not judged: /metrics is not Prometheus text, so nothing can be counted",
                    "the metrics-endpoint check says why",
                );
            }
        },
    };
    let Some(before) = ctx.baseline.as_ref() else {
        let tally = tally(run, counter_deltas(None, after).rose);
        let findings = judge(&tally, "counter increment", true, ctx.exclusive);
        return Outcome::judged(
            findings,
            format!(
                "the counter's totals hold the {} answered requests",
                tally.total_expected()
            ),
        )
        .evidence(
            "no baseline scrape: compared to the counter's totals (a lower bound, not exact)",
        );
    };
    let counted = counter_deltas(Some(before), after);
    let counter_tally = tally(run, counted.rose.clone());
    let mut findings = judge(&counter_tally, "counter increment", false, ctx.exclusive);
    // The histogram must see the same requests: a middleware that observes the duration only
    // on success (or twice) skews every latency panel while the counter looks right.
    let timed = histogram_count_deltas(Some(before), after);
    if !timed.rose.is_empty() {
        findings.extend(judge(
            &tally(run, timed.rose),
            "fastapi_request_duration_seconds observation",
            false,
            ctx.exclusive,
        ));
    }
    if (!findings.is_empty() || !counted.decreased.is_empty())
        && let Some(cause) = processes_finding(ctx, before, after, &counted.decreased).await
    {
        findings.insert(0, cause);
    }
    Outcome::judged(
        findings,
        format!(
            "every one of {} answered requests has its counter increment and its histogram observation",
            counter_tally.total_expected()
        ),
    )
}

/// What the process behind `/metrics` says when a counter misbehaves: several processes with
/// separate registries, a restart, or nothing telling (`None`).
async fn processes_finding(
    ctx: &CheckContext,
    before: &Exposition,
    after: &Exposition,
    decreased: &[Decrease],
) -> Option<Finding> {
    // The scrapes themselves are left out of the totals: one process answering a round of
    // simultaneous scrapes counts them in whatever order it renders, and that must not look
    // like a counter going down.
    let scrape_path = ctx
        .metrics
        .as_ref()
        .and_then(|endpoint| url::Url::parse(endpoint.url()).ok())
        .map(|url| url.path().to_owned())
        .unwrap_or_else(|| "/metrics".to_owned());
    let total = |exposition: &Exposition| served_total(exposition, &scrape_path);
    let mut starts: Vec<Option<f64>> = vec![start_time(before), start_time(after)];
    let mut totals: Vec<f64> = vec![total(before), total(after)];
    let probes = ctx.fresh_scrapes(PROBE_SCRAPES, |scrape| {
        let parsed = scrape.parsed.as_ref().ok()?;
        Some((start_time(parsed), total(parsed)))
    });
    for (start, total) in probes.await.into_iter().flatten() {
        starts.push(start);
        totals.push(total);
    }
    let distinct: BTreeSet<u64> = starts.iter().flatten().map(|s| s.to_bits()).collect();
    // A counter total that falls and rises again across consecutive scrapes: several processes.
    let falls = totals.windows(2).filter(|w| w[1] < w[0]).count();
    let rises_after_fall = totals
        .windows(3)
        .any(|w| (w[1] < w[0] && w[2] > w[1]) || (w[1] > w[0] && w[2] < w[1]));
    let examples = decreased.iter().map(|d| {
        format!(
            "{} {} {}: {} then {}",
            d.key.0, d.key.1, d.key.2, d.before, d.after
        )
    });
    let several = distinct.len() > 1 && (is_alternating(&starts) || rises_after_fall);
    if several || (falls > 0 && rises_after_fall) {
        return Some(Finding::new(
            format!(
                "several processes answer /metrics, each with its own registry: the counter goes \
                 down and up again across {} scrapes",
                totals.len()
            ),
            decreased.len().max(1) as u64,
            "each worker counts only the requests it served, and a scrape sees one worker: \
             prometheus_client needs multiprocess mode (PROMETHEUS_MULTIPROC_DIR and a \
             MultiProcessCollector on the registry /metrics serves) under gunicorn or uvicorn \
             --workers N; prom-client needs an AggregatorRegistry in the cluster primary; or run \
             one worker per container and scrape each",
        )
        .examples(examples)
        .example(format!(
            "fastapi_requests_total summed per scrape (without {scrape_path}): {}",
            join_values(&totals)
        ))
        .example(format!(
            "process_start_time_seconds per scrape: {}",
            starts
                .iter()
                .map(|s| s.map_or("-".to_owned(), |v| v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !decreased.is_empty() {
        let restarted = matches!((starts[0], starts[1]), (Some(a), Some(b)) if b > a);
        let (what, hint) = if restarted {
            (
                "the service restarted during the run: its counters started again from 0",
                "find why it restarted (a crash, an OOM kill, a deploy); counters are per process",
            )
        } else {
            (
                "fastapi_requests_total went down between two scrapes without a restart",
                "a counter never goes down: count with a Counter's inc(), never set() a gauge-like \
                 value, and serve one registry per process",
            )
        };
        return Some(Finding::new(what, decreased.len() as u64, hint).examples(examples));
    }
    None
}

/// Whether the process start times go A, B, A: a process answered, another, then the first
/// again (a restart only ever moves forward).
fn is_alternating(starts: &[Option<f64>]) -> bool {
    let seen: Vec<f64> = starts.iter().flatten().copied().collect();
    seen.windows(2).any(|w| w[1] < w[0])
        || seen.iter().enumerate().any(|(i, a)| {
            seen[i + 1..]
                .iter()
                .position(|b| b != a)
                .is_some_and(|j| seen[i + 1 + j..].contains(a))
        })
}

fn join_values(values: &[f64]) -> String {
    values
        .iter()
        // An empty sum is -0.0.
        .map(|v| (v + 0.0).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn start_time(exposition: &Exposition) -> Option<f64> {
    exposition
        .family("process_start_time_seconds")?
        .samples
        .first()
        .map(|s| s.value)
}

/// `fastapi_requests_total` summed over every series but those of `scrape_path`.
fn served_total(exposition: &Exposition, scrape_path: &str) -> f64 {
    series_values(exposition, &COUNTER_FAMILIES, "fastapi_requests_total")
        .iter()
        .filter(|((_, path, _), _)| !is_scrape_path(path, scrape_path))
        .map(|(_, value)| value)
        .sum()
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
    let lines = ctx.log_lines().await.unwrap_or_default();
    let dropped = input.buffer.dropped_lines();
    // Past the line cap, only the run's lines counted as they arrived are complete.
    let counted_on_arrival = if dropped > 0 {
        match input.buffer.run_request_lines(prefix) {
            Some(counted) => Some(counted),
            None => {
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
        }
    } else {
        None
    };
    let (tagged, observed) = match counted_on_arrival {
        Some(counted) => (true, counted),
        None => {
            let tagged = lines.iter().any(|l| l.str_field("trace_id").is_some());
            let mut observed: BTreeMap<Key, u64> = BTreeMap::new();
            for line in lines.iter().filter(|l| l.is_request_line()) {
                let ours = line
                    .str_field("trace_id")
                    .is_some_and(|t| t.starts_with(prefix));
                if tagged && !ours {
                    continue;
                }
                if let Some(key) = line.request_key() {
                    *observed.entry(key).or_default() += 1;
                }
            }
            (tagged, observed)
        }
    };
    if observed.is_empty() && !lines.iter().any(|l| l.is_request_line()) {
        return Outcome::skip(
            format!("not judged: no request line in {}", input.origin),
            "the logs-json-stdout and logs-fields checks say why",
        );
    }
    let tally = tally(run, observed);
    let outcome = Outcome::judged(
        judge(&tally, "request log line", !tagged, ctx.exclusive && tagged),
        format!(
            "every one of {} answered requests has its request log line",
            tally.total_expected()
        ),
    );
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
    let Some(spans) = ctx.spans().await else {
        return Outcome::skip(
            "no OTLP receiver in this run",
            "use `obsctl verify`, which receives the spans itself",
        );
    };
    let expected = answered(run);
    let Some(seen) = spans.with_run(RunSpans::of) else {
        return Outcome::skip(
            "obsctl's receiver did not follow the run's traces (its trace-id prefix is not a run id)",
            "use `obsctl verify`, which sends the run and receives its spans",
        );
    };
    let found = seen.with_server;
    if found >= expected {
        return Outcome::pass(format!(
            "{found} of {expected} answered requests have a SERVER span in their own trace"
        ));
    }
    if spans.span_count() == 0 && spans.dropped_spans() == 0 {
        return Outcome::skip(
            "not judged: no span arrived at all",
            "the traces-otlp check says why",
        );
    }
    let dropped = spans.dropped_spans();
    if dropped > 0 {
        return Outcome::error(
            format!(
                "{found} of {expected} answered requests have a SERVER span, but obsctl's own \
                 receiver dropped {dropped} spans past its cap: the loss may be obsctl's, not the service's"
            ),
            super::spans::DROPPED_HINT,
        );
    }
    if found == 0 && seen.traces > 0 {
        return Outcome::fail(
            format!(
                "{} of the run's traces have spans, but none of kind SERVER (kinds seen: {})",
                seen.traces,
                seen.kinds.into_iter().collect::<Vec<_>>().join(", ")
            ),
            "the request span must be of kind SERVER: start it with kind=SpanKind.SERVER (the \
             HTTP server instrumentation does); the trace context was continued correctly",
        );
    }
    if found == 0 {
        return Outcome::fail(
            format!("spans arrived, but none in the traces obsctl started ({expected} expected)"),
            "continue the caller's trace: extract the W3C traceparent header (FastAPIInstrumentor \
             and the Node HTTP instrumentation do; a hand-made span needs the propagator's extract())",
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

/// What the run's traces hold, as accounting-traces counts it.
#[derive(Debug, Default)]
struct RunSpans {
    /// Traces with at least one span.
    traces: u64,
    /// Traces with a SERVER span.
    with_server: u64,
    /// The kinds of the child spans of traces without a SERVER span.
    kinds: BTreeSet<String>,
}

impl RunSpans {
    fn of(run: &RunTraces<'_>) -> Self {
        let mut seen = Self {
            traces: run.trace_count(),
            with_server: run.with_server_count(),
            kinds: BTreeSet::new(),
        };
        if seen.with_server < seen.traces {
            // The kinds of the traces without one, among those still kept whole.
            let without = run
                .traces()
                .filter(|t| !t.spans.iter().any(|s| s.shape.kind == SpanKind::Server));
            for trace in without {
                for span in trace.spans.iter().filter(|s| s.parent_span_id.is_some()) {
                    seen.kinds
                        .insert(format!("{:?}", span.shape.kind).to_uppercase());
                }
            }
        }
        seen
    }
}

/// Requests of the run that got a response (the others cannot be accounted for exactly).
pub fn answered(run: &RunReport) -> u64 {
    run.requests
        .iter()
        .filter(|r| r.status.is_some())
        .map(|r| r.count)
        .sum()
}

/// The findings of a tally: requests the signal lost, and (when the target served only this run)
/// requests it recorded more than once.
pub(super) fn judge(tally: &Tally, what: &str, lower_bound: bool, exclusive: bool) -> Vec<Finding> {
    let describe = |rows: &[(Key, u64, u64)]| -> Vec<String> {
        rows.iter()
            .map(|((m, p, s), want, have)| format!("{m} {p} {s}: sent {want}, seen {have}"))
            .collect()
    };
    let total = tally.total_expected();
    let mut findings: Vec<Finding> = status_mixups(tally, what).into_iter().collect();
    let missing = tally.missing();
    if !missing.is_empty() {
        let lost: u64 = missing.iter().map(|(_, want, have)| want - have).sum();
        findings.push(
            Finding::new(
                format!("{lost} of {total} answered requests have no {what}"),
                lost,
                "every request must be recorded exactly once, whatever its route or status (404s, \
                 422s and 5xx included): record it in the outermost middleware, after the response",
            )
            .examples(describe(&missing)),
        );
    }
    if !lower_bound && exclusive {
        let extra = tally.extra();
        if !extra.is_empty() {
            let doubled: u64 = extra.iter().map(|(_, want, have)| have - want).sum();
            findings.push(
                Finding::new(
                    format!(
                        "{doubled} more {what}s than requests sent ({total}): something is recorded twice"
                    ),
                    doubled,
                    "record each request once, in one middleware",
                )
                .examples(describe(&extra)),
            );
        }
    }
    findings
}

/// Routes whose requests are all there, under other statuses than the answers had: the status
/// was read before the response was final.
fn status_mixups(tally: &Tally, what: &str) -> Option<Finding> {
    type Counts = BTreeMap<u16, u64>;
    // The signal's path names per method, whatever the status: a request recorded under
    // another status is still found under its route.
    let mut names: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (method, path, _) in tally.observed.keys() {
        names.entry(method).or_default().insert(path.clone());
    }
    let mut per_route: BTreeMap<(String, String), (Counts, Counts)> = BTreeMap::new();
    for ((method, path, status), count) in &tally.expected {
        let route = names
            .get(method.as_str())
            .and_then(|n| paths::resolve(path, n))
            .unwrap_or(path);
        let entry = per_route
            .entry((method.clone(), route.to_owned()))
            .or_default();
        *entry.0.entry(*status).or_default() += count;
    }
    for ((method, path, status), count) in &tally.observed {
        if let Some(entry) = per_route.get_mut(&(method.clone(), path.clone())) {
            *entry.1.entry(*status).or_default() += count;
        }
    }
    let show = |counts: &BTreeMap<u16, u64>| {
        counts
            .iter()
            .map(|(status, n)| format!("{status} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mixed: Vec<String> = per_route
        .iter()
        .filter(|((_, path), (sent, seen))| {
            !is_scrape_path(path, SCRAPE_PATH)
                && sent.values().sum::<u64>() == seen.values().sum::<u64>()
                && sent != seen
        })
        .map(|((method, path), (sent, seen))| {
            format!(
                "{method} {path}: answered {}, recorded {}",
                show(sent),
                show(seen)
            )
        })
        .collect();
    (!mixed.is_empty()).then(|| {
        Finding::new(
            format!(
                "{} routes have every {what}, under other statuses than the answers had",
                mixed.len()
            ),
            mixed.len() as u64,
            "record the status of the response as sent, after the handler and the error \
             handlers ran (a middleware that reads it before call_next, or before an exception \
             becomes a 500, records the wrong one)",
        )
        .examples(mixed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternating_processes_are_told_from_a_restart() {
        assert!(is_alternating(&[Some(1.0), Some(2.0), Some(1.0)]));
        assert!(is_alternating(&[Some(2.0), Some(1.0)]));
        assert!(!is_alternating(&[Some(1.0), Some(2.0), Some(2.0)]));
        assert!(!is_alternating(&[Some(1.0), None, Some(1.0)]));
    }

    #[test]
    fn the_scrape_path_is_known_under_every_framework_spelling() {
        for label in ["/metrics", "metrics", "metrics/", "/metrics/"] {
            assert!(is_scrape_path(label, "/metrics"), "{label}");
        }
        for label in ["/api/metrics", "metricsx", "", "/"] {
            assert!(!is_scrape_path(label, "/metrics"), "{label}");
        }
        assert!(is_scrape_path("prom/metrics", "/prom/metrics"));
        // A scrape path of `/` is only ever that label: an empty one is not it.
        assert!(!is_scrape_path("", "/"));
    }

    #[test]
    fn scrapes_counted_under_a_route_without_its_leading_slash_are_not_extras() {
        let key = |path: &str, status| ("GET".to_owned(), path.to_owned(), status);
        let tally = Tally {
            expected: BTreeMap::from([
                (key("metrics", 200), 8),
                (key("api/users/<int:id>", 200), 5),
            ]),
            observed: BTreeMap::from([
                (key("metrics", 200), 27),
                (key("api/users/<int:id>", 200), 6),
            ]),
        };
        assert_eq!(
            tally.extra(),
            vec![(key("api/users/<int:id>", 200), 5, 6)],
            "Django names /metrics `metrics`: Prometheus' scrapes are not the run's"
        );
    }
}
