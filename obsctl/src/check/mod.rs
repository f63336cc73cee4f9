//! `obsctl check`: the checklist (and what it implies: the contract, the accounting of a run,
//! the dashboard, the run's own thresholds) as checks declared once in [`registry`], run at the
//! level a [`policy::Policy`] gives each, reported as pass / warn / fail / skip / error / allowed
//! with their findings.

pub mod accounting;
pub mod context;
pub mod correlation;
pub mod dashboard;
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
        let outcome = (check.run)(ctx).await;
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
