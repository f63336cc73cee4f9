//! `logs-trace-correlation`: a request log line leads to its trace. Its `trace_id` and `span_id`
//! must be lowercase hex ids of the request's SERVER span, as received over OTLP: a logger that
//! writes a child span's id, a fresh id, an id after the span ended (all zeros) or none at all
//! breaks the jump from a log line to its trace.

use std::collections::BTreeSet;

use serde_json::Value;

use super::context::CheckContext;
use super::model::{Finding, Outcome};
use super::spans::{DROPPED_HINT, dropped_notice};
use crate::sources::logs::LogLine;
use crate::sources::span::{SpanId, SpanKind};
use crate::sources::span_store::RunTraces;

const HINT: &str = "log the trace_id and span_id of the request's SERVER span (the span current \
                    in the outermost middleware) as lowercase hex: 32 and 16 digits";

/// `logs-trace-correlation`; see the module docs.
pub async fn logs_to_traces(ctx: &CheckContext) -> Outcome {
    let Some(lines) = ctx.log_lines().await else {
        return Outcome::skip(
            "needs the service's logs, a run report and the spans of the run",
            "use `obsctl verify`, which has all three",
        );
    };
    let requests: Vec<&LogLine> = lines.iter().filter(|l| l.is_request_line()).collect();
    if requests.is_empty() {
        return Outcome::skip(
            "no request log lines to correlate",
            "see the logs-fields check",
        );
    }
    let (Some(run), Some(spans)) = (&ctx.run, ctx.spans().await) else {
        // Without the run's spans, the ids' shape can still be judged.
        let findings = id_format_findings(&requests);
        if findings.is_empty() {
            return Outcome::skip(
                "needs a run report and the spans of the run to follow ids to spans",
                "use `obsctl verify`, which has both",
            );
        }
        return Outcome::judged(findings, "");
    };
    let prefix = run.trace_id_prefix.as_str();
    let with_trace_id = requests
        .iter()
        .filter(|l| l.field("trace_id").is_some_and(|v| !v.is_null()))
        .count();
    if with_trace_id == 0 {
        return Outcome::judged(
            vec![Finding::new(
                format!(
                    "none of {} request lines carries a trace_id: a log line cannot lead to its trace",
                    requests.len()
                ),
                requests.len() as u64,
                HINT,
            )],
            "",
        );
    }
    let mut findings = id_format_findings(&requests);
    let Some(Compared {
        ours,
        matched,
        wrong,
        uncompared,
    }) = spans.with_run(|run| compare(&requests, prefix, run))
    else {
        return Outcome::skip(
            "obsctl's receiver did not follow the run's traces (its trace-id prefix is not a run id)",
            "use `obsctl verify`, which sends the run and receives its spans",
        );
    };
    let wrong_count = wrong.count;
    let wrong = wrong.examples;
    if ours == 0 {
        findings.push(Finding::new(
            format!(
                "{with_trace_id} request lines carry a trace_id, none of them a trace obsctl started \
                 (prefix {prefix})"
            ),
            with_trace_id as u64,
            "continue the caller's W3C traceparent, and log the ids of that request's span",
        ));
    }
    if wrong_count > 0 {
        findings.push(
            Finding::new(
                format!(
                    "{wrong_count} of {} request lines name a span other than their request's SERVER span",
                    wrong_count + matched
                ),
                wrong_count,
                HINT,
            )
            .examples(wrong),
        );
    }
    let dropped = spans.dropped_spans();
    if findings.is_empty() && matched == 0 {
        if dropped > 0 {
            return Outcome::error(
                format!("no log line could be compared: {}", dropped_notice(dropped)),
                DROPPED_HINT,
            );
        }
        return Outcome::error(
            "no SERVER span of the run's traces arrived, so no log line could be compared",
            "see the accounting-traces and traces-otlp checks",
        );
    }
    let outcome = Outcome::judged(
        findings,
        format!(
            "{matched} request lines carry the trace_id and span_id of their request's SERVER span"
        ),
    );
    // Those lines' SERVER spans may be among the spans obsctl dropped: they are not judged.
    let outcome = if dropped > 0 && uncompared > 0 {
        outcome.evidence(format!(
            "{uncompared} request lines not compared: {}",
            dropped_notice(dropped)
        ))
    } else if uncompared > 0 {
        outcome.evidence(format!(
            "{uncompared} request lines not compared: their trace has no SERVER span among those \
             obsctl keeps (it keeps the newest traces whole; accounting-traces counts them all)"
        ))
    } else {
        outcome
    };
    match &ctx.logs {
        Some(input) => super::logs::noting_drops(outcome, input, lines.len()),
        None => outcome,
    }
}

/// The run's request lines compared with the SERVER spans of their traces.
#[derive(Debug, Default)]
struct Compared {
    /// Lines with a trace id of the run.
    ours: u64,
    /// Lines naming their request's SERVER span.
    matched: u64,
    /// Lines naming another span, or none.
    wrong: super::spans::Tallied,
    /// Lines whose trace has no SERVER span kept (accounting-traces reports those).
    uncompared: u64,
}

fn compare(requests: &[&LogLine], prefix: &str, run: &RunTraces<'_>) -> Compared {
    let mut compared = Compared::default();
    for line in requests {
        let Some(trace) = line.str_field("trace_id").filter(|t| t.starts_with(prefix)) else {
            continue;
        };
        compared.ours += 1;
        let ids: BTreeSet<SpanId> = run
            .trace(trace)
            .into_iter()
            .flat_map(|t| t.spans)
            .filter(|s| s.shape.kind == SpanKind::Server)
            .map(|s| s.span_id)
            .collect();
        if ids.is_empty() {
            compared.uncompared += 1;
            continue;
        }
        match line.str_field("span_id") {
            Some(span) if ids.iter().any(|id| id == span) => compared.matched += 1,
            Some(span) => compared.wrong.add(1, || {
                let ids: Vec<String> = ids.iter().map(SpanId::hex).collect();
                format!(
                    "line {}: trace {trace} span_id {span}, its SERVER span is {}",
                    line.number,
                    ids.join(" or ")
                )
            }),
            None => compared.wrong.add(1, || {
                format!("line {}: trace {trace} without a span_id", line.number)
            }),
        }
    }
    compared
}

/// Ids written in another shape than lowercase hex, or all zeros (no span was active).
fn id_format_findings(requests: &[&LogLine]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (key, digits) in [("trace_id", 32), ("span_id", 16)] {
        let mut malformed = Vec::new();
        let mut zeros = Vec::new();
        for line in requests {
            let Some(value) = line.field(key).filter(|v| !v.is_null()) else {
                continue;
            };
            match id_problem(&value, digits) {
                Some(IdProblem::Malformed) => {
                    malformed.push(format!("line {}: {key} {value}", line.number));
                }
                Some(IdProblem::Zero) => zeros.push(format!("line {}", line.number)),
                None => {}
            }
        }
        if !malformed.is_empty() {
            findings.push(
                Finding::new(
                    format!("{key} is not {digits} lowercase hex digits"),
                    malformed.len() as u64,
                    "format ids as lowercase hex (Python: format(ctx.trace_id, \"032x\"); an \
                     integer or upper-case id never matches the trace in Tempo)",
                )
                .examples(malformed),
            );
        }
        if !zeros.is_empty() {
            findings.push(
                Finding::new(
                    format!("{key} is all zeros: no span was active when the line was written"),
                    zeros.len() as u64,
                    "write the request line while the request's span is current (before it ends), \
                     or keep its context from the start of the request",
                )
                .examples(zeros),
            );
        }
    }
    findings
}

enum IdProblem {
    Malformed,
    Zero,
}

fn id_problem(value: &Value, digits: usize) -> Option<IdProblem> {
    let Some(id) = value.as_str() else {
        return Some(IdProblem::Malformed);
    };
    let hex = id.len() == digits
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        Some(IdProblem::Malformed)
    } else if id.bytes().all(|b| b == b'0') {
        Some(IdProblem::Zero)
    } else {
        None
    }
}
