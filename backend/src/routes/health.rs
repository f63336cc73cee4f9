//! `GET /health`: 200 while the store answers, 503 when it does not.

use salvo::http::StatusCode;
use salvo::prelude::*;
use salvo::writing::Json;
use serde_json::json;

use super::error::ApiError;
use crate::store::Store;

/// Liveness and readiness in one: the store is the service's only dependency.
pub struct Health {
    /// The store probed on every call.
    pub store: Store,
}

#[async_trait]
impl Handler for Health {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        match self.store.ping().await {
            Ok(()) => res.render(Json(json!({ "status": "ok" }))),
            Err(error) => {
                tracing::error!(error = %error, "Health check failed: store unusable");
                res.render(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable",
                ));
            }
        }
    }
}
