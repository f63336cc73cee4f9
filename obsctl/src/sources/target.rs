//! The target's `/metrics` endpoint: one scrape gives the status, content type, raw body and the
//! parsed families (or why the body is not exposition text), plus helpers to read a counter or
//! histogram series by labels. The body is read in the format its content type announces, as
//! Prometheus reads it: OpenMetrics for `application/openmetrics-text`, else the text format.

use super::exposition::{self, Exposition, ExpositionError, Format, HistogramSeries, MetricFamily};
use super::http::{Evidence, HttpClient, HttpResponse, SourceError, join};

/// The classic text format first, anything else as a fallback: what every check but the
/// OpenMetrics ones reads.
pub const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// What Prometheus 2.x asks for by default (Prometheus 3's default `scrape_protocols` ranks
/// the same way): OpenMetrics first, the text format as a fallback.
pub const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A target's metrics endpoint.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    client: HttpClient,
    url: String,
    /// `Authorization: Bearer` token for a protected `/metrics`.
    token: Option<String>,
}

impl MetricsEndpoint {
    /// The endpoint at `url` exactly (e.g. `http://127.0.0.1:8000/metrics`).
    pub fn new(client: HttpClient, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            token: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every scrape.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// The `/metrics` endpoint of the service at `base` (e.g. `http://127.0.0.1:8000`).
    pub fn for_target(client: HttpClient, base: &str) -> Self {
        Self::new(client, join(base, "/metrics"))
    }

    /// The same endpoint, scraped over a new connection each time (see
    /// [`HttpClient::one_connection_per_request`]).
    pub fn one_connection_per_scrape(&self) -> Result<Self, SourceError> {
        Ok(Self {
            client: self.client.one_connection_per_request()?,
            ..self.clone()
        })
    }

    /// The URL scraped.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// GET the endpoint asking for the text format. Any 2xx answer is `Ok`, whatever its body
    /// (see [`MetricsScrape::parsed`]); other statuses are [`SourceError::Status`].
    pub async fn scrape(&self) -> Result<MetricsScrape, SourceError> {
        Ok(parsed(self.get(ACCEPT).await?))
    }

    /// GET the endpoint as Prometheus does, preferring OpenMetrics (the only format with
    /// exemplars). An OpenMetrics answer is parsed as such; a text answer is not parsed again
    /// (its body is dropped at once: [`MetricsEndpoint::scrape`] reads that format).
    pub async fn scrape_openmetrics(&self) -> Result<Negotiated, SourceError> {
        let response = self.get(OPENMETRICS_ACCEPT).await?;
        match Format::of_content_type(response.content_type.as_deref()) {
            Format::OpenMetrics => Ok(Negotiated::OpenMetrics(Box::new(parsed(response)))),
            Format::Text => Ok(Negotiated::Text {
                evidence: response.evidence(),
                content_type: response.content_type,
            }),
        }
    }

    async fn get(&self, accept: &str) -> Result<HttpResponse, SourceError> {
        let bearer = self.token.as_ref().map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.client
            .get_with_headers(&self.url, &[], Some(accept), &headers)
            .await?
            .require_success()
    }
}

/// The scrape of `response`, its body read in the format its content type announces.
fn parsed(response: HttpResponse) -> MetricsScrape {
    let evidence = response.evidence();
    let format = Format::of_content_type(response.content_type.as_deref());
    // The body is parsed in place: a parsed scrape keeps it once, inside the exposition.
    let (parsed, raw) = match exposition::parse_owned_as(response.body, format) {
        Ok(parsed) => (Ok(parsed), Vec::new()),
        Err((error, raw)) => (Err(error), raw),
    };
    MetricsScrape {
        evidence,
        format,
        content_type: response.content_type,
        raw,
        parsed,
    }
}

/// What a metrics endpoint answers to Prometheus's own request (OpenMetrics first).
#[derive(Debug)]
pub enum Negotiated {
    /// OpenMetrics, read as such.
    OpenMetrics(Box<MetricsScrape>),
    /// The text format (or another content type Prometheus reads as text): left unparsed.
    Text {
        /// URL, status, content type and body excerpt.
        evidence: Evidence,
        /// The `Content-Type` header, when present.
        content_type: Option<String>,
    },
}

/// One scrape of a metrics endpoint.
#[derive(Debug, Clone)]
pub struct MetricsScrape {
    /// URL, status, content type and body excerpt.
    pub evidence: Evidence,
    /// The format the body was read as (from its content type).
    pub format: Format,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The body when it did not parse (a parsed body lives in `parsed`, not twice).
    raw: Vec<u8>,
    /// The parsed body, or why it is not exposition text.
    pub parsed: Result<Exposition, ExpositionError>,
}

impl MetricsScrape {
    /// The body as received.
    pub fn body(&self) -> &[u8] {
        match &self.parsed {
            Ok(parsed) => parsed.text().as_bytes(),
            Err(_) => &self.raw,
        }
    }

    /// Whether the content type is Prometheus text format: `text/plain`, with `version=0.0.4`
    /// when a version is given.
    pub fn content_type_is_prometheus_text(&self) -> bool {
        self.content_type.as_deref().is_some_and(is_prometheus_text)
    }

    /// The family named `name`, when the body parsed and has it.
    pub fn family(&self, name: &str) -> Option<MetricFamily<'_>> {
        self.parsed.as_ref().ok()?.family(name)
    }

    /// The summed value of the samples named `sample_name` of family `family` whose labels
    /// include `matcher` (`None` when the family is absent). For a counter, the family and sample
    /// names are usually equal (`fastapi_requests_total`).
    pub fn value(&self, family: &str, sample_name: &str, matcher: &[(&str, &str)]) -> Option<f64> {
        Some(self.family(family)?.sum_matching(sample_name, matcher))
    }

    /// The histogram series of family `family` whose labels include `matcher`.
    pub fn histogram(&self, family: &str, matcher: &[(&str, &str)]) -> Vec<HistogramSeries<'_>> {
        let Some(family) = self.family(family) else {
            return Vec::new();
        };
        family
            .histogram_series()
            .into_iter()
            .filter(|s| {
                matcher
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|have| have == *v))
            })
            .collect()
    }
}

/// Whether a `Content-Type` value names a text format Prometheus scrapes: the classic text format
/// (`text/plain`, version 0.0.4 or none; version 1.0.0, which prometheus_client 0.22+ and
/// Prometheus 3 use, is the same format with escaping rules) or OpenMetrics text.
pub fn is_prometheus_text(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        return true;
    }
    if !media.eq_ignore_ascii_case("text/plain") {
        return false;
    }
    parts
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("version"))
        .all(|(_, v)| matches!(v.trim().trim_matches('"'), "0.0.4" | "1.0.0"))
}

#[cfg(test)]
mod tests {
    use super::is_prometheus_text;

    #[test]
    fn prometheus_text_content_types() {
        assert!(is_prometheus_text(
            "text/plain; version=0.0.4; charset=utf-8"
        ));
        assert!(is_prometheus_text("text/plain"));
        assert!(is_prometheus_text("Text/Plain;charset=utf-8"));
        assert!(!is_prometheus_text("application/json"));
        // prometheus_client 0.22+ (a real FastAPI app following the spec answers this).
        assert!(is_prometheus_text(
            "text/plain; version=1.0.0; charset=utf-8"
        ));
        assert!(!is_prometheus_text("text/plain; version=2.0.0"));
        assert!(is_prometheus_text(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        ));
    }
}
