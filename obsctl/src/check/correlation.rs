//! `logs-trace-correlation`: a request log line leads to its trace. Its `trace_id` and `span_id`
//! must be lowercase hex ids of the request's SERVER span, as received over OTLP: a logger that
//! writes a child span's id, a fresh id, an id after the span ended (all zeros) or none at all
//! breaks the jump from a log line to its trace.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::context::CheckContext;
use super::model::{Finding, Outcome};
use crate::sources::logs::LogLine;
use crate::sources::span::SpanKind;

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
    let mut servers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for span in spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.trace_id.starts_with(prefix))
    {
        servers
            .entry(span.trace_id.as_str())
            .or_default()
            .insert(span.span_id.as_str());
    }
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
    let mut matched = 0u64;
    let mut wrong = Vec::new();
    let mut ours = 0u64;
    for line in &requests {
        let Some(trace) = line.str_field("trace_id").filter(|t| t.starts_with(prefix)) else {
            continue;
        };
        ours += 1;
        let Some(ids) = servers.get(trace) else {
            // No SERVER span received for this trace: accounting-traces reports that.
            continue;
        };
        match line.str_field("span_id") {
            Some(span) if ids.contains(span) => matched += 1,
            Some(span) => wrong.push(format!(
                "line {}: trace {trace} span_id {span}, its SERVER span is {}",
                line.number,
                ids.iter().copied().collect::<Vec<_>>().join(" or ")
            )),
            None => wrong.push(format!(
                "line {}: trace {trace} without a span_id",
                line.number
            )),
        }
    }
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
    if !wrong.is_empty() {
        findings.push(
            Finding::new(
                format!(
                    "{} of {} request lines name a span other than their request's SERVER span",
                    wrong.len(),
                    wrong.len() as u64 + matched
                ),
                wrong.len() as u64,
                HINT,
            )
            .examples(wrong),
        );
    }
    if findings.is_empty() && matched == 0 {
        return Outcome::error(
            "no SERVER span of the run's traces arrived, so no log line could be compared",
            "see the accounting-traces and traces-otlp checks",
        );
    }
    Outcome::judged(
        findings,
        format!(
            "{matched} request lines carry the trace_id and span_id of their request's SERVER span"
        ),
    )
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
            match id_problem(value, digits) {
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
