//! `obsctl check`: the checklist (and what it implies: the contract, the accounting of a run,
//! the dashboard, the run's own thresholds) as checks declared once in [`registry`], run at the
//! level a [`policy::Policy`] gives each, reported as pass / warn / fail / skip / error / allowed
//! with their findings.

pub mod accounting;
pub mod accounting_prometheus;
pub mod accounting_stack;
pub mod context;
pub mod correlation;
pub mod dashboard;
pub mod exemplars;
pub mod load;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod policy;
pub mod prometheus;
pub mod registry;
pub mod render;
pub mod report;
pub mod spans;
pub mod stack;
pub mod structure;
pub mod traces;
pub mod units;

use std::time::Instant;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use context::CheckContext;
use model::{CheckResult, Level, Outcome, Status};
use policy::Policy;
use registry::{CHECKS, CheckDef};
use report::{CheckReport, SCHEMA_VERSION, Summary};

/// Runs every check the policy does not allow, concurrently (each waits for ingestion up to
/// the context's deadline), and collects the report.
pub async fn run(ctx: &CheckContext, policy: &Policy) -> CheckReport {
    let started_at = now();
    let results = futures::future::join_all(CHECKS.iter().map(|check| async move {
        let level = policy.level(check);
        if level == Level::Allow {
            let outcome = Outcome {
                status: Status::Allowed,
                ..Outcome::pass("not run: the policy allows it")
            };
            return result(check, policy, level, outcome, 0);
        }
        let started = Instant::now();
        // One deadline bounds every check, whatever it waits on (connects, requests, polling):
        // `--timeout` plus a fixed grace for the answer in flight.
        let bound = ctx.deadline + CHECK_GRACE;
        let outcome = tokio::time::timeout_at(bound, (check.run)(ctx))
            .await
            .unwrap_or_else(|_| out_of_time(ctx));
        result(
            check,
            policy,
            level,
            outcome,
            started.elapsed().as_millis() as u64,
        )
    }))
    .await;
    CheckReport {
        schema_version: SCHEMA_VERSION,
        obsctl_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: ctx.target.clone(),
        service: ctx.service.clone(),
        strict: policy.strict,
        policy_file: policy.source.clone(),
        started_at,
        finished_at: now(),
        summary: Summary::of(&results),
        checks: results,
    }
}

/// How long a check may run past the context's deadline: the answer in flight gets this long.
pub const CHECK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What a check that did not finish within its deadline reports.
fn out_of_time(ctx: &CheckContext) -> Outcome {
    Outcome::error(
        format!(
            "no answer within --timeout ({}) and {} s of grace: a source accepted the request but \
             did not answer in time",
            humantime::format_duration(ctx.wait),
            CHECK_GRACE.as_secs()
        ),
        "check that the source answers (a hung process, a proxy that holds connections), or \
         raise --timeout when ingestion is slow",
    )
}

/// A check's outcome with its level applied: at `warn`, what it found is a warning.
fn result(
    check: &CheckDef,
    policy: &Policy,
    level: Level,
    outcome: Outcome,
    duration_ms: u64,
) -> CheckResult {
    let status = match (outcome.status, level) {
        (Status::Fail, Level::Warn) => Status::Warn,
        (status, _) => status,
    };
    CheckResult {
        id: check.id.to_owned(),
        title: check.title.to_owned(),
        signal: check.signal,
        level,
        default_level: policy.default_level(check),
        status,
        detail: outcome.detail.clone(),
        evidence: outcome.evidence.clone(),
        hint: outcome.hint.clone(),
        findings: outcome.into_findings(),
        duration_ms,
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

    #[tokio::test]
    async fn with_no_sources_every_check_skips_with_a_hint_and_nothing_is_checked() {
        let ctx = CheckContext::new("fastapi-backend", std::time::Duration::ZERO);
        let report = run(&ctx, &Policy::defaults()).await;
        for check in &report.checks {
            assert_eq!(check.status, Status::Skip, "{}: {}", check.id, check.detail);
            assert!(
                check.hint.as_deref().is_some_and(|h| !h.is_empty()),
                "{}",
                check.id
            );
        }
        assert!(report.succeeded());
        assert!(report.nothing_checked());
        assert!(
            !run(&ctx, &Policy::strict()).await.succeeded(),
            "strict turns skips into failure"
        );
    }
}
