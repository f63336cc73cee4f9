//! The scenario file exactly as TOML spells it. Fields that need checks beyond their type keep
//! their position ([`Spanned`]) so that a bad value is reported at its line and column.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A `headers` table: names to value templates, both with their positions.
pub(crate) type RawHeaders = BTreeMap<Spanned<String>, Spanned<String>>;

/// The top level of a scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub target: Option<Spanned<String>>,
    pub start_rate: Option<Spanned<f64>>,
    pub max_in_flight: Option<Spanned<u32>>,
    pub timeout: Option<Spanned<String>>,
    pub headers: Option<RawHeaders>,
    pub stages: Spanned<Vec<RawStage>>,
    pub requests: Spanned<Vec<RawRequest>>,
    pub thresholds: Option<RawThresholds>,
}

/// One `[[stages]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub duration: Spanned<String>,
    pub rate: Spanned<f64>,
}

/// One `[[requests]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequest {
    pub name: Spanned<String>,
    pub method: Option<Spanned<String>>,
    pub path: Spanned<String>,
    pub weight: Option<Spanned<i64>>,
    pub body: Option<Spanned<String>>,
    pub content_type: Option<Spanned<String>>,
    pub headers: Option<RawHeaders>,
    pub expect: Option<Spanned<Vec<Spanned<i64>>>>,
    pub thresholds: Option<RawThresholds>,
}

/// The `[thresholds]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThresholds {
    pub p50_ms: Option<Spanned<f64>>,
    pub p90_ms: Option<Spanned<f64>>,
    pub p95_ms: Option<Spanned<f64>>,
    pub p99_ms: Option<Spanned<f64>>,
    pub p99_9_ms: Option<Spanned<f64>>,
    pub max_ms: Option<Spanned<f64>>,
    pub error_rate: Option<Spanned<f64>>,
    pub min_rate: Option<Spanned<f64>>,
    pub abort_on_fail: Option<Spanned<bool>>,
}
