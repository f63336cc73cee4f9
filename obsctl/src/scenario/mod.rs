//! Traffic scenarios: the TOML file format, its validation, and the checked model the load engine
//! runs.
//!
//! A scenario has a name, an optional target, stages (duration + rate, ramped linearly from the
//! previous stage's rate), weighted requests, and thresholds that fail the run. Example:
//!
//! ```toml
//! name = "smoke"
//! target = "http://127.0.0.1:8000"   # optional; --target overrides it
//! # start_rate = 0                   # optional; rate at t=0 (default: the first stage's rate)
//! # max_in_flight = 256              # optional; --max-in-flight overrides it
//! # timeout = "5s"                   # optional; --timeout overrides it
//!
//! [headers]                          # optional; sent with every request (-H overrides)
//! X-Api-Key = "k-{{run_id}}"         # values are templates, like paths
//!
//! [[stages]]
//! duration = "5s"                    # humantime: "500ms", "10s", "1m30s"
//! rate = 20                          # requests per second reached at the end of the stage
//!
//! [[requests]]
//! name = "get_user"                  # unique; stats are kept per name
//! method = "GET"                     # default GET
//! path = "/api/users/{{random:1..3}}"
//! weight = 3                         # 1..=1000, default 1: share of the traffic
//! expect = [200]                     # default: any 2xx or 3xx
//!
//! [[requests]]
//! name = "create_user"
//! method = "POST"
//! path = "/api/users"
//! body = '{"name": "user-{{seq}}"}'  # sent as application/json unless content_type says otherwise
//! headers = { "X-Request-Id" = "{{run_id}}-{{seq}}" }  # this request's own (win over [headers])
//! expect = [201]
//! thresholds = { p99_ms = 400 }      # this request's own limits (same keys as below)
//!
//! [thresholds]                       # all optional, over the whole run
//! p99_ms = 250                       # also p50_ms, p90_ms, p95_ms, p99_9_ms, max_ms
//! error_rate = 0.01                  # at most 1% of requests in error
//! min_rate = 19                      # achieved requests per second, at least
//! abort_on_fail = true               # stop as soon as a threshold can no longer hold
//! ```
//!
//! Templates (`{{seq}}`, `{{random:LO..HI}}`, `{{run_id}}`) are described in [`template`];
//! headers, their layers and the ones obsctl owns, in [`header`]; duration limits in
//! [`duration`].

pub mod duration;
mod error;
mod explain;
pub mod header;
mod raw;
pub mod target;
pub mod template;
mod validate;

pub use duration::DurationError;
pub use error::{Located, ScenarioError};
pub use header::{Header, HeaderError};
pub use target::{Target, TargetError};
pub use template::{RenderContext, Template, TemplateError};

use hyper::Method;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A checked scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario's name, shown in the summary and the report.
    pub name: String,
    /// Free text describing the scenario.
    pub description: Option<String>,
    /// The file it came from (`None` for built-in scenarios).
    pub file: Option<PathBuf>,
    /// The target named in the file, if any.
    pub target: Option<Target>,
    /// Rate at t = 0; `None` means the first stage's rate (so a single stage is a constant rate).
    pub start_rate: Option<f64>,
    /// The rate plan, in order.
    pub stages: Vec<Stage>,
    /// The weighted request mix (never empty).
    pub requests: Vec<RequestSpec>,
    /// `[headers]`: sent with every request, under the request's own and the `-H` flags'.
    pub headers: Vec<Header>,
    /// Limits that fail the run.
    pub thresholds: Thresholds,
    /// In-flight cap named in the file.
    pub max_in_flight: Option<usize>,
    /// Per-request timeout named in the file.
    pub timeout: Option<Duration>,
}

/// One stage of the rate plan: the rate ramps linearly from the previous stage's rate (or the
/// start rate) to `rate` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts (more than zero).
    pub duration: Duration,
    /// Requests per second reached at the end of the stage (zero or more).
    pub rate: f64,
}

/// One kind of request in the mix.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Unique name; statistics are kept per name.
    pub name: String,
    /// HTTP method.
    pub method: Method,
    /// Path template (starts with `/`; may carry a query).
    pub path: Template,
    /// Relative share of the traffic (1..=1000).
    pub weight: u32,
    /// Body template, if the request has a body.
    pub body: Option<Template>,
    /// `content-type` sent with a body (a `Content-Type` header, from any layer, replaces it).
    pub content_type: String,
    /// The request's own headers: they win over the scenario's `[headers]` of the same name.
    pub headers: Vec<Header>,
    /// Statuses that count as success.
    pub expect: Expect,
    /// Limits on this request's own statistics (`[requests.thresholds]`).
    pub thresholds: Thresholds,
}

/// Which statuses count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Any 2xx or 3xx.
    Success,
    /// Exactly these.
    Statuses(Vec<u16>),
}

impl Expect {
    /// True when `status` is a success for this request.
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            Self::Success => (200..400).contains(&status),
            Self::Statuses(list) => list.contains(&status),
        }
    }
}

/// A latency statistic that a threshold can limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P99_9,
    /// Largest latency seen.
    Max,
}

impl Percentile {
    /// Every latency statistic a threshold can limit.
    pub const ALL: [Self; 6] = [
        Self::P50,
        Self::P90,
        Self::P95,
        Self::P99,
        Self::P99_9,
        Self::Max,
    ];

    /// The statistic a threshold named `key` (`p99_ms`) limits.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key)
    }

    /// The threshold's name, as in the file and the report (`p99_ms`).
    pub fn key(self) -> &'static str {
        match self {
            Self::P50 => "p50_ms",
            Self::P90 => "p90_ms",
            Self::P95 => "p95_ms",
            Self::P99 => "p99_ms",
            Self::P99_9 => "p99_9_ms",
            Self::Max => "max_ms",
        }
    }

    /// The quantile in 0..=1.
    pub fn quantile(self) -> f64 {
        match self {
            Self::P50 => 0.5,
            Self::P90 => 0.9,
            Self::P95 => 0.95,
            Self::P99 => 0.99,
            Self::P99_9 => 0.999,
            Self::Max => 1.0,
        }
    }
}

/// Limits that fail the run (exit code 1) when not met: the scenario's apply to the whole run,
/// a request's to its own statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Latency limits in milliseconds, each at most the given value.
    pub latency_ms: Vec<(Percentile, f64)>,
    /// Largest allowed fraction of requests in error (0..=1), not-started requests included.
    pub error_rate: Option<f64>,
    /// Smallest allowed achieved rate in requests per second.
    pub min_rate: Option<f64>,
    /// Stop the run as soon as a threshold (this one's or a request's) can no longer hold
    /// (top-level `[thresholds]` only).
    pub abort_on_fail: bool,
}

impl Thresholds {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.latency_ms.is_empty() && self.error_rate.is_none() && self.min_rate.is_none()
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let source = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&source, path)
    }

    /// Checks a scenario held in memory; `path` is used in error messages and the report.
    pub fn parse(source: &str, path: &Path) -> Result<Self, ScenarioError> {
        validate::parse(source, path)
    }

    /// A scenario that sends `GET` of the target URL itself (`/` when it has no path) and
    /// expects any 2xx or 3xx, used when no file is given.
    pub fn plain_get(rate: f64, duration: Duration) -> Self {
        Self {
            name: "get-root".to_owned(),
            description: Some("GET / of the target".to_owned()),
            file: None,
            target: None,
            start_rate: None,
            stages: vec![Stage { duration, rate }],
            requests: vec![RequestSpec {
                name: "get".to_owned(),
                method: Method::GET,
                path: Template::literal(""),
                weight: 1,
                body: None,
                content_type: validate::DEFAULT_CONTENT_TYPE.to_owned(),
                headers: Vec::new(),
                expect: Expect::Success,
                thresholds: Thresholds::default(),
            }],
            headers: Vec::new(),
            thresholds: Thresholds::default(),
            max_in_flight: None,
            timeout: None,
        }
    }

    /// Total planned duration of the stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }
}
