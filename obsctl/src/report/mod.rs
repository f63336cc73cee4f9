//! The run report: what one `obsctl load` run sent, what came back, and whether its thresholds
//! held. One model, rendered as JSON (`--report FILE`, schema in `obsctl/schema/run-report.schema.json`)
//! and as the terminal summary ([`summary`]).
//!
//! Its size does not grow with the run's length, except for the timeline (one entry a second):
//! counts are kept per request template, not per concrete path, with a few example paths each,
//! and the latency histograms are stored whole ([`histogram`]), so that reports can be merged
//! and re-analysed exactly.

pub mod compare;
pub mod fold;
pub mod hgrm;
pub mod histogram;
pub mod html;
pub mod merge;
pub mod summary;
pub mod thresholds;
pub mod verdict;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Version of the report format; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// The versions `obsctl check --run-report` reads: version 1 kept counts per concrete path, which
/// accounting reads as templates without placeholders.
pub const READABLE_VERSIONS: [u32; 2] = [1, 2];

/// `v` rounded to 3 decimals: the precision reports give milliseconds and rates.
pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Example concrete paths kept per count entry, for evidence.
pub const MAX_EXAMPLES: usize = 5;

/// One shard of a run (`obsctl load --segment I/N`): it sends the requests of the one schedule
/// whose position is `index - 1` modulo `count`, so that `count` shards started together send
/// the whole plan, each at `1/count` of every stage's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Segment {
    /// 1-based.
    pub index: u32,
    /// How many shards the run has.
    pub count: u32,
}

/// Most shards a run can be split into.
pub const MAX_SEGMENTS: u32 = 10_000;

impl Segment {
    /// Whether position `slot` of the schedule is this shard's.
    pub fn owns(self, slot: u64) -> bool {
        slot % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The sequence number (trace id suffix) of this shard's `local`-th request: disjoint from
    /// every other shard's.
    pub fn seq(self, local: u64) -> u64 {
        local * u64::from(self.count) + u64::from(self.index - 1)
    }

    /// How many of the first `total` positions are this shard's.
    pub fn share_of(self, total: u64) -> u64 {
        let first = u64::from(self.index - 1);
        if total <= first {
            0
        } else {
            (total - first).div_ceil(u64::from(self.count))
        }
    }
}

impl std::str::FromStr for Segment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || {
            format!(
                "`{text}` is not a segment: give I/N, shard I of N (1 <= I <= N <= {MAX_SEGMENTS}), e.g. 2/3"
            )
        };
        let (index, count) = text.split_once('/').ok_or_else(error)?;
        let index: u32 = index.trim().parse().map_err(|_| error())?;
        let count: u32 = count.trim().parse().map_err(|_| error())?;
        if index == 0 || index > count || count > MAX_SEGMENTS {
            return Err(error());
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Requests numbered `offset`, `offset + stride`, ... (`count` of them): the sequence numbers,
/// hence the trace ids, a run (or one shard of it) gave its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// The first number.
    pub offset: u64,
    /// The step between numbers.
    pub stride: u64,
    /// How many.
    pub count: u64,
}

/// Everything a run did, in a form `obsctl check` can read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Format version, currently 2.
    pub schema_version: u32,
    /// The run id: 16 lowercase hex characters, sent in `x-obsctl-run-id` on every request.
    pub run_id: String,
    /// Every trace id of the run starts with this (it equals `run_id`): the trace id of request
    /// `seq` is `trace_id_prefix` followed by `seq` as 16 lowercase hex digits.
    pub trace_id_prefix: String,
    /// Sequence numbers count requests in the order they were handed to a connection: requests
    /// `0..seq_count` got one, and their trace ids are exactly `trace_id_prefix` followed by
    /// `{seq:016x}`. `seq_count` is `requests_sent` plus the requests whose connection could not
    /// be opened (`connect` errors: numbered, never sent). Requests that never started have no
    /// sequence number.
    pub seq_count: u64,
    /// How the numbers `0..seq_count` are laid out when they are not contiguous: one entry per
    /// shard (`offset` = index - 1, `stride` = shard count) in a shard's or a merged report;
    /// empty for a run of one process (numbers `0..seq_count`).
    #[serde(default)]
    pub sequences: Vec<Sequence>,
    /// The shard this report covers (`obsctl load --segment I/N`); null for a whole run.
    #[serde(default)]
    pub segment: Option<Segment>,
    /// For a report merged from shards (`obsctl report merge`): the shards it holds and the
    /// ones missing; null otherwise.
    #[serde(default)]
    pub merged: Option<Merged>,
    /// The scenario that ran.
    pub scenario: ScenarioInfo,
    /// The target base URL.
    pub target: String,
    /// `open` (scheduled arrivals) or `closed` (`--rps max`).
    pub model: Model,
    /// What was planned.
    pub plan: PlanInfo,
    /// When the first request was due (RFC 3339, UTC).
    pub window_start: String,
    /// When the last request ended (RFC 3339, UTC).
    pub window_end: String,
    /// Seconds over which requests were sent (the rate denominator).
    pub duration_s: f64,
    /// True when the run was stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Why the run stopped before its plan ended with `abort_on_fail`: the threshold that could
    /// no longer hold. Null when it ran to its end (or was interrupted).
    #[serde(default)]
    pub aborted: Option<String>,
    /// Requests written to an open connection to the target, whatever their outcome (response,
    /// timeout, I/O error, cancelled). Not counted: requests whose connection could not be
    /// opened (`connect` errors) and requests that never started.
    pub requests_sent: u64,
    /// Requests that were due but never started (they waited for a free in-flight slot longer
    /// than the timeout, or the run stopped). Counted as errors, never hidden.
    pub requests_not_started: u64,
    /// Counts per (name, method, path template, status, error). Entries whose error is
    /// `not_started` or `connect` never reached the target.
    pub requests: Vec<RequestCount>,
    /// Statistics over all requests.
    pub overall: Stats,
    /// Statistics per request name, in scenario order.
    pub by_name: Vec<NamedStats>,
    /// The latency histograms themselves (absent from version 1 reports).
    #[serde(default)]
    pub histograms: Option<Histograms>,
    /// One entry per second of the run, by due time (empty in version 1 reports).
    #[serde(default)]
    pub timeline: Vec<Second>,
    /// Each threshold with its limit, the observed value and the verdict.
    pub thresholds: Vec<ThresholdResult>,
    /// True when every threshold held and at least one request succeeded (a run in which none
    /// did fails even without thresholds: see [`verdict`]).
    pub passed: bool,
}

/// The shards a merged report holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// How many shards the run has.
    pub count: u32,
    /// The shard indices merged, ascending.
    pub present: Vec<u32>,
    /// The shard indices not merged: their requests are in none of the counts.
    pub missing: Vec<u32>,
}

/// Which scenario ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// The scenario's name.
    pub name: String,
    /// Its file, or null for the built-in `GET /`.
    pub file: Option<String>,
}

/// The load model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Requests due on a schedule; latency from the due time.
    Open,
    /// Closed loop as fast as the in-flight cap allows; latency from the send time.
    Closed,
}

/// The plan as run (after command-line overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    /// Planned duration in seconds.
    pub duration_s: f64,
    /// Requests the open schedule planned to send (null for a closed loop).
    pub planned_requests: Option<u64>,
    /// Rate at t = 0 in requests per second (null for a closed loop).
    pub start_rate: Option<f64>,
    /// The stages (empty for a closed loop).
    pub stages: Vec<StageInfo>,
    /// The in-flight cap.
    pub max_in_flight: u64,
    /// Per-request timeout in milliseconds: the longest a due request waits for a free slot, and
    /// the longest a sent request waits for its response.
    pub timeout_ms: f64,
}

/// One stage of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageInfo {
    /// Stage length in seconds.
    pub duration_s: f64,
    /// Rate reached at the end of the stage, requests per second.
    pub rate: f64,
}

/// How many requests ended one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    /// HTTP method.
    pub method: String,
    /// The path as the scenario writes it (its placeholders unrendered, after the target's base
    /// path, without query); version 1 reports have the concrete path here.
    pub path: String,
    /// The scenario's request name.
    pub name: String,
    /// Response status, or null when no response arrived.
    pub status: Option<u16>,
    /// Error kind, or null when the request succeeded.
    pub error: Option<ErrorKind>,
    /// Number of requests.
    pub count: u64,
    /// Up to [`MAX_EXAMPLES`] concrete paths these requests were sent to, when `path` has
    /// placeholders (empty otherwise, and in version 1 reports).
    #[serde(default)]
    pub examples: Vec<String>,
}

/// The latency histograms of a run, serialized ([`histogram`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// How each histogram is written: `hdr-v2-deflate-base64`.
    pub encoding: String,
    /// The unit of the recorded values: `us`.
    pub unit: String,
    /// Every latency of the run.
    pub overall: String,
    /// The latencies of each request name, in scenario order.
    pub by_name: Vec<NamedHistogram>,
}

/// The latency histogram of one request name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedHistogram {
    /// The request name.
    pub name: String,
    /// Its histogram, encoded as [`Histograms::encoding`] says.
    pub histogram: String,
}

/// One second of a run: the requests that came due in it, and what became of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the run started: this entry covers due times in `[t, t + 1)`.
    pub t: u64,
    /// Requests per second the plan made due in this second (null for a closed loop).
    pub planned_rate: Option<f64>,
    /// Requests sent per second (`sent` over the part of the second the run covered).
    pub achieved_rate: f64,
    /// Requests that came due (sent, unable to connect, or never started).
    pub due: u64,
    /// Requests written to an open connection.
    pub sent: u64,
    /// Requests that got a response.
    pub answered: u64,
    /// Requests in error (not-started included, cancelled excluded, as in [`Stats::errors`]).
    pub errors: u64,
    /// Requests that never started.
    pub not_started: u64,
    /// Median latency of the answered requests, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 90th percentile latency.
    pub p90_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_ms: Option<f64>,
    /// Largest latency.
    pub max_ms: Option<f64>,
}

/// Statistics over a set of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests sent: written to an open connection (`connect` errors and not-started requests
    /// are not sent).
    pub count: u64,
    /// Requests due but never started.
    pub not_started: u64,
    /// Requests in error (any error kind, not-started included, except `cancelled`: requests
    /// cut off by the user's stop are named in `errors_by_kind` but are not the target's errors).
    pub errors: u64,
    /// `errors` over every request that came due (`count`, `not_started` and the `connect`
    /// errors); 0 when nothing was due.
    pub error_rate: f64,
    /// `count` (requests sent, so not the `connect` errors) per second over `duration_s`.
    pub achieved_rate: f64,
    /// Responses per status code (keys are the codes as text).
    pub statuses: BTreeMap<String, u64>,
    /// Errors per kind (`cancelled` included).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Latency of requests that got a response, from their due time.
    pub latency_ms: Latency,
}

/// Latency percentiles in milliseconds; null when no response was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Number of latencies recorded.
    pub samples: u64,
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p99_9: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// Statistics of one request name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedStats {
    /// The request name.
    pub name: String,
    /// Its HTTP method.
    pub method: String,
    /// Its statistics.
    pub stats: Stats,
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The threshold as named in the scenario (`p99_ms`, `error_rate`, `min_rate`, ...).
    pub name: String,
    /// The limit: a maximum, except for `min_rate` which is a minimum.
    pub limit: f64,
    /// The observed value, or null when there was nothing to measure (which fails).
    pub observed: Option<f64>,
    /// True when the threshold held.
    pub passed: bool,
    /// The request name whose statistics it limits (`[requests.thresholds]`), or null for the
    /// whole run.
    #[serde(default)]
    pub request: Option<String>,
}

impl RunReport {
    /// The trace id of the request sent with sequence number `seq`.
    pub fn trace_id(&self, seq: u64) -> String {
        format!("{}{seq:016x}", self.trace_id_prefix)
    }

    /// Every request that came due: sent, not started, or unable to connect (the sum of the
    /// `requests` counts).
    pub fn requests_due(&self) -> u64 {
        self.requests.iter().map(|r| r.count).sum()
    }

    /// The sequence numbers the run gave its requests: `0..seq_count`, or each shard's.
    pub fn sequences(&self) -> Vec<Sequence> {
        if self.sequences.is_empty() {
            vec![Sequence {
                offset: 0,
                stride: 1,
                count: self.seq_count,
            }]
        } else {
            self.sequences.clone()
        }
    }

    /// Every trace id the run numbered (`seq_count` of them; those of `connect` errors never
    /// reached the target), shard by shard.
    pub fn trace_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.sequences()
            .into_iter()
            .flat_map(move |s| (0..s.count).map(move |k| self.trace_id(s.offset + k * s.stride)))
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// Why a request is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be opened.
    Connect,
    /// No complete response within the per-request timeout after the request was sent.
    Timeout,
    /// A response arrived with a status the scenario does not expect.
    UnexpectedStatus,
    /// The connection failed mid-request, or the response was not valid HTTP.
    Io,
    /// The request never started: it waited for a free in-flight slot for longer than the
    /// timeout, or the run was stopped while it waited.
    NotStarted,
    /// The run was stopped (Ctrl-C) while the request was in flight.
    Cancelled,
}

impl ErrorKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::UnexpectedStatus => "unexpected_status",
            Self::Io => "io",
            Self::NotStarted => "not_started",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
