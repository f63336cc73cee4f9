//! `obsctl report`: look at and compare the run reports `obsctl load --report` writes.

use super::exit;
use crate::report::compare::{self, Limits};
use crate::report::{RunReport, hgrm, histogram, html};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const LONG_HELP: &str = "\
Examples:
  obsctl load scenarios/ramp.toml --target http://127.0.0.1:8000 --report run.json
  obsctl report summary run.json
  obsctl report hgrm run.json --name get_user
  obsctl report html run.json --output run.html
  obsctl report compare baseline.json run.json --max-regression 10%
  obsctl report merge shard-1.json shard-2.json shard-3.json --output run.json

In CI, keep the run report of the main branch as the baseline and gate each change on it:
  obsctl report compare main.json pr.json || exit 1

Exit codes:
  0    done (compare: no regression; merge: the whole run passed)
  1    compare: at least one regression beyond the limits and the runs' own noise;
       merge: a threshold failed over the whole run, or a segment is missing
  2    a file that cannot be read, or is not a run report";

/// Arguments of `obsctl report`.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct ReportArgs {
    /// What to do with the report(s).
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// The `obsctl report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Print the summary table of a run again.
    Summary {
        /// A run report (`obsctl load --report FILE`).
        #[arg(value_name = "RUN.json")]
        run: PathBuf,
    },
    /// Print the latency percentile spectrum, as wrk2 and HdrHistogram print it (.hgrm).
    Hgrm {
        /// A run report (version 2: it carries the histograms).
        #[arg(value_name = "RUN.json")]
        run: PathBuf,
        /// The spectrum of one request name instead of the whole run.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Write a self-contained HTML page of a run: rate and latency over time, the percentile
    /// spectrum, the status and error mix, per request name.
    Html {
        /// A run report.
        #[arg(value_name = "RUN.json")]
        run: PathBuf,
        /// Where to write it (default: RUN.html next to the report); `-` for stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Merge the reports of a run's shards (`obsctl load --segment I/N`) into the report of the
    /// whole run: counts summed, histograms added exactly, timelines aligned on wall time,
    /// thresholds judged again; exit 1 when they fail or a segment is missing.
    Merge {
        /// The shards' reports, in any order.
        #[arg(value_name = "SHARD.json", required = true)]
        shards: Vec<PathBuf>,
        /// Where to write the merged report; `-` for stdout (the summary then goes to stderr).
        #[arg(long, short = 'o', value_name = "RUN.json")]
        output: PathBuf,
    },
    /// Compare two runs per request name: p50, p99, error rate and rate, with the change;
    /// exit 1 when one regressed beyond the limit and the runs' own noise.
    Compare {
        /// The reference run.
        #[arg(value_name = "BASE.json")]
        base: PathBuf,
        /// The run to judge.
        #[arg(value_name = "NEW.json")]
        new: PathBuf,
        /// Largest tolerated worsening of p50, p99 and the achieved rate, e.g. 10% or 0.1.
        #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_fraction)]
        max_regression: f64,
        /// Largest tolerated rise of the error rate, in percentage points, e.g. 1% or 0.01.
        #[arg(long, value_name = "POINTS", default_value = "1%", value_parser = parse_fraction)]
        max_error_increase: f64,
    },
}

/// Runs `obsctl report`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReportCommand::Summary { run } => {
            super::load::print_summary(&read(&run)?)?;
            Ok(ExitCode::from(exit::OK))
        }
        ReportCommand::Hgrm { run, name } => {
            let report = read(&run)?;
            let histogram = histogram_of(&report, &run, name.as_deref())?;
            write_stdout(&hgrm::render(&histogram))?;
            Ok(ExitCode::from(exit::OK))
        }
        ReportCommand::Html { run, output } => {
            let report = read(&run)?;
            let output = output.unwrap_or_else(|| run.with_extension("html"));
            write_html(&report, &output)?;
            Ok(ExitCode::from(exit::OK))
        }
        ReportCommand::Merge { shards, output } => merge(&shards, &output),
        ReportCommand::Compare {
            base,
            new,
            max_regression,
            max_error_increase,
        } => {
            let (base, new) = (read(&base)?, read(&new)?);
            let limits = Limits {
                max_regression,
                max_error_increase,
            };
            let comparison = compare::compare(&base, &new, limits);
            write_stdout(&compare::render(&comparison, &base, &new))?;
            let failed = comparison.regressions().next().is_some();
            Ok(ExitCode::from(if failed { exit::FAILED } else { exit::OK }))
        }
    }
}

/// `obsctl report merge`: the merged report written, its summary printed, the missing
/// segments said.
fn merge(shards: &[PathBuf], output: &Path) -> anyhow::Result<ExitCode> {
    let reports = shards
        .iter()
        .map(|path| Ok((path.display().to_string(), read(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = crate::report::merge::merge(reports)?;
    let json = merged
        .to_json()
        .context("cannot encode the merged report")?
        + "\n";
    let summary = crate::report::summary::render(&merged);
    if super::load::is_stdout(output) {
        eprint!("{summary}");
        write_stdout(&json)?;
    } else {
        std::fs::write(output, json)
            .with_context(|| format!("cannot write the merged report to {}", output.display()))?;
        write_stdout(&summary)?;
    }
    if let Some(merged_from) = &merged.merged
        && !merged_from.missing.is_empty()
    {
        let missing: Vec<String> = merged_from
            .missing
            .iter()
            .map(|i| format!("{i}/{}", merged_from.count))
            .collect();
        eprintln!(
            "obsctl report merge: segments missing: {} (their requests are in none of the counts)",
            missing.join(", ")
        );
    }
    Ok(ExitCode::from(if merged.passed {
        exit::OK
    } else {
        exit::FAILED
    }))
}

/// Writes the HTML page of `report` to `output` (`-`: stdout).
pub fn write_html(report: &RunReport, output: &Path) -> anyhow::Result<()> {
    let page = html::render(report);
    if super::load::is_stdout(output) {
        return write_stdout(&page);
    }
    std::fs::write(output, page)
        .with_context(|| format!("cannot write the HTML report to {}", output.display()))
}

fn read(path: &Path) -> anyhow::Result<RunReport> {
    super::check::read_run_report(path)
}

/// The histogram of the whole run, or of request `name`.
fn histogram_of(
    report: &RunReport,
    path: &Path,
    name: Option<&str>,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let histograms = report.histograms.as_ref().with_context(|| {
        format!(
            "{} has no histograms (a version 1 report): run obsctl load again to get them",
            path.display()
        )
    })?;
    let encoded = match name {
        None => &histograms.overall,
        Some(name) => {
            let named = histograms.by_name.iter().find(|h| h.name == name);
            let known: Vec<&str> = histograms.by_name.iter().map(|h| h.name.as_str()).collect();
            &named
                .with_context(|| {
                    format!(
                        "no request named {name:?} in {}; its names: {}",
                        path.display(),
                        known.join(", ")
                    )
                })?
                .histogram
        }
    };
    histogram::decode(encoded)
        .with_context(|| format!("{}: a histogram does not decode", path.display()))
}

/// `10%`, `10 %` or `0.1` as the fraction 0.1.
fn parse_fraction(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(number) => (number.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a percentage such as 10% or a fraction such as 0.1")
    })?;
    let fraction = value / scale;
    if !(0.0..=100.0).contains(&fraction) || !fraction.is_finite() {
        return Err(format!("`{text}` must be between 0% and 10000%"));
    }
    Ok(fraction)
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    super::load::write_stdout(text).context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_read_as_percentages_or_plain_numbers() {
        assert_eq!(parse_fraction("10%"), Ok(0.1));
        assert_eq!(parse_fraction(" 2.5 % "), Ok(0.025));
        assert_eq!(parse_fraction("0.2"), Ok(0.2));
        for bad in ["ten", "-5%", "%", "NaN"] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }
}
