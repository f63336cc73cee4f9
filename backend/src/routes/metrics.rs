//! `GET /metrics`: the registry in Prometheus text exposition format, with its content type, or
//! in OpenMetrics with exemplars when the scraper's `Accept` header prefers it (Prometheus does
//! by default).

use salvo::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, VARY, WWW_AUTHENTICATE};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;

use super::error::ApiError;
use crate::telemetry::metrics::{self, HttpMetrics};
use crate::telemetry::openmetrics;

/// Encodes the metrics on every scrape; collection is the hoop's job, not this handler's.
pub struct MetricsEndpoint {
    /// The collectors to encode.
    pub metrics: HttpMetrics,
    /// When set, scrapes must send `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl MetricsEndpoint {
    fn authorized(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let sent = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(sent.as_bytes(), token.as_bytes())
    }
}

/// Compares without an early exit, so response timing does not reveal the token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

#[async_trait]
impl Handler for MetricsEndpoint {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        if !self.authorized(req) {
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            res.render(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>",
            ));
            return;
        }
        let accept = req.headers().get_all(ACCEPT).iter();
        let accept: Vec<&str> = accept.filter_map(|value| value.to_str().ok()).collect();
        // The answer depends on Accept: caches must not give one scraper the other's format.
        res.headers_mut()
            .insert(VARY, HeaderValue::from_static("Accept"));
        if prefers_openmetrics(&accept.join(",")) {
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(openmetrics::CONTENT_TYPE),
            );
            let _ = res.write_body(self.metrics.encode_openmetrics());
            return;
        }
        match self.metrics.encode() {
            Ok(body) => {
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                // Writing to a fresh response body cannot fail.
                let _ = res.write_body(body);
            }
            Err(error) => {
                tracing::error!(error = %error, "Could not encode metrics");
                res.render(ApiError::internal("could not encode metrics"));
            }
        }
    }
}

/// Whether an `Accept` header asks for OpenMetrics rather than the text format: it names
/// `application/openmetrics-text` (any version: 1.0.0 is the one there is) with a quality above
/// zero and at least that of the text format, as its most specific range gives it
/// (`text/plain`, else `text/*`, else `*/*`). No header, or one naming neither, gets text.
pub fn prefers_openmetrics(accept: &str) -> bool {
    let mut openmetrics: Option<f32> = None;
    // (specificity, quality) of the most specific range that covers text/plain.
    let mut text: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(0.0);
        let specificity = match media.as_str() {
            "application/openmetrics-text" => {
                openmetrics = Some(openmetrics.map_or(quality, |q| q.max(quality)));
                continue;
            }
            "text/plain" => 3,
            "text/*" => 2,
            "*/*" => 1,
            _ => continue,
        };
        match text {
            Some((known, q)) if known == specificity => {
                text = Some((known, q.max(quality)));
            }
            Some((known, _)) if known > specificity => {}
            _ => text = Some((specificity, quality)),
        }
    }
    let text = text.map_or(0.0, |(_, q)| q);
    openmetrics.is_some_and(|q| q > 0.0 && q >= text)
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, prefers_openmetrics};

    #[test]
    fn accept_headers_choose_the_format() {
        // What Prometheus 2.x sends by default, and Prometheus 3's default scrape_protocols.
        assert!(prefers_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(prefers_openmetrics(
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
        ));
        assert!(prefers_openmetrics("application/openmetrics-text"));
        assert!(prefers_openmetrics(
            "Application/OpenMetrics-Text; Version=1.0.0; Q=0.9, text/plain;q=0.2"
        ));
        // Prometheus with scrape_protocols [PrometheusText0.0.4], curl, browsers, obsctl.
        assert!(!prefers_openmetrics(
            "text/plain;version=0.0.4;q=1,*/*;q=0.1"
        ));
        assert!(!prefers_openmetrics(""));
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        ));
        // Text preferred, or OpenMetrics refused.
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;q=0.3,text/plain;q=0.5"
        ));
        assert!(!prefers_openmetrics("application/openmetrics-text;q=0"));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;q=0.5,*/*;q=0.9"
        ));
        // A specific text/plain range wins over */* for the text format's quality.
        assert!(prefers_openmetrics(
            "application/openmetrics-text;q=0.5,text/plain;q=0.1,*/*;q=0.9"
        ));
        // A malformed quality counts as refusal, not as 1.
        assert!(!prefers_openmetrics("application/openmetrics-text;q=high"));
    }

    #[test]
    fn token_comparison_needs_every_byte_and_the_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret-and-more", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
