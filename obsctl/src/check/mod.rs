//! `obsctl check`: the spec's Part 6 checklist (and the accounting of a run) as checks with
//! stable ids that run against live sources and report pass / fail / skip / error with evidence.

pub mod accounting;
pub mod context;
pub mod correlation;
pub mod dashboard;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod prometheus;
pub mod render;
pub mod report;
pub mod stack;
pub mod traces;
pub mod units;

use std::time::Instant;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use context::CheckContext;
use model::{CheckResult, CheckSpec, Outcome, Signal};
use report::{CheckReport, SCHEMA_VERSION, Summary};

/// Every check, in the order of the spec's Part 6 checklist, then the accounting.
pub const CATALOG: &[CheckSpec] = &[
    spec(
        "metrics-endpoint",
        "/metrics endpoint returns Prometheus metrics",
        Signal::Metrics,
    ),
    spec(
        "requests-counter",
        "Metrics include fastapi_requests_total counter",
        Signal::Metrics,
    ),
    spec(
        "duration-histogram",
        "Metrics include fastapi_request_duration_seconds histogram",
        Signal::Metrics,
    ),
    spec(
        "duration-units",
        "The histogram and the log lines agree on request durations (seconds vs milliseconds)",
        Signal::Metrics,
    ),
    spec(
        "metrics-cardinality",
        "The path label is a route template (bounded series)",
        Signal::Metrics,
    ),
    spec(
        "logs-json-stdout",
        "JSON logs appear in STDOUT with all required fields",
        Signal::Logs,
    ),
    spec(
        "logs-fields",
        "Logs include: timestamp, level, service, endpoint, method, status_code, duration_ms",
        Signal::Logs,
    ),
    spec(
        "traces-otlp",
        "Traces are sent to the OTLP endpoint (Tempo at :4317)",
        Signal::Traces,
    ),
    spec(
        "traces-server-spans",
        "SERVER spans are named {METHOD} {route}, with method, status and Error on 5xx",
        Signal::Traces,
    ),
    spec(
        "traces-tempo",
        "Traces appear in Grafana Tempo",
        Signal::Traces,
    ),
    spec(
        "logs-loki",
        "Logs appear in Grafana Loki with the service=\"fastapi-backend\" label",
        Signal::Logs,
    ),
    spec(
        "prometheus-scrape",
        "Prometheus scrapes metrics successfully",
        Signal::Metrics,
    ),
    spec(
        "process-metrics",
        "CPU and memory metrics are available",
        Signal::Metrics,
    ),
    spec(
        "process-metrics-prometheus",
        "CPU and memory metrics are queryable in Prometheus",
        Signal::Metrics,
    ),
    spec(
        "accounting-metrics",
        "Every request sent is counted in fastapi_requests_total",
        Signal::Metrics,
    ),
    spec(
        "accounting-logs",
        "Every request sent has its request log line",
        Signal::Logs,
    ),
    spec(
        "accounting-traces",
        "Every request sent has its SERVER span, in the caller's trace",
        Signal::Traces,
    ),
    spec(
        "logs-trace-correlation",
        "Request log lines carry their request's trace_id and span_id",
        Signal::Logs,
    ),
    spec(
        "grafana",
        "Grafana is up with the Prometheus, Loki and Tempo datasources and the 8-panel dashboard",
        Signal::Dashboard,
    ),
    spec(
        "dashboard-panels",
        "Every dashboard panel's query returns data (Part 7)",
        Signal::Dashboard,
    ),
];

const fn spec(id: &'static str, title: &'static str, signal: Signal) -> CheckSpec {
    CheckSpec { id, title, signal }
}

/// Runs one check by id.
async fn run_one(id: &str, ctx: &CheckContext) -> Outcome {
    match id {
        "metrics-endpoint" => metrics::endpoint(ctx).await,
        "requests-counter" => metrics::requests_counter(ctx).await,
        "duration-histogram" => metrics::duration_histogram(ctx).await,
        "metrics-cardinality" => metrics::cardinality(ctx).await,
        "duration-units" => units::durations_agree(ctx).await,
        "logs-json-stdout" => logs::json_lines(ctx).await,
        "logs-fields" => logs::request_fields(ctx).await,
        "traces-otlp" => traces::exported(ctx).await,
        "traces-server-spans" => traces::server_span_shape(ctx).await,
        "traces-tempo" => stack::tempo(ctx).await,
        "logs-loki" => stack::loki(ctx).await,
        "prometheus-scrape" => prometheus::scrape(ctx).await,
        "process-metrics" => metrics::process(ctx).await,
        "process-metrics-prometheus" => prometheus::process(ctx).await,
        "accounting-metrics" => accounting::metrics(ctx).await,
        "accounting-logs" => accounting::logs(ctx).await,
        "accounting-traces" => accounting::traces(ctx).await,
        "logs-trace-correlation" => correlation::logs_to_traces(ctx).await,
        "grafana" => dashboard::grafana(ctx).await,
        "dashboard-panels" => dashboard::dashboard_panels(ctx).await,
        other => Outcome::error(format!("no check named {other}"), "this is a bug in obsctl"),
    }
}

/// Runs every check of the catalogue concurrently (each waits for ingestion up to the context's
/// deadline) and collects the report.
pub async fn run(ctx: &CheckContext, strict: bool) -> CheckReport {
    let started_at = now();
    let results = futures::future::join_all(CATALOG.iter().map(|spec| async move {
        let started = Instant::now();
        let outcome = run_one(spec.id, ctx).await;
        CheckResult::new(spec, outcome, started.elapsed().as_millis() as u64)
    }))
    .await;
    CheckReport {
        schema_version: SCHEMA_VERSION,
        obsctl_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: ctx.target.clone(),
        service: ctx.service.clone(),
        strict,
        started_at,
        finished_at: now(),
        summary: Summary::of(&results),
        checks: results,
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_unique_kebab_case_and_all_runnable() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in CATALOG {
            assert!(seen.insert(spec.id), "duplicate id {}", spec.id);
            assert!(
                spec.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                spec.id
            );
        }
    }

    #[tokio::test]
    async fn with_no_sources_every_check_skips_with_a_hint() {
        let ctx = CheckContext::new("fastapi-backend", std::time::Duration::ZERO);
        let report = run(&ctx, false).await;
        for check in &report.checks {
            assert_eq!(
                check.status,
                model::Status::Skip,
                "{}: {}",
                check.id,
                check.detail
            );
            assert!(
                check.hint.as_deref().is_some_and(|h| !h.is_empty()),
                "{}",
                check.id
            );
        }
        assert!(report.succeeded());
        assert!(
            !run(&ctx, true).await.succeeded(),
            "strict turns skips into failure"
        );
    }
}
