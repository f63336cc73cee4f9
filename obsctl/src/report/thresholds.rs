//! Judges a run's overall statistics against the scenario's thresholds.

use super::{Stats, ThresholdResult};
use crate::scenario::{Percentile, Thresholds};

/// One result per threshold written in the scenario, in a stable order: latency limits, then
/// `error_rate`, then `min_rate`. A latency limit or `min_rate` with no response to measure
/// fails: a run that reached nothing cannot meet a rate.
pub fn evaluate(thresholds: &Thresholds, overall: &Stats) -> Vec<ThresholdResult> {
    let mut results = Vec::new();
    for (percentile, limit) in &thresholds.latency_ms {
        let observed = latency(overall, *percentile);
        results.push(ThresholdResult {
            name: percentile.key().to_owned(),
            limit: *limit,
            observed,
            passed: observed.is_some_and(|v| v <= *limit),
        });
    }
    if let Some(limit) = thresholds.error_rate {
        results.push(ThresholdResult {
            name: "error_rate".to_owned(),
            limit,
            observed: Some(overall.error_rate),
            passed: overall.error_rate <= limit,
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
        });
    }
    results
}

fn latency(stats: &Stats, percentile: Percentile) -> Option<f64> {
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
