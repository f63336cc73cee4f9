//! `traces-structure`: the trace of each request is one tree. In every trace the run started,
//! exactly one span of the service is the local root (its parent, the caller's span, is not in
//! the trace) and it is of kind SERVER; every other span's parent arrived. A request span of
//! another kind, two SERVER spans for one request, or spans whose parent never arrived (Tempo
//! shows "root span not yet received") are findings.

use std::collections::{BTreeMap, BTreeSet};

use super::context::CheckContext;
use super::model::{Finding, Outcome};
use crate::sources::span::{ReceivedSpan, SpanKind};

/// `traces-structure`; see the module docs.
pub async fn traces_structure(ctx: &CheckContext) -> Outcome {
    let (Some(run), Some(spans)) = (&ctx.run, ctx.spans().await) else {
        return Outcome::skip(
            "needs the spans of a run, as obsctl's receiver gets them",
            "use `obsctl verify`, which sends the run and receives its spans",
        );
    };
    let prefix = run.trace_id_prefix.as_str();
    let mut traces: BTreeMap<&str, Vec<&ReceivedSpan>> = BTreeMap::new();
    for span in spans.iter().filter(|s| s.trace_id.starts_with(prefix)) {
        traces.entry(span.trace_id.as_str()).or_default().push(span);
    }
    if traces.is_empty() {
        return Outcome::skip(
            "no span of the run's traces arrived",
            "see the accounting-traces check",
        );
    }
    let mut roots_not_server = Vec::new();
    let mut several_roots = Vec::new();
    let mut orphans = Vec::new();
    let mut orphan_count = 0u64;
    for (trace, members) in &traces {
        let ids: BTreeSet<&str> = members.iter().map(|s| s.span_id.as_str()).collect();
        let local_roots: Vec<&&ReceivedSpan> = members
            .iter()
            .filter(|s| s.parent_span_id.as_deref().is_none_or(|p| !ids.contains(p)))
            .collect();
        let server_roots: Vec<_> = local_roots
            .iter()
            .filter(|s| {
                s.kind == SpanKind::Server && s.service_name.as_deref() == Some(&ctx.service)
            })
            .collect();
        match server_roots.len() {
            0 => roots_not_server.push(format!(
                "trace {trace}: roots {}",
                local_roots
                    .iter()
                    .map(|s| format!("{:?} ({:?})", s.name, s.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            1 => {
                let extra = local_roots.len() - 1;
                if extra > 0 {
                    orphan_count += extra as u64;
                    orphans.push(format!(
                        "trace {trace}: {extra} spans whose parent is not in the trace, e.g. {:?}",
                        local_roots
                            .iter()
                            .find(|s| s.kind != SpanKind::Server)
                            .map_or("", |s| s.name.as_str())
                    ));
                }
            }
            n => several_roots.push(format!("trace {trace}: {n} SERVER roots")),
        }
    }
    let total = traces.len() as u64;
    let mut findings = Vec::new();
    if !roots_not_server.is_empty() {
        findings.push(
            Finding::new(
                format!(
                    "{} of {total} traces are not rooted at a SERVER span of \"{}\"",
                    roots_not_server.len(),
                    ctx.service
                ),
                roots_not_server.len() as u64,
                "start one span of kind SERVER per request, as the parent of the request's other \
                 spans (the HTTP server instrumentation does; a hand-made span needs kind=SERVER)",
            )
            .examples(roots_not_server),
        );
    }
    if !several_roots.is_empty() {
        findings.push(
            Finding::new(
                format!(
                    "{} of {total} traces have several SERVER roots: the request is traced twice",
                    several_roots.len()
                ),
                several_roots.len() as u64,
                "instrument the HTTP server once (e.g. FastAPIInstrumentor.instrument_app and \
                 opentelemetry-instrument together start two SERVER spans)",
            )
            .examples(several_roots),
        );
    }
    if !orphans.is_empty() {
        findings.push(
            Finding::new(
                format!(
                    "{orphan_count} spans in {} traces have a parent that never arrived: the \
                     tree is broken in Tempo",
                    orphans.len()
                ),
                orphan_count,
                "end every span and export it through the same provider; a span whose parent was \
                 dropped or sampled out shows as a disconnected root",
            )
            .examples(orphans),
        );
    }
    let spans_in_run: usize = traces.values().map(Vec::len).sum();
    Outcome::judged(
        findings,
        format!(
            "{total} traces of the run, {spans_in_run} spans: each one tree under one SERVER span"
        ),
    )
}
