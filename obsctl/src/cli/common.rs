//! Flags that `check` and `verify` share: the stack's stores and the report's format.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::check::context::StackUrls;
use crate::check::dashboard::panels::Dashboard;
use crate::check::policy::{Overrides, Policy};
use crate::check::registry;
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
}

/// The level of each check: the policy file and the flags that override it.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Check ID fails the run when it finds something (repeatable, or comma-separated).
    #[arg(long, value_name = "ID")]
    pub deny: Vec<String>,
    /// Check ID only warns (repeatable, or comma-separated).
    #[arg(long, value_name = "ID")]
    pub warn: Vec<String>,
    /// Check ID is not run (repeatable, or comma-separated).
    #[arg(long, value_name = "ID")]
    pub allow: Vec<String>,
    /// Every check not explicitly allowed is denied: warnings and skips fail the run.
    #[arg(long)]
    pub strict: bool,
    /// Policy file with a [checks] table (id = "allow" | "warn" | "deny"); default:
    /// obsctl.toml in the working directory, when there is one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy: the file, then the flags. Unknown ids and levels are errors naming them.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let dir = std::env::current_dir().context("cannot read the working directory")?;
        let overrides = Overrides {
            config: self.config.clone(),
            deny: self.deny.clone(),
            warn: self.warn.clone(),
            allow: self.allow.clone(),
            strict: self.strict,
        };
        Ok(Policy::load(&overrides, &dir)?)
    }
}

/// The levels part of `check --help` and `verify --help`, with every check, made from the
/// registry.
pub fn levels_help() -> String {
    format!(
        "Checks (id, default level, the sources that run it):\n{}\n\
Levels: deny (a finding fails the run), warn (reported, never fails), allow (not run).\n\
deny is the checklist and the contract; warn is advice beyond it. Change a level with\n\
--deny/--warn/--allow ID, or in obsctl.toml (or --config FILE):\n\
  [checks]\n\
  metrics-cardinality = \"deny\"\n\
  logs-loki = \"allow\"\n\
Flags win over the file; --strict denies every check not allowed, skips included.",
        registry::help_table()
    )
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
