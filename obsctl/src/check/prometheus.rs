//! Prometheus checks: the server scrapes the target successfully and its data is queryable.

use super::context::CheckContext;
use super::model::Outcome;
use crate::sources::prometheus::{Prometheus, Target, TargetHealth};

const NO_PROMETHEUS: &str = "pass --prometheus URL (e.g. http://localhost:9090); `obsctl verify` starts one when `prometheus` is on the PATH";

/// `prometheus-scrape`: a target scraping the service is up, and the request counter can be
/// queried from Prometheus.
pub async fn scrape(ctx: &CheckContext) -> Outcome {
    let Some(prometheus) = &ctx.prometheus else {
        return Outcome::skip("no Prometheus given", NO_PROMETHEUS);
    };
    if let Err(error) = prometheus.ready().await {
        return Outcome::error(
            format!(
                "Prometheus at {} is not ready: {error}",
                prometheus.base_url()
            ),
            "check the --prometheus URL and that the server finished starting",
        );
    }
    // A target is found once it exists and has been scraped at least once.
    let found = ctx
        .poll(|| async {
            let (targets, by) = ours(prometheus, ctx).await.ok()?;
            targets
                .iter()
                .any(|t| t.health != TargetHealth::Unknown)
                .then_some((targets, by))
        })
        .await;
    let (targets, by) = match found {
        Some(found) => found,
        None => match ours(prometheus, ctx).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        },
    };
    if targets.is_empty() {
        return Outcome::fail(
            format!("no Prometheus target scrapes {}", scrape_url(ctx)),
            "add a scrape job for the service (static_configs targets: ['host:port'], metrics_path: /metrics)",
        );
    }
    if let Some(down) = targets.iter().find(|t| t.health == TargetHealth::Down) {
        return Outcome::fail(
            format!(
                "Prometheus target {} is down: {}",
                down.scrape_url, down.last_error
            ),
            "fix what lastError says: a JSON-encoded or wrongly typed /metrics body, a wrong port, \
             or a host Prometheus cannot reach",
        )
        .evidence(labels(down));
    }
    let Some(up) = targets.iter().find(|t| t.health == TargetHealth::Up) else {
        return Outcome::fail(
            "the service's Prometheus target has not been scraped yet",
            "wait for one scrape interval, or raise --timeout",
        );
    };
    let selector = selector(up);
    let query = format!("fastapi_requests_total{selector}");
    let data = ctx
        .poll(|| async {
            let result = prometheus.query(&query, None).await.ok()?;
            (!result.data.is_empty()).then_some(result)
        })
        .await;
    match data {
        Some(result) => Outcome::pass(format!(
            "target {} is up; {query} returns {} series{}",
            up.scrape_url,
            result.data.samples().len(),
            match by {
                Matched::Address => "",
                Matched::Series => {
                    " (matched by its series, not its address: it scrapes another host name for \
                     the service, or another service with the same counter)"
                }
            }
        ))
        .evidence(labels(up)),
        None => Outcome::fail(
            format!("target {} is up but {query} returns no data", up.scrape_url),
            "the scrape succeeds but the counter is absent: see the requests-counter check",
        ),
    }
}

/// `process-metrics-prometheus`: CPU and memory can be queried, as the dashboard panels do.
pub async fn process(ctx: &CheckContext) -> Outcome {
    let Some(prometheus) = &ctx.prometheus else {
        return Outcome::skip("no Prometheus given", NO_PROMETHEUS);
    };
    let healthy = |(targets, _): (Vec<Target>, Matched)| {
        targets.into_iter().find(|t| t.health == TargetHealth::Up)
    };
    let found = ctx
        .poll(|| async { ours(prometheus, ctx).await.ok().and_then(healthy) })
        .await;
    let target = match found {
        Some(target) => Some(target),
        None => match ours(prometheus, ctx).await {
            Ok(found) => healthy(found),
            Err(outcome) => return outcome,
        },
    };
    let Some(target) = target else {
        return Outcome::skip(
            "not judged: no healthy target scrapes the service",
            "the prometheus-scrape check says why",
        );
    };
    let selector = selector(&target);
    let mut seen = Vec::new();
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
        let query = format!("{name}{selector}");
        let found = ctx
            .poll(|| async {
                prometheus
                    .query(&query, None)
                    .await
                    .ok()
                    .and_then(|r| r.data.first_value())
            })
            .await;
        match found {
            Some(value) => seen.push(format!("{query} = {value}")),
            None => {
                return Outcome::fail(
                    format!("{query} returns no data"),
                    "expose the process collector's metrics on /metrics",
                );
            }
        }
    }
    Outcome::pass("CPU and memory are queryable in Prometheus").evidence(seen.join("; "))
}

/// How a Prometheus target was recognised as the service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    /// Its scrape URL names the target's host and port.
    Address,
    /// Its series carry the request counter (said in the verdict: it may be another service).
    Series,
}

/// The active targets that scrape the service: by scrape URL when it names the target's
/// host and port, else (unless the context asks for the exact address) any target whose series
/// carry the request counter (a containerised Prometheus reaches the service under another host
/// name).
async fn ours(
    prometheus: &Prometheus,
    ctx: &CheckContext,
) -> Result<(Vec<Target>, Matched), Outcome> {
    let targets = prometheus.targets().await.map_err(|error| {
        Outcome::error(
            format!("cannot list Prometheus targets: {error}"),
            "check the --prometheus URL",
        )
    })?;
    let wanted = scrape_url(ctx);
    let by_url: Vec<Target> = targets
        .active
        .iter()
        .filter(|t| !wanted.is_empty() && same_endpoint(&t.scrape_url, &wanted))
        .cloned()
        .collect();
    if !by_url.is_empty() || ctx.exact_prometheus_target {
        return Ok((by_url, Matched::Address));
    }
    let jobs: Vec<String> = match prometheus
        .query("count by (job, instance) (fastapi_requests_total)", None)
        .await
    {
        Ok(result) => result
            .data
            .samples()
            .iter()
            .filter_map(|s| {
                Some(format!(
                    "{}|{}",
                    s.labels.get("job")?,
                    s.labels.get("instance")?
                ))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let by_series = targets
        .active
        .into_iter()
        .filter(|t| {
            let key = format!(
                "{}|{}",
                t.labels.get("job").map_or("", String::as_str),
                t.labels.get("instance").map_or("", String::as_str)
            );
            jobs.contains(&key)
        })
        .collect();
    Ok((by_series, Matched::Series))
}

fn scrape_url(ctx: &CheckContext) -> String {
    ctx.metrics
        .as_ref()
        .map(|m| m.url().to_owned())
        .unwrap_or_default()
}

/// Same scheme-less host:port/path, treating localhost and 127.0.0.1 alike.
fn same_endpoint(a: &str, b: &str) -> bool {
    let norm = |url: &str| {
        url.trim_start_matches("http://")
            .trim_start_matches("https://")
            .replace("localhost", "127.0.0.1")
            .trim_end_matches('/')
            .to_owned()
    };
    norm(a) == norm(b)
}

fn selector(target: &Target) -> String {
    let job = target.labels.get("job").map_or("", String::as_str);
    let instance = target.labels.get("instance").map_or("", String::as_str);
    format!(
        "{{job=\"{}\",instance=\"{}\"}}",
        escape(job),
        escape(instance)
    )
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn labels(target: &Target) -> String {
    let pairs: Vec<String> = target
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "target {} labels {{{}}}, last scrape {}",
        target.scrape_url,
        pairs.join(", "),
        target.last_scrape
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_compare_without_scheme_and_localhost_spelling() {
        assert!(same_endpoint(
            "http://127.0.0.1:8000/metrics",
            "http://localhost:8000/metrics"
        ));
        assert!(!same_endpoint(
            "http://127.0.0.1:8001/metrics",
            "http://localhost:8000/metrics"
        ));
    }
}
