//! Judges a run's statistics against the scenario's thresholds: the top-level ones against the
//! whole run, each request's own against that request name's statistics.

use super::{NamedStats, Stats, ThresholdResult};
use crate::scenario::{Percentile, RequestSpec, Thresholds};

/// The results of the scenario's thresholds (`thresholds`, over `overall`), then of each
/// request's own, in scenario order (over its entry of `by_name`).
pub fn evaluate_run(
    thresholds: &Thresholds,
    overall: &Stats,
    requests: &[RequestSpec],
    by_name: &[NamedStats],
) -> Vec<ThresholdResult> {
    let mut results = evaluate(thresholds, overall, None);
    for (spec, named) in requests.iter().zip(by_name) {
        results.extend(evaluate(&spec.thresholds, &named.stats, Some(&spec.name)));
    }
    results
}

/// One result per threshold of `thresholds` over `stats` (those of `request`, or of the whole
/// run), in a stable order: latency limits, then `error_rate`, then `min_rate`. A latency limit
/// or `min_rate` with no response to measure fails: a run that reached nothing cannot meet a
/// rate.
pub fn evaluate(
    thresholds: &Thresholds,
    overall: &Stats,
    request: Option<&str>,
) -> Vec<ThresholdResult> {
    let request = request.map(str::to_owned);
    let mut results = Vec::new();
    for (percentile, limit) in &thresholds.latency_ms {
        let observed = latency(overall, *percentile);
        results.push(ThresholdResult {
            name: percentile.key().to_owned(),
            limit: *limit,
            observed,
            passed: observed.is_some_and(|v| v <= *limit),
            request: request.clone(),
        });
    }
    if let Some(limit) = thresholds.error_rate {
        results.push(ThresholdResult {
            name: "error_rate".to_owned(),
            limit,
            observed: Some(overall.error_rate),
            passed: overall.error_rate <= limit,
            request: request.clone(),
        });
    }
    if let Some(limit) = thresholds.min_rate {
        let answered = overall.latency_ms.samples > 0;
        let observed = answered.then_some(overall.achieved_rate);
        results.push(ThresholdResult {
            name: "min_rate".to_owned(),
            limit,
            observed,
            passed: observed.is_some_and(|rate| rate >= limit),
            request,
        });
    }
    results
}

/// The statistic `percentile` of `stats`, in milliseconds.
pub fn latency(stats: &Stats, percentile: Percentile) -> Option<f64> {
    let l = &stats.latency_ms;
    match percentile {
        Percentile::P50 => l.p50,
        Percentile::P90 => l.p90,
        Percentile::P95 => l.p95,
        Percentile::P99 => l.p99,
        Percentile::P99_9 => l.p99_9,
        Percentile::Max => l.max,
    }
}

/// `threshold` judged again over `stats` (a merged run's, say): same name, limit and scope.
pub fn reevaluate(threshold: &ThresholdResult, stats: &Stats) -> ThresholdResult {
    let observed = match threshold.name.as_str() {
        "error_rate" => Some(stats.error_rate),
        "min_rate" => (stats.latency_ms.samples > 0).then_some(stats.achieved_rate),
        key => Percentile::from_key(key).and_then(|p| latency(stats, p)),
    };
    let passed = observed.is_some_and(|v| {
        if threshold.name == "min_rate" {
            v >= threshold.limit
        } else {
            v <= threshold.limit
        }
    });
    ThresholdResult {
        observed,
        passed,
        ..threshold.clone()
    }
}
