//! Checks against the Grafana stack's stores: logs in Loki under `service="<name>"`, traces
//! in Tempo searchable by service and readable by id.

use super::context::CheckContext;
use super::model::Outcome;
use super::spans::judge_spans;
use crate::sources::loki::{Direction, LogQuery, Loki};
use crate::sources::span::ShapeCounts;
use crate::sources::tempo::TraceSearch;

const NO_LOKI: &str =
    "pass --loki URL (e.g. http://localhost:3100) of a Loki the service's logs are shipped to";
const NO_TEMPO: &str =
    "pass --tempo URL (e.g. http://localhost:3200) of the Tempo the service exports to";

/// `logs-loki`: Loki has the service's lines under the label `service="<name>"`.
pub async fn loki(ctx: &CheckContext) -> Outcome {
    let Some(loki) = &ctx.loki else {
        return Outcome::skip("no Loki given", NO_LOKI);
    };
    if let Err(error) = loki.ready().await {
        return Outcome::error(
            format!("Loki at {} is not ready: {error}", loki.base_url()),
            "check the --loki URL and that Loki finished starting (GET /ready)",
        );
    }
    let window = ctx.window();
    let selector = format!(
        "{{service=\"{}\"}}",
        ctx.service.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let query = LogQuery {
        query: selector.clone(),
        window,
        limit: 100,
        direction: Direction::Backward,
    };
    let found = ctx
        .poll(|| async {
            loki.query_range(&query)
                .await
                .ok()
                .filter(|s| s.entry_count() > 0)
        })
        .await;
    if let Some(streams) = found {
        let json = streams
            .entries()
            .filter(|(_, e)| is_json_object(&e.line))
            .count();
        return Outcome::pass(format!(
            "{} lines for {selector} in {} streams ({json} of them JSON)",
            streams.entry_count(),
            streams.streams.len()
        ))
        .evidence(format!("GET {}", streams.evidence.url));
    }
    diagnose_loki(loki, ctx, &selector).await
}

/// Why `{service="..."}` finds nothing: no `service` label at all, other values, or no lines.
async fn diagnose_loki(loki: &Loki, ctx: &CheckContext, selector: &str) -> Outcome {
    let window = Some(ctx.window());
    let labels = match loki.labels(window).await {
        Ok(labels) => labels.values,
        Err(error) => {
            return Outcome::error(
                format!("Loki query failed: {error}"),
                "check the --loki URL",
            );
        }
    };
    if labels.is_empty() {
        return Outcome::fail(
            "Loki holds no logs at all in the window",
            "ship the service's stdout to Loki (Grafana Alloy or Promtail: without a shipper Loki stays empty)",
        );
    }
    if !labels.iter().any(|l| l == "service") {
        return Outcome::fail(
            format!(
                "Loki has logs but no `service` label (labels: {})",
                labels.join(", ")
            ),
            "make the shipper set the label service from the log line's `service` field (see deploy/alloy/config.alloy)",
        );
    }
    let values = loki
        .label_values("service", window)
        .await
        .map(|v| v.values)
        .unwrap_or_default();
    Outcome::fail(
        format!("no lines for {selector} in the window"),
        format!(
            "the service label has values {values:?}: set OTEL_SERVICE_NAME / the log `service` field, or pass --service"
        ),
    )
}

/// `traces-tempo`: Tempo finds the service's traces and returns one by id. Asked once per
/// evaluation: `traces-otlp` shares the verdict when Tempo is its only source.
pub async fn tempo(ctx: &CheckContext) -> Outcome {
    ctx.tempo_verdict
        .get_or_init(|| tempo_once(ctx))
        .await
        .clone()
}

async fn tempo_once(ctx: &CheckContext) -> Outcome {
    let Some(tempo) = &ctx.tempo else {
        return Outcome::skip("no Tempo given", NO_TEMPO);
    };
    if let Err(error) = tempo.ready().await {
        return Outcome::error(
            format!("Tempo at {} is not ready: {error}", tempo.base_url()),
            "check the --tempo URL and that Tempo finished starting (GET /ready)",
        );
    }
    let window = ctx.window();
    let search = TraceSearch::service(&ctx.service, Some(window), 20);
    let found = ctx
        .poll(|| async {
            tempo
                .search(&search)
                .await
                .ok()
                .filter(|r| !r.traces.is_empty())
        })
        .await;
    let Some(result) = found else {
        return Outcome::fail(
            format!(
                "Tempo finds no trace of service.name=\"{}\" in the window",
                ctx.service
            ),
            "export spans over OTLP/gRPC to Tempo's port 4317 (bound to 0.0.0.0 in recent Tempo \
             versions only when configured); check service.name",
        );
    };
    // Prefer a trace the run started: it proves the caller's trace was continued.
    let run_trace = ctx.run.as_ref().and_then(|run| {
        result
            .traces
            .iter()
            .find(|t| t.trace_id.starts_with(&run.trace_id_prefix))
    });
    let pick = run_trace.unwrap_or(&result.traces[0]);
    match tempo.trace(&pick.trace_id, Some(window)).await {
        Ok(trace) => {
            let outcome = judge_spans(
                &ShapeCounts::from_spans(&trace.spans),
                &ctx.service,
                &format!("Tempo trace {}", pick.trace_id),
            );
            outcome.evidence(format!(
                "search found {} traces; GET {}",
                result.traces.len(),
                trace.evidence.url
            ))
        }
        Err(error) => Outcome::error(
            format!(
                "Tempo search found trace {} but reading it failed: {error}",
                pick.trace_id
            ),
            "check Tempo's query path (GET /api/v2/traces/{id})",
        ),
    }
}

fn is_json_object(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
}
