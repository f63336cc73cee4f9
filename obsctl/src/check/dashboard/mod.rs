//! The Grafana side of the proof (the 8-panel dashboard): `grafana` asks a live Grafana whether it is up
//! with the Prometheus, Loki and Tempo datasources and the 8-panel dashboard; `dashboard-panels`
//! evaluates every query of a dashboard file against the Prometheus and Loki given, so a panel
//! that would show "No data" fails before anyone opens Grafana.
//!
//! - [`provisioning`]: the `grafana` check.
//! - [`panels`]: reading a dashboard's JSON and substituting Grafana's variables (pure).
//! - [`evaluate`]: running one panel's queries against the sources, with bounded polling.

pub mod evaluate;
pub mod panels;
pub mod provisioning;

pub use provisioning::grafana;

use super::context::CheckContext;
use super::model::Outcome;
use evaluate::{QueryResult, Verdict};
use panels::Dashboard;

const NO_DASHBOARD: &str = "pass --dashboard FILE (e.g. deploy/grafana/dashboards/fastapi-dashboard.json) with --prometheus and --loki";

/// `dashboard-panels`: every query of every panel of `--dashboard` returns data from the
/// Prometheus / Loki given; panels whose datasource was not given are skipped and named.
pub async fn dashboard_panels(ctx: &CheckContext) -> Outcome {
    let Some(path) = &ctx.dashboard else {
        return Outcome::skip("no dashboard given", NO_DASHBOARD);
    };
    let dashboard = match Dashboard::from_file(path) {
        Ok(dashboard) => dashboard,
        Err(error) => {
            return Outcome::error(
                error.to_string(),
                "pass a dashboard JSON as Grafana exports it (e.g. deploy/grafana/dashboards/fastapi-dashboard.json)",
            );
        }
    };
    let window = ctx.window();
    let range = window.end.duration_since(window.start).unwrap_or_default();
    let variables = dashboard.variables_for(range);
    let results: Vec<QueryResult> = futures::future::join_all(
        dashboard
            .panels
            .iter()
            .filter(|p| !p.queries.is_empty())
            .map(|p| evaluate::panel(ctx, p, &variables)),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    judge(&dashboard, &results)
}

/// The verdict over every query: any empty or rejected query fails; otherwise an unreachable
/// source is an error; nothing evaluated is a skip (a dashboard without queries fails).
pub fn judge(dashboard: &Dashboard, results: &[QueryResult]) -> Outcome {
    let of = |f: fn(&Verdict) -> bool| -> Vec<&QueryResult> {
        results.iter().filter(|r| f(&r.verdict)).collect()
    };
    let failed = of(|v| matches!(v, Verdict::Empty | Verdict::Rejected(_)));
    let unreachable = of(|v| matches!(v, Verdict::Unreachable(_)));
    let skipped = of(|v| matches!(v, Verdict::Skipped(_)));
    let passed = of(|v| matches!(v, Verdict::Data(_))).len();
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped: {}", describe_all(&skipped))
    };
    if results.is_empty() {
        return Outcome::fail(
            format!(
                "dashboard {:?} has no panel queries to evaluate",
                dashboard.title
            ),
            "pass the dashboard whose panels query Prometheus and Loki",
        );
    }
    if failed.is_empty() && unreachable.is_empty() && passed == 0 {
        return Outcome::skip(
            format!("no panel query could be evaluated{skipped_note}"),
            NO_DASHBOARD,
        );
    }
    let outcome = if !failed.is_empty() {
        Outcome::fail(
            format!(
                "{} of {} evaluated panel queries return no data: {}{skipped_note}",
                failed.len(),
                results.len() - skipped.len(),
                failed
                    .iter()
                    .map(|r| format!("{:?}", r.panel))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "send traffic first (obsctl load), make the queries' labels match the scrape job \
             (job=\"fastapi-backend\") and the log labels (service=\"fastapi-backend\"), and \
             raise --timeout when Prometheus has scraped fewer than twice",
        )
    } else if !unreachable.is_empty() {
        Outcome::error(
            format!(
                "{} panel queries could not be evaluated: {}",
                unreachable.len(),
                describe_all(&unreachable)
            ),
            "check the --prometheus and --loki URLs",
        )
    } else {
        Outcome::pass(format!(
            "all {passed} evaluated panel queries of {:?} return data{skipped_note}",
            dashboard.title
        ))
    };
    results.iter().fold(outcome, |outcome, r| {
        outcome.evidence(format!(
            "{}: {} -> {}",
            r.panel,
            r.query,
            verdict_text(&r.verdict)
        ))
    })
}

fn describe_all(results: &[&QueryResult]) -> String {
    results
        .iter()
        .map(|r| describe(r))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `'Title' (`query`): why`.
fn describe(result: &QueryResult) -> String {
    format!(
        "{:?} (`{}`): {}",
        result.panel,
        result.query,
        verdict_text(&result.verdict)
    )
}

fn verdict_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Data(summary) => summary.clone(),
        Verdict::Empty => "no data".to_owned(),
        Verdict::Rejected(why) | Verdict::Unreachable(why) | Verdict::Skipped(why) => why.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(panel: &str, verdict: Verdict) -> QueryResult {
        QueryResult {
            panel: panel.to_owned(),
            query: format!("q_{panel}"),
            verdict,
        }
    }

    fn dashboard() -> Dashboard {
        Dashboard {
            uid: None,
            title: "D".to_owned(),
            panels: Vec::new(),
            variables: Default::default(),
        }
    }

    #[test]
    fn an_empty_panel_fails_and_is_named_with_its_query() {
        let outcome = judge(
            &dashboard(),
            &[
                result("A", Verdict::Data("1 series".into())),
                result("B", Verdict::Empty),
                result("C", Verdict::Skipped("no --loki given".into())),
            ],
        );
        assert_eq!(outcome.status, crate::check::model::Status::Fail);
        assert!(outcome.detail.contains("1 of 2"), "{}", outcome.detail);
        assert!(
            outcome.detail.contains("no data: \"B\""),
            "{}",
            outcome.detail
        );
        assert!(
            outcome.evidence.iter().any(|e| e == "B: q_B -> no data"),
            "{:?}",
            outcome.evidence
        );
        assert!(
            outcome.detail.contains("skipped: \"C\""),
            "{}",
            outcome.detail
        );
    }

    #[test]
    fn data_everywhere_passes_and_skips_are_said() {
        let outcome = judge(
            &dashboard(),
            &[
                result("A", Verdict::Data("1 series".into())),
                result("C", Verdict::Skipped("no --loki given".into())),
            ],
        );
        assert_eq!(outcome.status, crate::check::model::Status::Pass);
        assert!(
            outcome.detail.contains("no --loki given"),
            "{}",
            outcome.detail
        );
    }

    #[test]
    fn a_dashboard_without_queries_fails() {
        let outcome = judge(&dashboard(), &[]);
        assert_eq!(outcome.status, crate::check::model::Status::Fail);
    }

    #[test]
    fn nothing_evaluated_is_a_skip_and_unreachable_an_error() {
        let skipped = judge(
            &dashboard(),
            &[result(
                "C",
                Verdict::Skipped("no --prometheus given".into()),
            )],
        );
        assert_eq!(skipped.status, crate::check::model::Status::Skip);
        let error = judge(
            &dashboard(),
            &[result("A", Verdict::Unreachable("refused".into()))],
        );
        assert_eq!(error.status, crate::check::model::Status::Error);
    }
}
