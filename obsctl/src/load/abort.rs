//! `abort_on_fail`: stops a run as soon as one of its thresholds can no longer hold, whatever
//! the rest of the plan does, so that a CI gate fails in seconds rather than at the end.
//!
//! "Can no longer hold" assumes the best of every request still to come (each one answered fast
//! and without error), against the plan's request count:
//! - a percentile `q` at most `L`: more than `(1 - q)` of the answers there can be are already
//!   over `L` (for `max_ms`, one answer over `L`);
//! - `error_rate` at most `E`: more errors than `E` of the planned requests;
//! - `min_rate` at least `R`: the requests sent and still to send cannot reach `R` over the
//!   planned duration.
//!
//! A closed loop (`--rps max`) has no planned count: only `max_ms` can abort it.

use super::config::{LoadConfig, Plan};
use super::mix::Mix;
use super::schedule::Schedule;
use super::stats::{Aggregator, SoFar};
use crate::scenario::{Percentile, Thresholds};

/// Highest latency the histograms track, in microseconds.
const MAX_US: u64 = 3_600_000_000;

/// One set of thresholds and the requests it judges.
#[derive(Debug)]
struct Rule {
    /// The request kind, or `None` for the whole run.
    request: Option<(usize, String)>,
    thresholds: Thresholds,
    /// Requests the plan sends in its scope (`None` for a closed loop).
    planned: Option<u64>,
}

/// The thresholds of a run with `abort_on_fail`.
#[derive(Debug)]
pub(crate) struct AbortWatch {
    rules: Vec<Rule>,
    planned_seconds: f64,
}

impl AbortWatch {
    /// The watch of `config`'s run; `None` without `abort_on_fail` or without thresholds.
    pub fn new(config: &LoadConfig) -> Option<Self> {
        let scenario = &config.scenario;
        if !scenario.thresholds.abort_on_fail {
            return None;
        }
        let total = match &config.plan {
            Plan::Open { start_rate, stages } => {
                Some(Schedule::new(*start_rate, stages).planned_requests())
            }
            Plan::Closed { .. } => None,
        };
        let segment = config.segment;
        let planned = total.map(|t| segment.map_or(t, |s| s.share_of(t)));
        let mix = Mix::new(&scenario.requests);
        let mut rules = vec![Rule {
            request: None,
            thresholds: scenario.thresholds.clone(),
            planned,
        }];
        for (index, spec) in scenario.requests.iter().enumerate() {
            rules.push(Rule {
                request: Some((index, spec.name.clone())),
                thresholds: spec.thresholds.clone(),
                // A shard sends about 1 in N of each request kind.
                planned: total.map(|t| {
                    let all = mix.count_of(index, t);
                    segment.map_or(all, |s| all.div_ceil(u64::from(s.count)))
                }),
            });
        }
        rules.retain(|r| !r.thresholds.is_empty());
        (!rules.is_empty()).then(|| Self {
            rules,
            planned_seconds: config.plan.duration().as_secs_f64(),
        })
    }

    /// Why the run must stop now, if one of its thresholds can no longer hold.
    pub fn lost(&self, aggregator: &Aggregator) -> Option<String> {
        self.rules.iter().find_map(|rule| {
            let so_far = aggregator.so_far(rule.request.as_ref().map(|(i, _)| *i))?;
            let reason = lost(
                &rule.thresholds,
                &so_far,
                rule.planned,
                self.planned_seconds,
            )?;
            Some(match &rule.request {
                Some((_, name)) => format!("{reason} (requests named {name})"),
                None => reason,
            })
        })
    }
}

/// Why `thresholds` can no longer hold over requests that show `so_far`, `planned` of them in
/// all over `planned_seconds`.
fn lost(
    thresholds: &Thresholds,
    so_far: &SoFar<'_>,
    planned: Option<u64>,
    planned_seconds: f64,
) -> Option<String> {
    let answered = so_far.histogram.len();
    let to_come = planned.map(|p| p.saturating_sub(so_far.due));
    for (percentile, limit) in &thresholds.latency_ms {
        let limit_us = (limit * 1000.0).clamp(0.0, MAX_US as f64) as u64;
        let over = answered - so_far.histogram.count_between(0, limit_us).min(answered);
        let q = percentile.quantile();
        let beyond_recovery = match (percentile, to_come) {
            (Percentile::Max, _) => over > 0,
            (_, Some(to_come)) => over as f64 > (1.0 - q) * (answered + to_come) as f64,
            (_, None) => false,
        };
        if beyond_recovery {
            return Some(format!(
                "{} <= {limit} can no longer hold: {over} of {answered} answers took longer",
                percentile.key()
            ));
        }
    }
    if let (Some(limit), Some(planned)) = (thresholds.error_rate, planned)
        && so_far.errors as f64 > limit * planned as f64
    {
        return Some(format!(
            "error_rate <= {limit} can no longer hold: {} errors already, of {planned} planned requests",
            so_far.errors
        ));
    }
    if let (Some(limit), Some(to_come)) = (thresholds.min_rate, to_come)
        && planned_seconds > 0.0
        && ((so_far.sent + to_come) as f64) < limit * planned_seconds
    {
        return Some(format!(
            "min_rate >= {limit} can no longer hold: {} sent and {to_come} to come in {planned_seconds} s",
            so_far.sent
        ));
    }
    None
}
