//! `traces-structure`: the trace of each request is one tree. In every trace the run started,
//! exactly one span of the service is the local root (its parent, the caller's span, is not in
//! the trace) and it is of kind SERVER; every other span's parent arrived. A request span of
//! another kind, two SERVER spans for one request, or spans whose parent never arrived (Tempo
//! shows "root span not yet received") are findings.

use std::collections::BTreeSet;

use super::context::CheckContext;
use super::model::{Finding, Outcome};
use super::spans::{DROPPED_HINT, Tallied, dropped_notice};
use crate::sources::span::SpanKind;
use crate::sources::span_store::{RunTrace, RunTraces};

/// What the run's trees look like.
#[derive(Debug, Default)]
struct Trees {
    traces: u64,
    /// Traces of the run with a span, the ones no longer kept whole included.
    of_run: u64,
    spans: u64,
    roots_not_server: Tallied,
    several_roots: Tallied,
    /// Traces with spans whose parent never arrived; `orphan_spans` counts the spans.
    orphans: Tallied,
    orphan_spans: u64,
}

impl Trees {
    fn of(run: &RunTraces<'_>, service: &str) -> Self {
        let mut trees = Self {
            of_run: run.trace_count(),
            ..Self::default()
        };
        for trace in run.traces() {
            trees.add(&trace, service);
        }
        trees
    }

    /// Judges one trace: exactly one local root (a span whose parent is not in the trace), and
    /// it is a SERVER span of the service.
    fn add(&mut self, trace: &RunTrace<'_>, service: &str) {
        self.traces += 1;
        self.spans += trace.spans.len() as u64;
        let ids: BTreeSet<_> = trace.spans.iter().map(|s| s.span_id).collect();
        let local_roots: Vec<_> = trace
            .spans
            .iter()
            .filter(|s| s.parent_span_id.is_none_or(|p| !ids.contains(&p)))
            .collect();
        let server_roots = local_roots
            .iter()
            .filter(|s| s.shape.is_server_of(service))
            .count();
        let id = trace.trace_id;
        match server_roots {
            0 => self.roots_not_server.add(1, || {
                let roots: Vec<String> = local_roots
                    .iter()
                    .map(|s| format!("{:?} ({:?})", s.shape.name, s.shape.kind))
                    .collect();
                format!("trace {id}: roots {}", roots.join(", "))
            }),
            1 if local_roots.len() > 1 => {
                let extra = local_roots.len() - 1;
                self.orphan_spans += extra as u64;
                self.orphans.add(1, || {
                    let example = local_roots
                        .iter()
                        .find(|s| s.shape.kind != SpanKind::Server)
                        .map_or("", |s| &*s.shape.name);
                    format!(
                        "trace {id}: {extra} spans whose parent is not in the trace, e.g. {example:?}"
                    )
                });
            }
            1 => {}
            n => self
                .several_roots
                .add(1, || format!("trace {id}: {n} SERVER roots")),
        }
    }
}

/// `traces-structure`; see the module docs.
pub async fn traces_structure(ctx: &CheckContext) -> Outcome {
    let (Some(_), Some(spans)) = (&ctx.run, ctx.spans().await) else {
        return Outcome::skip(
            "needs the spans of a run, as obsctl's receiver gets them",
            "use `obsctl verify`, which sends the run and receives its spans",
        );
    };
    let Some(trees) = spans.with_run(|run| Trees::of(run, &ctx.service)) else {
        return Outcome::skip(
            "obsctl's receiver did not follow the run's traces (its trace-id prefix is not a run id)",
            "use `obsctl verify`, which sends the run and receives its spans",
        );
    };
    if trees.traces == 0 {
        return Outcome::skip(
            "no span of the run's traces arrived",
            "see the accounting-traces check",
        );
    }
    let total = trees.traces;
    let mut findings = Vec::new();
    if trees.roots_not_server.count > 0 {
        findings.push(
            Finding::new(
                format!(
                    "{} of {total} traces are not rooted at a SERVER span of \"{}\"",
                    trees.roots_not_server.count, ctx.service
                ),
                trees.roots_not_server.count,
                "start one span of kind SERVER per request, as the parent of the request's other \
                 spans (the HTTP server instrumentation does; a hand-made span needs kind=SERVER)",
            )
            .examples(trees.roots_not_server.examples),
        );
    }
    if trees.several_roots.count > 0 {
        findings.push(
            Finding::new(
                format!(
                    "{} of {total} traces have several SERVER roots: the request is traced twice",
                    trees.several_roots.count
                ),
                trees.several_roots.count,
                "instrument the HTTP server once (e.g. FastAPIInstrumentor.instrument_app and \
                 opentelemetry-instrument together start two SERVER spans)",
            )
            .examples(trees.several_roots.examples),
        );
    }
    if trees.orphans.count > 0 {
        findings.push(
            Finding::new(
                format!(
                    "{} spans in {} traces have a parent that never arrived: the \
                     tree is broken in Tempo",
                    trees.orphan_spans, trees.orphans.count
                ),
                trees.orphan_spans,
                "end every span and export it through the same provider; a span whose parent was \
                 dropped or sampled out shows as a disconnected root",
            )
            .examples(trees.orphans.examples),
        );
    }
    let dropped = spans.dropped_spans();
    if dropped > 0 && !findings.is_empty() {
        // A tree may look broken only because obsctl dropped some of its spans.
        let what: Vec<&str> = findings.iter().map(|f| f.what.as_str()).collect();
        return Outcome::error(
            format!("{}: {}", dropped_notice(dropped), what.join("; ")),
            DROPPED_HINT,
        );
    }
    let outcome = Outcome::judged(
        findings,
        format!(
            "{total} traces of the run, {} spans: each one tree under one SERVER span",
            trees.spans
        ),
    );
    if dropped > 0 {
        return outcome.evidence(dropped_notice(dropped));
    }
    if trees.of_run > total {
        return outcome.evidence(format!(
            "the newest {total} of the run's {} traces judged: obsctl keeps the spans of the \
             newest requests only (accounting-traces counts every one)",
            trees.of_run
        ));
    }
    outcome
}
