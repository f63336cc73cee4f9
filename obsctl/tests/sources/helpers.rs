//! Test helpers: the shared scripted HTTP server (../support/fake_http.rs) and the client.

use std::time::Duration;

use obsctl::sources::http::{HttpClient, HttpOptions};

#[path = "../support/fake_http.rs"]
mod fake_http;
pub use fake_http::*;

/// A client with a short timeout, so slow-answer tests stay quick.
pub fn client() -> HttpClient {
    client_with(Duration::from_secs(2), 1024 * 1024)
}

/// A client with the given timeout and body limit.
pub fn client_with(timeout: Duration, max_body: usize) -> HttpClient {
    HttpClient::new(HttpOptions {
        timeout,
        connect_timeout: Duration::from_secs(1),
        max_body,
    })
    .expect("client builds")
}
