//! The Tempo HTTP API: readiness (`/ready`), trace search (`/api/search`, by tags such as
//! `service.name=...` or by a TraceQL query, over a window) and trace by id
//! (`/api/v2/traces/{id}`, falling back to `/api/traces/{id}` on Tempo versions without v2).
//! Trace ids are hex in search answers and base64 in trace bodies; both are normalised to 32
//! lowercase hex digits, and trace bodies are mapped into the same [`ReceivedSpan`] as the
//! embedded OTLP receiver, so checks treat both alike.

use serde_json::Value;

use super::http::{Evidence, HttpClient, HttpResponse, SourceError, join};
use super::otlp_json::spans_from_resource_spans;
use super::span::ReceivedSpan;
use super::window::TimeWindow;

/// Why a Tempo call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum TempoError {
    /// Transport, status or decoding failure (Tempo sends errors as plain text with a 4xx/5xx
    /// status: see the evidence's body excerpt).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// `/ready` did not answer 200.
    #[error("Tempo is not ready: HTTP {status} {excerpt}", status = .0.status.unwrap_or(0), excerpt = .0.body_excerpt)]
    NotReady(Evidence),
    /// Tempo has no trace with this id (yet: ingestion may lag).
    #[error("Tempo has no trace {trace_id}")]
    TraceNotFound {
        /// The id asked for.
        trace_id: String,
        /// The exchange.
        evidence: Evidence,
    },
    /// The id given is not 1 to 32 hex digits.
    #[error("invalid trace id {0:?}: expected up to 32 hex digits")]
    InvalidTraceId(String),
    /// The answer is JSON but not shaped as documented.
    #[error("unexpected Tempo answer: {detail}")]
    Unexpected {
        /// What did not fit.
        detail: String,
        /// The exchange.
        evidence: Evidence,
    },
}

/// What to search for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchFilter {
    /// Tag-based search: `key=value` pairs, sent logfmt-encoded as `tags`.
    Tags(Vec<(String, String)>),
    /// A TraceQL query, sent as `q` (e.g. `{ resource.service.name = "fastapi-backend" }`).
    TraceQl(String),
}

/// A trace search.
#[derive(Debug, Clone)]
pub struct TraceSearch {
    /// The filter.
    pub filter: SearchFilter,
    /// The window searched; Tempo searches only recent data without one.
    pub window: Option<TimeWindow>,
    /// Most traces returned.
    pub limit: u32,
}

impl TraceSearch {
    /// Traces of service `name` (tag `service.name`) in `window`.
    pub fn service(name: &str, window: Option<TimeWindow>, limit: u32) -> Self {
        Self {
            filter: SearchFilter::Tags(vec![("service.name".into(), name.into())]),
            window,
            limit,
        }
    }
}

/// One trace of a search answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    /// The trace id, 32 lowercase hex digits (Tempo drops leading zeros: they are restored).
    pub trace_id: String,
    /// The root span's service, when known.
    pub root_service_name: Option<String>,
    /// The root span's name, when known.
    pub root_trace_name: Option<String>,
    /// Start, Unix nanoseconds.
    pub start_unix_nanos: Option<u64>,
    /// Duration in milliseconds.
    pub duration_ms: Option<u64>,
}

/// A search answer.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The traces found.
    pub traces: Vec<TraceSummary>,
    /// The exchange.
    pub evidence: Evidence,
}

/// A trace fetched by id.
#[derive(Debug, Clone)]
pub struct TraceResult {
    /// The trace's spans.
    pub spans: Vec<ReceivedSpan>,
    /// The exchange.
    pub evidence: Evidence,
}

/// A Tempo server's HTTP API.
#[derive(Debug, Clone)]
pub struct Tempo {
    client: HttpClient,
    base: String,
}

impl Tempo {
    /// The API of the server at `base` (e.g. `http://127.0.0.1:3200`).
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
    pub async fn ready(&self) -> Result<Evidence, TempoError> {
        self.client
            .probe(&join(&self.base, "/ready"))
            .await?
            .map_err(TempoError::NotReady)
    }

    /// Search traces.
    pub async fn search(&self, search: &TraceSearch) -> Result<SearchResult, TempoError> {
        let mut params = vec![match &search.filter {
            SearchFilter::Tags(tags) => ("tags", logfmt(tags)),
            SearchFilter::TraceQl(q) => ("q", q.clone()),
        }];
        params.push(("limit", search.limit.to_string()));
        params.extend(window_params(search.window));
        let response = self
            .client
            .get(
                &join(&self.base, "/api/search"),
                &params,
                Some("application/json"),
            )
            .await?;
        let body: Value = response.json_success()?;
        let evidence = response.evidence();
        match parse_search(&body) {
            Ok(traces) => Ok(SearchResult { traces, evidence }),
            Err(detail) => Err(TempoError::Unexpected { detail, evidence }),
        }
    }

    /// A trace by id, through `/api/v2/traces/{id}`, or `/api/traces/{id}` when this Tempo has
    /// no v2 endpoint.
    pub async fn trace(
        &self,
        trace_id: &str,
        window: Option<TimeWindow>,
    ) -> Result<TraceResult, TempoError> {
        match self.trace_at("/api/v2/traces/", trace_id, window).await {
            Err(TempoError::TraceNotFound { evidence, .. })
                if evidence.body_excerpt.contains("page not found") =>
            {
                self.trace_v1(trace_id, window).await
            }
            other => other,
        }
    }

    /// A trace by id through the v1 endpoint `/api/traces/{id}` (body `{"batches": [...]}`).
    pub async fn trace_v1(
        &self,
        trace_id: &str,
        window: Option<TimeWindow>,
    ) -> Result<TraceResult, TempoError> {
        self.trace_at("/api/traces/", trace_id, window).await
    }

    async fn trace_at(
        &self,
        prefix: &str,
        trace_id: &str,
        window: Option<TimeWindow>,
    ) -> Result<TraceResult, TempoError> {
        let id = normalize_trace_id(trace_id)
            .ok_or_else(|| TempoError::InvalidTraceId(trace_id.to_owned()))?;
        let url = join(&self.base, &format!("{prefix}{id}"));
        let response = self
            .client
            .get(&url, &window_params(window), Some("application/json"))
            .await?;
        if response.status == 404 {
            return Err(TempoError::TraceNotFound {
                trace_id: id,
                evidence: response.evidence(),
            });
        }
        parse_trace_response(response)
    }
}

fn parse_trace_response(response: HttpResponse) -> Result<TraceResult, TempoError> {
    let body: Value = response.json_success()?;
    let evidence = response.evidence();
    let trace = body.get("trace").unwrap_or(&body);
    let resource_spans = trace
        .get("resourceSpans")
        .or_else(|| trace.get("batches"))
        .and_then(Value::as_array);
    let Some(resource_spans) = resource_spans else {
        // An empty object is how some versions say "no such trace".
        if trace.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(TraceResult {
                spans: Vec::new(),
                evidence,
            });
        }
        return Err(TempoError::Unexpected {
            detail: "no trace.resourceSpans or batches array".into(),
            evidence,
        });
    };
    match spans_from_resource_spans(resource_spans) {
        Ok(spans) => Ok(TraceResult { spans, evidence }),
        Err(detail) => Err(TempoError::Unexpected { detail, evidence }),
    }
}

/// `start`/`end` in Unix seconds, when a window is given.
fn window_params(window: Option<TimeWindow>) -> Vec<(&'static str, String)> {
    window
        .map(|w| {
            vec![
                ("start", w.start_secs().to_string()),
                ("end", w.end_secs().to_string()),
            ]
        })
        .unwrap_or_default()
}

/// logfmt: `k=v` separated by spaces, values with spaces or quotes quoted and escaped.
fn logfmt(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            if v.is_empty() || v.contains([' ', '"', '=']) {
                format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1 to 32 hex digits, left-padded with zeros to 32 and lowercased.
pub fn normalize_trace_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{:0>32}", raw.to_ascii_lowercase()))
}

fn parse_search(body: &Value) -> Result<Vec<TraceSummary>, String> {
    let traces = match body.get("traces") {
        Some(Value::Array(items)) => items,
        // Tempo omits `traces` when nothing matched.
        Some(Value::Null) | None if body.is_object() => return Ok(Vec::new()),
        _ => return Err("no \"traces\" array".into()),
    };
    traces.iter().map(summary).collect()
}

fn summary(item: &Value) -> Result<TraceSummary, String> {
    let raw = item
        .get("traceID")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let trace_id = normalize_trace_id(raw).ok_or_else(|| format!("invalid traceID {raw:?}"))?;
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
    let number = |key: &str| match item.get(key) {
        Some(Value::String(s)) => s.parse().ok(),
        Some(v) => v.as_u64(),
        None => None,
    };
    Ok(TraceSummary {
        trace_id,
        root_service_name: text("rootServiceName"),
        root_trace_name: text("rootTraceName"),
        start_unix_nanos: number("startTimeUnixNano"),
        duration_ms: number("durationMs"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_padded_and_lowercased() {
        assert_eq!(
            normalize_trace_id("D6E9329D67B6146A").as_deref(),
            Some("0000000000000000d6e9329d67b6146a")
        );
        assert_eq!(normalize_trace_id(""), None);
        assert_eq!(normalize_trace_id("xyz"), None);
        assert_eq!(normalize_trace_id(&"a".repeat(33)), None);
    }

    #[test]
    fn logfmt_quotes_when_needed() {
        let tags = vec![
            ("service.name".to_owned(), "fastapi-backend".to_owned()),
            ("http.route".to_owned(), "a b\"c".to_owned()),
        ];
        assert_eq!(
            logfmt(&tags),
            "service.name=fastapi-backend http.route=\"a b\\\"c\""
        );
    }
}
