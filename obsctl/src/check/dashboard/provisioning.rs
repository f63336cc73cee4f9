//! The `grafana` check: a live Grafana is healthy, has the Prometheus, Loki and Tempo
//! datasources (each passing Grafana's own health check where Grafana has one), and serves the
//! dashboard with its 8 panels, each pointing at a datasource Grafana has.

use super::panels::{DEFAULT_UID, Dashboard, PART7_TITLES};
use crate::check::context::CheckContext;
use crate::check::model::Outcome;
use crate::sources::grafana::{Datasource, Datasources, Grafana, GrafanaError, HealthStatus};
use crate::sources::http::SourceError;

const NO_GRAFANA: &str = "pass --grafana URL (e.g. http://localhost:3000) of the Grafana provisioned from deploy/grafana";
const DATASOURCE_TYPES: [&str; 3] = ["prometheus", "loki", "tempo"];

/// `grafana`: Grafana is healthy, has healthy Prometheus, Loki and Tempo datasources, and the
/// dashboard (uid from `--dashboard`, else `fastapi-dashboard`) has the 8 panels.
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
    inspect_dashboard(grafana, &uid, &datasources, &mut findings).await?;
    Ok(findings)
}

async fn inspect_datasources(
    grafana: &Grafana,
    datasources: &Datasources,
    findings: &mut Findings,
) -> Result<(), GrafanaError> {
    let mut healthy = Vec::new();
    for kind in DATASOURCE_TYPES {
        match datasources.of_type(kind) {
            Some(datasource) => {
                if inspect_datasource(grafana, datasource, findings).await? {
                    healthy.push(kind);
                }
            }
            None => {
                let present: Vec<&str> = datasources.list.iter().map(|d| d.kind.as_str()).collect();
                findings.problems.push(format!(
                    "no datasource of type {kind} (present: {})",
                    if present.is_empty() {
                        "none".to_owned()
                    } else {
                        present.join(", ")
                    }
                ));
            }
        }
    }
    if !healthy.is_empty() {
        findings.summary.push(format!(
            "datasources {} present and healthy",
            healthy.join(", ")
        ));
    }
    Ok(())
}

/// Asks Grafana to check one datasource; `false` when the check fails. A Grafana without the
/// health API (before 9), or a datasource without a uid (before 7), cannot tell: not a failure.
async fn inspect_datasource(
    grafana: &Grafana,
    datasource: &Datasource,
    findings: &mut Findings,
) -> Result<bool, GrafanaError> {
    let label = format!(
        "{} (uid {}, {})",
        datasource.name, datasource.uid, datasource.url
    );
    if datasource.uid.is_empty() {
        findings
            .evidence
            .push(format!("{label}: health unknown (no uid)"));
        return Ok(true);
    }
    let health = grafana.datasource_health(&datasource.uid).await?;
    let (healthy, status) = match &health.status {
        HealthStatus::Ok => (true, "OK"),
        HealthStatus::Unknown => (true, "health unknown"),
        HealthStatus::Failing(status) => {
            findings.problems.push(format!(
                "datasource {label} is unhealthy: {status}: {}",
                health.message
            ));
            (false, status.as_str())
        }
    };
    findings.evidence.push(format!(
        "GET {} -> {label}: {status}: {}",
        health.evidence.url, health.message
    ));
    Ok(healthy)
}

/// The uid to look for: the one in `--dashboard`, else the 8-panel dashboard's.
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
    datasources: &Datasources,
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
    let dangling = dangling_datasources(&dashboard, datasources);
    match panel_problems(&titles) {
        Some(problem) => findings
            .problems
            .push(format!("dashboard {uid:?}: {problem}")),
        None if dangling.is_empty() => findings.summary.push(format!(
            "dashboard {uid:?} has the 8 panels of docs/contract.md"
        )),
        None => {}
    }
    findings.problems.extend(dangling);
    Ok(())
}

/// Panels naming a datasource uid Grafana does not have: they would show "Datasource ... was
/// not found". Old dashboards name datasources by name; template references
/// (`${DS_PROMETHEUS}`) are resolved by Grafana when importing, not here.
fn dangling_datasources(dashboard: &Dashboard, datasources: &Datasources) -> Vec<String> {
    dashboard
        .panels
        .iter()
        .filter_map(|panel| {
            let uid = panel.datasource_uid.as_deref()?;
            let known = uid.starts_with('$')
                || datasources
                    .list
                    .iter()
                    .any(|d| d.uid == uid || d.name == uid);
            (!known).then(|| {
                format!(
                    "panel {:?} uses datasource uid {uid:?}, which Grafana does not have",
                    panel.title
                )
            })
        })
        .collect()
}

/// What is wrong with a dashboard's panel titles against the 8 expected, if anything.
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
        "{} panels where the dashboard of docs/contract.md has {}",
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
}
