//! `logs-trace-correlation`: a request log line leads to its trace. Its `trace_id` and `span_id`
//! must be those of the request's SERVER span, as received over OTLP: a logger that writes a
//! child span's id, a fresh id or none at all breaks the jump from a log line to its trace.

use std::collections::{BTreeMap, BTreeSet};

use super::accounting::answered;
use super::context::CheckContext;
use super::logs::is_request_line;
use super::model::Outcome;
use crate::sources::logs::LogLine;
use crate::sources::span::SpanKind;

/// What the check compares: the run's request lines and the SERVER spans of the run's traces.
struct Observed {
    /// `(line number, trace_id, span_id)` of the request lines in the run's traces.
    lines: Vec<(u64, String, Option<String>)>,
    /// Request lines seen in total, and how many carried a `trace_id`.
    request_lines: usize,
    with_trace_id: usize,
    /// SERVER span ids per trace of the run.
    servers: BTreeMap<String, BTreeSet<String>>,
}

impl Observed {
    /// Whether every run line's trace has its SERVER span (so waiting longer changes nothing).
    fn settled(&self, expected: u64) -> bool {
        self.lines.len() as u64 >= expected
            && self
                .lines
                .iter()
                .all(|(_, trace, _)| self.servers.contains_key(trace))
    }
}

/// `logs-trace-correlation`; see the module docs.
pub async fn logs_to_traces(ctx: &CheckContext) -> Outcome {
    let (Some(run), Some(input), Some(receiver)) = (&ctx.run, &ctx.logs, &ctx.otlp) else {
        return Outcome::skip(
            "needs the service's logs, a run report and the spans of the run",
            "use `obsctl verify`, which has all three",
        );
    };
    let prefix = run.trace_id_prefix.as_str();
    let expected = answered(run);
    let observe = || {
        let lines: Vec<LogLine> = input.buffer.lines();
        let requests: Vec<&LogLine> = lines.iter().filter(|l| is_request_line(l)).collect();
        let mut servers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for span in receiver.spans() {
            if span.kind == SpanKind::Server && span.trace_id.starts_with(prefix) {
                servers
                    .entry(span.trace_id)
                    .or_default()
                    .insert(span.span_id);
            }
        }
        Observed {
            lines: requests
                .iter()
                .filter_map(|l| {
                    let trace = l.str_field("trace_id")?;
                    trace.starts_with(prefix).then(|| {
                        (
                            l.number,
                            trace.to_owned(),
                            l.str_field("span_id").map(str::to_owned),
                        )
                    })
                })
                .collect(),
            request_lines: requests.len(),
            with_trace_id: requests
                .iter()
                .filter(|l| l.field("trace_id").is_some())
                .count(),
            servers,
        }
    };
    let observed = ctx
        .poll(|| async {
            let observed = observe();
            observed.settled(expected).then_some(observed)
        })
        .await
        .unwrap_or_else(observe);
    judge(&observed, prefix)
}

fn judge(observed: &Observed, prefix: &str) -> Outcome {
    const HINT: &str = "log the trace_id and span_id of the request's SERVER span (the span \
                        current in the outermost middleware), as lowercase hex";
    if observed.request_lines == 0 {
        return Outcome::skip(
            "no request log lines to correlate",
            "see the logs-fields check",
        );
    }
    if observed.with_trace_id == 0 {
        return Outcome::fail(
            format!(
                "none of {} request lines carries a trace_id: a log line cannot lead to its trace",
                observed.request_lines
            ),
            HINT,
        );
    }
    if observed.lines.is_empty() {
        return Outcome::fail(
            format!(
                "{} request lines carry a trace_id, none of them a trace obsctl started \
                 (prefix {prefix})",
                observed.with_trace_id
            ),
            "continue the caller's W3C traceparent, and log the ids of that request's span",
        );
    }
    let mut matched = 0usize;
    let mut wrong = Vec::new();
    for (number, trace, span) in &observed.lines {
        let Some(servers) = observed.servers.get(trace) else {
            // No SERVER span received for this trace: accounting-traces reports that.
            continue;
        };
        match span {
            Some(span) if servers.contains(span) => matched += 1,
            Some(span) => wrong.push(format!(
                "line {number}: trace {trace} span_id {span}, its SERVER span is {}",
                servers.iter().cloned().collect::<Vec<_>>().join(" or ")
            )),
            None => wrong.push(format!("line {number}: trace {trace} without a span_id")),
        }
    }
    if !wrong.is_empty() {
        return Outcome::fail(
            format!(
                "{} of {} request lines name a span other than their request's SERVER span",
                wrong.len(),
                wrong.len() + matched
            ),
            HINT,
        )
        .evidence(wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; "));
    }
    if matched == 0 {
        return Outcome::error(
            "no SERVER span of the run's traces arrived, so no log line could be compared",
            "see the accounting-traces and traces-otlp checks",
        );
    }
    Outcome::pass(format!(
        "{matched} request lines carry the trace_id and span_id of their request's SERVER span"
    ))
}
