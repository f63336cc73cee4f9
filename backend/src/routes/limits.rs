//! Protection that turns abuse and overload into fast, measured errors: overlong URLs (414) and
//! header blocks (431) on every route; on the API, bodies that arrive too slowly (408), a cap on
//! requests handled at once and a per-request time limit (503). Mounted inside the observing
//! hoop, so what it rejects is counted and logged like any request. `/metrics` and `/health`
//! stay outside the cap and the time limit: they are cheap and bounded on their own, and must
//! answer while the API is saturated. (hyper refuses header blocks over its 400 KiB buffer,
//! more than 100 headers and URIs over 64 KiB itself; the server module counts and logs those.)

use std::sync::Arc;
use std::time::Duration;

use salvo::http::errors::ParseError;
use salvo::http::header::{CONNECTION, CONTENT_LENGTH, RETRY_AFTER, TRANSFER_ENCODING};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use tokio::sync::Semaphore;

use super::error::ApiError;
use super::users::MAX_BODY_BYTES;
use crate::server::conn::ReservedConnection;

/// Longest accepted path and query, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Largest accepted header block (names, values and separators), in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 414 and 431 for every route, before anything else runs.
pub struct Oversized;

#[async_trait]
impl Handler for Oversized {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if let Some(error) = oversized(req) {
            // The request may not have been read to its end: do not reuse the connection.
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            res.render(error);
            ctrl.skip_rest();
        }
    }
}

/// The limits of the API routes.
pub struct Limits {
    slots: Arc<Semaphore>,
    timeout: Duration,
    body_timeout: Duration,
}

impl Limits {
    /// At most `max_concurrency` requests at once, each for at most `timeout` once its body
    /// (at most `body_timeout` to arrive) is in.
    pub fn new(max_concurrency: usize, timeout: Duration, body_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrency.min(Semaphore::MAX_PERMITS))),
            timeout,
            body_timeout,
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
        if req.extensions().get::<ReservedConnection>().is_some() {
            // Closed after the answer: a client's next request then gets a new connection, which
            // is admitted normally once there is room, instead of reusing this one forever.
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return reject(
                res,
                ctrl,
                unavailable("the server is at its connection limit"),
            );
        }
        // The body is read before a slot is taken, so a client trickling it in holds nothing
        // but its own connection; the handler then finds it cached.
        if let Err(error) = self.read_body(req).await {
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return reject(res, ctrl, error);
        }
        let Ok(_slot) = self.slots.try_acquire() else {
            return reject(
                res,
                ctrl,
                unavailable("server is at capacity, retry shortly"),
            );
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

impl Limits {
    /// Reads a request's body, if it has one, within the body time limit.
    async fn read_body(&self, req: &mut Request) -> Result<(), ApiError> {
        let headers = req.headers();
        let has_body = headers.contains_key(TRANSFER_ENCODING)
            || headers
                .get(CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        if !has_body {
            return Ok(());
        }
        match tokio::time::timeout(self.body_timeout, req.payload_with_max_size(MAX_BODY_BYTES))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(ParseError::PayloadTooLarge)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            )),
            Ok(Err(_)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request body could not be read",
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    self.body_timeout.as_secs()
                ),
            )),
        }
    }
}

/// A 503 that asks the client to come back in a second.
fn unavailable(detail: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, detail)
}

fn reject(res: &mut Response, ctrl: &mut FlowCtrl, error: ApiError) {
    if error.status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res.render(error);
    ctrl.skip_rest();
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
