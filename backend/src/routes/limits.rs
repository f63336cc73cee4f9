//! Protection that turns abuse and overload into fast, measured errors: overlong URLs (414) and
//! header blocks (431), a cap on requests handled at once and a per-request time limit (503).
//! Mounted inside the observing hoop, so what it rejects is counted and logged like any request.
//! (hyper itself refuses header blocks over its 400 KiB buffer before any hoop sees them.)

use std::sync::Arc;
use std::time::Duration;

use salvo::http::header::{CONNECTION, RETRY_AFTER};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Longest accepted path and query, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Largest accepted header block (names, values and separators), in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The limits of one service.
pub struct Limits {
    slots: Arc<Semaphore>,
    timeout: Duration,
}

impl Limits {
    /// At most `max_concurrency` requests at once, each for at most `timeout`.
    pub fn new(max_concurrency: usize, timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrency.min(Semaphore::MAX_PERMITS))),
            timeout,
        }
    }
}

#[async_trait]
impl Handler for Limits {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if let Some(error) = oversized(req) {
            // The request may not have been read to its end: do not reuse the connection.
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            res.render(error);
            ctrl.skip_rest();
            return;
        }
        let Ok(_slot) = self.slots.try_acquire() else {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            res.render(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server is at capacity, retry shortly",
            ));
            ctrl.skip_rest();
            return;
        };
        if tokio::time::timeout(self.timeout, ctrl.call_next(req, depot, res))
            .await
            .is_err()
        {
            // The handler was dropped mid-way: whatever it wrote is replaced.
            *res = Response::new();
            res.render(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("request timed out after {} s", self.timeout.as_secs()),
            ));
            ctrl.skip_rest();
        }
    }
}

/// The 414 or 431 a request deserves for its size, if any.
fn oversized(req: &Request) -> Option<ApiError> {
    let uri = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the URL is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        )
    })
}
