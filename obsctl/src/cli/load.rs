//! `obsctl load`: arguments, turning them into a checked [`LoadConfig`] before any socket opens,
//! running the engine, and printing the summary and the JSON report.

use super::exit;
use crate::load::{self, LoadConfig, Overrides, Rate, RunId};
use crate::report::Segment;
use crate::report::{RunReport, summary, verdict};
use crate::scenario::{Header, Scenario, duration};
use anyhow::Context as _;
use clap::Args;
use std::io::Write as _;
use std::num::NonZeroUsize;
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

Headers:
  -H 'Name: value' (repeatable) adds a header to every request, over the scenario's [headers]
  and the request's own `headers` of the same name. Values are templates as in paths
  ({{seq}}, {{random:LO..HI}}, {{run_id}}). traceparent, x-obsctl-run-id, Host,
  Content-Length, Transfer-Encoding and Connection are obsctl's and refused. Header values
  never appear in the report.

Output:
  The summary goes to stdout; --report - writes the JSON report to stdout instead, and the
  summary to stderr, so that stdout is JSON alone.

Examples:
  obsctl load scenarios/smoke.toml --target http://127.0.0.1:8000
  obsctl load scenarios/steady.toml --target http://127.0.0.1:8000 --rps 2000 --duration 10s --report r.json
  obsctl load --target http://127.0.0.1:8000 --rps max --duration 10s --max-in-flight 64

Exit codes:
  0    every threshold held, and at least one request succeeded
  1    a threshold failed, or no request succeeded (none got a response, or none got a status
       its `expect` accepts): stderr says which, in one line
  2    bad usage, invalid scenario or configuration, or a runtime error (nothing or not all sent)
  130  stopped by Ctrl-C (SIGINT); 143 by SIGTERM, 129 by SIGHUP: the partial summary is
       still printed and the partial report written, marked interrupted";

/// Arguments of `obsctl load`.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct LoadArgs {
    /// Scenario file (TOML). Default: scenarios/smoke.toml if present, else a GET of the target.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Base URL of the service, http:// or https:// (see the TLS flags), e.g.
    /// http://127.0.0.1:8000. Overrides the scenario's `target`.
    #[arg(long, short = 't', value_name = "URL")]
    pub target: Option<String>,
    /// Requests per second as one constant stage (open model), or `max` for a closed loop as
    /// fast as --max-in-flight allows.
    #[arg(long, value_name = "N|max")]
    pub rps: Option<Rate>,
    /// How long to send, e.g. 500ms, 10s, 1m30s.
    #[arg(long, short = 'd', value_name = "D", value_parser = duration::run_flag)]
    pub duration: Option<Duration>,
    /// Most requests in flight at once [default: 256]. Waiting for a slot counts as latency.
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Threads sending requests, each one event loop over its share of the connections, like
    /// wrk's -t [default: half the cores, at least 1]. On a machine shared with the target,
    /// fewer threads leave it more CPU; raise it for a remote target beyond ~50,000 req/s.
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
    /// Per-request timeout [default: 5s]: the longest a sent request waits for its response,
    /// and the longest a due request waits for a free slot before it counts as not started.
    #[arg(long, value_name = "D", value_parser = duration::timeout_flag)]
    pub timeout: Option<Duration>,
    /// Extra header on every request, e.g. -H 'X-Api-Key: k-{{run_id}}' (repeatable). Wins over
    /// the scenario's headers of the same name; templates as in paths.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = Header::parse_flag)]
    pub headers: Vec<Header>,
    /// Write the JSON run report (schema: obsctl/schema/run-report.schema.json) to FILE, or to
    /// stdout with `-` (the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Send only shard I of N of the plan (every N-th request of the one schedule, so each
    /// shard runs at 1/N of every stage's rate); merge the shards' reports with `obsctl report
    /// merge`. Needs --run-id: the shards of one run share it.
    #[arg(long, value_name = "I/N", requires = "run_id")]
    pub segment: Option<Segment>,
    /// The run id (16 lowercase hex digits, e.g. from `openssl rand -hex 8`) instead of a fresh
    /// one: trace ids are this id followed by the request's number.
    #[arg(long, value_name = "HEX", value_parser = parse_run_id)]
    pub run_id: Option<RunId>,
    /// Also write the run as a self-contained HTML page to FILE (`obsctl report html` makes it
    /// from a saved report).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No progress display and no notes on stderr; the summary is still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// TLS for an https:// target.
    #[command(flatten)]
    pub tls: super::common::TlsArgs,
}

/// Runs `obsctl load`.
pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let config = configure(&args)?;
    if let Some(path) = &args.report {
        check_writable("--report", path)?;
    }
    if let Some(path) = &args.html {
        anyhow::ensure!(
            !is_stdout(path),
            "--html needs a file name (stdout has the summary)"
        );
        check_writable("--html", path)?;
    }
    if !args.quiet {
        eprintln!(
            "obsctl load: {} -> {}: {}, run id {}",
            config.scenario.name, config.target, config.plan, config.run_id
        );
    }
    let (stopped, which) = super::signals::listen();
    let report = load::run(config, stopped).await?;
    write_outputs(&args, &report)?;
    if let Some(stop) = *which.borrow() {
        eprintln!(
            "obsctl load: stopped by {}: the summary and the report cover the partial run",
            stop.name()
        );
        return Ok(ExitCode::from(stop.exit_code()));
    }
    Ok(ExitCode::from(code(&report)))
}

fn parse_run_id(text: &str) -> Result<RunId, String> {
    RunId::parse(text).ok_or_else(|| {
        format!("`{text}` is not a run id: give 16 lowercase hex digits (openssl rand -hex 8)")
    })
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
        headers: args.headers.clone(),
        segment: args.segment,
        run_id: args.run_id,
    };
    let mut config = LoadConfig::new(scenario, overrides)?;
    config.progress = !args.quiet;
    config.threads = args.threads;
    config.tls = args.tls.config(None)?;
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

fn check_writable(flag: &str, path: &Path) -> anyhow::Result<()> {
    if is_stdout(path) {
        return Ok(());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    anyhow::ensure!(
        parent.is_dir(),
        "{flag} {}: directory {} does not exist",
        path.display(),
        parent.display()
    );
    Ok(())
}

/// `-` as a FILE argument: standard output.
pub(crate) fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Writes the summary, the JSON report when asked for, and, when no request succeeded, the
/// one line that says why the run fails. With `--report -` stdout carries the JSON alone and
/// the summary goes to stderr.
fn write_outputs(args: &LoadArgs, report: &RunReport) -> anyhow::Result<()> {
    let json_to_stdout = args.report.as_deref().is_some_and(is_stdout);
    if json_to_stdout {
        eprint!("{}", summary::render(report));
    } else {
        print_summary(report)?;
    }
    if let Some(path) = &args.report {
        let json = report.to_json().context("cannot encode the run report")? + "\n";
        if json_to_stdout {
            write_stdout(&json).context("cannot write the report to stdout")?;
        } else {
            std::fs::write(path, json)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
    }
    if let Some(path) = &args.html {
        super::report::write_html(report, path)?;
    }
    if !report.interrupted
        && let Some(reason) = verdict::no_success(report)
    {
        eprintln!("obsctl load: FAIL: {reason}");
    }
    Ok(())
}

/// Prints the summary on stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_summary(report: &RunReport) -> anyhow::Result<()> {
    write_stdout(&summary::render(report)).context("cannot write the summary")
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
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
