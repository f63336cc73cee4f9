//! What trace checks share: judging a set of spans that arrived somewhere (obsctl's receiver, a
//! Tempo trace) for the service's SERVER spans, and saying when obsctl's receiver dropped some.

use std::collections::BTreeSet;

use super::model::Outcome;
use crate::sources::span::ShapeCounts;

/// Judges spans that arrived somewhere (counted by shape): the service's SERVER spans must be
/// among them.
pub fn judge_spans(spans: &ShapeCounts, service: &str, place: &str) -> Outcome {
    let total = spans.total();
    if total == 0 {
        return Outcome::fail(
            format!("no spans arrived at {place}"),
            "export with an OTLP/gRPC span exporter and a batch processor that honours \
             OTEL_EXPORTER_OTLP_ENDPOINT (gRPC, port 4317): an endpoint written in the code, as \
             in OTLPSpanExporter(endpoint=\"localhost:4317\"), ignores the environment",
        );
    }
    let unnamed = spans.count(|s| s.service.as_deref().is_none_or(str::is_empty));
    let ours = spans.count(|s| s.service.as_deref() == Some(service));
    if ours == 0 {
        let seen: BTreeSet<&str> = spans
            .iter()
            .filter_map(|(s, _)| s.service.as_deref())
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
                "{total} spans arrived at {place}, none with service.name \"{service}\" ({unnamed} without service.name)",
            ),
            hint,
        )
        .evidence(format!("service names seen: {}", seen.into_iter().collect::<Vec<_>>().join(", ")));
    }
    let servers = spans.count(|s| s.is_server_of(service));
    if servers == 0 {
        return Outcome::fail(
            format!("{ours} spans of \"{service}\" arrived at {place}, but no SERVER span"),
            "instrument the HTTP server (FastAPIInstrumentor, or a middleware starting a span of kind SERVER per request)",
        );
    }
    let names: BTreeSet<&str> = spans
        .iter()
        .filter(|(s, _)| s.is_server_of(service))
        .map(|(s, _)| &*s.name)
        .collect();
    Outcome::pass(format!(
        "{ours} spans of \"{service}\" at {place}, {servers} of kind SERVER"
    ))
    .evidence(format!(
        "server span names: {}",
        names.into_iter().take(6).collect::<Vec<_>>().join(", ")
    ))
}

/// What a verdict on the run's spans says when obsctl's own receiver dropped some past its
/// budget: the data judged is incomplete, and the loss is obsctl's, not the service's.
pub fn dropped_notice(dropped: u64) -> String {
    format!("judged on the spans kept; {dropped} dropped past obsctl's budget")
}

/// The hint that goes with [`dropped_notice`].
pub const DROPPED_HINT: &str = "judge a shorter or slower run, or give obsctl's receiver a larger budget \
     (obsctl verify --receiver-budget MIB), so that it keeps every span";

/// A kind of problem seen `count` times, with the first few examples (formatted only when kept).
#[derive(Debug, Default)]
pub struct Tallied {
    /// How many times it was seen.
    pub count: u64,
    /// The first [`super::model::MAX_EXAMPLES`] examples.
    pub examples: Vec<String>,
}

impl Tallied {
    /// Counts one more occurrence (`n` times), keeping its example while there is room.
    pub fn add(&mut self, n: u64, example: impl FnOnce() -> String) {
        self.count += n;
        if self.examples.len() < super::model::MAX_EXAMPLES {
            self.examples.push(example());
        }
    }
}
