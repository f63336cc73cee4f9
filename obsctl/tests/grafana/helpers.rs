//! Test helpers: the shared scripted HTTP server (../support/fake_http.rs), the client, and a
//! check context pointed at the fakes.

use std::time::Duration;

use obsctl::check::context::CheckContext;
use obsctl::sources::http::{HttpClient, HttpOptions};

#[path = "../support/fake_http.rs"]
mod fake_http;
pub use fake_http::*;

/// A client with a short timeout.
pub fn client() -> HttpClient {
    HttpClient::new(HttpOptions {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        ..HttpOptions::default()
    })
    .expect("client builds")
}

/// A context with no sources whose polling ends after `wait`.
pub fn context(wait: Duration) -> CheckContext {
    CheckContext::new("fastapi-backend", wait)
}

/// The dashboard that deploy/ provisions.
pub fn deployed_dashboard() -> std::path::PathBuf {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dashboards/fastapi-dashboard.json"
    )
    .into()
}
