//! `obsctl verify`: the whole proof on one machine. Starts an OTLP receiver, the service (with
//! its stdout captured) and, when installed, a real Prometheus; replays a scenario with the
//! load engine; runs every check; stops everything it started, whatever happens.

pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::check::context::{CheckContext, LogInput, StackUrls};
use crate::check::model::Level;
use crate::check::policy::Policy;
use crate::check::report::CheckReport;
use crate::load::{LoadConfig, Overrides};
use crate::report::fold::PathFolder;
use crate::scenario::Scenario;
use crate::sources::auth::{Auth, Credentials, Endpoint};
use crate::sources::exposition::Exposition;
use crate::sources::http::HttpClient;
use crate::sources::logs::CountedRun;
use crate::sources::otlp::{OtlpOptions, OtlpReceiver};
use crate::sources::prometheus::Prometheus;
use crate::sources::prometheus_server::{
    self, PrometheusServer, PrometheusServerConfig, ScrapeJob, ScrapeTls,
};
use crate::sources::target::MetricsEndpoint;
use crate::tls::TlsConfig;
use service::Service;

/// The dashboard that deploy/ provisions in Grafana, built in so that `obsctl verify`
/// evaluates its panels from any directory.
pub const BUILTIN_DASHBOARD: &str =
    include_str!("../../../deploy/grafana/dashboards/fastapi-dashboard.json");

/// The built-in dashboard as a file, for the check that reads one; removed when dropped.
fn builtin_dashboard_file() -> Result<tempfile::NamedTempFile, VerifyError> {
    use std::io::Write as _;
    let mut file = tempfile::Builder::new()
        .prefix("obsctl-dashboard-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| VerifyError::Config(format!("cannot write the built-in dashboard: {e}")))?;
    file.write_all(BUILTIN_DASHBOARD.as_bytes())
        .map_err(|e| VerifyError::Config(format!("cannot write the built-in dashboard: {e}")))?;
    Ok(file)
}

/// The smoke scenario, built in so that `obsctl verify` works from any directory.
pub const BUILTIN_SMOKE: &str = include_str!("../../../scenarios/smoke.toml");

/// Why a verification could not run (as opposed to checks that failed).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The embedded OTLP receiver could not start.
    #[error("cannot start the OTLP receiver: {0}")]
    Receiver(String),
    /// The service could not be started or never listened.
    #[error("the service did not start: {0}")]
    Service(String),
    /// The local Prometheus could not be started.
    #[error("cannot start Prometheus: {0}")]
    Prometheus(String),
    /// The scenario or load settings are invalid.
    #[error("{0}")]
    Config(String),
    /// The load run failed to start.
    #[error("load: {0}")]
    Load(#[from] crate::load::LoadError),
    /// Interrupted (Ctrl-C) before the load began, or while the checks ran.
    #[error("interrupted")]
    Interrupted,
    /// An HTTP client could not be built.
    #[error("{0}")]
    Source(#[from] crate::sources::http::SourceError),
}

/// Where the service comes from.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start this shell command line (run by `sh -c`) with HOST, PORT and
    /// OTEL_EXPORTER_OTLP_ENDPOINT in its environment.
    Spawn(String),
    /// An already running service at this base URL, with the credentials of its /metrics (not
    /// restarted, stdout not captured).
    Url(Endpoint),
}

/// Whether and how to use Prometheus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrometheusMode {
    /// Start `prometheus` from the PATH when installed; skip its checks otherwise.
    Auto,
    /// Do not use Prometheus.
    Off,
    /// Use the Prometheus at this URL, with its credentials (it must scrape the target itself).
    Url(Endpoint),
}

/// Everything `obsctl verify` needs, validated.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Scenario file; the built-in smoke scenario when `None`.
    pub scenario: Option<PathBuf>,
    /// The service.
    pub target: Target,
    /// Prometheus use.
    pub prometheus: PrometheusMode,
    /// Loki, Tempo and Grafana to check, and a dashboard file whose panel queries are evaluated
    /// against the Prometheus (and Loki) used.
    pub stack: StackUrls,
    /// Service name expected in logs and traces.
    pub service: String,
    /// Longest wait for ingestion once the load ended.
    pub timeout: Duration,
    /// Longest wait for the spawned service to accept connections.
    pub startup_timeout: Duration,
    /// Bearer token of a protected `/metrics`: given to a spawned service as METRICS_TOKEN and
    /// used for every scrape (obsctl's and Prometheus's). A `Target::Url`'s own credentials
    /// win for obsctl's scrapes.
    pub metrics_token: Option<String>,
    /// Load overrides (rate, duration).
    pub overrides: Overrides,
    /// The level of each check (the built-in scenario's load checks default to warn).
    pub policy: Policy,
    /// Show load progress (on a terminal).
    pub progress: bool,
    /// Approximate bytes the embedded OTLP receiver keeps of the spans (`--receiver-budget`);
    /// past them spans are dropped and counted, and the trace checks say so.
    pub receiver_budget_bytes: usize,
}

/// Set to `true` (Ctrl-C) to stop a verification early. A receiver whose sender is gone never
/// fires: [`never`] is one.
pub type Interrupt = tokio::sync::watch::Receiver<bool>;

/// An interrupt that never fires.
pub fn never() -> Interrupt {
    tokio::sync::watch::channel(false).1
}

/// Runs `future` unless `interrupt` fires first.
async fn cancellable<T>(
    future: impl Future<Output = T>,
    interrupt: &Interrupt,
) -> Result<T, VerifyError> {
    tokio::select! {
        value = future => Ok(value),
        () = interrupted(interrupt.clone()) => Err(VerifyError::Interrupted),
    }
}

/// Completes when `interrupt` fires; never when its sender is gone without firing.
async fn interrupted(mut interrupt: Interrupt) {
    if interrupt.wait_for(|fired| *fired).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a verification produced: the check report, plus notes for the user.
#[derive(Debug)]
pub struct Verification {
    /// The checks; `None` when the run was interrupted (the partial run is still reported).
    pub report: Option<CheckReport>,
    /// The load run that was checked.
    pub run: crate::report::RunReport,
    /// Things the user should know (what was started, what was skipped and why).
    pub notes: Vec<String>,
}

/// Runs the whole verification; everything started is stopped before this returns, also when
/// `interrupt` fires (a run interrupted during the load returns its partial run report) and
/// when the returned future is dropped.
pub async fn run(
    options: VerifyOptions,
    interrupt: Interrupt,
) -> Result<Verification, VerifyError> {
    let scenario = scenario(&options)?;
    let tls = &options.stack.tls;
    let client = HttpClient::with_tls(
        crate::sources::http::HttpOptions::within(options.timeout),
        tls,
    )?;
    let mut notes = Vec::new();

    // Only what the checks read: the receiver's memory must not grow with every request.
    let receiver_options = OtlpOptions {
        budget_bytes: options.receiver_budget_bytes,
        ..OtlpOptions::compact()
    };
    let receiver = OtlpReceiver::start_with(loopback(0), receiver_options)
        .await
        .map_err(|e| VerifyError::Receiver(e.to_string()))?;
    let receiver = Arc::new(receiver);
    let (service, base) = match &options.target {
        Target::Spawn(command) => {
            let service = cancellable(
                Service::start(
                    command,
                    &receiver.endpoint(),
                    options.metrics_token.as_deref(),
                    options.startup_timeout,
                ),
                &interrupt,
            )
            .await??;
            notes.push(format!(
                "started `{command}` on {} (stdout captured as the log source)",
                service.addr
            ));
            let base = format!("http://{}", service.addr);
            (Some(service), base)
        }
        Target::Url(endpoint) => (None, endpoint.url.trim_end_matches('/').to_owned()),
    };
    let local_prometheus =
        cancellable(start_prometheus(&options, &base, &mut notes), &interrupt).await??;

    let metrics_client = client.with_credentials(&metrics_credentials(&options));
    let metrics = MetricsEndpoint::for_target(metrics_client, &base);
    // The counter before the run: accounting compares increments, not totals.
    let baseline: Option<Exposition> = metrics.scrape().await.ok().and_then(|s| s.parsed.ok());
    let mut config = LoadConfig::new(
        scenario,
        Overrides {
            target: Some(base.clone()),
            ..options.overrides.clone()
        },
    )
    .map_err(|e| VerifyError::Config(e.to_string()))?;
    config.progress = options.progress;
    config.tls = tls.clone();
    // The run's request lines are counted as they arrive, so that accounting holds however
    // many lines the log budget drops.
    if let Some(service) = &service {
        service.stdout.buffer.count_run(CountedRun {
            prefix: config.run_id.to_string(),
            paths: PathFolder::new(config.path_templates()),
        });
    }
    // The run's traces are linked per trace as their spans arrive.
    receiver.follow_run(&config.run_id.to_string());
    // Ctrl-C during the load ends it early: its partial report is what the user gets.
    let run = crate::load::run(config, interrupted(interrupt.clone())).await?;
    if run.interrupted {
        stop_started(service, local_prometheus).await;
        return Ok(Verification {
            report: None,
            run,
            notes,
        });
    }

    let mut ctx = CheckContext::new(options.service.clone(), options.timeout);
    ctx.target = Some(base.clone());
    ctx.metrics = Some(metrics);
    ctx.baseline = baseline;
    ctx.run = Some(run.clone());
    // obsctl configured its own Prometheus: the target must be found at its exact address.
    ctx.exact_prometheus_target = local_prometheus.is_some();
    ctx.prometheus = match (&local_prometheus, &options.prometheus) {
        (Some(local), _) => Some(Prometheus::new(client.clone(), local.url())),
        (None, PrometheusMode::Url(endpoint)) => Some(Prometheus::new(
            client.with_credentials(&endpoint.credentials),
            endpoint.url.clone(),
        )),
        _ => None,
    };
    ctx.add_stack(&client, &options.stack);
    // Without --dashboard, the provisioned dashboard (built in) is evaluated against the
    // Prometheus in use: the dashboard's panels are part of the proof.
    let builtin_dashboard = match (&ctx.dashboard, &ctx.prometheus) {
        (None, Some(_)) => Some(builtin_dashboard_file()?),
        _ => None,
    };
    if let Some(file) = &builtin_dashboard {
        ctx.dashboard = Some(file.path().to_path_buf());
    }
    if let Some(service) = &service {
        ctx.exclusive = true;
        ctx.otlp = Some(Arc::clone(&receiver));
        ctx.logs = Some(LogInput {
            buffer: service.stdout.buffer.clone(),
            origin: format!("stdout of `{}`", service.command),
            stderr: Some(service.stderr.buffer.clone()),
        });
    } else {
        notes.push("the service was not started by obsctl: its stdout and spans are not seen (pass --logs, --tempo)".to_owned());
    }
    ctx.restart_deadline(options.timeout);
    // Dropping the checks on Ctrl-C drops what was started too (killed on drop).
    let mut policy = options.policy.clone();
    if options.scenario.is_none() {
        // The built-in smoke scenario expects the reference backend's API (404 for an unknown
        // id, 422 for a bad one, 201 on create): another correct service may answer otherwise.
        policy.situation_default("load-thresholds", Level::Warn);
        policy.situation_default("load-expected-status", Level::Warn);
    }
    let report = cancellable(crate::check::run(&ctx, &policy), &interrupt).await?;

    stop_started(service, local_prometheus).await;
    Ok(Verification {
        report: Some(report),
        run,
        notes,
    })
}

/// Stops what verify started, gracefully: the service with SIGTERM (its spans and logs flushed),
/// then Prometheus.
async fn stop_started(service: Option<Service>, prometheus: Option<PrometheusServer>) {
    if let Some(service) = service {
        service.stop(Duration::from_secs(10)).await;
    }
    if let Some(local) = prometheus {
        local.stop(Duration::from_secs(2)).await;
    }
}

fn scenario(options: &VerifyOptions) -> Result<Scenario, VerifyError> {
    match &options.scenario {
        Some(path) => Scenario::from_file(path).map_err(|e| VerifyError::Config(e.to_string())),
        None => Scenario::parse(
            BUILTIN_SMOKE,
            std::path::Path::new("scenarios/smoke.toml (built in)"),
        )
        .map_err(|e| VerifyError::Config(e.to_string())),
    }
}

async fn start_prometheus(
    options: &VerifyOptions,
    base: &str,
    notes: &mut Vec<String>,
) -> Result<Option<PrometheusServer>, VerifyError> {
    if options.prometheus != PrometheusMode::Auto {
        return Ok(None);
    }
    let Some(binary) = prometheus_server::find_binary() else {
        notes.push(
            "no `prometheus` on the PATH: Prometheus checks skipped (apt-get install prometheus)"
                .to_owned(),
        );
        return Ok(None);
    };
    let target = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let config = PrometheusServerConfig {
        binary: binary.clone(),
        scrape_interval: Duration::from_secs(1),
        jobs: vec![ScrapeJob {
            job_name: "fastapi-backend".to_owned(),
            targets: vec![target.to_owned()],
            metrics_path: "/metrics".to_owned(),
            bearer_token: options.metrics_token.clone(),
            tls: base
                .starts_with("https://")
                .then(|| scrape_tls(&options.stack.tls)),
        }],
        ready_timeout: Duration::from_secs(20),
    };
    let local = PrometheusServer::start(&config)
        .await
        .map_err(|e| VerifyError::Prometheus(e.to_string()))?;
    notes.push(format!(
        "started {} on {}, scraping {target} every 1 s",
        binary.display(),
        local.url()
    ));
    Ok(Some(local))
}

/// What obsctl's scrapes of /metrics carry: a `Target::Url`'s own credentials, else the token.
fn metrics_credentials(options: &VerifyOptions) -> Credentials {
    match &options.target {
        Target::Url(endpoint) if !endpoint.credentials.is_empty() => endpoint.credentials.clone(),
        _ => Credentials {
            auth: options
                .metrics_token
                .as_deref()
                .and_then(|token| Auth::bearer(token).ok())
                .unwrap_or_default(),
            tenant: None,
        },
    }
}

/// The TLS settings of obsctl, as Prometheus's scrape `tls_config` of an https target.
fn scrape_tls(tls: &TlsConfig) -> ScrapeTls {
    let absolute = |file: &Option<crate::tls::PemFile>| {
        file.as_ref()
            .map(|f| std::path::absolute(&f.path).unwrap_or_else(|_| f.path.clone()))
    };
    let options = tls.options();
    ScrapeTls {
        ca_file: absolute(&options.cacert),
        cert_file: absolute(&options.cert),
        key_file: absolute(&options.key),
        insecure_skip_verify: tls.is_insecure(),
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A loopback port that was free a moment ago, for programs that cannot bind port 0 and say
/// which port they got.
pub fn free_loopback_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind(loopback(0))?.local_addr()
}
