//! The command line: clap definitions, the exit-code convention, and the dispatch to each
//! subcommand. Each subcommand lives in its own module (`load.rs`, ...) with its arguments and
//! its `run`; adding one means a variant in [`Command`] and an arm in [`run`].

pub mod check;
pub mod common;
pub mod docs;
pub mod load;
pub mod report;
pub mod signals;
pub mod sources;
pub mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Everything passed.
    pub const OK: u8 = 0;
    /// The command ran, and a threshold or check failed.
    pub const FAILED: u8 = 1;
    /// Bad usage, bad scenario or configuration, or a runtime error.
    pub const ERROR: u8 = 2;
    /// Stopped by Ctrl-C (the partial summary is still printed); SIGTERM gives 143 and SIGHUP
    /// 129 ([`super::signals::Stop::exit_code`]).
    pub const INTERRUPTED: u8 = 130;
}

/// obsctl: replay traffic against a service and prove that its metrics, logs and traces work.
#[derive(Debug, Parser)]
#[command(name = "obsctl", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 a threshold or check failed, 2 usage, \
    configuration or runtime error, 130/143/129 stopped by SIGINT (Ctrl-C), SIGTERM or SIGHUP \
    (partial results are still printed and written)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a traffic scenario at a precise rate and report honest latency.
    Load(load::LoadArgs),
    /// Run the checklist (docs/contract.md) against live sources: /metrics, Prometheus, Loki,
    /// Tempo, Grafana, logs.
    Check(check::CheckArgs),
    /// Start the service, an OTLP receiver and Prometheus, replay a scenario, run every check.
    Verify(verify::VerifyArgs),
    /// Look at and compare run reports: summary, percentile spectrum, HTML page, comparison.
    Report(report::ReportArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff): `obsctl man | man -l -`.
    Man,
}

/// Runs the parsed command line and returns the process exit code. Errors (exit code 2) are
/// printed by `main` as `error: {e:#}`.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Load(args) => load::run(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::Report(args) => report::run(args),
            Command::Completions(args) => docs::completions(&args),
            Command::Man => docs::man(),
        }
    })
}
