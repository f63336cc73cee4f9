//! Protection that turns overload and stuck requests into fast, measured 503s: a cap on
//! requests handled at once and a per-request time limit. Mounted inside the observing hoop,
//! so what it rejects is counted and logged like any request.

use std::sync::Arc;
use std::time::Duration;

use salvo::http::header::RETRY_AFTER;
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use tokio::sync::Semaphore;

use super::error::ApiError;

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
