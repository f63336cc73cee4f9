//! `obsctl verify`: start the service, an OTLP receiver and Prometheus, replay a scenario, run
//! every check, stop everything.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::check::{emit, exit_code};
use super::common::{PolicyArgs, ReportArgs, StackArgs};
use super::exit;
use crate::load::{Overrides, Rate};
use crate::verify::{self, PrometheusMode, Target, VerifyOptions, service};

const LONG_HELP: &str = "\
With no options, verify starts the `backend` binary that sits next to obsctl (with an
in-memory store), points its OTLP exporter at obsctl's own receiver, captures its stdout as
the log source, starts a real Prometheus when `prometheus` is on the PATH (temporary
directory, free port, 1 s scrape), replays the built-in smoke scenario and runs every check,
accounting included. Loki, Tempo and Grafana are checked only when given (--loki, --tempo,
--grafana).

Every panel query of the Part 7 dashboard that deploy/ provisions (built in; --dashboard FILE
for another) is evaluated against the Prometheus in use (and the Loki given): a panel that
would show \"No data\" fails the dashboard-panels check.

--spawn CMD runs CMD through `sh -c` with HOST, PORT (a free port) and
OTEL_EXPORTER_OTLP_ENDPOINT in its environment, so any service that honours them can be
verified, e.g.:
  obsctl verify --spawn 'uvicorn main:app --host $HOST --port $PORT'

Everything started is stopped at the end, on failure and on Ctrl-C (during the load, Ctrl-C
prints the partial run's summary).

With a SCENARIO file, its thresholds and `expect` lists are checks too (load-thresholds,
load-expected-status, level deny); with the built-in smoke scenario, whose expectations are the
reference backend's API, they only warn.

Exit codes:
  0    no denied check failed (warnings never fail; skips fail only with --strict)
  1    a denied check failed
  2    bad usage, or the service / Prometheus could not be started
  130  interrupted (Ctrl-C)";

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
    #[arg(long, value_parser = humantime::parse_duration, value_name = "D")]
    pub duration: Option<Duration>,
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
    /// No progress display and no notes on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Runs `obsctl verify`.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = options(&args)?;
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::ctrl_c().await;
        let _ = interrupt.send(true);
    });
    let verification = match verify::run(options, interrupted).await {
        Err(verify::VerifyError::Interrupted) => {
            eprintln!("obsctl verify: interrupted; everything started was stopped");
            return Ok(ExitCode::from(exit::INTERRUPTED));
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
            "obsctl verify: interrupted during the load (partial summary above); everything started was stopped"
        );
        return Ok(ExitCode::from(exit::INTERRUPTED));
    };
    emit(report, args.report.format, args.report.output.as_deref())?;
    Ok(exit_code(report))
}

fn options(args: &VerifyArgs) -> anyhow::Result<VerifyOptions> {
    let target = match (&args.target, &args.spawn) {
        (Some(url), _) => Target::Url(url.clone()),
        (None, Some(command)) => Target::Spawn(command.clone()),
        (None, None) => Target::Spawn(service::default_command().context(
            "no `backend` binary next to obsctl: build the workspace (cargo build --release) or pass --spawn CMD / --target URL",
        )?),
    };
    let prometheus = match args.prometheus.as_str() {
        "auto" => PrometheusMode::Auto,
        "off" => PrometheusMode::Off,
        url if url.starts_with("http://") || url.starts_with("https://") => {
            PrometheusMode::Url(url.to_owned())
        }
        other => anyhow::bail!("--prometheus {other:?}: use auto, off or an http:// URL"),
    };
    Ok(VerifyOptions {
        scenario: args.scenario.clone(),
        target,
        prometheus,
        stack: args.stack.urls()?,
        service: args.stack.service.clone(),
        timeout: args.timeout,
        startup_timeout: args.startup_timeout,
        metrics_token: args.stack.metrics_token(),
        overrides: Overrides {
            rps: args.rps,
            duration: args.duration,
            ..Overrides::default()
        },
        policy: args.policy.policy()?,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    })
}
