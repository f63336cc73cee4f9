//! Flags that `check` and `verify` share: the stack's stores and the report's format.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::check::context::StackUrls;
use crate::check::dashboard::panels::Dashboard;
use crate::check::render::Format;
use crate::sources::grafana::GrafanaAuth;

/// The Grafana stack's stores, the service's name and its /metrics token.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Loki that receives the service's logs, e.g. http://localhost:3100.
    #[arg(long, value_name = "URL")]
    pub loki: Option<String>,
    /// Tempo that receives the service's traces, e.g. http://localhost:3200.
    #[arg(long, value_name = "URL")]
    pub tempo: Option<String>,
    /// Grafana with the provisioned datasources and dashboard, e.g. http://localhost:3000.
    #[arg(long, value_name = "URL")]
    pub grafana: Option<String>,
    /// Grafana login for --grafana (anonymous access when not given).
    #[arg(
        long,
        env = "GRAFANA_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub grafana_user: Option<String>,
    /// Dashboard JSON file whose every panel query must return data (Part 7), e.g.
    /// deploy/grafana/dashboards/fastapi-dashboard.json (verify uses that one, built in, when
    /// this is not given).
    #[arg(long, value_name = "FILE")]
    pub dashboard: Option<PathBuf>,
    /// Bearer token for a /metrics protected by the service (`Authorization: Bearer TOKEN`).
    #[arg(
        long,
        env = "METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub metrics_token: Option<String>,
    /// Service name expected in logs (`service`) and traces (`service.name`).
    #[arg(long, default_value = "fastapi-backend", value_name = "NAME")]
    pub service: String,
}

impl StackArgs {
    /// The validated stores: URLs parse, the login has its colon, the dashboard file parses.
    pub fn urls(&self) -> anyhow::Result<StackUrls> {
        for (flag, url) in [
            ("--loki", &self.loki),
            ("--tempo", &self.tempo),
            ("--grafana", &self.grafana),
        ] {
            if let Some(url) = url {
                validate_url(flag, url)?;
            }
        }
        if let Some(path) = &self.dashboard {
            Dashboard::from_file(path)
                .with_context(|| format!("--dashboard {}", path.display()))?;
        }
        let grafana_auth = match (&self.grafana, &self.grafana_user) {
            (Some(_), Some(raw)) => GrafanaAuth::basic(raw)
                .context("--grafana-user (or GRAFANA_AUTH) must be USER:PASSWORD")?,
            _ => GrafanaAuth::Anonymous,
        };
        Ok(StackUrls {
            loki: self.loki.clone(),
            tempo: self.tempo.clone(),
            grafana: self.grafana.clone(),
            grafana_auth,
            dashboard: self.dashboard.clone(),
        })
    }

    /// The /metrics token, if a non-empty one was given.
    pub fn metrics_token(&self) -> Option<String> {
        self.metrics_token.clone().filter(|t| !t.is_empty())
    }
}

/// How the report is written.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Skipped checks count as failures.
    #[arg(long)]
    pub strict: bool,
}

/// An http:// or https:// URL, or an error naming the flag.
pub fn validate_url(flag: &str, raw: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(raw)
        .with_context(|| format!("{flag} {raw:?} is not a URL (e.g. http://localhost:8000)"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "{flag} {raw:?} must be an http:// or https:// URL"
    );
    Ok(())
}
