//! Accounting through the deployed stack, with no log file and no embedded receiver:
//!
//! - `accounting-loki`: Loki counts the run's request lines itself, with a metric query over
//!   the run's window filtered to its trace-id prefix (`sum by (method, endpoint, status_code)
//!   (count_over_time({service="..."} |= "<run id>" | json [<window>]))`), so millions of lines
//!   are counted without being downloaded; the counts are tallied against the run as
//!   `accounting-logs` does.
//! - `accounting-tempo`: every trace id the run numbered (`run_id` + request number) fetched
//!   by id, or a uniform sample of them past [`TEMPO_SAMPLE`], each expected with a SERVER span
//!   of the service; the coverage is stated in the evidence.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use rand::seq::IteratorRandom as _;

use super::accounting::{Key, answered, judge, tally};
use super::context::{CheckContext, run_window};
use super::model::{Finding, Outcome};
use crate::sources::span::SpanKind;
use crate::sources::tempo::TempoError;

/// Trace ids fetched from Tempo at most; past it, a uniform sample of this many.
pub const TEMPO_SAMPLE: usize = 1_000;

/// Trace fetches in flight at once.
const TEMPO_PARALLEL: usize = 16;

/// Slack after the run's window for lines and spans still being shipped and indexed.
const SHIPPING_SLACK: Duration = Duration::from_secs(30);

const NO_RUN: &str = "pass --run-report FILE from `obsctl load --report FILE`";

/// `accounting-loki`; see the module docs.
pub async fn loki(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let Some(loki) = &ctx.loki else {
        return Outcome::skip("no Loki given", "pass --loki URL");
    };
    let Some(window) = run_window(run) else {
        return Outcome::error(
            "the run report's window does not parse",
            "pass a report written by obsctl load",
        );
    };
    let range = window
        .end
        .duration_since(window.start)
        .unwrap_or_default()
        .as_secs()
        + 1
        + SHIPPING_SLACK.as_secs();
    let query = format!(
        "sum by (method, endpoint, status_code) (count_over_time({{service=\"{}\"}} |= \"{}\" | json | __error__=\"\" [{range}s]))",
        ctx.service, run.trace_id_prefix
    );
    let expected = answered(run);
    // Evaluated at the window's end plus the slack, or now if that is still to come: lines
    // shipped late are waited for, up to the check's deadline.
    let at = || (window.end + SHIPPING_SLACK).min(SystemTime::now());
    let total = |observed: &BTreeMap<Key, u64>| observed.values().sum::<u64>();
    let settled = ctx
        .poll(|| async {
            let answer = loki.query_vector(&query, at()).await.ok()?;
            let observed = keyed(&answer.samples);
            (total(&observed) >= expected).then_some(observed)
        })
        .await;
    let observed = match settled {
        Some(observed) => observed,
        // Fewer than expected by the deadline: the last count is the verdict.
        None => match loki.query_vector(&query, at()).await {
            Ok(answer) => keyed(&answer.samples),
            Err(error) => {
                return Outcome::error(
                    format!("Loki could not count the run's lines: {error}"),
                    "check the --loki URL and that this Loki answers metric queries",
                );
            }
        },
    };
    let counted = tally(run, observed);
    Outcome::judged(
        judge(&counted, "request log line in Loki", false, ctx.exclusive),
        format!(
            "Loki holds a request line for every one of {} answered requests",
            counted.total_expected()
        ),
    )
    .evidence(format!("counted by Loki: {query}"))
}

/// Samples of `sum by (method, endpoint, status_code)` as tally keys.
fn keyed(samples: &[(BTreeMap<String, String>, f64)]) -> BTreeMap<Key, u64> {
    let mut observed = BTreeMap::new();
    for (labels, value) in samples {
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let Ok(status) = label("status_code").parse::<u16>() else {
            continue;
        };
        *observed
            .entry((label("method"), label("endpoint"), status))
            .or_default() += value.round() as u64;
    }
    observed
}

/// What a trace fetch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// The trace, with a SERVER span of the service.
    Server,
    /// The trace, without one.
    NoServer,
    /// Tempo does not have it (404).
    Missing,
    /// The fetch failed.
    Failed,
}

/// `accounting-tempo`; see the module docs.
pub async fn tempo(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let Some(tempo) = &ctx.tempo else {
        return Outcome::skip("no Tempo given", "pass --tempo URL");
    };
    let window = run_window(run);
    let numbered = run.sequences().iter().map(|s| s.count).sum::<u64>();
    let answered = answered(run);
    let ids: Vec<String> = if numbered as usize <= TEMPO_SAMPLE {
        run.trace_ids().collect()
    } else {
        run.trace_ids()
            .choose_multiple(&mut rand::rng(), TEMPO_SAMPLE)
    };
    let service = ctx.service.as_str();
    let fetch = |id: String| async move {
        let found = ctx
            .poll(|| {
                let id = id.clone();
                async move {
                    match tempo.trace(&id, window).await {
                        Ok(trace) => Some(
                            if trace.spans.iter().any(|s| {
                                s.kind == SpanKind::Server && s.service_name() == Some(service)
                            }) {
                                Found::Server
                            } else {
                                Found::NoServer
                            },
                        ),
                        Err(TempoError::TraceNotFound { .. }) => None,
                        Err(_) => Some(Found::Failed),
                    }
                }
            })
            .await
            .unwrap_or(Found::Missing);
        (id, found)
    };
    let results: Vec<(String, Found)> = futures::stream::iter(ids)
        .map(fetch)
        .buffer_unordered(TEMPO_PARALLEL)
        .collect()
        .await;
    let count = |what: Found| results.iter().filter(|(_, f)| *f == what).count() as u64;
    let (server, no_server, missing, failed) = (
        count(Found::Server),
        count(Found::NoServer),
        count(Found::Missing),
        count(Found::Failed),
    );
    let fetched = results.len() as u64;
    let coverage = if fetched == numbered {
        format!("all {numbered} trace ids of the run fetched by id")
    } else {
        format!("a uniform sample of {fetched} of the run's {numbered} trace ids fetched by id")
    };
    if failed == fetched && fetched > 0 {
        return Outcome::error(
            format!("Tempo at {} answered no trace fetch", tempo.base_url()),
            "check the --tempo URL",
        );
    }
    // Requests numbered but never answered (connect errors, timeouts) may have no trace.
    let unanswered = numbered.saturating_sub(answered);
    let allowed = (unanswered as f64 * fetched as f64 / numbered.max(1) as f64).ceil() as u64;
    let examples = |what: Found| {
        results
            .iter()
            .filter(move |(_, f)| *f == what)
            .map(|(id, _)| format!("trace {id}"))
    };
    let mut findings = Vec::new();
    if missing > allowed {
        findings.push(
            Finding::new(
                format!("{missing} of {fetched} traces of the run are not in Tempo"),
                missing,
                "spans are lost between the service and Tempo: check the exporter's errors, \
                 otel_spans_dropped_total, the collector's queue, and that the caller's \
                 traceparent is continued (a new trace id is not the run's)",
            )
            .examples(examples(Found::Missing)),
        );
    }
    if no_server > 0 {
        findings.push(
            Finding::new(
                format!("{no_server} traces of the run have no SERVER span of \"{service}\""),
                no_server,
                "start the request span with kind SERVER and service.name set on the resource",
            )
            .examples(examples(Found::NoServer)),
        );
    }
    Outcome::judged(
        findings,
        format!("{server} of {fetched} traces found in Tempo, each with its SERVER span"),
    )
    .evidence(coverage)
}
