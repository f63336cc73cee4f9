//! Metrics checks on the target's `/metrics`: the format, the two request metrics with their
//! exact labels and buckets, bounded `path` cardinality, and the process metrics.

use std::collections::BTreeSet;

use super::context::CheckContext;
use super::model::Outcome;
use crate::sources::exposition::{MetricFamily, MetricType};
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
    let scrape = match usable_scrape(ctx).await {
        Ok(scrape) => scrape,
        Err(outcome) => return outcome,
    };
    let evidence = format!(
        "GET {} -> HTTP {}, content type {}",
        scrape.evidence.url,
        scrape.evidence.status.unwrap_or(0),
        scrape.content_type.as_deref().unwrap_or("(none)")
    );
    let body = String::from_utf8_lossy(&scrape.body);
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
    Outcome::pass(format!(
        "{} samples in {} families",
        parsed.sample_count(),
        parsed.families.len()
    ))
    .evidence(evidence)
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
    if let Some(outcome) = label_mismatch(family) {
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
        return Outcome::fail(
            format!("{REQUESTS_TOTAL} is declared but has no series"),
            "count requests in a middleware that runs for every request; send traffic first (obsctl load)",
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
    if let Some(outcome) = label_mismatch(family) {
        return outcome;
    }
    let series = family.histogram_series();
    if series.is_empty() {
        return Outcome::fail(
            format!("{DURATION} has no series"),
            "observe every request's duration in the middleware",
        );
    }
    for one in &series {
        let bounds: Vec<f64> = one
            .buckets
            .iter()
            .map(|(le, _)| *le)
            .filter(|le| le.is_finite())
            .collect();
        if bounds != BUCKETS {
            return Outcome::fail(
                format!(
                    "{DURATION} has buckets {} instead of {}",
                    list(&bounds),
                    list(&BUCKETS)
                ),
                "set buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)",
            )
            .evidence(format!("series {:?}", one.labels));
        }
        if !one.buckets.iter().any(|(le, _)| *le == f64::INFINITY)
            || one.sum.is_none()
            || one.count.is_none()
        {
            return Outcome::fail(
                format!("{DURATION} series lacks its +Inf bucket, _sum or _count"),
                "expose the histogram with the client library's encoder",
            )
            .evidence(format!("series {:?}", one.labels));
        }
    }
    Outcome::pass(format!(
        "histogram with the contract's labels and 10 buckets: {} series",
        series.len()
    ))
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
        .filter_map(|s| s.labels.get("path").map(String::as_str))
        .collect();
    let raw: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| looks_concrete(p))
        .collect();
    if raw.is_empty() {
        return Outcome::pass(format!(
            "{} distinct path values, all route templates or fixed paths",
            paths.len()
        ));
    }
    Outcome::fail(
        format!(
            "the path label carries raw URLs ({} of {} values look like concrete ids)",
            raw.len(),
            paths.len()
        ),
        "label with the matched route template (/api/users/{user_id}), not request.url.path: \
         raw paths create one time series per id, without bound",
    )
    .evidence(format!(
        "e.g. {}",
        raw.iter().take(5).copied().collect::<Vec<_>>().join(", ")
    ))
}

/// `process-metrics`: CPU and memory of the process are exposed.
pub async fn process(ctx: &CheckContext) -> Outcome {
    let scrape = match usable_scrape(ctx).await {
        Ok(scrape) => scrape,
        Err(outcome) => return outcome,
    };
    let Ok(parsed) = &scrape.parsed else {
        return Outcome::fail("/metrics does not parse", "see the metrics-endpoint check");
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

/// The scrape, or the outcome that explains why there is none.
async fn usable_scrape(ctx: &CheckContext) -> Result<&MetricsScrape, Outcome> {
    match ctx.scrape().await {
        None => Err(Outcome::skip("no target given", NO_TARGET)),
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
) -> Result<&'a MetricFamily, Outcome> {
    let scrape = usable_scrape(ctx).await?;
    let Ok(parsed) = &scrape.parsed else {
        // The service answered, with something that is not metrics: its failure, not a source's.
        return Err(Outcome::fail(
            "/metrics does not parse",
            "see the metrics-endpoint check",
        ));
    };
    let alt = name.strip_suffix("_total");
    parsed
        .family(name)
        .or_else(|| alt.and_then(|alt| parsed.family(alt)))
        .ok_or_else(|| {
            let similar: Vec<&str> = parsed
                .families
                .iter()
                .map(|f| f.name.as_str())
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
fn label_mismatch(family: &MetricFamily) -> Option<Outcome> {
    let want: BTreeSet<String> = LABELS.iter().map(|l| (*l).to_owned()).collect();
    let series = family.series();
    let wrong = series
        .iter()
        .find(|labels| labels.keys().cloned().collect::<BTreeSet<_>>() != want)?;
    let have: BTreeSet<String> = wrong.keys().cloned().collect();
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
        .filter(|labels| labels.keys().cloned().collect::<BTreeSet<_>>() != want)
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

/// A path with a segment that is a number or a UUID: a concrete URL, not a route template.
pub fn looks_concrete(path: &str) -> bool {
    path.split('/').any(|segment| {
        let numeric = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
        let uuid = segment.len() == 36 && segment.bytes().filter(|b| *b == b'-').count() == 4;
        numeric || uuid
    })
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
    fn concrete_paths_are_told_from_templates() {
        assert!(looks_concrete("/api/users/1"));
        assert!(looks_concrete(
            "/api/users/123e4567-e89b-12d3-a456-426614174000"
        ));
        assert!(!looks_concrete("/api/users/{user_id}"));
        assert!(!looks_concrete("/api/v2/users"));
        assert!(!looks_concrete("<unmatched>"));
    }

    #[test]
    fn json_encoded_bodies_are_recognised() {
        assert!(looks_json_encoded(
            "\"# HELP fastapi_requests_total Total\\n# TYPE ...\""
        ));
        assert!(!looks_json_encoded("# HELP x y\n"));
    }
}
