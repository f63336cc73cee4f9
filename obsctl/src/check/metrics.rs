//! Metrics checks on the target's `/metrics`: the format, the two request metrics with their
//! exact labels and buckets, bounded `path` cardinality, and the process metrics.

use std::collections::BTreeSet;

use super::context::{CheckContext, ScrapeFailure};
use super::model::{Finding, Outcome};
use super::paths;
use crate::sources::exposition::{Exposition, HistogramSeries, Labels, MetricFamily, MetricType};
use crate::sources::target::MetricsScrape;

/// The request counter of the contract.
pub const REQUESTS_TOTAL: &str = "fastapi_requests_total";
/// The request duration histogram of the contract.
pub const DURATION: &str = "fastapi_request_duration_seconds";
/// The label names both request metrics must carry, exactly.
pub const LABELS: [&str; 3] = ["method", "path", "status_code"];
/// The histogram's bucket upper bounds, `+Inf` excluded.
pub const BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const NO_TARGET: &str = "pass --target URL (the service's base URL)";

/// `metrics-endpoint`: `/metrics` answers Prometheus text that parses.
pub async fn endpoint(ctx: &CheckContext) -> Outcome {
    let scrape = match usable_scrape_for(ctx, true).await {
        Ok(scrape) => scrape,
        Err(outcome) => return outcome,
    };
    let evidence = format!(
        "GET {} -> HTTP {}, content type {}",
        scrape.evidence.url,
        scrape.evidence.status.unwrap_or(0),
        scrape.content_type.as_deref().unwrap_or("(none)")
    );
    // Only the start is shown or searched: a large body is not copied for it.
    let body = String::from_utf8_lossy(head(scrape.body()));
    if looks_json_encoded(&body) {
        return Outcome::fail(
            "/metrics returned a JSON string, not Prometheus text",
            "return the exposition bytes themselves as the body with content type \
             text/plain; version=0.0.4 (FastAPI: Response(generate_latest(), \
             media_type=CONTENT_TYPE_LATEST), not `return generate_latest()`)",
        )
        .evidence(evidence)
        .evidence(format!("body starts: {}", excerpt(&body)));
    }
    let parsed = match &scrape.parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            return Outcome::fail(
                format!("/metrics is not valid Prometheus text: {error}"),
                "serve the registry with the Prometheus client's text encoder",
            )
            .evidence(evidence)
            .evidence(format!("body starts: {}", excerpt(&body)));
        }
    };
    if parsed.sample_count() == 0 {
        return Outcome::fail(
            "/metrics answered but exposes no samples",
            "register the collectors on the registry /metrics encodes",
        )
        .evidence(evidence);
    }
    if let Some(finding) = duplicate_series(parsed) {
        return Outcome::judged(vec![finding], "").evidence(evidence);
    }
    if !scrape.content_type_is_prometheus_text() {
        return Outcome::fail(
            format!(
                "/metrics has content type {}, which Prometheus does not accept as the text format",
                scrape.content_type.as_deref().unwrap_or("(none)")
            ),
            "answer with Content-Type: text/plain; version=0.0.4; charset=utf-8",
        )
        .evidence(evidence);
    }
    let openmetrics = match openmetrics_answer(ctx).await {
        Ok(line) => line,
        Err(outcome) => return outcome.evidence(evidence),
    };
    let outcome = Outcome::pass(format!(
        "{} samples in {} families",
        parsed.sample_count(),
        parsed.families().len()
    ))
    .evidence(evidence);
    match openmetrics {
        Some(line) => outcome.evidence(line),
        None => outcome,
    }
}

/// What `/metrics` answers to Prometheus's own request, which prefers OpenMetrics: one line of
/// evidence, or the failure when the answer would fail Prometheus's scrapes (an OpenMetrics
/// body that does not parse, a refusal).
async fn openmetrics_answer(ctx: &CheckContext) -> Result<Option<String>, Outcome> {
    let Some(answer) = ctx.openmetrics().await else {
        return Ok(None);
    };
    let answer = answer.as_ref().map_err(|failure| {
        Outcome::fail(
            format!(
                "/metrics answers the text format, but not Prometheus's request preferring \
                 OpenMetrics: {}",
                failure.message
            ),
            "answer every Accept header Prometheus sends (OpenMetrics first, then text)",
        )
    })?;
    let shown = format!(
        "{} (Accept: {})",
        answer.asked,
        crate::sources::target::OPENMETRICS_ACCEPT
    );
    match &answer.parsed {
        Some(Ok(summary)) => Ok(Some(format!(
            "{shown}: valid OpenMetrics, {} samples, {} with an exemplar",
            summary.samples, summary.exemplars
        ))),
        None => Ok(Some(format!("{shown}: the text format (no exemplars)"))),
        Some(Err(error)) => Err(Outcome::fail(
            format!(
                "/metrics answers Prometheus's request (OpenMetrics first) with invalid {}: {error}",
                answer.format.name()
            ),
            "Prometheus fails such scrapes: encode with the client library's OpenMetrics \
             encoder (it ends the body with `# EOF` and declares counters without `_total`), \
             or answer the text format",
        )
        .evidence(shown)),
    }
}

/// `requests-counter`: `fastapi_requests_total` is a counter with exactly the contract's labels.
pub async fn requests_counter(ctx: &CheckContext) -> Outcome {
    let family = match contract_family(ctx, REQUESTS_TOTAL).await {
        Ok(family) => family,
        Err(outcome) => return outcome,
    };
    if family.kind != MetricType::Counter {
        return Outcome::fail(
            format!(
                "{REQUESTS_TOTAL} is a {}, not a counter",
                family.kind.as_str()
            ),
            "declare it as a Counter (prometheus_client.Counter) so rate() and increase() apply",
        );
    }
    if let Some(outcome) = label_mismatch(&family) {
        return outcome;
    }
    let requests: f64 = family
        .samples
        .iter()
        .filter(|s| s.name == REQUESTS_TOTAL)
        .map(|s| s.value)
        .sum();
    let series = family
        .samples
        .iter()
        .filter(|s| s.name == REQUESTS_TOTAL)
        .count();
    if series == 0 {
        // A family declared before its first observation (prometheus_client prints it): nothing
        // to judge yet, unless requests were sent, which must have been counted.
        if ctx.run.is_some() {
            return Outcome::fail(
                format!("{REQUESTS_TOTAL} is declared but has no series after the run's requests"),
                "count requests in a middleware that runs for every request",
            );
        }
        return Outcome::skip(
            format!(
                "{REQUESTS_TOTAL} is declared, as a counter with the contract's labels, but has no series yet"
            ),
            "send traffic first (obsctl load), or use obsctl verify",
        );
    }
    Outcome::pass(format!(
        "counter with labels method, path, status_code: {series} series, {requests} requests"
    ))
}

/// `duration-histogram`: `fastapi_request_duration_seconds` is a histogram with the exact
/// labels and buckets.
pub async fn duration_histogram(ctx: &CheckContext) -> Outcome {
    let family = match contract_family(ctx, DURATION).await {
        Ok(family) => family,
        Err(outcome) => return outcome,
    };
    match family.kind {
        MetricType::Histogram => {}
        MetricType::Summary => {
            return Outcome::fail(
                format!("{DURATION} is a summary, not a histogram"),
                "use a Histogram with buckets 0.01 .. 10: summaries cannot be aggregated and \
                 histogram_quantile() (the P60 panel) needs _bucket series",
            );
        }
        other => {
            return Outcome::fail(
                format!("{DURATION} is {}, not a histogram", article(other)),
                "declare it as a Histogram with buckets 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10",
            );
        }
    }
    if let Some(outcome) = label_mismatch(&family) {
        return outcome;
    }
    let series = family.histogram_series();
    if series.is_empty() {
        if ctx.run.is_none() {
            return Outcome::skip(
                format!(
                    "{DURATION} is declared, as a histogram with the contract's labels, but has no series yet"
                ),
                "send traffic first (obsctl load), or use obsctl verify",
            );
        }
        return Outcome::fail(
            format!("{DURATION} has no series after the run's requests"),
            "observe every request's duration in the middleware",
        );
    }
    let findings = histogram_findings(&series);
    Outcome::judged(
        findings,
        format!(
            "histogram with the contract's labels and 10 buckets, cumulative and consistent: {} series",
            series.len()
        ),
    )
}

/// Everything wrong with the histogram's series, per kind: bounds, missing parts, and values
/// (cumulative buckets, `+Inf` equal to `_count`, a `_sum` the buckets allow).
fn histogram_findings(series: &[HistogramSeries]) -> Vec<Finding> {
    let mut kinds: Vec<(String, &'static str, Vec<String>)> = Vec::new();
    let mut add = |what: String, hint: &'static str, labels: &Labels| {
        let example = format!("series {}", show_labels(labels));
        match kinds.iter_mut().find(|(w, _, _)| *w == what) {
            Some((_, _, examples)) => examples.push(example),
            None => kinds.push((what, hint, vec![example])),
        }
    };
    for one in series {
        let bounds: Vec<f64> = one
            .buckets
            .iter()
            .map(|(le, _)| *le)
            .filter(|le| le.is_finite())
            .collect();
        if bounds != BUCKETS {
            add(
                format!(
                    "{DURATION} has buckets {} instead of {}",
                    list(&bounds),
                    list(&BUCKETS)
                ),
                "set buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)",
                &one.labels,
            );
        }
        let inf = one
            .buckets
            .iter()
            .find(|(le, _)| *le == f64::INFINITY)
            .map(|(_, v)| *v);
        let (Some(inf), Some(sum), Some(count)) = (inf, one.sum, one.count) else {
            add(
                format!("{DURATION} series lacks its +Inf bucket, _sum or _count"),
                "expose the histogram with the client library's encoder",
                &one.labels,
            );
            continue;
        };
        let cumulative = !one.buckets.windows(2).any(|w| w[1].1 < w[0].1);
        if !cumulative {
            add(
                format!("{DURATION} bucket counts are not cumulative (a larger `le` counts fewer)"),
                "each bucket counts every observation up to its bound, smaller ones included: observe() with the client library, never write per-bucket counts by hand",
                &one.labels,
            );
        }
        if inf != count {
            add(
                format!("{DURATION}: the +Inf bucket differs from _count"),
                "+Inf counts every observation, as _count does: observe() with the client library",
                &one.labels,
            );
        }
        // Limits read from counts already known wrong would blame a right _sum.
        if !sum.is_finite() || sum < 0.0 || (cumulative && !sum_fits_buckets(one, sum)) {
            add(
                format!("{DURATION}: _sum is not what the bucket counts allow"),
                "add each observed duration to _sum in the buckets' unit (seconds): a _sum in milliseconds, or negative, breaks the average-latency panel",
                &one.labels,
            );
        }
    }
    kinds
        .into_iter()
        .map(|(what, hint, examples)| {
            let count = examples.len() as u64;
            Finding::new(
                format!("{what} ({count} of {} series)", series.len()),
                count,
                hint,
            )
            .examples(examples)
        })
        .collect()
}

/// Whether `sum` lies between the smallest and the largest total the bucket counts allow: an
/// observation in bucket (a, b] is above a and at most b. Only judged when no observation is
/// beyond the last finite bound (those have no upper limit).
fn sum_fits_buckets(series: &HistogramSeries, sum: f64) -> bool {
    let mut low = 0.0;
    let mut high = 0.0;
    let mut previous = (0.0_f64, 0.0_f64);
    for &(le, cumulative) in &series.buckets {
        let in_bucket = (cumulative - previous.1).max(0.0);
        if in_bucket > 0.0 {
            // 0 x +Inf is NaN: only buckets that hold observations add to the limits.
            low += in_bucket * previous.0.max(0.0);
            high += in_bucket * le;
        }
        previous = (le, cumulative);
    }
    let tolerance = 1e-6 * (1.0 + sum.abs());
    sum + tolerance >= low && (high.is_infinite() || sum <= high + tolerance)
}

/// The first series exposed more than once (invalid exposition: Prometheus rejects the scrape).
fn duplicate_series(parsed: &Exposition) -> Option<Finding> {
    let found = parsed.duplicates()?;
    let duplicates = found.count;
    let first = format!(
        "line {}: {}{} (already on line {})",
        found.first.line,
        found.first.name,
        show_labels(&found.first.labels),
        found.original_line
    );
    Some(
        Finding::new(
            format!("/metrics exposes {duplicates} samples more than once (same name and labels)"),
            duplicates,
            "each series appears once per scrape: register each collector once, on one registry",
        )
        .example(first),
    )
}

fn show_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// `metrics-cardinality`: `path` holds route templates, so series stay bounded.
pub async fn cardinality(ctx: &CheckContext) -> Outcome {
    let family = match contract_family(ctx, REQUESTS_TOTAL).await {
        Ok(family) => family,
        Err(outcome) => return outcome,
    };
    let paths: BTreeSet<&str> = family
        .samples
        .iter()
        .filter_map(|s| s.labels.get("path"))
        .collect();
    let raw: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| paths::looks_concrete(p))
        .collect();
    let siblings = sibling_values(&paths);
    if raw.is_empty() && siblings.is_empty() {
        let templated = paths.iter().filter(|p| paths::has_placeholder(p)).count();
        return Outcome::pass(format!(
            "{} distinct path values, {templated} of them route templates, the others fixed paths",
            paths.len()
        ));
    }
    let examples: BTreeSet<&str> = raw.iter().chain(&siblings).copied().collect();
    Outcome::judged(
        vec![
            Finding::new(
                format!(
                    "the path label carries raw URLs ({} of {} values look like concrete paths)",
                    examples.len(),
                    paths.len()
                ),
                examples.len() as u64,
                "label with the matched route template (FastAPI/Starlette: request.scope[\"route\"].path; Express: req.baseUrl + req.route.path; Flask: request.url_rule.rule), not request.url.path: raw paths create one time series per id, without bound",
            )
            .examples(examples.into_iter().map(str::to_owned)),
        ],
        "",
    )
}

/// Values that differ from many others in one segment only (`/users/alice`, `/users/bob`, ...):
/// ids that are not numbers.
fn sibling_values<'a>(paths: &BTreeSet<&'a str>) -> Vec<&'a str> {
    const MANY: usize = 10;
    let mut groups: std::collections::HashMap<(usize, String), Vec<&'a str>> =
        std::collections::HashMap::new();
    for path in paths.iter().filter(|p| !paths::has_placeholder(p)) {
        let segments: Vec<&str> = path.split('/').collect();
        for i in 0..segments.len() {
            let mut key = segments.clone();
            key[i] = "\u{0}";
            groups.entry((i, key.join("/"))).or_default().push(path);
        }
    }
    let mut found: BTreeSet<&'a str> = BTreeSet::new();
    for members in groups.values().filter(|m| m.len() >= MANY) {
        found.extend(members.iter().copied());
    }
    found.into_iter().collect()
}

/// `process-metrics`: CPU and memory of the process are exposed.
pub async fn process(ctx: &CheckContext) -> Outcome {
    let scrape = match usable_scrape(ctx).await {
        Ok(scrape) => scrape,
        Err(outcome) => return outcome,
    };
    let Ok(parsed) = &scrape.parsed else {
        return Outcome::skip(
            "not judged: /metrics is not Prometheus text",
            "the metrics-endpoint check says why",
        );
    };
    let missing: Vec<&str> = ["process_cpu_seconds_total", "process_resident_memory_bytes"]
        .into_iter()
        .filter(|name| parsed.family(name).is_none_or(|f| f.samples.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Outcome::fail(
            format!("/metrics lacks {}", missing.join(" and ")),
            "register the process collector (prometheus_client does by default on Linux; the Rust \
             prometheus crate needs its `process` feature)",
        );
    }
    let value = |name: &str| {
        parsed
            .family(name)
            .and_then(|f| f.samples.first())
            .map_or(0.0, |s| s.value)
    };
    Outcome::pass(format!(
        "process_cpu_seconds_total = {:.2} s, process_resident_memory_bytes = {:.1} MiB",
        value("process_cpu_seconds_total"),
        value("process_resident_memory_bytes") / 1024.0 / 1024.0
    ))
}

/// The outcome of a check built on `/metrics` when it could not be read: not judged, since
/// `metrics-endpoint` reports the cause (one cause, one failure).
pub fn unreadable(failure: &ScrapeFailure) -> Outcome {
    Outcome::skip(
        format!(
            "not judged: /metrics could not be read ({})",
            failure.message
        ),
        "the metrics-endpoint check says why",
    )
}

/// The scrape, or the outcome that explains why there is none.
async fn usable_scrape(ctx: &CheckContext) -> Result<&MetricsScrape, Outcome> {
    usable_scrape_for(ctx, false).await
}

/// The scrape, or why there is none: `metrics-endpoint` (the `first` check) fails or errors for
/// it; the checks built on the scrape are then not judged, so one cause is one failure.
async fn usable_scrape_for(ctx: &CheckContext, first: bool) -> Result<&MetricsScrape, Outcome> {
    match ctx.scrape().await {
        None => Err(Outcome::skip("no target given", NO_TARGET)),
        Some(Err(failure)) if !first => Err(unreadable(failure)),
        Some(Err(failure)) if failure.answered => Err(Outcome::fail(
            format!("/metrics did not answer with metrics: {}", failure.message),
            "serve GET /metrics with status 200 (and, if it needs a token, give it to Prometheus)",
        )),
        Some(Err(failure)) => Err(Outcome::error(
            format!("could not scrape /metrics: {}", failure.message),
            "check that the service runs and --target points at it",
        )),
        Some(Ok(scrape)) => Ok(scrape),
    }
}

/// The named contract family, or why it cannot be judged. Accepts the OpenMetrics naming,
/// where a counter's family drops the `_total` suffix.
async fn contract_family<'a>(
    ctx: &'a CheckContext,
    name: &str,
) -> Result<MetricFamily<'a>, Outcome> {
    let scrape = usable_scrape(ctx).await?;
    let Ok(parsed) = &scrape.parsed else {
        // The service answered, with something that is not metrics: its failure, not a source's.
        return Err(Outcome::skip(
            "not judged: /metrics is not Prometheus text",
            "the metrics-endpoint check says why",
        ));
    };
    let alt = name.strip_suffix("_total");
    parsed
        .family(name)
        .or_else(|| alt.and_then(|alt| parsed.family(alt)))
        .ok_or_else(|| {
            let similar: Vec<&str> = parsed
                .families()
                .map(|f| f.name)
                .filter(|f| f.contains("request"))
                .take(5)
                .collect();
            let outcome = Outcome::fail(
                format!("/metrics has no {name}"),
                format!("define {name} exactly as the contract names it"),
            );
            if similar.is_empty() {
                outcome
            } else {
                outcome.evidence(format!("similar families: {}", similar.join(", ")))
            }
        })
}

/// The first series whose label names are not exactly the contract's: checked per series, so
/// one incomplete series is not hidden by complete ones.
fn label_mismatch(family: &MetricFamily<'_>) -> Option<Outcome> {
    let want: BTreeSet<String> = LABELS.iter().map(|l| (*l).to_owned()).collect();
    let series = family.series();
    let wrong = series
        .iter()
        .find(|labels| labels.keys().map(str::to_owned).collect::<BTreeSet<_>>() != want)?;
    let have: BTreeSet<String> = wrong.keys().map(str::to_owned).collect();
    let missing: Vec<&str> = want.difference(&have).map(String::as_str).collect();
    let extra: Vec<&str> = have.difference(&want).map(String::as_str).collect();
    let mut detail = format!(
        "a {} series has labels {{{}}}",
        family.name,
        have.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    if !missing.is_empty() {
        detail.push_str(&format!("; missing: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        detail.push_str(&format!("; unexpected: {}", extra.join(", ")));
    }
    let bad = series
        .iter()
        .filter(|labels| labels.keys().map(str::to_owned).collect::<BTreeSet<_>>() != want)
        .count();
    Some(
        Outcome::fail(
            detail,
            "use exactly the labels method, path, status_code on every series",
        )
        .evidence(format!(
            "{bad} of {} series differ, e.g. {wrong:?}",
            series.len()
        )),
    )
}

/// "a counter", "an untyped": the article for a metric type's name.
fn article(kind: MetricType) -> String {
    let name = kind.as_str();
    let vowel = name.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {name}", if vowel { "an" } else { "a" })
}

/// A body like `"# HELP ...\n..."`: the exposition text JSON-encoded by a web framework.
fn looks_json_encoded(body: &str) -> bool {
    let trimmed = body.trim_start();
    trimmed.starts_with('"')
        && (trimmed.contains("# HELP") || trimmed.contains("# TYPE") || trimmed.contains("\\n"))
}

/// The first 64 KiB of a body: all that excerpts and the JSON-string test look at.
fn head(body: &[u8]) -> &[u8] {
    body.get(..64 * 1024).unwrap_or(body)
}

fn excerpt(body: &str) -> String {
    body.chars()
        .take(80)
        .collect::<String>()
        .replace('\n', "\\n")
}

fn list(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_encoded_bodies_are_recognised() {
        assert!(looks_json_encoded(
            "\"# HELP fastapi_requests_total Total\\n# TYPE ...\""
        ));
        assert!(!looks_json_encoded("# HELP x y\n"));
    }
}
