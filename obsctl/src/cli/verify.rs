//! `obsctl verify`: start the service, an OTLP receiver and Prometheus, replay a scenario, run
//! every check, stop everything.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::check::{emit, exit_code};
use super::common::{PolicyArgs, ReportArgs, StackArgs, TlsArgs};
use super::exit;
use super::sources::UrlFrom;
use crate::load::{Overrides, Rate};
use crate::verify::{self, PrometheusMode, Target, VerifyOptions, service};

const LONG_HELP: &str = "\
With no options, verify starts the `backend` binary that sits next to obsctl (with an
in-memory store), points its OTLP exporter at obsctl's own receiver, captures its stdout as
the log source, starts a real Prometheus when `prometheus` is on the PATH (temporary
directory, free port, 1 s scrape), replays the built-in smoke scenario and runs every check,
accounting included. Loki, Tempo and Grafana are checked only when given (--loki, --tempo,
--grafana).

Every panel query of the 8-panel dashboard that deploy/ provisions (built in; --dashboard FILE
for another) is evaluated against the Prometheus in use (and the Loki given): a panel that
would show \"No data\" fails the dashboard-panels check.

--spawn CMD runs CMD through `sh -c` with HOST, PORT (a free port) and
OTEL_EXPORTER_OTLP_ENDPOINT in its environment, so any service that honours them can be
verified, e.g.:
  obsctl verify --spawn 'exec uvicorn main:app --host $HOST --port $PORT'

Everything started is stopped at the end, on failure, on Ctrl-C, SIGTERM or SIGHUP (during the
load, the partial run's summary is printed), and even when obsctl itself is killed: a watchdog
process stops what obsctl started once obsctl is gone.

With a SCENARIO file, its thresholds and `expect` lists are checks too (load-thresholds,
load-expected-status, level deny); with the built-in smoke scenario, whose expectations are the
reference backend's API, they only warn.

Exit codes:
  0    no denied check failed (warnings never fail; skips fail only with --strict)
  1    a denied check failed
  2    bad usage, or the service / Prometheus could not be started
  130  stopped by Ctrl-C (SIGINT); 143 by SIGTERM, 129 by SIGHUP (everything started is
       stopped, also when obsctl itself is killed)";

/// Arguments of `obsctl verify`.
#[derive(Debug, Args)]
#[command(after_long_help = format!("{}\n\n{LONG_HELP}", super::common::levels_help()))]
pub struct VerifyArgs {
    /// Scenario file (TOML). Default: the built-in smoke scenario (scenarios/smoke.toml).
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Command line that starts the service (run by `sh -c`). Default: the `backend` binary
    /// next to obsctl.
    #[arg(long, value_name = "CMD", conflicts_with = "target")]
    pub spawn: Option<String>,
    /// Verify an already running service instead of starting one (its stdout and spans are
    /// then not seen: add --tempo for traces).
    #[arg(long, short = 't', value_name = "URL")]
    pub target: Option<String>,
    /// `auto`: start `prometheus` from the PATH when installed; `off`; or the URL of a
    /// Prometheus that scrapes the target.
    #[arg(long, default_value = "auto", value_name = "auto|off|URL")]
    pub prometheus: String,
    /// The stack's stores, the service's name and its /metrics token (verify gives the token
    /// to the service it starts, as METRICS_TOKEN, and scrapes with it).
    #[command(flatten)]
    pub stack: StackArgs,
    /// Override the scenario's rate (requests per second, or `max`).
    #[arg(long, value_name = "N|max")]
    pub rps: Option<Rate>,
    /// Override the scenario's duration, e.g. 3s.
    #[arg(long, value_parser = crate::scenario::duration::run_flag, value_name = "D")]
    pub duration: Option<Duration>,
    /// Extra header on every request of the load, e.g. -H 'X-Api-Key: k-{{run_id}}'
    /// (repeatable; wins over the scenario's headers of the same name). The checks' own
    /// requests do not carry it.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = crate::scenario::Header::parse_flag)]
    pub headers: Vec<crate::scenario::Header>,
    /// How the report is written.
    #[command(flatten)]
    pub report: ReportArgs,
    /// The level of each check.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Longest wait for ingestion after the load ends.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "D")]
    pub timeout: Duration,
    /// Longest wait for the started service to accept connections.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "D")]
    pub startup_timeout: Duration,
    /// Most memory obsctl's OTLP receiver keeps of the spans, in MiB: spans past it are
    /// dropped and counted, and the trace checks say so instead of judging.
    #[arg(long, default_value_t = 128, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub receiver_budget: u64,
    /// No progress display and no notes on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// TLS for an https:// --target and https:// sources (the service verify starts, and its
    /// OTLP receiver, stay plain).
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Runs `obsctl verify`.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = options(&args)?;
    let (stopped, which) = super::signals::listen();
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stopped.await;
        let _ = interrupt.send(true);
    });
    let stop_code = || {
        let stop = *which.borrow();
        stop.map_or(exit::INTERRUPTED, super::signals::Stop::exit_code)
    };
    let verification = match verify::run(options, interrupted).await {
        Err(verify::VerifyError::Interrupted) => {
            eprintln!("obsctl verify: stopped by a signal; everything started was stopped");
            return Ok(ExitCode::from(stop_code()));
        }
        other => other?,
    };
    if !args.quiet {
        for note in &verification.notes {
            eprintln!("obsctl verify: {note}");
        }
        let run = &verification.run;
        eprintln!(
            "obsctl verify: load: {} (run id {})",
            crate::check::load::summary_line(run),
            run.run_id
        );
    }
    let Some(report) = &verification.report else {
        super::load::print_summary(&verification.run)?;
        eprintln!(
            "obsctl verify: stopped during the load (partial summary above); everything started was stopped"
        );
        return Ok(ExitCode::from(stop_code()));
    };
    emit(report, args.report.format, args.report.output.as_deref())?;
    Ok(exit_code(report))
}

fn options(args: &VerifyArgs) -> anyhow::Result<VerifyOptions> {
    let file = args.policy.config_file()?;
    let file = file.as_ref();
    // Sources come from the flags: the file's stack does not watch the service verify starts.
    let from = UrlFrom::FlagOnly;
    let endpoint = args.stack.target(args.target.as_deref(), file, from)?;
    let metrics_token = match &endpoint {
        Some(endpoint) => endpoint.credentials.auth.bearer_token().map(str::to_owned),
        None => args.stack.metrics_token()?,
    };
    let mut stack = args.stack.urls(file, from)?;
    stack.tls = args.tls.config(file)?;
    let target = match (endpoint, &args.spawn) {
        (Some(endpoint), _) => Target::Url(endpoint),
        (None, Some(command)) => Target::Spawn(command.clone()),
        (None, None) => Target::Spawn(service::default_command().context(
            "no `backend` binary next to obsctl: build the workspace (cargo build --release) or pass --spawn CMD / --target URL",
        )?),
    };
    let prometheus = match args.prometheus.as_str() {
        "auto" => PrometheusMode::Auto,
        "off" => PrometheusMode::Off,
        url if url.starts_with("http://") || url.starts_with("https://") => {
            match args.stack.prometheus(Some(url), file, from)? {
                Some(endpoint) => PrometheusMode::Url(endpoint),
                None => PrometheusMode::Off,
            }
        }
        other => anyhow::bail!(
            "--prometheus {:?}: use auto, off or an http:// or https:// URL",
            crate::sources::auth::redact_url(other)
        ),
    };
    Ok(VerifyOptions {
        scenario: args.scenario.clone(),
        target,
        prometheus,
        stack,
        service: args.stack.service.clone(),
        timeout: args.timeout,
        startup_timeout: args.startup_timeout,
        metrics_token,
        overrides: Overrides {
            rps: args.rps,
            duration: args.duration,
            headers: args.headers.clone(),
            ..Overrides::default()
        },
        policy: args.policy.policy(file)?,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        receiver_budget_bytes: usize::try_from(args.receiver_budget.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
    })
}
