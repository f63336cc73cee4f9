//! `exemplars`: the latency histogram leads to traces. Asked as Prometheus asks (OpenMetrics
//! first), `/metrics` must offer OpenMetrics, its `fastapi_request_duration_seconds` buckets must
//! carry exemplars with well-formed `trace_id` (and `span_id`) labels, those ids must be the
//! SERVER spans of real requests (obsctl's receiver, or Tempo by id), and a Prometheus, when
//! given, must return them from `/api/v1/query_exemplars`.

use std::collections::BTreeSet;

use super::context::CheckContext;
use super::metrics::DURATION;
use super::model::{Finding, Outcome};
use crate::sources::exposition::{
    EXEMPLAR_MAX_CHARS, Exposition, ExpositionError, Format, MetricFamily, parse_float,
};
use crate::sources::span::SpanKind;
use crate::sources::span_store::Followed;
use crate::sources::target::Negotiated;
use crate::sources::tempo::TempoError;

const HINT_OFFER: &str = "negotiate OpenMetrics on /metrics (Prometheus sends Accept: \
    application/openmetrics-text first) and attach the request span's ids as exemplars: \
    prometheus_client `choose_encoder(accept)` and `observe(d, exemplar={\"trace_id\": ...})`; \
    Go promhttp `EnableOpenMetrics` and `ObserveWithExemplar`";

const HINT_ADD: &str = "when observing a request's duration, attach its sampled SERVER span's \
    trace_id and span_id as the exemplar (prometheus_client `observe(d, exemplar={...})`, Go \
    `ObserveWithExemplar`)";

const HINT_IDS: &str = "take the exemplar's trace_id and span_id from the request's SERVER span \
    (the span current in the outermost middleware), only when it is sampled, as lowercase hex";

/// Trace ids looked up in Tempo, at most.
const TEMPO_LOOKUPS: usize = 5;

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

/// What following the exemplars' ids to spans found.
#[derive(Default)]
struct Proof {
    /// Exemplars whose request's SERVER span arrived (the span itself when `span_id` is given).
    proven: u64,
    /// Exemplars whose trace never arrived (or arrived without a SERVER span).
    missing: Vec<String>,
    /// Exemplars whose trace arrived but whose `span_id` is not its SERVER span.
    wrong_span: Vec<String>,
    /// Exemplars no source could follow (not a trace of the run, no Tempo).
    not_followed: u64,
    /// Sources that were asked.
    via: Vec<&'static str>,
    /// A source that could not answer.
    error: Option<String>,
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
        Some(Err(failure)) => {
            return Outcome::skip(
                format!(
                    "not judged: /metrics could not be read ({})",
                    failure.message
                ),
                "the metrics-endpoint check says why",
            );
        }
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

/// What following the ids found wrong: traces that never arrived, spans that are not the
/// request's SERVER span.
fn proof_findings(proof: &Proof) -> Vec<Finding> {
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

/// Follows each exemplar's ids to spans: the receiver's traces of the run first, then Tempo
/// for a few that remain.
async fn follow(ctx: &CheckContext, found: &[&Found]) -> Proof {
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
                            let mut server = server.map(|s| s.span_id);
                            let matches = match exemplar.span_id.as_deref() {
                                Some(span_id) => server.any(|id| id == span_id),
                                None => server.next().is_some(),
                            };
                            if matches {
                                proof.proven += 1;
                            } else {
                                proof.wrong_span.push(example(exemplar));
                            }
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
                let mut ids = server.map(|s| s.span_id());
                let matches = match exemplar.span_id.as_deref() {
                    Some(span_id) => ids.any(|id| id == span_id),
                    None => ids.next().is_some(),
                };
                if matches {
                    proof.proven += 1;
                } else {
                    proof.wrong_span.push(example(exemplar));
                }
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

/// Whether Prometheus returns the histogram's exemplars: one line of evidence, or the finding
/// when it stores none by the deadline. `None` without a Prometheus.
async fn stored_in_prometheus(
    ctx: &CheckContext,
    found: &[Found],
) -> Result<Option<String>, Finding> {
    let Some(prometheus) = &ctx.prometheus else {
        return Ok(None);
    };
    let shown: BTreeSet<&str> = found.iter().filter_map(|f| f.trace_id.as_deref()).collect();
    let run_prefix = ctx.run.as_ref().map(|r| r.trace_id_prefix.as_str());
    let known = |trace_id: &str| {
        shown.contains(trace_id) || run_prefix.is_some_and(|p| trace_id.starts_with(p))
    };
    let query = format!("{DURATION}_bucket");
    let start = ctx.window().start_secs() as f64;
    let ask = || async {
        let (series, _) = prometheus
            .query_exemplars(&query, start, now_secs())
            .await
            .map_err(|e| e.to_string())?;
        let stored = series.iter().flat_map(|s| &s.exemplars);
        Ok::<_, String>(stored.fold((0usize, 0usize), |(all, ours), e| {
            let trace_id = e.labels.get("trace_id").map_or("", String::as_str);
            (all + 1, ours + usize::from(known(trace_id)))
        }))
    };
    // Until one of ours is stored (scrape interval and ingestion), or the deadline; then the
    // last answer is the one judged.
    ctx.poll(|| async {
        let answer = ask().await;
        (answer.is_err() || matches!(answer, Ok((_, ours)) if ours > 0)).then_some(())
    })
    .await;
    let last = ask().await;
    match last {
        Ok((0, _)) => Err(Finding::new(
            format!(
                "Prometheus ({}) returns no exemplar of {query} from /api/v1/query_exemplars",
                prometheus.base_url()
            ),
            1,
            "start Prometheus with --enable-feature=exemplar-storage and let it scrape \
             OpenMetrics (its default; scrape_protocols must list OpenMetricsText1.0.0 first)",
        )),
        Ok((all, 0)) => Ok(Some(format!(
            "Prometheus returns {all} exemplars of {query}, none of them the ones /metrics \
             shows or the run's (another instance's?)"
        ))),
        Ok((all, ours)) => Ok(Some(format!(
            "Prometheus returns {all} exemplars of {query} from /api/v1/query_exemplars, {ours} \
             of them the ones /metrics shows or the run's"
        ))),
        Err(error) => Err(Finding::new(
            format!("Prometheus could not answer /api/v1/query_exemplars: {error}"),
            1,
            "check that Prometheus runs and --prometheus points at it",
        )),
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
