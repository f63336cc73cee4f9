//! Turns a finished run's aggregates into the [`RunReport`].

use super::config::{LoadConfig, Plan};
use super::schedule::Schedule;
use super::stats::Aggregator;
use crate::report::{
    Model, NamedStats, PlanInfo, RunReport, SCHEMA_VERSION, ScenarioInfo, Sequence, StageInfo,
    thresholds, verdict,
};
use std::time::{Instant, SystemTime};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Everything known at the end of a run.
pub(crate) struct Run<'a> {
    pub config: &'a LoadConfig,
    pub aggregator: Aggregator,
    pub start: Instant,
    pub wall_start: SystemTime,
    pub last_sent: Option<Instant>,
    pub last_end: Option<Instant>,
    pub stopped_at: Option<Instant>,
    /// Why `abort_on_fail` stopped the run (then `stopped_at` is when).
    pub aborted: Option<String>,
    pub seq_count: u64,
}

impl Run<'_> {
    pub fn report(self) -> RunReport {
        let duration_s = self.sending_seconds();
        let overall = self.aggregator.overall(duration_s);
        let by_name: Vec<NamedStats> = self
            .config
            .scenario
            .requests
            .iter()
            .zip(self.aggregator.per_request(duration_s))
            .map(|(spec, stats)| NamedStats {
                name: spec.name.clone(),
                method: spec.method.to_string(),
                stats,
            })
            .collect();
        let scenario = &self.config.scenario;
        let results =
            thresholds::evaluate_run(&scenario.thresholds, &overall, &scenario.requests, &by_name);
        let end = self.last_end.unwrap_or(self.start);
        let mut report = RunReport {
            schema_version: SCHEMA_VERSION,
            run_id: self.config.run_id.to_string(),
            trace_id_prefix: self.config.run_id.to_string(),
            seq_count: self.seq_count,
            sequences: self
                .config
                .segment
                .map(|s| {
                    vec![Sequence {
                        offset: u64::from(s.index - 1),
                        stride: u64::from(s.count),
                        count: self.seq_count,
                    }]
                })
                .unwrap_or_default(),
            segment: self.config.segment,
            merged: None,
            scenario: ScenarioInfo {
                name: self.config.scenario.name.clone(),
                file: self
                    .config
                    .scenario
                    .file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            },
            target: self.config.target.to_string(),
            model: model(&self.config.plan),
            plan: plan_info(self.config),
            window_start: rfc3339(self.wall_start),
            window_end: rfc3339(self.wall_start + end.saturating_duration_since(self.start)),
            duration_s,
            interrupted: self.stopped_at.is_some() && self.aborted.is_none(),
            aborted: self.aborted.clone(),
            requests_sent: overall.count,
            requests_not_started: overall.not_started,
            requests: self.aggregator.counts(&self.config.scenario.requests),
            histograms: self.aggregator.histograms(&self.config.scenario.requests),
            timeline: Vec::new(),
            passed: results.iter().all(|r| r.passed),
            thresholds: results,
            overall,
            by_name,
        };
        report.timeline = self.timeline(duration_s);
        // A run in which no request succeeded fails, thresholds or not; so does an aborted one
        // (its partial statistics may still meet a threshold it could not meet in full).
        report.passed &= verdict::no_success(&report).is_none() && report.aborted.is_none();
        report
    }

    /// The timeline, with the plan's rate in each second of an open-model run.
    fn timeline(self, duration_s: f64) -> Vec<crate::report::Second> {
        let schedule = match &self.config.plan {
            Plan::Open { start_rate, stages } => Some(Schedule::new(*start_rate, stages)),
            Plan::Closed { .. } => None,
        };
        let planned = |from: f64, until: f64| {
            let schedule = schedule.as_ref()?;
            let rate = (schedule.count_until(until) - schedule.count_until(from)) / (until - from);
            let shards = self.config.segment.map_or(1.0, |s| f64::from(s.count));
            Some((rate / shards * 1000.0).round() / 1000.0)
        };
        self.aggregator.timeline(duration_s, planned)
    }

    /// The rate denominator: the planned sending time (cut short by a stop), stretched to the
    /// last send if sending ran late.
    fn sending_seconds(&self) -> f64 {
        let planned_end = self.start + self.config.plan.duration();
        let end = match self.stopped_at {
            Some(stop) => stop.min(planned_end),
            None => planned_end,
        };
        let end = end.max(self.last_sent.unwrap_or(end));
        end.saturating_duration_since(self.start).as_secs_f64()
    }
}

fn model(plan: &Plan) -> Model {
    match plan {
        Plan::Open { .. } => Model::Open,
        Plan::Closed { .. } => Model::Closed,
    }
}

fn plan_info(config: &LoadConfig) -> PlanInfo {
    let (planned_requests, start_rate, stages) = match &config.plan {
        Plan::Open { start_rate, stages } => (
            Some({
                let total = Schedule::new(*start_rate, stages).planned_requests();
                config.segment.map_or(total, |s| s.share_of(total))
            }),
            Some(start_rate.or(stages.first().map(|s| s.rate)).unwrap_or(0.0)),
            stages
                .iter()
                .map(|s| StageInfo {
                    duration_s: s.duration.as_secs_f64(),
                    rate: s.rate,
                })
                .collect(),
        ),
        Plan::Closed { .. } => (None, None, Vec::new()),
    };
    PlanInfo {
        duration_s: config.plan.duration().as_secs_f64(),
        planned_requests,
        start_rate,
        stages,
        max_in_flight: config.max_in_flight as u64,
        timeout_ms: config.timeout.as_secs_f64() * 1000.0,
    }
}

fn rfc3339(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}
