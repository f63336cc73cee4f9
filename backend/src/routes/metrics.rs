//! `GET /metrics`: the registry in Prometheus text exposition format, with its content type.

use salvo::http::HeaderValue;
use salvo::http::header::CONTENT_TYPE;
use salvo::prelude::*;

use super::error::ApiError;
use crate::telemetry::metrics::{self, HttpMetrics};

/// Encodes the metrics on every scrape; collection is the hoop's job, not this handler's.
pub struct MetricsEndpoint {
    /// The collectors to encode.
    pub metrics: HttpMetrics,
}

#[async_trait]
impl Handler for MetricsEndpoint {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
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
