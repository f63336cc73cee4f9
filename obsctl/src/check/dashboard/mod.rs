//! The Grafana side of the proof (spec Part 7): `grafana` asks a live Grafana whether it is up
//! with the Prometheus, Loki and Tempo datasources and the 8-panel dashboard; `dashboard-panels`
//! evaluates every query of a dashboard file against the Prometheus and Loki given, so a panel
//! that would show "No data" fails before anyone opens Grafana.
//!
//! - [`panels`]: reading a dashboard's JSON and substituting Grafana's variables (pure).
//! - [`evaluate`]: running one panel's queries against the sources, with bounded polling.

pub mod evaluate;
pub mod panels;

use super::context::CheckContext;
use super::model::Outcome;
use crate::sources::grafana::{Datasources, Grafana, GrafanaError, HealthStatus};
use crate::sources::http::SourceError;
use evaluate::{QueryResult, Verdict};
use panels::{DEFAULT_UID, Dashboard, PART7_TITLES};

const NO_GRAFANA: &str = "pass --grafana URL (e.g. http://localhost:3000) of the Grafana provisioned from deploy/grafana";
const NO_DASHBOARD: &str = "pass --dashboard FILE (e.g. deploy/grafana/dashboards/fastapi-dashboard.json) with --prometheus and --loki";
const DATASOURCE_TYPES: [&str; 3] = ["prometheus", "loki", "tempo"];

/// `grafana`: Grafana is healthy, has healthy Prometheus, Loki and Tempo datasources, and the
/// dashboard (uid from `--dashboard`, else `fastapi-dashboard`) has the 8 Part 7 panels.
pub async fn grafana(ctx: &CheckContext) -> Outcome {
    let Some(grafana) = &ctx.grafana else {
        return Outcome::skip("no Grafana given", NO_GRAFANA);
    };
    match inspect(ctx, grafana).await {
        Ok(findings) => findings.outcome(),
        Err(error) => source_error(grafana, &error),
    }
}

/// What the Grafana check saw: problems (each a failure) and evidence lines.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    evidence: Vec<String>,
    summary: Vec<String>,
}

impl Findings {
    fn outcome(self) -> Outcome {
        let outcome = if self.problems.is_empty() {
            Outcome::pass(self.summary.join("; "))
        } else {
            Outcome::fail(
                self.problems.join("; "),
                "provision Grafana from deploy/grafana (datasources with uids prometheus, loki, \
                 tempo; the dashboard JSON in deploy/grafana/dashboards) and check that each \
                 datasource's URL is reachable from Grafana",
            )
        };
        self.evidence
            .into_iter()
            .fold(outcome, |outcome, line| outcome.evidence(line))
    }
}

async fn inspect(ctx: &CheckContext, grafana: &Grafana) -> Result<Findings, GrafanaError> {
    let mut findings = Findings::default();
    let health = grafana.health().await?;
    findings.evidence.push(format!(
        "GET {} -> version {}, database {}",
        health.evidence.url, health.version, health.database
    ));
    if !health.database_ok() {
        findings.problems.push(format!(
            "Grafana {} reports its database {:?}",
            health.version, health.database
        ));
        return Ok(findings);
    }
    findings
        .summary
        .push(format!("Grafana {} is up", health.version));
    let datasources = grafana.datasources().await?;
    findings.evidence.push(format!(
        "GET {} -> {} datasources",
        datasources.evidence.url,
        datasources.list.len()
    ));
    inspect_datasources(grafana, &datasources, &mut findings).await?;
    let uid = dashboard_uid(ctx);
    inspect_dashboard(grafana, &uid, &mut findings).await?;
    Ok(findings)
}

async fn inspect_datasources(
    grafana: &Grafana,
    datasources: &Datasources,
    findings: &mut Findings,
) -> Result<(), GrafanaError> {
    let mut healthy = Vec::new();
    for kind in DATASOURCE_TYPES {
        let Some(datasource) = datasources.of_type(kind) else {
            let present: Vec<&str> = datasources.list.iter().map(|d| d.kind.as_str()).collect();
            findings.problems.push(format!(
                "no datasource of type {kind} (present: {})",
                if present.is_empty() {
                    "none".to_owned()
                } else {
                    present.join(", ")
                }
            ));
            continue;
        };
        let label = format!(
            "{} (uid {}, {})",
            datasource.name, datasource.uid, datasource.url
        );
        let health = grafana.datasource_health(&datasource.uid).await?;
        match &health.status {
            HealthStatus::Ok => healthy.push(kind),
            HealthStatus::Unknown => {
                healthy.push(kind);
                findings
                    .evidence
                    .push(format!("{label}: health unknown ({})", health.message));
            }
            HealthStatus::Failing(status) => findings.problems.push(format!(
                "datasource {label} is unhealthy: {status}: {}",
                health.message
            )),
        }
        findings.evidence.push(format!(
            "GET {} -> {:?} {}",
            health.evidence.url, health.status, health.message
        ));
    }
    if !healthy.is_empty() {
        findings.summary.push(format!(
            "datasources {} present and healthy",
            healthy.join(", ")
        ));
    }
    Ok(())
}

/// The uid to look for: the one in `--dashboard`, else the Part 7 dashboard's.
/// A file that broke since the CLI validated it names no uid: the default stands.
fn dashboard_uid(ctx: &CheckContext) -> String {
    ctx.dashboard
        .as_deref()
        .and_then(|path| Dashboard::from_file(path).ok())
        .and_then(|dashboard| dashboard.uid)
        .unwrap_or_else(|| DEFAULT_UID.to_owned())
}

async fn inspect_dashboard(
    grafana: &Grafana,
    uid: &str,
    findings: &mut Findings,
) -> Result<(), GrafanaError> {
    let doc = match grafana.dashboard(uid).await {
        Ok(doc) => doc,
        Err(GrafanaError::DashboardNotFound { evidence, .. }) => {
            findings
                .evidence
                .push(format!("GET {} -> 404", evidence.url));
            findings.problems.push(format!(
                "no dashboard with uid {uid:?} (provisioned from deploy/grafana/provisioning/dashboards?)"
            ));
            return Ok(());
        }
        Err(error) => return Err(error),
    };
    let dashboard = match Dashboard::from_json(&doc.dashboard, &doc.evidence.url) {
        Ok(dashboard) => dashboard,
        Err(error) => {
            findings.problems.push(error.to_string());
            return Ok(());
        }
    };
    let titles = dashboard.titles();
    findings.evidence.push(format!(
        "GET {} -> {:?} with {} panels: {}",
        doc.evidence.url,
        dashboard.title,
        titles.len(),
        titles.join(", ")
    ));
    match panel_problems(&titles) {
        Some(problem) => findings
            .problems
            .push(format!("dashboard {uid:?}: {problem}")),
        None => findings
            .summary
            .push(format!("dashboard {uid:?} has the 8 Part 7 panels")),
    }
    Ok(())
}

/// What is wrong with a dashboard's panel titles against Part 7, if anything.
pub fn panel_problems(titles: &[&str]) -> Option<String> {
    let missing: Vec<&str> = PART7_TITLES
        .iter()
        .copied()
        .filter(|t| !titles.contains(t))
        .collect();
    let extra: Vec<&str> = titles
        .iter()
        .copied()
        .filter(|t| !PART7_TITLES.contains(t))
        .collect();
    if missing.is_empty() && titles.len() == PART7_TITLES.len() {
        return None;
    }
    let mut parts = vec![format!(
        "{} panels where Part 7 has {}",
        titles.len(),
        PART7_TITLES.len()
    )];
    if !missing.is_empty() {
        parts.push(format!("missing {}", quoted(&missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("unexpected {}", quoted(&extra)));
    }
    Some(parts.join(", "))
}

fn quoted(titles: &[&str]) -> String {
    titles
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Grafana that could not answer, with what to do about it.
fn source_error(grafana: &Grafana, error: &GrafanaError) -> Outcome {
    let hint = match error {
        GrafanaError::Unauthorized { .. } => {
            "pass --grafana-user USER:PASSWORD (or set GRAFANA_AUTH) for a user with the Viewer role"
        }
        GrafanaError::Forbidden(_) => {
            "use a user with at least the Viewer role in the dashboard's organisation"
        }
        GrafanaError::Source(SourceError::HtmlPage(_)) => {
            "an HTML page answered (a login page or a proxy): pass Grafana's own URL \
             (e.g. http://localhost:3000) and --grafana-user USER:PASSWORD"
        }
        GrafanaError::Source(e) if e.is_unreachable() => {
            "check the --grafana URL and that Grafana is running (docker compose -f deploy/compose.yaml ps)"
        }
        _ => "check that the --grafana URL points at Grafana (GET /api/health answers JSON)",
    };
    let outcome = Outcome::error(
        format!(
            "Grafana at {} could not answer: {error}",
            grafana.base_url()
        ),
        hint,
    );
    match error {
        GrafanaError::Source(source) => match source.evidence() {
            Some(evidence) => outcome.evidence(format!(
                "GET {} -> HTTP {}: {}",
                evidence.url,
                evidence.status.unwrap_or(0),
                evidence.body_excerpt
            )),
            None => outcome,
        },
        _ => outcome,
    }
}

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
/// source is an error; nothing evaluated is a skip.
pub fn judge(dashboard: &Dashboard, results: &[QueryResult]) -> Outcome {
    let of = |f: fn(&Verdict) -> bool| results.iter().filter(move |r| f(&r.verdict));
    let failed: Vec<&QueryResult> =
        of(|v| matches!(v, Verdict::Empty | Verdict::Rejected(_))).collect();
    let unreachable: Vec<&QueryResult> = of(|v| matches!(v, Verdict::Unreachable(_))).collect();
    let skipped: Vec<&QueryResult> = of(|v| matches!(v, Verdict::Skipped(_))).collect();
    let passed = of(|v| matches!(v, Verdict::Data(_))).count();
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            "; skipped: {}",
            skipped
                .iter()
                .map(|r| describe(r))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let outcome = if !failed.is_empty() {
        Outcome::fail(
            format!(
                "{} of {} evaluated panel queries return no data: {}{skipped_note}",
                failed.len(),
                results.len() - skipped.len(),
                failed
                    .iter()
                    .map(|r| describe(r))
                    .collect::<Vec<_>>()
                    .join("; ")
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
                unreachable
                    .iter()
                    .map(|r| describe(r))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "check the --prometheus and --loki URLs",
        )
    } else if passed == 0 {
        let detail = if results.is_empty() {
            format!("dashboard {:?} has no panel queries", dashboard.title)
        } else {
            format!("no panel query could be evaluated{skipped_note}")
        };
        return Outcome::skip(detail, NO_DASHBOARD);
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

    #[test]
    fn the_part7_titles_pass_in_any_order() {
        let mut titles = PART7_TITLES.to_vec();
        titles.reverse();
        assert_eq!(panel_problems(&titles), None);
    }

    #[test]
    fn a_missing_or_renamed_panel_is_named() {
        let seven = &PART7_TITLES[..7];
        let problem = panel_problems(seven).expect("7 panels");
        assert!(
            problem.contains("7 panels") && problem.contains("\"Logger Stream\""),
            "{problem}"
        );
        let mut renamed = PART7_TITLES.to_vec();
        renamed[5] = "CPU";
        let problem = panel_problems(&renamed).expect("renamed");
        assert!(
            problem.contains("missing \"CPU Usage\"") && problem.contains("unexpected \"CPU\""),
            "{problem}"
        );
    }

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
            outcome.detail.contains("\"B\" (`q_B`): no data"),
            "{}",
            outcome.detail
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
