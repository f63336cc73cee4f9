//! `GET /metrics`: the registry in Prometheus text exposition format, with its content type.

use salvo::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;

use super::error::ApiError;
use crate::telemetry::metrics::{self, HttpMetrics};

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

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison_needs_every_byte_and_the_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret-and-more", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
