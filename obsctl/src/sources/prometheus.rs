//! The Prometheus HTTP API: readiness (`/-/ready`), instant and range queries
//! (`/api/v1/query`, `/api/v1/query_range`), stored exemplars (`/api/v1/query_exemplars`) and
//! scrape targets (`/api/v1/targets`).
//! `"status": "error"` answers become [`PrometheusError::Api`] with Prometheus's own error type
//! and message, so a check can show why a query failed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::http::{Evidence, HttpClient, SourceError, join};

/// Label names to values of one series.
pub type Labels = BTreeMap<String, String>;

/// Why a Prometheus call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// Transport, status or decoding failure.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Prometheus answered `"status": "error"`.
    #[error("Prometheus rejected the request ({error_type}): {error}")]
    Api {
        /// Prometheus's `errorType` (`bad_data`, `execution`, `timeout`, ...).
        error_type: String,
        /// Prometheus's `error` message.
        error: String,
        /// The exchange.
        evidence: Evidence,
    },
    /// `/-/ready` did not answer 200 (still starting, or replaying its WAL).
    #[error("Prometheus is not ready: HTTP {status} {excerpt}", status = .0.status.unwrap_or(0), excerpt = .0.body_excerpt)]
    NotReady(Evidence),
    /// The answer is JSON but not shaped as documented.
    #[error("unexpected Prometheus answer: {detail}")]
    Unexpected {
        /// What did not fit.
        detail: String,
        /// The exchange.
        evidence: Evidence,
    },
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series labels (`__name__` included when the query kept it).
    pub labels: Labels,
    /// Evaluation time, Unix seconds.
    pub timestamp: f64,
    /// The value (may be NaN or infinite).
    pub value: f64,
}

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series labels.
    pub labels: Labels,
    /// `(Unix seconds, value)` points in time order.
    pub points: Vec<(f64, f64)>,
}

/// The `data` of a query answer, by `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    /// An instant vector.
    Vector(Vec<InstantSample>),
    /// A range vector.
    Matrix(Vec<RangeSeries>),
    /// A scalar at a time: `(Unix seconds, value)`.
    Scalar(f64, f64),
    /// A string at a time.
    String(f64, String),
}

impl QueryData {
    /// Whether the answer holds no series (a scalar or string is never empty).
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Vector(v) => v.is_empty(),
            Self::Matrix(m) => m.is_empty(),
            Self::Scalar(..) | Self::String(..) => false,
        }
    }

    /// The first value: the first vector sample, the last point of the first range series, or
    /// the scalar.
    pub fn first_value(&self) -> Option<f64> {
        match self {
            Self::Vector(v) => v.first().map(|s| s.value),
            Self::Matrix(m) => m.first().and_then(|s| s.points.last()).map(|p| p.1),
            Self::Scalar(_, v) => Some(*v),
            Self::String(..) => None,
        }
    }

    /// The vector samples (empty for other result types).
    pub fn samples(&self) -> &[InstantSample] {
        match self {
            Self::Vector(v) => v,
            _ => &[],
        }
    }
}

/// A query answer.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The result.
    pub data: QueryData,
    /// Warnings Prometheus attached to a successful answer.
    pub warnings: Vec<String>,
    /// The exchange.
    pub evidence: Evidence,
}

/// A scrape target's health as Prometheus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHealth {
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed (see [`Target::last_error`]).
    Down,
    /// Not scraped yet.
    Unknown,
}

/// One active scrape target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Labels after relabelling (`job`, `instance`, ...).
    pub labels: Labels,
    /// The scrape pool (the job name).
    pub scrape_pool: String,
    /// The URL Prometheus scrapes.
    pub scrape_url: String,
    /// Health of the last scrape.
    pub health: TargetHealth,
    /// Why the last scrape failed (empty when it did not).
    pub last_error: String,
    /// When the last scrape happened (RFC 3339, as Prometheus sent it).
    pub last_scrape: String,
    /// How long the last scrape took, in seconds.
    pub last_scrape_duration: f64,
}

/// The answer of `/api/v1/targets`.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Active targets.
    pub active: Vec<Target>,
    /// How many targets relabelling dropped.
    pub dropped: usize,
    /// The exchange.
    pub evidence: Evidence,
}

impl Targets {
    /// Active targets whose scrape URL contains `needle` (e.g. `127.0.0.1:8000/metrics`).
    pub fn scraping<'a>(&'a self, needle: &'a str) -> impl Iterator<Item = &'a Target> + 'a {
        self.active
            .iter()
            .filter(move |t| t.scrape_url.contains(needle))
    }
}

/// The documented response envelope.
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
    #[serde(default)]
    warnings: Vec<String>,
}

/// One series' exemplars, as `/api/v1/query_exemplars` returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarSeries {
    /// The series labels (`__name__`, `le`, `job`, ...).
    pub series_labels: Labels,
    /// Its exemplars in the range.
    pub exemplars: Vec<StoredExemplar>,
}

/// One exemplar Prometheus stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExemplar {
    /// Its labels (`trace_id`, `span_id`, ...).
    pub labels: Labels,
    /// Its value.
    pub value: f64,
    /// Its timestamp, Unix seconds.
    pub timestamp: f64,
}

/// A Prometheus server's HTTP API.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: HttpClient,
    base: String,
}

impl Prometheus {
    /// The API of the server at `base` (e.g. `http://127.0.0.1:9090`).
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

    /// `Ok` when `/-/ready` answers 200.
    pub async fn ready(&self) -> Result<Evidence, PrometheusError> {
        self.client
            .probe(&join(&self.base, "/-/ready"))
            .await?
            .map_err(PrometheusError::NotReady)
    }

    /// Evaluate `promql` at `time` (Unix seconds; now when `None`).
    pub async fn query(
        &self,
        promql: &str,
        time: Option<f64>,
    ) -> Result<QueryResult, PrometheusError> {
        let mut params = vec![("query", promql.to_owned())];
        if let Some(t) = time {
            params.push(("time", format_time(t)));
        }
        self.query_at("/api/v1/query", &params).await
    }

    /// Evaluate `promql` from `start` to `end` (Unix seconds) every `step`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<QueryResult, PrometheusError> {
        let params = [
            ("query", promql.to_owned()),
            ("start", format_time(start)),
            ("end", format_time(end)),
            ("step", format_time(step.as_secs_f64().max(0.001))),
        ];
        self.query_at("/api/v1/query_range", &params).await
    }

    /// The exemplars of the series `promql` selects, stored from `start` to `end` (Unix
    /// seconds). Empty when none were stored, which is all a Prometheus without
    /// `--enable-feature=exemplar-storage` (or scraping without OpenMetrics) ever answers.
    pub async fn query_exemplars(
        &self,
        promql: &str,
        start: f64,
        end: f64,
    ) -> Result<(Vec<ExemplarSeries>, Evidence), PrometheusError> {
        let params = [
            ("query", promql.to_owned()),
            ("start", format_time(start)),
            ("end", format_time(end)),
        ];
        let (data, _, evidence) = self.call("/api/v1/query_exemplars", &params).await?;
        match parse_exemplars(&data) {
            Ok(series) => Ok((series, evidence)),
            Err(detail) => Err(PrometheusError::Unexpected { detail, evidence }),
        }
    }

    /// The scrape targets (`/api/v1/targets`).
    pub async fn targets(&self) -> Result<Targets, PrometheusError> {
        let (data, _, evidence) = self.call("/api/v1/targets", &[]).await?;
        let unexpected = |detail: &str| PrometheusError::Unexpected {
            detail: detail.to_owned(),
            evidence: evidence.clone(),
        };
        let active = data
            .get("activeTargets")
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected("data.activeTargets is not an array"))?
            .iter()
            .map(target_from_json)
            .collect();
        let dropped = data
            .get("droppedTargets")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        Ok(Targets {
            active,
            dropped,
            evidence,
        })
    }

    async fn query_at(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<QueryResult, PrometheusError> {
        let (data, warnings, evidence) = self.call(path, params).await?;
        match parse_query_data(&data) {
            Ok(data) => Ok(QueryResult {
                data,
                warnings,
                evidence,
            }),
            Err(detail) => Err(PrometheusError::Unexpected { detail, evidence }),
        }
    }

    /// GET an API path and unwrap the documented envelope.
    async fn call(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(Value, Vec<String>, Evidence), PrometheusError> {
        let response = self
            .client
            .get(&join(&self.base, path), params, Some("application/json"))
            .await?;
        let envelope: Envelope = response.json()?;
        let evidence = response.evidence();
        if envelope.status != "success" {
            return Err(PrometheusError::Api {
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
                error: envelope.error.unwrap_or_else(|| envelope.status.clone()),
                evidence,
            });
        }
        Ok((envelope.data, envelope.warnings, evidence))
    }
}

/// Unix seconds as Prometheus accepts them (millisecond precision).
fn format_time(seconds: f64) -> String {
    format!("{seconds:.3}")
}

fn target_from_json(t: &Value) -> Target {
    let text = |key: &str| {
        t.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Target {
        labels: labels_from_json(t.get("labels")),
        scrape_pool: text("scrapePool"),
        scrape_url: text("scrapeUrl"),
        health: match t.get("health").and_then(Value::as_str) {
            Some("up") => TargetHealth::Up,
            Some("down") => TargetHealth::Down,
            _ => TargetHealth::Unknown,
        },
        last_error: text("lastError"),
        last_scrape: text("lastScrape"),
        last_scrape_duration: t
            .get("lastScrapeDuration")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
    }
}

fn labels_from_json(value: Option<&Value>) -> Labels {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_query_data(data: &Value) -> Result<QueryData, String> {
    let result = data.get("result").ok_or("data.result is missing")?;
    let kind = data.get("resultType").and_then(Value::as_str);
    match kind {
        Some("vector") => array(result)?
            .iter()
            .map(instant_sample)
            .collect::<Result<_, _>>()
            .map(QueryData::Vector),
        Some("matrix") => array(result)?
            .iter()
            .map(range_series)
            .collect::<Result<_, _>>()
            .map(QueryData::Matrix),
        Some("scalar") => point(result).map(|(t, v)| QueryData::Scalar(t, v)),
        Some("string") => {
            let pair = array(result)?;
            let t = pair
                .first()
                .and_then(Value::as_f64)
                .ok_or("string result without a time")?;
            let s = pair
                .get(1)
                .and_then(Value::as_str)
                .ok_or("string result without a string")?;
            Ok(QueryData::String(t, s.to_owned()))
        }
        other => Err(format!("unknown resultType {other:?}")),
    }
}

fn array(value: &Value) -> Result<&Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("expected an array, found {value}"))
}

fn instant_sample(item: &Value) -> Result<InstantSample, String> {
    let (timestamp, value) = point(
        item.get("value")
            .ok_or("vector sample without \"value\" (a native histogram?)")?,
    )?;
    Ok(InstantSample {
        labels: labels_from_json(item.get("metric")),
        timestamp,
        value,
    })
}

fn range_series(item: &Value) -> Result<RangeSeries, String> {
    let values = item.get("values").map(array).transpose()?;
    let points = values
        .map(|v| v.iter().map(point).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    Ok(RangeSeries {
        labels: labels_from_json(item.get("metric")),
        points,
    })
}

/// `[ <unix seconds>, "<value>" ]`.
fn point(value: &Value) -> Result<(f64, f64), String> {
    let pair = array(value)?;
    let time = pair.first().and_then(Value::as_f64);
    let sample = pair
        .get(1)
        .and_then(Value::as_str)
        .and_then(super::exposition::parse_float);
    match (time, sample) {
        (Some(t), Some(v)) => Ok((t, v)),
        _ => Err(format!("expected [time, \"value\"], found {value}")),
    }
}

/// `data` of a `query_exemplars` answer: `[{"seriesLabels": {...}, "exemplars": [{"labels":
/// {...}, "value": "0.03", "timestamp": 1700000000.123}]}]` (`null` when nothing is stored).
fn parse_exemplars(data: &Value) -> Result<Vec<ExemplarSeries>, String> {
    if data.is_null() {
        return Ok(Vec::new());
    }
    let series = data.as_array().ok_or("data is not an array")?;
    series
        .iter()
        .map(|one| {
            let exemplars = match one.get("exemplars") {
                None | Some(Value::Null) => Vec::new(),
                Some(list) => list
                    .as_array()
                    .ok_or("exemplars is not an array")?
                    .iter()
                    .map(|e| {
                        Ok(StoredExemplar {
                            labels: labels_of(e.get("labels")),
                            value: e
                                .get("value")
                                .and_then(Value::as_str)
                                .and_then(super::exposition::parse_float)
                                .ok_or("an exemplar's value is not a number string")?,
                            timestamp: e
                                .get("timestamp")
                                .and_then(Value::as_f64)
                                .ok_or("an exemplar's timestamp is not a number")?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            };
            Ok(ExemplarSeries {
                series_labels: labels_of(one.get("seriesLabels")),
                exemplars,
            })
        })
        .collect()
}

/// A JSON object of string values as labels (others left out).
fn labels_of(value: Option<&Value>) -> Labels {
    value
        .and_then(Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
