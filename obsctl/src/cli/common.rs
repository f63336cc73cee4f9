//! Flags that `check` and `verify` share: the stack's stores and their credentials, the
//! report's format, the config file; and TLS, which `load` shares too.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::check::context::StackUrls;
use crate::check::dashboard::panels::Dashboard;
use crate::check::policy::{Overrides, Policy};
use crate::check::registry;
use crate::check::render::Format;
use crate::config_file::{self, LoadedFile};
use crate::sources::auth::{Auth, Endpoint, redact_url};
use crate::tls::{PemFile, TlsConfig, TlsOptions};

use super::sources::{
    GrafanaCredentials, LokiCredentials, MetricsCredentials, PrometheusCredentials,
    TempoCredentials, UrlFrom, endpoint, flag_credentials,
};

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
    /// Dashboard JSON file whose every panel query must return data, e.g.
    /// deploy/grafana/dashboards/fastapi-dashboard.json (verify uses that one, built in, when
    /// this is not given).
    #[arg(long, value_name = "FILE")]
    pub dashboard: Option<PathBuf>,
    /// Service name expected in logs (`service`) and traces (`service.name`).
    #[arg(long, default_value = "fastapi-backend", value_name = "NAME")]
    pub service: String,
    /// Credentials of the service's /metrics.
    #[command(flatten)]
    pub metrics_auth: MetricsCredentials,
    /// Credentials and tenant of Prometheus.
    #[command(flatten)]
    pub prometheus_auth: PrometheusCredentials,
    /// Credentials and tenant of Loki.
    #[command(flatten)]
    pub loki_auth: LokiCredentials,
    /// Credentials and tenant of Tempo.
    #[command(flatten)]
    pub tempo_auth: TempoCredentials,
    /// Credentials of Grafana.
    #[command(flatten)]
    pub grafana_auth: GrafanaCredentials,
}

impl StackArgs {
    /// The validated stores (from the flags, else `file`'s `[sources.*]` when `from` allows):
    /// URLs parse, credentials can be sent, the dashboard file parses.
    pub fn urls(&self, file: Option<&LoadedFile>, from: UrlFrom) -> anyhow::Result<StackUrls> {
        if let Some(path) = &self.dashboard {
            Dashboard::from_file(path)
                .with_context(|| format!("--dashboard {}", path.display()))?;
        }
        let loki = self.loki.as_deref();
        let tempo = self.tempo.as_deref();
        let grafana = self.grafana.as_deref();
        Ok(StackUrls {
            loki: endpoint("--loki", loki, self.loki_auth.given(), file, from)?,
            tempo: endpoint("--tempo", tempo, self.tempo_auth.given(), file, from)?,
            grafana: endpoint("--grafana", grafana, self.grafana_auth.given(), file, from)?,
            dashboard: self.dashboard.clone(),
            // Set from the TLS flags, which `load` shares.
            tls: TlsConfig::default(),
        })
    }

    /// The service at `target` (`--target`, else the file's `[sources.target]`), with the
    /// credentials of its /metrics.
    pub fn target(
        &self,
        target: Option<&str>,
        file: Option<&LoadedFile>,
        from: UrlFrom,
    ) -> anyhow::Result<Option<Endpoint>> {
        endpoint("--target", target, self.metrics_auth.given(), file, from)
    }

    /// Prometheus at `url` (`--prometheus`, else the file's), with its credentials and tenant.
    pub fn prometheus(
        &self,
        url: Option<&str>,
        file: Option<&LoadedFile>,
        from: UrlFrom,
    ) -> anyhow::Result<Option<Endpoint>> {
        endpoint(
            "--prometheus",
            url,
            self.prometheus_auth.given(),
            file,
            from,
        )
    }

    /// The /metrics bearer token the flags give, for a service obsctl starts itself (which
    /// reads METRICS_TOKEN); a login is refused, such a service could not check it.
    pub fn metrics_token(&self) -> anyhow::Result<Option<String>> {
        let credentials = flag_credentials(self.metrics_auth.given())?;
        match credentials.auth {
            Auth::Anonymous => Ok(None),
            Auth::Bearer(token) => Ok(Some(token)),
            Auth::Basic { .. } => anyhow::bail!(
                "--metrics-user (or METRICS_AUTH) needs --target: a service verify starts is given --metrics-token as METRICS_TOKEN"
            ),
        }
    }
}

/// TLS for every source and load target; one declaration, flattened into load, check and
/// verify.
#[derive(Debug, Default, Args)]
pub struct TlsArgs {
    /// PEM file of CA certificates to trust besides the system's (a private CA); it may hold
    /// several.
    #[arg(long, value_name = "FILE", help_heading = TLS_HEADING)]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate (chain) for servers that require one (mutual TLS); with --key.
    #[arg(long, value_name = "FILE", help_heading = TLS_HEADING)]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", help_heading = TLS_HEADING)]
    pub key: Option<PathBuf>,
    /// Do not verify servers' certificates: still encrypted, but anyone on the path can pose as
    /// the server. For tests only.
    #[arg(long, help_heading = TLS_HEADING)]
    pub insecure: bool,
}

/// The `--help` heading of the TLS flags.
const TLS_HEADING: &str = "TLS (https:// targets and sources)";

impl TlsArgs {
    /// The checked TLS settings: each flag, else `file`'s `[tls]`; files read and parsed now.
    /// Says once on stderr when verification is off.
    pub fn config(&self, file: Option<&LoadedFile>) -> anyhow::Result<TlsConfig> {
        let from_file = file.map(LoadedFile::tls).unwrap_or_default();
        let flag =
            |path: &Option<PathBuf>, name: &str| path.as_ref().map(|p| PemFile::new(p, name));
        let options = TlsOptions {
            cacert: flag(&self.cacert, "--cacert").or(from_file.cacert),
            cert: flag(&self.cert, "--cert").or(from_file.cert),
            key: flag(&self.key, "--key").or(from_file.key),
            insecure: self.insecure || from_file.insecure,
        };
        let config = TlsConfig::load(&options)?;
        if config.is_insecure() {
            let origin = if self.insecure {
                "--insecure"
            } else {
                "[tls] insecure"
            };
            eprintln!(
                "obsctl: warning: {origin}: TLS certificates are not verified; anyone on the path can pose as the server"
            );
        }
        Ok(config)
    }
}

/// How the report is written.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE instead of stdout (`-` is stdout).
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
    /// Config file: check levels (`[checks]`, id = "allow" | "warn" | "deny"), sources and
    /// their credentials (`[sources.NAME]`), TLS (`[tls]`); default: obsctl.toml in the
    /// working directory, when there is one. Flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl PolicyArgs {
    /// The config file (`--config`, else obsctl.toml here), read and parsed once; what in it
    /// should change (inline secrets) is said on stderr.
    pub fn config_file(&self) -> anyhow::Result<Option<LoadedFile>> {
        let dir = std::env::current_dir().context("cannot read the working directory")?;
        let file = config_file::load(self.config.as_deref(), &dir)?;
        for warning in file.iter().flat_map(LoadedFile::warnings) {
            eprintln!("obsctl: warning: {warning}");
        }
        Ok(file)
    }

    /// The policy: the file's levels, then the flags. Unknown ids and levels are errors naming
    /// them.
    pub fn policy(&self, file: Option<&LoadedFile>) -> anyhow::Result<Policy> {
        let overrides = Overrides {
            config: self.config.clone(),
            deny: self.deny.clone(),
            warn: self.warn.clone(),
            allow: self.allow.clone(),
            strict: self.strict,
        };
        Ok(Policy::with_file(file, &overrides)?)
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

/// An http:// or https:// URL, or an error naming the flag (and the URL, its userinfo hidden).
pub fn validate_url(flag: &str, raw: &str) -> anyhow::Result<()> {
    let shown = redact_url(raw);
    let url = url::Url::parse(raw)
        .with_context(|| format!("{flag} {shown:?} is not a URL (e.g. http://localhost:8000)"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "{flag} {shown:?} must be an http:// or https:// URL"
    );
    Ok(())
}
