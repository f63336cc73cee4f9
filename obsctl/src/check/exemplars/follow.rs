//! Following exemplars' ids to spans: the run's traces that obsctl's receiver got, then Tempo
//! by id for a few that remain.

use std::collections::BTreeSet;

use super::{Found, HINT_IDS};
use crate::check::context::CheckContext;
use crate::check::model::Finding;
use crate::sources::span::SpanKind;
use crate::sources::span_store::Followed;
use crate::sources::tempo::TempoError;

/// Trace ids looked up in Tempo, at most.
const TEMPO_LOOKUPS: usize = 5;

/// What following the exemplars' ids to spans found.
#[derive(Default)]
pub(super) struct Proof {
    /// Exemplars whose request's SERVER span arrived (the span itself when `span_id` is given).
    pub(super) proven: u64,
    /// Exemplars whose trace never arrived (or arrived without a SERVER span).
    pub(super) missing: Vec<String>,
    /// Exemplars whose trace arrived but whose `span_id` is not its SERVER span.
    pub(super) wrong_span: Vec<String>,
    /// Exemplars no source could follow (not a trace of the run, no Tempo).
    pub(super) not_followed: u64,
    /// Sources that were asked.
    pub(super) via: Vec<&'static str>,
    /// A source that could not answer.
    pub(super) error: Option<String>,
}

impl Proof {
    /// Counts `exemplar`, whose trace arrived with the SERVER spans `server_ids`: proven when
    /// its `span_id` is one of them (or, without one, when there is any).
    fn judge_span<S: PartialEq<str>>(
        &mut self,
        exemplar: &Found,
        mut server_ids: impl Iterator<Item = S>,
    ) {
        let matches = match exemplar.span_id.as_deref() {
            Some(span_id) => server_ids.any(|id| id == *span_id),
            None => server_ids.next().is_some(),
        };
        if matches {
            self.proven += 1;
        } else {
            self.wrong_span.push(example(exemplar));
        }
    }
}

/// What following the ids found wrong: traces that never arrived, spans that are not the
/// request's SERVER span.
pub(super) fn proof_findings(proof: &Proof) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !proof.missing.is_empty() {
        findings.push(
            Finding::new(
                format!(
                    "{} exemplars name traces whose SERVER span never arrived: they lead nowhere",
                    proof.missing.len()
                ),
                proof.missing.len() as u64,
                "take the exemplar's ids from the request's own SERVER span, only when it is \
                 sampled (an unsampled or dropped span is never exported)",
            )
            .examples(proof.missing.iter().cloned()),
        );
    }
    if !proof.wrong_span.is_empty() {
        findings.push(
            Finding::new(
                format!(
                    "{} exemplars name a span other than their request's SERVER span",
                    proof.wrong_span.len()
                ),
                proof.wrong_span.len() as u64,
                HINT_IDS,
            )
            .examples(proof.wrong_span.iter().cloned()),
        );
    }
    findings
}

/// Follows each exemplar's ids to spans: the receiver's traces of the run first, then Tempo
/// for a few that remain.
pub(super) async fn follow(ctx: &CheckContext, found: &[&Found]) -> Proof {
    let mut proof = Proof::default();
    let mut left: Vec<&Found> = Vec::new();
    match ctx.spans().await {
        Some(spans) => {
            proof.via.push("obsctl's OTLP receiver");
            let service = ctx.service.as_str();
            let judged = spans.with_run(|run| {
                for &exemplar in found {
                    let trace_id = exemplar.trace_id.as_deref().unwrap_or_default();
                    match run.follow(trace_id) {
                        Followed::NotRun => left.push(exemplar),
                        Followed::NoSpan | Followed::NoServerSpan => {
                            proof.missing.push(example(exemplar));
                        }
                        Followed::Counted => proof.proven += 1,
                        Followed::Kept(trace) => {
                            let server =
                                trace.spans.iter().filter(|s| s.shape.is_server_of(service));
                            proof.judge_span(exemplar, server.map(|s| s.span_id));
                        }
                    }
                }
            });
            if judged.is_none() {
                left = found.to_vec();
            }
        }
        None => left = found.to_vec(),
    }
    match &ctx.tempo {
        Some(_) => tempo(ctx, &left, &mut proof).await,
        None => proof.not_followed += left.len() as u64,
    }
    proof
}

/// Looks up a few of `left`'s trace ids in Tempo, each until it is found or the deadline.
async fn tempo(ctx: &CheckContext, left: &[&Found], proof: &mut Proof) {
    let Some(tempo) = &ctx.tempo else {
        return;
    };
    proof.via.push("Tempo");
    let mut asked = BTreeSet::new();
    let window = Some(ctx.window());
    for &exemplar in left {
        let trace_id = exemplar.trace_id.as_deref().unwrap_or_default();
        if asked.len() >= TEMPO_LOOKUPS || !asked.insert(trace_id) {
            proof.not_followed += 1;
            continue;
        }
        let answer = ctx
            .poll(|| async {
                match tempo.trace(trace_id, window).await {
                    Err(TempoError::TraceNotFound { .. }) => None,
                    other => Some(other),
                }
            })
            .await;
        match answer {
            None => proof.missing.push(example(exemplar)),
            Some(Err(error)) => {
                proof.error = Some(error.to_string());
                proof.not_followed += 1;
            }
            Some(Ok(trace)) => {
                let server = trace.spans.iter().filter(|s| s.kind() == SpanKind::Server);
                proof.judge_span(exemplar, server.map(|s| s.span_id()));
            }
        }
    }
}

fn example(found: &Found) -> String {
    format!(
        "trace_id {} span_id {} on {}",
        found.trace_id.as_deref().unwrap_or("(none)"),
        found.span_id.as_deref().unwrap_or("(none)"),
        found.bucket
    )
}
