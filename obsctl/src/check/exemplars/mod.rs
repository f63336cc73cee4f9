//! `exemplars`: the latency histogram leads to traces. Asked as Prometheus asks (OpenMetrics
//! first), `/metrics` must offer OpenMetrics, its `fastapi_request_duration_seconds` buckets must
//! carry exemplars with well-formed `trace_id` (and `span_id`) labels, those ids must be the
//! SERVER spans of real requests (obsctl's receiver, or Tempo by id), and a Prometheus, when
//! given, must return them from `/api/v1/query_exemplars`.

mod follow;
mod stored;

use super::context::CheckContext;
use super::metrics::DURATION;
use super::model::{Finding, Outcome};
use crate::sources::exposition::{
    EXEMPLAR_MAX_CHARS, Exposition, ExpositionError, Format, MetricFamily, parse_float,
};
use crate::sources::target::Negotiated;
use follow::{follow, proof_findings};
use stored::stored_in_prometheus;

const HINT_OFFER: &str = "negotiate OpenMetrics on /metrics (Prometheus sends Accept: \
    application/openmetrics-text first) and attach the request span's ids as exemplars: \
    prometheus_client `choose_encoder(accept)` and `observe(d, exemplar={\"trace_id\": ...})`; \
    Go promhttp `EnableOpenMetrics` and `ObserveWithExemplar`";

const HINT_ADD: &str = "when observing a request's duration, attach its sampled SERVER span's \
    trace_id and span_id as the exemplar (prometheus_client `observe(d, exemplar={...})`, Go \
    `ObserveWithExemplar`)";

const HINT_IDS: &str = "take the exemplar's trace_id and span_id from the request's SERVER span \
    (the span current in the outermost middleware), only when it is sampled, as lowercase hex";

/// What `/metrics` answered to Prometheus's own request, reduced to what the checks read: a
/// second parsed body is never held beside the shared text scrape.
#[derive(Debug)]
pub struct OpenMetricsAnswer {
    /// `GET <url> preferring OpenMetrics -> content type ...`, for evidence.
    pub asked: String,
    /// The format the service chose.
    pub format: Format,
    /// For an OpenMetrics answer: what it holds, or why it does not parse.
    pub parsed: Option<Result<Summary, ExpositionError>>,
}

/// What an OpenMetrics answer holds.
#[derive(Debug)]
pub struct Summary {
    /// Samples in all.
    pub samples: usize,
    /// Samples with an exemplar, in all families.
    pub exemplars: usize,
    /// The duration histogram's buckets and their exemplars, when it has the family.
    histogram: Option<(usize, Vec<Found>)>,
}

impl OpenMetricsAnswer {
    /// Reduces a negotiated scrape to its summary (the body is dropped with it).
    pub fn of(negotiated: Negotiated) -> Self {
        let asked = |url: &str, content_type: Option<&str>| {
            format!(
                "GET {url} preferring OpenMetrics -> content type {}",
                content_type.unwrap_or("(none)")
            )
        };
        match negotiated {
            Negotiated::Text {
                evidence,
                content_type,
            } => Self {
                asked: asked(&evidence.url, content_type.as_deref()),
                format: Format::Text,
                parsed: None,
            },
            Negotiated::OpenMetrics(scrape) => Self {
                asked: asked(&scrape.evidence.url, scrape.content_type.as_deref()),
                format: scrape.format,
                parsed: Some(scrape.parsed.as_ref().map(summary).map_err(Clone::clone)),
            },
        }
    }
}

fn summary(parsed: &Exposition) -> Summary {
    Summary {
        samples: parsed.sample_count(),
        exemplars: parsed.exemplar_count(),
        histogram: parsed.family(DURATION).map(|f| {
            let (found, buckets) = bucket_exemplars(&f);
            (buckets, found)
        }),
    }
}

/// One bucket's exemplar as read from the scrape.
#[derive(Debug)]
struct Found {
    /// `{method="GET", path="...", status_code="200"} le="0.05"`, for examples.
    bucket: String,
    le: f64,
    trace_id: Option<String>,
    span_id: Option<String>,
    value: f64,
    label_chars: usize,
    line: usize,
}

/// `exemplars`; see the module docs.
pub async fn exemplars(ctx: &CheckContext) -> Outcome {
    let answer = match ctx.openmetrics().await {
        None => {
            return Outcome::skip(
                "no target given",
                "pass --target URL (the service's base URL)",
            );
        }
        Some(Err(failure)) => return super::metrics::unreadable(failure),
        Some(Ok(answer)) => answer,
    };
    let asked = answer.asked.clone();
    let summary = match &answer.parsed {
        None => {
            let finding = Finding::new(
                "/metrics does not offer OpenMetrics, the only format with exemplars: asked as \
                 Prometheus asks, it answers the text format",
                1,
                HINT_OFFER,
            );
            return Outcome::judged(vec![finding], "").evidence(asked);
        }
        Some(Err(_)) => {
            return Outcome::skip(
                "not judged: the OpenMetrics answer does not parse",
                "the metrics-endpoint check says why",
            )
            .evidence(asked);
        }
        Some(Ok(summary)) => summary,
    };
    let Some((buckets, found)) = &summary.histogram else {
        return Outcome::skip(
            format!("not judged: /metrics has no {DURATION}"),
            "the duration-histogram check says why",
        )
        .evidence(asked);
    };
    let buckets = *buckets;
    if found.is_empty() {
        if buckets == 0 {
            return Outcome::skip(
                format!("{DURATION} has no series yet: nothing to carry exemplars"),
                "send traffic first (obsctl load), or use obsctl verify",
            )
            .evidence(asked);
        }
        let finding = Finding::new(
            format!("none of the {buckets} buckets of {DURATION} carries an exemplar"),
            buckets as u64,
            HINT_ADD,
        );
        return Outcome::judged(vec![finding], "").evidence(asked);
    }
    judge(ctx, found, buckets, summary.exemplars, asked).await
}

/// The exemplars of the histogram's buckets, and how many buckets it has.
fn bucket_exemplars(family: &MetricFamily<'_>) -> (Vec<Found>, usize) {
    let bucket_name = format!("{DURATION}_bucket");
    let mut found = Vec::new();
    let mut buckets = 0;
    for sample in family.samples.iter().filter(|s| s.name == bucket_name) {
        buckets += 1;
        let Some(exemplar) = sample.exemplar else {
            continue;
        };
        let le = sample.labels.get("le").unwrap_or_default();
        let series: Vec<String> = sample
            .labels
            .iter()
            .filter(|(k, _)| *k != "le")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        found.push(Found {
            bucket: format!("{{{}}} le={le:?}", series.join(", ")),
            le: parse_float(le).unwrap_or(f64::INFINITY),
            trace_id: exemplar.labels.get("trace_id").map(str::to_owned),
            span_id: exemplar.labels.get("span_id").map(str::to_owned),
            value: exemplar.value,
            label_chars: exemplar.label_chars(),
            line: sample.line,
        });
    }
    (found, buckets)
}

/// Everything found of the exemplars: their shape, the spans they lead to, Prometheus.
async fn judge(
    ctx: &CheckContext,
    found: &[Found],
    buckets: usize,
    all: usize,
    asked: String,
) -> Outcome {
    let mut findings = shape_findings(found);
    let followable: Vec<&Found> = found.iter().filter(|f| well_formed(f)).collect();
    let proof = follow(ctx, &followable).await;
    findings.extend(proof_findings(&proof));
    let stored = match stored_in_prometheus(ctx, found).await {
        Ok(stored) => stored,
        Err(finding) => {
            findings.push(finding);
            None
        }
    };
    let mut evidence = vec![
        asked,
        format!(
            "{} of {buckets} buckets of {DURATION} carry an exemplar ({all} exemplars in all)",
            found.len()
        ),
    ];
    evidence.extend(stored.iter().cloned());
    if proof.not_followed > 0 {
        evidence.push(format!(
            "{} exemplars not followed to spans (not traces of the run: scrapes, probes, other \
             clients; pass --tempo to follow them)",
            proof.not_followed
        ));
    }
    if !findings.is_empty() {
        return with_evidence(Outcome::judged(findings, ""), evidence);
    }
    if let Some(error) = proof.error.filter(|_| proof.proven == 0) {
        return with_evidence(
            Outcome::error(
                format!("could not follow the exemplars to spans: {error}"),
                "check that Tempo runs and --tempo points at it",
            ),
            evidence,
        );
    }
    if proof.proven == 0 {
        let (detail, hint) = if proof.via.is_empty() {
            (
                "buckets carry well-formed exemplars, but no span source was given to follow \
                 their trace ids to",
                "pass --tempo URL, or use obsctl verify (its OTLP receiver)",
            )
        } else {
            (
                "no exemplar names a trace of the run, so none could be followed to its span",
                "see the accounting-traces check (is traceparent continued?)",
            )
        };
        return with_evidence(Outcome::skip(detail, hint), evidence);
    }
    with_evidence(
        Outcome::pass(format!(
            "{} buckets carry exemplars; {} lead to their request's SERVER span ({})",
            found.len(),
            proof.proven,
            proof.via.join(", ")
        )),
        evidence,
    )
}

fn with_evidence(outcome: Outcome, evidence: Vec<String>) -> Outcome {
    evidence.into_iter().fold(outcome, Outcome::evidence)
}

/// An exemplar whose ids can be followed: a `trace_id` of 32 lowercase hex digits, not all
/// zero, and a `span_id` of 16 when it has one.
fn well_formed(found: &Found) -> bool {
    let hex = |id: &str, len: usize| {
        id.len() == len
            && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && id.bytes().any(|b| b != b'0')
    };
    found.trace_id.as_deref().is_some_and(|t| hex(t, 32))
        && found.span_id.as_deref().is_none_or(|s| hex(s, 16))
}

/// Exemplars that break the format's rules or cannot lead to a trace.
fn shape_findings(found: &[Found]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut add = |what: String, hint: &str, bad: Vec<&Found>| {
        if !bad.is_empty() {
            let examples = bad.iter().map(|f| format!("line {}: {}", f.line, f.bucket));
            findings.push(Finding::new(what, bad.len() as u64, hint).examples(examples));
        }
    };
    let no_trace: Vec<&Found> = found.iter().filter(|f| f.trace_id.is_none()).collect();
    add(
        format!("{} exemplars have no trace_id label", no_trace.len()),
        HINT_IDS,
        no_trace,
    );
    let malformed: Vec<&Found> = found
        .iter()
        .filter(|f| f.trace_id.is_some() && !well_formed(f))
        .collect();
    add(
        format!(
            "{} exemplars have a trace_id or span_id that is not lowercase hex of 32 or 16 \
             digits (or is all zeros)",
            malformed.len()
        ),
        HINT_IDS,
        malformed,
    );
    let long: Vec<&Found> = found
        .iter()
        .filter(|f| f.label_chars > EXEMPLAR_MAX_CHARS)
        .collect();
    add(
        format!(
            "{} exemplars have label sets over the {EXEMPLAR_MAX_CHARS} characters OpenMetrics \
             allows (Prometheus drops them)",
            long.len()
        ),
        "keep only trace_id and span_id in the exemplar",
        long,
    );
    let outside: Vec<&Found> = found
        .iter()
        .filter(|f| f.value.is_nan() || f.value > f.le)
        .collect();
    add(
        format!(
            "{} exemplars have a value above their bucket's bound",
            outside.len()
        ),
        "attach the exemplar to the observation itself, so it lands in the bucket its value \
         falls in",
        outside,
    );
    findings
}
