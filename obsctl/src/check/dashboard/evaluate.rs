//! Evaluating a panel's queries the way Grafana would, against the sources given: PromQL as
//! an instant query on Prometheus, LogQL over the run's window on Loki. Each query is retried
//! until it returns data or the context's deadline passes (a fresh Prometheus needs two scrapes
//! before `rate(...[1m])` has a value); a query the server rejects is not retried.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::panels::{DatasourceType, Panel, substitute};
use crate::check::context::CheckContext;
use crate::sources::http::SourceError;
use crate::sources::loki::{Direction, LogQuery, Loki, LokiError};
use crate::sources::prometheus::{Prometheus, PrometheusError};

/// What one query returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Data, summarised ("2 series, first value 0.25").
    Data(String),
    /// A valid query that returned nothing until the deadline.
    Empty,
    /// The server rejected the query (syntax, unknown function): waiting cannot help.
    Rejected(String),
    /// The server could not be asked (unreachable, timeout, garbage).
    Unreachable(String),
    /// Not evaluated, and why (its datasource was not given, or obsctl cannot query it).
    Skipped(String),
}

/// One query of one panel and what it returned.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The panel's title.
    pub panel: String,
    /// The query as evaluated (variables substituted).
    pub query: String,
    /// What it returned.
    pub verdict: Verdict,
}

/// Evaluates every query of `panel` against the source its datasource type names.
pub async fn panel(
    ctx: &CheckContext,
    panel: &Panel,
    variables: &BTreeMap<String, String>,
) -> Vec<QueryResult> {
    let mut results = Vec::with_capacity(panel.queries.len());
    for raw in &panel.queries {
        let query = substitute(raw, variables);
        let verdict = query_verdict(ctx, &panel.datasource_type, &query).await;
        results.push(QueryResult {
            panel: panel.title.clone(),
            query,
            verdict,
        });
    }
    results
}

async fn query_verdict(ctx: &CheckContext, kind: &DatasourceType, query: &str) -> Verdict {
    match (kind, &ctx.prometheus, &ctx.loki) {
        (DatasourceType::Prometheus, Some(prometheus), _) => promql(ctx, prometheus, query).await,
        (DatasourceType::Prometheus, None, _) => Verdict::Skipped("no --prometheus given".into()),
        (DatasourceType::Loki, _, Some(loki)) => logql(ctx, loki, query).await,
        (DatasourceType::Loki, _, None) => Verdict::Skipped("no --loki given".into()),
        (other, _, _) => {
            Verdict::Skipped(format!("obsctl does not evaluate {} queries", other.name()))
        }
    }
}

/// Polls `probe` until it returns a final verdict or the deadline passes; then the last one.
async fn until_final<F, Fut>(ctx: &CheckContext, mut probe: F) -> Verdict
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Verdict>,
{
    let last = Mutex::new(Verdict::Empty);
    let last = &last;
    let found = ctx
        .poll(|| {
            let attempt = probe();
            async move {
                let verdict = attempt.await;
                if matches!(verdict, Verdict::Data(_) | Verdict::Rejected(_)) {
                    return Some(verdict);
                }
                *last.lock().unwrap_or_else(PoisonError::into_inner) = verdict;
                None
            }
        })
        .await;
    found.unwrap_or_else(|| last.lock().unwrap_or_else(PoisonError::into_inner).clone())
}

async fn promql(ctx: &CheckContext, prometheus: &Prometheus, query: &str) -> Verdict {
    until_final(ctx, || async move {
        match prometheus.query(query, None).await {
            Ok(result) if result.data.is_empty() => Verdict::Empty,
            Ok(result) => {
                let series = result.data.samples().len().max(1);
                let value = result
                    .data
                    .first_value()
                    .map_or_else(String::new, |v| format!(", first value {v}"));
                Verdict::Data(format!("{series} series{value}"))
            }
            Err(PrometheusError::Api {
                error_type, error, ..
            }) => Verdict::Rejected(format!("Prometheus rejected it ({error_type}): {error}")),
            Err(error) => Verdict::Unreachable(error.to_string()),
        }
    })
    .await
}

async fn logql(ctx: &CheckContext, loki: &Loki, query: &str) -> Verdict {
    let request = LogQuery {
        query: query.to_owned(),
        window: ctx.window(),
        limit: 10,
        direction: Direction::Backward,
    };
    let request = &request;
    until_final(ctx, || async move {
        match loki.query_range(request).await {
            Ok(streams) if streams.entry_count() == 0 => Verdict::Empty,
            Ok(streams) => Verdict::Data(format!(
                "{} lines in {} streams (limit {})",
                streams.entry_count(),
                streams.streams.len(),
                request.limit
            )),
            Err(error) => loki_error(error),
        }
    })
    .await
}

/// Loki sends a query it cannot parse back as HTTP 400 with a plain-text reason.
fn loki_error(error: LokiError) -> Verdict {
    match &error {
        LokiError::Api { .. } => Verdict::Rejected(error.to_string()),
        LokiError::Unexpected { detail, .. } => Verdict::Rejected(format!(
            "{detail}: obsctl evaluates log queries, not metric queries"
        )),
        LokiError::Source(SourceError::Status(evidence)) if evidence.status == Some(400) => {
            Verdict::Rejected(format!(
                "Loki rejected it: {}",
                evidence.body_excerpt.trim()
            ))
        }
        _ => Verdict::Unreachable(error.to_string()),
    }
}
