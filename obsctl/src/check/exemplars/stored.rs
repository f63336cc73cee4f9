//! Whether a Prometheus returns the histogram's exemplars from `/api/v1/query_exemplars`.

use std::collections::BTreeSet;

use super::Found;
use crate::check::context::CheckContext;
use crate::check::metrics::DURATION;
use crate::check::model::Finding;

/// Whether Prometheus returns the histogram's exemplars: one line of evidence, or the finding
/// when it stores none by the deadline. `None` without a Prometheus.
pub(super) async fn stored_in_prometheus(
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
