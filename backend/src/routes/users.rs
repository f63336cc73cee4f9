//! `GET /api/users/{user_id}` and `POST /api/users`.

use salvo::http::errors::ParseError;
use salvo::http::header::CONNECTION;
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use salvo::writing::Json;
use serde_json::Value;
use tracing::Instrument;

use super::error::ApiError;
use crate::store::{Store, StoreError};

/// Largest accepted request body; larger ones answer 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest accepted user name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// `GET /api/users/{user_id}`: 200 with the user, 404 unknown, 422 not an integer.
pub struct GetUser {
    /// Where users live.
    pub store: Store,
}

#[async_trait]
impl Handler for GetUser {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let raw = req.param::<String>("user_id").unwrap_or_default();
        let Ok(id) = raw.parse::<i64>() else {
            return res.render(ApiError::unprocessable("user_id must be an integer"));
        };
        let span = tracing::info_span!("get_user", user_id = id);
        match self.store.get_user(id).instrument(span).await {
            Ok(Some(user)) => res.render(Json(user)),
            Ok(None) => res.render(ApiError::new(StatusCode::NOT_FOUND, "User not found")),
            Err(error) => res.render(store_failure(&error)),
        }
    }
}

/// `POST /api/users` with `{"name": "..."}`: 201 with the stored user; 422 for malformed JSON,
/// wrong types or a missing name; 413 for a body over [`MAX_BODY_BYTES`].
pub struct CreateUser {
    /// Where users live.
    pub store: Store,
}

#[async_trait]
impl Handler for CreateUser {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let name = match read_name(req).await {
            Ok(name) => name,
            Err(error) => {
                if error.status == StatusCode::PAYLOAD_TOO_LARGE {
                    // The rest of the body is never read, so the connection cannot be reused:
                    // say so, or a keep-alive client sends its next request into a closed socket.
                    res.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                return res.render(error);
            }
        };
        let span = tracing::info_span!("create_user", user_id = tracing::field::Empty);
        let created = self.store.create_user(name).instrument(span.clone()).await;
        match created {
            Ok(user) => {
                span.record("user_id", user.id);
                res.status_code(StatusCode::CREATED);
                res.render(Json(user));
            }
            Err(error) => res.render(store_failure(&error)),
        }
    }
}

/// Reads and validates the body. Error details name the problem, never echo the body.
async fn read_name(req: &mut Request) -> Result<String, ApiError> {
    let body = req
        .payload_with_max_size(MAX_BODY_BYTES)
        .await
        .map_err(|error| match error {
            ParseError::PayloadTooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            ),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "request body could not be read"),
        })?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::unprocessable("request body is not valid JSON"))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::unprocessable(
            "request body must be a JSON object",
        ));
    };
    match fields.get("name") {
        None => Err(ApiError::unprocessable("field `name` is required")),
        Some(Value::String(name)) => validate_name(name),
        Some(_) => Err(ApiError::unprocessable("field `name` must be a string")),
    }
}

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        Err(ApiError::unprocessable("field `name` must not be empty"))
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(ApiError::unprocessable(format!(
            "field `name` must be at most {MAX_NAME_CHARS} characters"
        )))
    } else {
        Ok(name.to_owned())
    }
}

fn store_failure(error: &StoreError) -> ApiError {
    tracing::error!(error = %error, "Store operation failed");
    ApiError::internal("the user store failed; see the service log")
}
