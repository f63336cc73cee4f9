//! The Loki HTTP API: readiness (`/ready`), label names (`/loki/api/v1/labels`), label values
//! (`/loki/api/v1/label/{name}/values`) and log queries over a window
//! (`/loki/api/v1/query_range`) returning streams of `(timestamp, line)` entries.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::http::{Evidence, HttpClient, SourceError, join};
use super::window::TimeWindow;

/// Why a Loki call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    /// Transport, status or decoding failure (Loki sends most errors as plain text with a 4xx/5xx
    /// status: see the evidence's body excerpt).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Loki answered a JSON envelope with `"status": "error"`.
    #[error("Loki rejected the request ({error_type}): {error}")]
    Api {
        /// The `errorType`, when given.
        error_type: String,
        /// The message.
        error: String,
        /// The exchange.
        evidence: Evidence,
    },
    /// `/ready` did not answer 200.
    #[error("Loki is not ready: HTTP {status} {excerpt}", status = .0.status.unwrap_or(0), excerpt = .0.body_excerpt)]
    NotReady(Evidence),
    /// The answer is JSON but not shaped as documented (e.g. a matrix for a log query).
    #[error("unexpected Loki answer: {detail}")]
    Unexpected {
        /// What did not fit.
        detail: String,
        /// The exchange.
        evidence: Evidence,
    },
}

/// Order of returned entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    Backward,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Backward => "backward",
        }
    }
}

/// A log query over a window.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// The LogQL query, e.g. `{service="fastapi-backend"}`.
    pub query: String,
    /// The window searched.
    pub window: TimeWindow,
    /// Most entries returned.
    pub limit: u32,
    /// Entry order.
    pub direction: Direction,
}

/// One series of a metric query: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// The answer of a metric query: `(labels, value)` per series.
#[derive(Debug, Clone)]
pub struct MetricVector {
    /// The samples.
    pub samples: Vec<Sample>,
    /// The exchange.
    pub evidence: Evidence,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Timestamp, Unix nanoseconds.
    pub timestamp_ns: u128,
    /// The log line.
    pub line: String,
}

/// One stream: a label set and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    /// The stream labels.
    pub labels: BTreeMap<String, String>,
    /// The entries, in the requested direction.
    pub entries: Vec<LogEntry>,
}

/// The answer of a log query.
#[derive(Debug, Clone)]
pub struct LogStreams {
    /// The streams.
    pub streams: Vec<LogStream>,
    /// The exchange.
    pub evidence: Evidence,
}

impl LogStreams {
    /// Total entries over all streams.
    pub fn entry_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }

    /// Every entry with its stream's labels.
    pub fn entries(&self) -> impl Iterator<Item = (&BTreeMap<String, String>, &LogEntry)> {
        self.streams
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (&s.labels, e)))
    }
}

/// A list answer (label names or values).
#[derive(Debug, Clone)]
pub struct NameList {
    /// The names or values.
    pub values: Vec<String>,
    /// The exchange.
    pub evidence: Evidence,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A Loki server's HTTP API.
#[derive(Debug, Clone)]
pub struct Loki {
    client: HttpClient,
    base: String,
}

impl Loki {
    /// The API of the server at `base` (e.g. `http://127.0.0.1:3100`).
    pub fn new(client: HttpClient, base: impl Into<String>) -> Self {
        Self {
            client,
            base: base.into(),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `Ok` when `/ready` answers 200.
    pub async fn ready(&self) -> Result<Evidence, LokiError> {
        self.client
            .probe(&join(&self.base, "/ready"))
            .await?
            .map_err(LokiError::NotReady)
    }

    /// Label names known in `window` (Loki's default window when `None`).
    pub async fn labels(&self, window: Option<TimeWindow>) -> Result<NameList, LokiError> {
        self.names("/loki/api/v1/labels", window).await
    }

    /// Values of label `name` known in `window`.
    pub async fn label_values(
        &self,
        name: &str,
        window: Option<TimeWindow>,
    ) -> Result<NameList, LokiError> {
        let path = format!("/loki/api/v1/label/{}/values", encode_segment(name));
        self.names(&path, window).await
    }

    /// Evaluate a metric query (`count_over_time(...)`, `sum by (...)`) at `at`; the answer must
    /// be an instant vector (`resultType: vector`, each sample `{"metric": {...}, "value":
    /// [<unix seconds>, "<value>"]}`, as Loki's `/loki/api/v1/query` documents it). Millions of
    /// lines are counted by Loki without being downloaded.
    pub async fn query_vector(
        &self,
        query: &str,
        at: std::time::SystemTime,
    ) -> Result<MetricVector, LokiError> {
        let nanos = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let params = [("query", query.to_owned()), ("time", nanos.to_string())];
        let (data, evidence) = self.call("/loki/api/v1/query", &params).await?;
        match parse_vector(&data) {
            Ok(samples) => Ok(MetricVector { samples, evidence }),
            Err(detail) => Err(LokiError::Unexpected { detail, evidence }),
        }
    }

    /// Run a log query over a window; the answer must be streams.
    pub async fn query_range(&self, query: &LogQuery) -> Result<LogStreams, LokiError> {
        let params = [
            ("query", query.query.clone()),
            ("start", query.window.start_nanos().to_string()),
            ("end", query.window.end_nanos().to_string()),
            ("limit", query.limit.to_string()),
            ("direction", query.direction.as_str().to_owned()),
        ];
        let (data, evidence) = self.call("/loki/api/v1/query_range", &params).await?;
        match parse_streams(&data) {
            Ok(streams) => Ok(LogStreams { streams, evidence }),
            Err(detail) => Err(LokiError::Unexpected { detail, evidence }),
        }
    }

    async fn names(&self, path: &str, window: Option<TimeWindow>) -> Result<NameList, LokiError> {
        let params: Vec<(&str, String)> = window
            .map(|w| {
                vec![
                    ("start", w.start_nanos().to_string()),
                    ("end", w.end_nanos().to_string()),
                ]
            })
            .unwrap_or_default();
        let (data, evidence) = self.call(path, &params).await?;
        match strings(&data) {
            Some(values) => Ok(NameList { values, evidence }),
            None => Err(LokiError::Unexpected {
                detail: "data is not an array of strings".into(),
                evidence,
            }),
        }
    }

    async fn call(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(Value, Evidence), LokiError> {
        let response = self
            .client
            .get(&join(&self.base, path), params, Some("application/json"))
            .await?;
        let envelope: Envelope = response.json()?;
        let evidence = response.evidence();
        if envelope.status != "success" {
            return Err(LokiError::Api {
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
                error: envelope.error.unwrap_or_else(|| envelope.status.clone()),
                evidence,
            });
        }
        if !response.is_success() {
            return Err(SourceError::Status(evidence).into());
        }
        Ok((envelope.data, evidence))
    }
}

/// Percent-encode a path segment (label names are `[a-zA-Z_][a-zA-Z0-9_]*`, but be safe).
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn strings(data: &Value) -> Option<Vec<String>> {
    match data {
        // Loki answers `"data": null` or omits it when nothing matched.
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn parse_vector(data: &Value) -> Result<Vec<Sample>, String> {
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => {}
        other => return Err(format!("expected resultType \"vector\", found {other:?}")),
    }
    let result = match data.get("result") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Ok(Vec::new()),
        Some(_) => return Err("data.result is not an array".into()),
    };
    result
        .iter()
        .map(|sample| {
            let labels = sample
                .get("metric")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let value = sample
                .get("value")
                .and_then(Value::as_array)
                .and_then(|pair| pair.get(1))
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or("a sample's value is not [time, \"number\"]")?;
            Ok((labels, value))
        })
        .collect()
}

fn parse_streams(data: &Value) -> Result<Vec<LogStream>, String> {
    match data.get("resultType").and_then(Value::as_str) {
        Some("streams") => {}
        other => return Err(format!("expected resultType \"streams\", found {other:?}")),
    }
    let result = match data.get("result") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Ok(Vec::new()),
        Some(other) => return Err(format!("data.result is not an array: {other}")),
    };
    result.iter().map(parse_stream).collect()
}

fn parse_stream(item: &Value) -> Result<LogStream, String> {
    let labels = item
        .get("stream")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let values = item.get("values").and_then(Value::as_array);
    let entries = values
        .map(|v| v.iter().map(parse_entry).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    Ok(LogStream { labels, entries })
}

/// `["<ns timestamp>", "<line>"]`, optionally followed by structured metadata (ignored).
fn parse_entry(value: &Value) -> Result<LogEntry, String> {
    let pair = value.as_array();
    let ts = pair
        .and_then(|p| p.first())
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u128>().ok());
    let line = pair.and_then(|p| p.get(1)).and_then(Value::as_str);
    match (ts, line) {
        (Some(timestamp_ns), Some(line)) => Ok(LogEntry {
            timestamp_ns,
            line: line.to_owned(),
        }),
        _ => Err(format!("expected [\"<ns>\", \"<line>\"], found {value}")),
    }
}
