//! The validated configuration of one run: a scenario with command-line overrides applied.
//! Everything here is checked before any socket opens.

use super::tagging::RunId;
use crate::report::Segment;
use crate::scenario::duration::{self, Use};
use crate::scenario::{Header, Scenario, Stage, Target, TargetError};
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

/// Default cap on requests in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default per-request timeout (for a free slot, then for the response).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A requested rate: a number of requests per second, or `max` (closed loop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Open model at this many requests per second.
    PerSecond(f64),
    /// Closed loop as fast as the in-flight cap allows.
    Max,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Self::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Self::PerSecond(r)),
            _ => Err(format!(
                "`{s}` is not a rate: give requests per second (> 0, e.g. 500) or `max`"
            )),
        }
    }
}

/// How traffic is generated.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Open model: requests are due on a schedule, whatever happened to earlier ones.
    Open {
        /// Rate at t = 0 (default: the first stage's rate).
        start_rate: Option<f64>,
        /// The stages.
        stages: Vec<Stage>,
    },
    /// Closed loop: each of `max_in_flight` workers sends its next request when the previous one
    /// ends, for `duration`.
    Closed {
        /// How long to send.
        duration: Duration,
    },
}

impl Plan {
    /// Total planned duration.
    pub fn duration(&self) -> Duration {
        match self {
            Self::Open { stages, .. } => stages.iter().map(|s| s.duration).sum(),
            Self::Closed { duration } => *duration,
        }
    }

    /// `"open"` or `"closed"`, as in the report.
    pub fn model_name(&self) -> &'static str {
        match self {
            Self::Open { .. } => "open",
            Self::Closed { .. } => "closed",
        }
    }
}

/// Values from the command line that replace the scenario's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--target`.
    pub target: Option<String>,
    /// `--rps`: with it the stages are replaced by one constant stage (or a closed loop).
    pub rps: Option<Rate>,
    /// `--duration`: alone, the stages are stretched or shrunk to this total, keeping their shape.
    pub duration: Option<Duration>,
    /// `--max-in-flight`.
    pub max_in_flight: Option<usize>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `-H`: headers every request sends, over the scenario's of the same name.
    pub headers: Vec<Header>,
    /// `--segment I/N`: send only this shard of the plan.
    pub segment: Option<Segment>,
    /// `--run-id HEX`: the run's id instead of a fresh one (shards of one run share it).
    pub run_id: Option<RunId>,
}

/// Why a run cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `--target` nor the scenario names a target.
    #[error("no target: pass --target http://HOST:PORT or set `target` in the scenario")]
    NoTarget,
    /// The target URL is unusable.
    #[error("--target")]
    Target(#[from] TargetError),
    /// A zero value where at least one is needed.
    #[error("{0} must be more than zero")]
    Zero(&'static str),
    /// A duration past its limit (see [`duration`]).
    #[error("{flag}: {}", what.limit_words())]
    TooLong {
        /// The flag.
        flag: &'static str,
        /// What the duration is for.
        what: Use,
    },
    /// The same header twice in `-H`.
    #[error("-H {0}: given twice; give each header once")]
    DuplicateHeader(String),
}

/// Everything one run needs, checked.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The scenario: request mix, thresholds, name and file.
    pub scenario: Scenario,
    /// Where requests go.
    pub target: Target,
    /// Open schedule or closed loop.
    pub plan: Plan,
    /// Cap on requests in flight; waiting for it counts as latency.
    pub max_in_flight: usize,
    /// Per-request timeout: the longest a due request waits for a free slot (then it is counted
    /// as not started), and the longest a sent request waits for its response.
    pub timeout: Duration,
    /// This run's id (fresh per run unless a caller sets it).
    pub run_id: RunId,
    /// Show the live progress display (only ever drawn on a terminal).
    pub progress: bool,
    /// `-H` headers: every request sends them, over the scenario's and its own of the same name.
    pub headers: Vec<Header>,
    /// TLS for an `https://` target (`--cacert`, `--insecure`, `--cert/--key`); unused over
    /// plain HTTP.
    pub tls: crate::tls::TlsConfig,
    /// The shard of the plan this process sends (`--segment I/N`); `None` for all of it.
    pub segment: Option<Segment>,
    /// `--threads`: threads sending requests; `None` for the default (half the cores).
    pub threads: Option<NonZeroUsize>,
}

impl LoadConfig {
    /// Each request's method and path as the run report counts it (the path template after the
    /// target's base path, without query): what a signal's concrete paths fold into.
    pub fn path_templates(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.scenario.requests.iter().map(|spec| {
            (
                spec.method.to_string(),
                self.target.request_path(spec.path.as_str()),
            )
        })
    }

    /// Applies `overrides` to `scenario` and checks the result.
    pub fn new(scenario: Scenario, overrides: Overrides) -> Result<Self, ConfigError> {
        let target = match (&overrides.target, &scenario.target) {
            (Some(text), _) => Target::parse(text)?,
            (None, Some(target)) => target.clone(),
            (None, None) => return Err(ConfigError::NoTarget),
        };
        let max_in_flight = overrides
            .max_in_flight
            .or(scenario.max_in_flight)
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 {
            return Err(ConfigError::Zero("--max-in-flight"));
        }
        let timeout = overrides
            .timeout
            .or(scenario.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(ConfigError::Zero("--timeout"));
        }
        if overrides.duration.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Zero("--duration"));
        }
        within_limits(&overrides, timeout)?;
        Ok(Self {
            plan: plan(&scenario, &overrides),
            scenario,
            target,
            max_in_flight,
            timeout,
            run_id: overrides.run_id.unwrap_or_else(RunId::random),
            progress: true,
            headers: overrides.headers,
            tls: crate::tls::TlsConfig::default(),
            segment: overrides.segment,
            threads: None,
        })
    }
}

/// `--duration` and the timeout within their limits, and each `-H` header once.
fn within_limits(overrides: &Overrides, timeout: Duration) -> Result<(), ConfigError> {
    if overrides.duration.is_some_and(|d| d > duration::MAX_RUN) {
        return Err(ConfigError::TooLong {
            flag: "--duration",
            what: Use::Run,
        });
    }
    if timeout > duration::MAX_TIMEOUT {
        return Err(ConfigError::TooLong {
            flag: "--timeout",
            what: Use::Timeout,
        });
    }
    for (i, header) in overrides.headers.iter().enumerate() {
        if overrides.headers[..i].iter().any(|h| h.name == header.name) {
            return Err(ConfigError::DuplicateHeader(header.name.to_string()));
        }
    }
    Ok(())
}

fn plan(scenario: &Scenario, overrides: &Overrides) -> Plan {
    let duration = overrides.duration.unwrap_or_else(|| scenario.duration());
    match overrides.rps {
        Some(Rate::Max) => Plan::Closed { duration },
        Some(Rate::PerSecond(rate)) => Plan::Open {
            start_rate: None,
            stages: vec![Stage { duration, rate }],
        },
        None => Plan::Open {
            start_rate: scenario.start_rate,
            stages: stretch(&scenario.stages, scenario.duration(), duration),
        },
    }
}

/// Scales the stage durations so that they add up to `to`, keeping their proportions.
fn stretch(stages: &[Stage], from: Duration, to: Duration) -> Vec<Stage> {
    if from == to || from.is_zero() {
        return stages.to_vec();
    }
    let factor = to.as_secs_f64() / from.as_secs_f64();
    stages
        .iter()
        .map(|s| Stage {
            duration: s.duration.mul_f64(factor),
            rate: s.rate,
        })
        .collect()
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed { duration } => write!(
                f,
                "closed loop (--rps max) for {}",
                humantime::format_duration(*duration)
            ),
            Self::Open { stages, .. } => {
                let peak = stages.iter().map(|s| s.rate).fold(0.0, f64::max);
                write!(
                    f,
                    "open model, {} stage(s), peak {peak} req/s, for {}",
                    stages.len(),
                    humantime::format_duration(self.duration())
                )
            }
        }
    }
}
