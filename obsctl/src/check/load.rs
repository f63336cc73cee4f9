//! The load run as checks: the scenario's thresholds and `expect` lists, judged on the run
//! report, so `obsctl verify SCENARIO` gates on them with the rest of the proof.

use std::collections::BTreeMap;

use super::context::CheckContext;
use super::model::{Finding, Outcome};
use crate::report::{ErrorKind, RunReport};

const NO_RUN: &str =
    "pass --run-report FILE from `obsctl load --report FILE`, or use `obsctl verify`";

/// `load-thresholds`: every threshold of the scenario held; a run in which nothing was answered
/// fails even without thresholds.
pub async fn thresholds(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    let mut findings: Vec<Finding> = run
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| {
            let seen = t
                .observed
                .map_or("nothing to measure".to_owned(), |v| format!("{v:.3}"));
            let bound = if t.name == "min_rate" {
                "at least"
            } else {
                "at most"
            };
            Finding::new(
                format!(
                    "{} was {seen}, the scenario allows {bound} {}",
                    t.name, t.limit
                ),
                1,
                "look at the run's summary (obsctl load prints it per request name): the service \
                 is slower or fails more than the scenario allows, or the scenario asks too much \
                 of this machine",
            )
        })
        .collect();
    let due = run.requests_due();
    if due > 0 && super::accounting::answered(run) == 0 {
        findings.insert(
            0,
            Finding::new(
                format!("none of the {due} requests got an answer"),
                due,
                "check that the service listens at the target URL",
            ),
        );
    }
    let held = run.thresholds.len();
    Outcome::judged(
        findings,
        if held == 0 {
            "the scenario sets no thresholds; requests were answered".to_owned()
        } else {
            format!("all {held} thresholds held")
        },
    )
    .evidence(summary_line(run))
}

/// `load-expected-status`: every request got a status its scenario expects.
pub async fn expected_status(ctx: &CheckContext) -> Outcome {
    let Some(run) = &ctx.run else {
        return Outcome::skip("no run report given", NO_RUN);
    };
    // Per request name: statuses (or error kinds) that were not expected, with counts.
    let mut unexpected: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for request in &run.requests {
        let outcome = match (request.error, request.status) {
            (None, _) => continue,
            (Some(ErrorKind::UnexpectedStatus), Some(status)) => status.to_string(),
            (Some(kind), _) => kind.as_str().to_owned(),
        };
        *unexpected
            .entry(request.name.as_str())
            .or_default()
            .entry(outcome)
            .or_default() += request.count;
    }
    let findings = unexpected
        .into_iter()
        .map(|(name, outcomes)| {
            let count = outcomes.values().sum();
            let seen = outcomes
                .iter()
                .map(|(o, n)| format!("{o} x{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            Finding::new(
                format!("request `{name}` got answers its scenario does not expect: {seen}"),
                count,
                "fix the service's answer, or the scenario's `expect` list if the answer is right",
            )
        })
        .collect();
    Outcome::judged(
        findings,
        format!(
            "all {} answered requests got an expected status",
            super::accounting::answered(run)
        ),
    )
}

/// The run in one line: how many, how fast, how many errors, p99.
pub fn summary_line(run: &RunReport) -> String {
    let o = &run.overall;
    format!(
        "sent {} requests in {:.1} s ({:.1} req/s), {} errors, p99 {}",
        run.requests_sent,
        run.duration_s,
        o.achieved_rate,
        o.errors,
        o.latency_ms
            .p99
            .map_or("n/a".to_owned(), |p| format!("{p:.1} ms"))
    )
}
