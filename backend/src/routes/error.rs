//! Error answers: every error is `{"detail": "..."}`, FastAPI's shape, never an HTML page.

use salvo::http::{ResBody, StatusCode};
use salvo::prelude::*;
use salvo::writing::Json;
use serde::Serialize;

/// An error answer with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// Human-readable reason, returned as `detail`.
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    detail: &'a str,
}

impl ApiError {
    /// An error with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    /// 422: the request was understood but its content is invalid.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 500: something failed on our side; the detail must not leak internals.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

impl Scribe for ApiError {
    fn render(self, res: &mut Response) {
        res.status_code(self.status);
        res.render(Json(Body {
            detail: &self.detail,
        }));
    }
}

/// The catcher's goal: turns any error answer that has no body yet (unmatched route, wrong
/// method, salvo's own parse errors) into the JSON shape.
pub struct JsonCatcher;

#[async_trait]
impl Handler for JsonCatcher {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let status = res.status_code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let detail = match &res.body {
            ResBody::Error(error) if !error.brief.is_empty() => error.brief.clone(),
            _ => status.canonical_reason().unwrap_or("Error").to_owned(),
        };
        ApiError::new(status, detail).render(res);
        ctrl.skip_rest();
    }
}
