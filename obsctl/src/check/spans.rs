//! What trace checks share: judging a set of spans that arrived somewhere (obsctl's receiver, a
//! Tempo trace) for the service's SERVER spans.

use std::collections::BTreeSet;

use super::model::Outcome;
use crate::sources::span::{ReceivedSpan, SpanKind};

/// Judges spans that arrived somewhere: the service's SERVER spans must be among them.
pub fn judge_spans(spans: &[ReceivedSpan], service: &str, place: &str) -> Outcome {
    if spans.is_empty() {
        return Outcome::fail(
            format!("no spans arrived at {place}"),
            "export with an OTLP/gRPC span exporter and a batch processor that honours \
             OTEL_EXPORTER_OTLP_ENDPOINT (gRPC, port 4317): an endpoint written in the code, as \
             in OTLPSpanExporter(endpoint=\"localhost:4317\"), ignores the environment",
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
