//! `obsctl load`: arguments, turning them into a checked [`LoadConfig`] before any socket opens,
//! running the engine, and printing the summary and the JSON report.

use super::exit;
use crate::load::{self, LoadConfig, Overrides, Rate};
use crate::report::{RunReport, summary};
use crate::scenario::Scenario;
use anyhow::Context as _;
use clap::Args;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The scenario used when none is given, if it exists in the current directory.
pub const DEFAULT_SCENARIO: &str = "scenarios/smoke.toml";
/// Rate of the built-in GET when neither a scenario nor `--rps` gives one.
const DEFAULT_RATE: f64 = 10.0;
/// Length of the built-in GET when neither a scenario nor `--duration` gives one.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

const LONG_HELP: &str = "\
How it measures:
  Open model (default): request i is due at its scheduled time whatever happened to earlier
  requests, and its latency is counted from that due time, so a server that stalls shows the
  stall in every request that had to wait (no coordinated omission, as in wrk2). At most
  --max-in-flight requests run at once; time spent waiting for a free slot counts as latency,
  and a request that waited longer than --timeout for a slot is counted as `not_started`.
  --rps max: closed loop, each in-flight slot sends its next request as soon as the previous
  one ends (like wrk); latency is counted from the send. Use it for capacity, not latency.

Scenario and flags:
  Without SCENARIO, scenarios/smoke.toml is used when it exists in the current directory,
  otherwise a plain GET of the target URL (10 req/s for 10 s unless --rps/--duration say
  otherwise); stderr says which. A target with a path (http://host:port/base) prefixes every
  request path, and reports record the full path sent. Flags override the file: --rps replaces the stages by one
  constant stage, --duration alone stretches the stages to that total keeping their shape.
  The whole configuration is checked before any request is sent.

Tagging:
  Every request carries `traceparent: 00-<run_id><seq as 16 hex>-<span>-01` and
  `x-obsctl-run-id: <run_id>`, so the run's traces and logs can be found afterwards.

Examples:
  obsctl load scenarios/smoke.toml --target http://127.0.0.1:8000
  obsctl load scenarios/steady.toml --target http://127.0.0.1:8000 --rps 2000 --duration 10s --report r.json
  obsctl load --target http://127.0.0.1:8000 --rps max --duration 10s --max-in-flight 64

Exit codes:
  0    every threshold held
  1    a threshold failed
  2    bad usage, invalid scenario or configuration, or a runtime error (nothing or not all sent)
  130  interrupted by Ctrl-C (the partial summary is still printed)";

/// Arguments of `obsctl load`.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct LoadArgs {
    /// Scenario file (TOML). Default: scenarios/smoke.toml if present, else a GET of the target.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Base URL of the service (http:// only), e.g. http://127.0.0.1:8000. Overrides the
    /// scenario's `target`.
    #[arg(long, short = 't', value_name = "URL")]
    pub target: Option<String>,
    /// Requests per second as one constant stage (open model), or `max` for a closed loop as
    /// fast as --max-in-flight allows.
    #[arg(long, value_name = "N|max")]
    pub rps: Option<Rate>,
    /// How long to send, e.g. 500ms, 10s, 1m30s.
    #[arg(long, short = 'd', value_name = "D", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Most requests in flight at once [default: 256]. Waiting for a slot counts as latency.
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Per-request timeout [default: 5s]: the longest a sent request waits for its response,
    /// and the longest a due request waits for a free slot before it counts as not started.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Write the JSON run report (schema: obsctl/schema/run-report.schema.json) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress display and no notes on stderr; the summary is still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Runs `obsctl load`.
pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let config = configure(&args)?;
    if let Some(path) = &args.report {
        check_writable(path)?;
    }
    if !args.quiet {
        eprintln!(
            "obsctl load: {} -> {}: {}, run id {}",
            config.scenario.name, config.target, config.plan, config.run_id
        );
    }
    let report = load::run(config, super::ctrl_c()).await?;
    print_summary(&report)?;
    if let Some(path) = &args.report {
        let json = report.to_json().context("cannot encode the run report")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(ExitCode::from(code(&report)))
}

/// The validated configuration: scenario (given, default or built-in) plus flag overrides.
pub fn configure(args: &LoadArgs) -> anyhow::Result<LoadConfig> {
    let scenario = scenario(args)?;
    let overrides = Overrides {
        target: args.target.clone(),
        rps: args.rps,
        duration: args.duration,
        max_in_flight: args.max_in_flight,
        timeout: args.timeout,
    };
    let mut config = LoadConfig::new(scenario, overrides)?;
    config.progress = !args.quiet;
    Ok(config)
}

fn scenario(args: &LoadArgs) -> anyhow::Result<Scenario> {
    if let Some(path) = &args.scenario {
        return Ok(Scenario::from_file(path)?);
    }
    let default = Path::new(DEFAULT_SCENARIO);
    if default.is_file() {
        if !args.quiet {
            eprintln!("obsctl load: no SCENARIO given: using {DEFAULT_SCENARIO}");
        }
        return Ok(Scenario::from_file(default)?);
    }
    if !args.quiet {
        let url = args.target.as_deref().unwrap_or("the target");
        eprintln!(
            "obsctl load: no SCENARIO given and no {DEFAULT_SCENARIO} here: sending GET {url}"
        );
    }
    let rate = match args.rps {
        Some(Rate::PerSecond(r)) => r,
        _ => DEFAULT_RATE,
    };
    Ok(Scenario::plain_get(
        rate,
        args.duration.unwrap_or(DEFAULT_DURATION),
    ))
}

fn check_writable(path: &Path) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    anyhow::ensure!(
        parent.is_dir(),
        "--report {}: directory {} does not exist",
        path.display(),
        parent.display()
    );
    Ok(())
}

/// Prints the summary on stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_summary(report: &RunReport) -> anyhow::Result<()> {
    let text = summary::render(report);
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the summary")
        }
        _ => Ok(()),
    }
}

fn code(report: &RunReport) -> u8 {
    if report.interrupted {
        exit::INTERRUPTED
    } else if report.passed {
        exit::OK
    } else {
        exit::FAILED
    }
}
