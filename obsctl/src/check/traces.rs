//! Trace checks: spans reach an OTLP endpoint (obsctl's embedded receiver), with a service name
//! and SERVER spans for the requests, shaped as the HTTP conventions say.

use std::collections::BTreeSet;

use super::context::CheckContext;
use super::model::{Finding, MAX_EXAMPLES, Outcome};
use super::paths;
use super::spans::judge_spans;
use crate::sources::span::SpanShape;

/// `traces-otlp`: spans of the service arrive over OTLP/gRPC: at obsctl's receiver, or, without
/// one, in Tempo (which received them on its OTLP port; the same verdict as `traces-tempo`).
pub async fn exported(ctx: &CheckContext) -> Outcome {
    let (Some(receiver), Some(spans)) = (&ctx.otlp, ctx.spans().await) else {
        if ctx.tempo.is_some() {
            return super::stack::tempo(ctx).await;
        }
        return Outcome::skip(
            "no OTLP receiver in this run",
            "run `obsctl verify` (it points the service at its own OTLP receiver), or pass --tempo URL",
        );
    };
    let endpoint = receiver.endpoint();
    judge_spans(
        spans.shapes(),
        &ctx.service,
        &format!("the OTLP receiver at {endpoint}"),
    )
}

/// `traces-server-spans`: every SERVER span of the service is named `{METHOD} {route}` (never
/// the raw URL), carries the HTTP method and response status, is an error when the response was
/// a 5xx and not when it was a 4xx (the HTTP conventions leave client errors unset on SERVER
/// spans). Both the stable HTTP conventions (`http.request.method`,
/// `http.response.status_code`) and the older names (`http.method`, `http.status_code`) count.
pub async fn server_span_shape(ctx: &CheckContext) -> Outcome {
    let Some(spans) = ctx.spans().await else {
        return Outcome::skip(
            "no OTLP receiver in this run",
            "run `obsctl verify`, which receives the service's spans itself",
        );
    };
    let service = ctx.service.as_str();
    let servers: Vec<(&SpanShape, u64)> = spans
        .shapes()
        .iter()
        .filter(|(s, _)| s.is_server_of(service))
        .collect();
    let server_count: u64 = servers.iter().map(|(_, n)| n).sum();
    if servers.is_empty() {
        return Outcome::skip(
            format!("no SERVER span of \"{service}\" to look at"),
            "see the traces-otlp check",
        );
    }
    // Per kind of problem: the spans that have it, and the first distinct examples in order.
    let mut by_kind: Vec<(&'static str, &'static str, u64, BTreeSet<String>)> = Vec::new();
    for (shape, count) in &servers {
        if let Some((kind, hint, example)) = server_span_problem(shape) {
            let entry = match by_kind.iter().position(|(k, _, _, _)| *k == kind) {
                Some(i) => &mut by_kind[i],
                None => {
                    by_kind.push((kind, hint, 0, BTreeSet::new()));
                    let last = by_kind.len() - 1;
                    &mut by_kind[last]
                }
            };
            entry.2 += count;
            entry.3.insert(example);
            if entry.3.len() > MAX_EXAMPLES {
                entry.3.pop_last();
            }
        }
    }
    let findings = by_kind
        .into_iter()
        .map(|(kind, hint, count, distinct)| {
            Finding::new(
                format!("{kind} ({count} of {server_count} SERVER spans)"),
                count,
                hint,
            )
            .examples(distinct)
        })
        .collect();
    let names: BTreeSet<&str> = servers.iter().map(|(s, _)| &*s.name).collect();
    Outcome::judged(
        findings,
        format!(
            "{server_count} SERVER spans, {} distinct names, each with method and status",
            names.len()
        ),
    )
    .evidence(format!(
        "names: {}",
        names.into_iter().take(6).collect::<Vec<_>>().join(", ")
    ))
}

const NAME_HINT: &str = "name SERVER spans `{METHOD} {route}` with the route template (`{METHOD}` alone when no route matched), never the raw URL (FastAPIInstrumentor and the Node HTTP instrumentation with Express do)";
const ATTR_HINT: &str = "set http.request.method and http.response.status_code on the SERVER span (the HTTP server instrumentation does)";
const STATUS_HINT: &str = "set the SERVER span's status to Error on 5xx answers, and leave it unset on 4xx ones: those are the client's errors, and marking them inflates error rates computed from traces";

/// What is wrong with SERVER spans of one shape, if anything: its kind of problem, the fix, an
/// example.
fn server_span_problem(span: &SpanShape) -> Option<(&'static str, &'static str, String)> {
    let name = &*span.name;
    let Some(method) = span.http.method.as_deref() else {
        return Some((
            "spans without http.request.method",
            ATTR_HINT,
            format!("{name:?}"),
        ));
    };
    let Some(status) = span.http.status_code else {
        return Some((
            "spans without http.response.status_code",
            ATTR_HINT,
            format!("{name:?}"),
        ));
    };
    let target = name.strip_prefix(method).map(str::trim_start);
    match (target, span.http.route.as_deref()) {
        (None, _) => {
            return Some((
                "span names that do not start with the method",
                NAME_HINT,
                format!("{name:?} ({method})"),
            ));
        }
        (Some(target), _) if paths::looks_concrete(target) => {
            return Some((
                "span names with the raw URL (one name per id)",
                NAME_HINT,
                format!("{name:?}"),
            ));
        }
        (Some(target), Some(route)) if !target.is_empty() && target != route => {
            return Some((
                "span names other than `{METHOD} {http.route}`",
                NAME_HINT,
                format!("{name:?} with http.route {route:?}"),
            ));
        }
        _ => {}
    }
    if status >= 500 && !span.error {
        return Some((
            "5xx answers without status Error",
            STATUS_HINT,
            format!("{name:?} answered {status}"),
        ));
    }
    if (400..500).contains(&status) && span.error {
        return Some((
            "4xx answers marked Error",
            STATUS_HINT,
            format!("{name:?} answered {status}"),
        ));
    }
    None
}
