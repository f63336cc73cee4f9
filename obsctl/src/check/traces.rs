//! Trace checks: spans reach an OTLP endpoint (obsctl's embedded receiver), with a service name
//! and SERVER spans for the requests, shaped as the HTTP conventions say.

use std::collections::BTreeSet;

use super::context::CheckContext;
use super::model::Outcome;
use crate::sources::span::{ReceivedSpan, SpanKind};

/// `traces-otlp`: spans of the service arrive over OTLP/gRPC.
pub async fn exported(ctx: &CheckContext) -> Outcome {
    let Some(receiver) = &ctx.otlp else {
        if ctx.tempo.is_some() {
            // Traces found in Tempo were sent to its OTLP endpoint.
            return super::stack::tempo(ctx).await;
        }
        return Outcome::skip(
            "no OTLP receiver in this run",
            "run `obsctl verify` (it points the service at its own OTLP receiver), or pass --tempo URL",
        );
    };
    let service = ctx.service.as_str();
    let spans = ctx
        .poll(|| async {
            let spans = receiver.spans();
            spans
                .iter()
                .any(|s| is_service_server_span(s, service))
                .then_some(spans)
        })
        .await
        .unwrap_or_else(|| receiver.spans());
    let endpoint = receiver.endpoint();
    judge_spans(&spans, service, &format!("the OTLP receiver at {endpoint}"))
}

/// Judges spans that arrived somewhere: the service's SERVER spans must be among them.
pub fn judge_spans(spans: &[ReceivedSpan], service: &str, place: &str) -> Outcome {
    if spans.is_empty() {
        return Outcome::fail(
            format!("no spans arrived at {place}"),
            "export with an OTLP/gRPC span exporter and a batch processor; point \
             OTEL_EXPORTER_OTLP_ENDPOINT at the collector (gRPC, port 4317)",
        );
    }
    let unnamed = spans
        .iter()
        .filter(|s| s.service_name.as_deref().is_none_or(str::is_empty))
        .count();
    let ours: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service_name.as_deref() == Some(service))
        .collect();
    if ours.is_empty() {
        let seen: BTreeSet<&str> = spans
            .iter()
            .filter_map(|s| s.service_name.as_deref())
            .collect();
        let hint = if unnamed > 0 {
            "set the resource attribute service.name (OTEL_SERVICE_NAME)".to_owned()
        } else {
            format!(
                "set OTEL_SERVICE_NAME={service}, or pass --service with the name the service uses"
            )
        };
        return Outcome::fail(
            format!(
                "{} spans arrived at {place}, none with service.name \"{service}\" ({unnamed} without service.name)",
                spans.len()
            ),
            hint,
        )
        .evidence(format!("service names seen: {}", seen.into_iter().collect::<Vec<_>>().join(", ")));
    }
    let servers = ours.iter().filter(|s| s.kind == SpanKind::Server).count();
    if servers == 0 {
        return Outcome::fail(
            format!(
                "{} spans of \"{service}\" arrived at {place}, but no SERVER span",
                ours.len()
            ),
            "instrument the HTTP server (FastAPIInstrumentor, or a middleware starting a span of kind SERVER per request)",
        );
    }
    let names: BTreeSet<&str> = ours
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .map(|s| s.name.as_str())
        .collect();
    Outcome::pass(format!(
        "{} spans of \"{service}\" at {place}, {servers} of kind SERVER",
        ours.len()
    ))
    .evidence(format!(
        "server span names: {}",
        names.into_iter().take(6).collect::<Vec<_>>().join(", ")
    ))
}

fn is_service_server_span(span: &ReceivedSpan, service: &str) -> bool {
    span.kind == SpanKind::Server && span.service_name.as_deref() == Some(service)
}

/// `traces-server-spans`: every SERVER span of the service is named `{METHOD} {route}` (never
/// the raw URL), carries the HTTP method and response status, and is an error when the
/// response was a 5xx (4xx marked Error is noted, not failed: the contract does not forbid it). Both the stable HTTP conventions (`http.request.method`,
/// `http.response.status_code`) and the older names (`http.method`, `http.status_code`) count.
pub async fn server_span_shape(ctx: &CheckContext) -> Outcome {
    let Some(receiver) = &ctx.otlp else {
        return Outcome::skip(
            "no OTLP receiver in this run",
            "run `obsctl verify`, which receives the service's spans itself",
        );
    };
    let service = ctx.service.as_str();
    // With a run report, wait for its spans; otherwise for the first SERVER span.
    let wanted = ctx
        .run
        .as_ref()
        .map_or(1, |run| super::accounting::answered(run).max(1) as usize);
    let servers = || -> Vec<ReceivedSpan> {
        receiver
            .spans()
            .into_iter()
            .filter(|s| is_service_server_span(s, service))
            .collect()
    };
    let spans = ctx
        .poll(|| async {
            let spans = servers();
            (spans.len() >= wanted).then_some(spans)
        })
        .await
        .unwrap_or_else(servers);
    if spans.is_empty() {
        return Outcome::skip(
            format!("no SERVER span of \"{service}\" to look at"),
            "see the traces-otlp check",
        );
    }
    let problems: Vec<String> = spans.iter().filter_map(server_span_problem).collect();
    if problems.is_empty() {
        let names: BTreeSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        let outcome = Outcome::pass(format!(
            "{} SERVER spans, {} distinct names, each with method and status",
            spans.len(),
            names.len()
        ))
        .evidence(format!(
            "names: {}",
            names.into_iter().take(6).collect::<Vec<_>>().join(", ")
        ));
        let marked = spans
            .iter()
            .filter(|s| client_error_marked_error(s))
            .count();
        return if marked == 0 {
            outcome
        } else {
            outcome.evidence(format!(
                "note: {marked} spans of 4xx answers have status Error; the HTTP conventions \
                 leave client errors unset on SERVER spans"
            ))
        };
    }
    let distinct: BTreeSet<&String> = problems.iter().collect();
    Outcome::fail(
        format!(
            "{} of {} SERVER spans are misshapen",
            problems.len(),
            spans.len()
        ),
        "name SERVER spans `{METHOD} {route}` (the route template, `{METHOD}` alone when no \
         route matched), set http.request.method and http.response.status_code, and set the \
         status to Error on 5xx answers (FastAPIInstrumentor does all of this)",
    )
    .evidence(
        distinct
            .into_iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// What is wrong with one SERVER span, if anything.
fn server_span_problem(span: &ReceivedSpan) -> Option<String> {
    let name = &span.name;
    let method = ["http.request.method", "http.method"]
        .iter()
        .find_map(|k| span.attr(k)?.as_str());
    let Some(method) = method else {
        return Some(format!("{name:?}: no http.request.method"));
    };
    let Some(status) = response_status(span) else {
        return Some(format!("{name:?}: no http.response.status_code"));
    };
    let target = name.strip_prefix(method).map(str::trim_start);
    match (target, span.attr("http.route").and_then(|r| r.as_str())) {
        (None, _) => return Some(format!("{name:?} does not start with its method {method}")),
        (Some(target), _) if super::metrics::looks_concrete(target) => {
            return Some(format!(
                "{name:?} names the raw URL: one span name per id (use the route template)"
            ));
        }
        (Some(target), Some(route)) if !target.is_empty() && target != route => {
            return Some(format!("{name:?} is not `{method} {route}`"));
        }
        _ => {}
    }
    if status >= 500 && !span.status.is_error() {
        return Some(format!("{name:?} answered {status} without status Error"));
    }
    None
}

/// A 4xx SERVER span marked Error: the contract only asks for Error on 5xx, the HTTP
/// conventions say to leave client errors unset (they are the client's fault, and they would
/// inflate error-rate queries on traces).
fn client_error_marked_error(span: &ReceivedSpan) -> bool {
    response_status(span).is_some_and(|status| (400..500).contains(&status))
        && span.status.is_error()
}

/// The response status a SERVER span records, under the stable or the older attribute name.
fn response_status(span: &ReceivedSpan) -> Option<i64> {
    ["http.response.status_code", "http.status_code"]
        .iter()
        .find_map(|k| span.attr(k)?.as_i64())
}
