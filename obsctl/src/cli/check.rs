//! `obsctl check`: run the checklist against live sources and report for people or CI.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::common::{PolicyArgs, ReportArgs, StackArgs, TlsArgs};
use super::exit;
use super::sources::UrlFrom;
use crate::check::context::{CheckContext, LogInput, StackUrls};
use crate::check::render::{self, Format};
use crate::check::report::CheckReport;
use crate::config_file::LoadedFile;
use crate::report::fold::PathFolder;
use crate::report::{READABLE_VERSIONS, RunReport};
use crate::sources::auth::Endpoint;
use crate::sources::http::{HttpClient, HttpOptions};
use crate::sources::logs::{self, CountedRun, LogLimits};
use crate::sources::prometheus::Prometheus;
use crate::sources::target::MetricsEndpoint;

const EXAMPLES: &str = "\
Ingestion lag (scrape interval, batch export, log shipping) is waited for by polling until
--timeout, never by fixed sleeps.

Examples:
  obsctl check --target http://localhost:8000
  obsctl load scenarios/smoke.toml --target http://localhost:8000 --report run.json
  obsctl check --target http://localhost:8000 --prometheus http://localhost:9090 \\
      --loki http://localhost:3100 --tempo http://localhost:3200 --run-report run.json \\
      --format junit --output obsctl.xml
  obsctl check --target http://localhost:8000 --logs app.log --deny metrics-cardinality
  obsctl check --prometheus https://prometheus.example:9090 --cacert ca.pem \\
      --loki https://loki.example:3100 --loki-tenant team-a     # LOKI_AUTH=USER:PASSWORD
  obsctl check --grafana http://localhost:3000 --grafana-user admin:admin \\
      --prometheus http://localhost:9090 --loki http://localhost:3100 \\
      --dashboard deploy/grafana/dashboards/fastapi-dashboard.json

Exit codes:
  0    no denied check failed (warnings never fail; skips fail only with --strict)
  1    a denied check failed, or its source could not answer
  2    bad usage or configuration, unreadable input, or nothing to check (no source given,
       or every check skipped)";

/// The long help of `obsctl check`: every check from the registry, the levels, examples.
fn long_help() -> String {
    format!("{}\n\n{EXAMPLES}", super::common::levels_help())
}

/// Arguments of `obsctl check`.
#[derive(Debug, Args)]
#[command(after_long_help = long_help())]
pub struct CheckArgs {
    /// Base URL of the service, http:// or https://, e.g. http://localhost:8000 (its /metrics is
    /// scraped).
    #[arg(long, short = 't', value_name = "URL")]
    pub target: Option<String>,
    /// Prometheus that scrapes the service, e.g. http://localhost:9090.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// The service's stdout as a file, or - for standard input. The log checks look at the
    /// newest 200,000 lines; with --run-report, the run's request lines are counted over the
    /// whole input, however long.
    #[arg(long, value_name = "FILE|-")]
    pub logs: Option<PathBuf>,
    /// Run report of `obsctl load --report`: checks that every request was recorded.
    #[arg(long, value_name = "FILE")]
    pub run_report: Option<PathBuf>,
    /// The stack's stores, the service's name and its /metrics token.
    #[command(flatten)]
    pub stack: StackArgs,
    /// How the report is written.
    #[command(flatten)]
    pub report: ReportArgs,
    /// The level of each check.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Longest wait for ingestion (e.g. 10s, 1m).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration, value_name = "D")]
    pub timeout: Duration,
    /// TLS for https:// sources.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The sources to ask, from the flags and the config file, checked before any I/O.
struct Sources {
    target: Option<Endpoint>,
    prometheus: Option<Endpoint>,
    /// The stack's stores, and the TLS settings every source is asked with.
    stack: StackUrls,
}

impl Sources {
    fn resolve(args: &CheckArgs, file: Option<&LoadedFile>) -> anyhow::Result<Self> {
        let from = UrlFrom::FlagOrFile;
        let mut stack = args.stack.urls(file, from)?;
        stack.tls = args.tls.config(file)?;
        Ok(Self {
            target: args.stack.target(args.target.as_deref(), file, from)?,
            prometheus: args
                .stack
                .prometheus(args.prometheus.as_deref(), file, from)?,
            stack,
        })
    }
}

/// Runs `obsctl check`.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let file = args.policy.config_file()?;
    let policy = args.policy.policy(file.as_ref())?;
    let sources = Sources::resolve(&args, file.as_ref())?;
    let stack = &sources.stack;
    let given = [
        sources.target.is_some(),
        sources.prometheus.is_some(),
        args.logs.is_some(),
        args.run_report.is_some(),
        stack.loki.is_some(),
        stack.tempo.is_some(),
        stack.grafana.is_some(),
        stack.dashboard.is_some(),
    ];
    anyhow::ensure!(
        given.contains(&true),
        "nothing to check: pass at least one source, e.g. --target URL (the service), \
         --logs FILE, --prometheus URL, --loki URL, --tempo URL, --run-report FILE, \
         or [sources.NAME] url in obsctl.toml (or run `obsctl verify`, which needs none)"
    );
    let ctx = context(&args, sources).await?;
    let report = crate::check::run(&ctx, &policy).await;
    emit(&report, args.report.format, args.report.output.as_deref())?;
    Ok(exit_code(&report))
}

/// The exit code a report means; a report in which nothing could be checked is a usage error
/// (exit 2), said on stderr.
pub fn exit_code(report: &CheckReport) -> ExitCode {
    if report.nothing_checked() {
        eprintln!(
            "error: nothing could be checked: every check was skipped (each says which source \
             would run it)"
        );
        return ExitCode::from(exit::ERROR);
    }
    ExitCode::from(if report.succeeded() {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Writes the rendered report to `output` or stdout (`-` is stdout too; colour only on a
/// terminal without NO_COLOR).
pub fn emit(
    report: &CheckReport,
    format: Format,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let output = output.filter(|path| !super::load::is_stdout(path));
    let color = output.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let text = match format {
        Format::Text => render::text(report, color),
        Format::Json => render::json(report),
        Format::Junit => render::junit(report),
    };
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to stdout"),
            }
        }
    }
}

async fn context(args: &CheckArgs, sources: Sources) -> anyhow::Result<CheckContext> {
    let client = HttpClient::with_tls(HttpOptions::within(args.timeout), &sources.stack.tls)
        .context("cannot build the HTTP client")?;
    let mut ctx = CheckContext::new(args.stack.service.clone(), args.timeout);
    if let Some(target) = &sources.target {
        let client = client.with_credentials(&target.credentials);
        ctx.metrics = Some(MetricsEndpoint::for_target(client, &target.url));
        ctx.target = Some(target.url.clone());
    }
    ctx.prometheus = sources
        .prometheus
        .as_ref()
        .map(|p| Prometheus::new(client.with_credentials(&p.credentials), p.url.clone()));
    ctx.add_stack(&client, &sources.stack);
    if let Some(path) = &args.run_report {
        ctx.run = Some(read_run_report(path)?);
    }
    if let Some(path) = &args.logs {
        // The run's own request lines are counted as they are read, so that accounting holds
        // for logs longer than the lines kept.
        let limits = LogLimits {
            count_run: ctx.run.as_ref().map(|run| CountedRun {
                prefix: run.trace_id_prefix.clone(),
                paths: PathFolder::of_report(run),
            }),
            ..LogLimits::default()
        };
        let (buffer, origin) = if path.as_os_str() == "-" {
            (logs::read_stdin(limits).await?, "stdin".to_owned())
        } else {
            let buffer = logs::read_file(path, limits)
                .await
                .with_context(|| format!("--logs {}", path.display()))?;
            (buffer, path.display().to_string())
        };
        ctx.logs = Some(LogInput {
            buffer,
            origin,
            stderr: None,
        });
    }
    ctx.restart_deadline(args.timeout);
    Ok(ctx)
}

/// Reads and validates a run report written by `obsctl load --report`.
pub fn read_run_report(path: &std::path::Path) -> anyhow::Result<RunReport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --run-report {}", path.display()))?;
    let report: RunReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "--run-report {} is not a run report of obsctl load",
            path.display()
        )
    })?;
    anyhow::ensure!(
        READABLE_VERSIONS.contains(&report.schema_version),
        "--run-report {}: schema_version {} is not supported (this obsctl reads {:?})",
        path.display(),
        report.schema_version,
        READABLE_VERSIONS
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest report of a run that sent nothing, in version `version`'s shape.
    fn report(version: u32) -> String {
        let stats = serde_json::json!({
            "count": 0, "not_started": 0, "errors": 0, "error_rate": 0.0, "achieved_rate": 0.0,
            "statuses": {}, "errors_by_kind": {},
            "latency_ms": { "samples": 0, "mean": null, "p50": null, "p90": null, "p95": null,
                            "p99": null, "p99_9": null, "max": null }
        });
        serde_json::json!({
            "schema_version": version, "run_id": "00000000000000ab",
            "trace_id_prefix": "00000000000000ab", "seq_count": 0,
            "scenario": { "name": "s", "file": null }, "target": "http://127.0.0.1:8000",
            "model": "open",
            "plan": { "duration_s": 1.0, "planned_requests": 0, "start_rate": 0.0, "stages": [],
                      "max_in_flight": 1, "timeout_ms": 1000.0 },
            "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:00:01Z",
            "duration_s": 1.0, "interrupted": false, "requests_sent": 0,
            "requests_not_started": 0,
            "requests": [{ "method": "GET", "path": "/api/users/7", "name": "u", "status": 200,
                           "error": null, "count": 1 }],
            "overall": stats, "by_name": [], "thresholds": [], "passed": true
        })
        .to_string()
    }

    #[test]
    fn version_1_reports_still_read_and_unknown_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("run.json");
        std::fs::write(&path, report(1)).unwrap_or_else(|e| panic!("{e}"));
        let read = read_run_report(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(read.requests[0].path, "/api/users/7");
        assert!(read.requests[0].examples.is_empty() && read.timeline.is_empty());
        std::fs::write(&path, report(3)).unwrap_or_else(|e| panic!("{e}"));
        let refused = read_run_report(&path).map(|_| ()).unwrap_err().to_string();
        assert!(
            refused.contains("schema_version 3 is not supported"),
            "{refused}"
        );
    }
}
