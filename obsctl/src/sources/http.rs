//! The HTTP plumbing every HTTP source shares: one client (timeouts, `obsctl/VERSION` user agent,
//! no proxies), a bounded body read, the [`Evidence`] of each exchange, and [`SourceError`], which
//! classifies what went wrong the way a user needs to hear it (refused, timed out, an HTTP error
//! status, an HTML page where JSON was expected, invalid JSON, a body too large, a TLS handshake
//! refused). The client speaks HTTPS with the checked [`TlsConfig`] and carries a source's
//! [`Credentials`] on every request; evidence never shows them (nor a URL's userinfo).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::auth::Credentials;
use crate::tls::TlsConfig;

/// The user agent sent with every request.
pub const USER_AGENT: &str = concat!("obsctl/", env!("CARGO_PKG_VERSION"));

/// Largest body read by default; larger bodies are an error, not an allocation.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Characters of a body kept in [`Evidence::body_excerpt`].
const EXCERPT_CHARS: usize = 300;

/// What one HTTP exchange showed, for a check to put in front of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The full URL asked, query included.
    pub url: String,
    /// The HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The first characters of the body (lossy UTF-8).
    pub body_excerpt: String,
    /// Time from sending to the end of the body.
    pub elapsed_ms: u64,
}

/// Why a source could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL could not be built or parsed.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Nothing listens there.
    #[error("connection refused by {url}: is the service running and the address right?")]
    ConnectRefused {
        /// The URL asked.
        url: String,
    },
    /// The connection failed for another reason (unreachable, reset, DNS).
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        /// The URL asked.
        url: String,
        /// The underlying error.
        detail: String,
    },
    /// No complete answer within the timeout.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The answer has a non-success status.
    #[error("{url} answered HTTP {status}: {excerpt}", url = .0.url, status = .0.status.unwrap_or(0), excerpt = .0.body_excerpt)]
    Status(Evidence),
    /// An HTML page came back where JSON was expected (a proxy, a login page, an error page).
    #[error("{url} returned an HTML page where JSON was expected: {excerpt}", url = .0.url, excerpt = .0.body_excerpt)]
    HtmlPage(Evidence),
    /// The body is not the JSON expected.
    #[error("{url} returned invalid JSON ({detail}): {excerpt}", url = .evidence.url, excerpt = .evidence.body_excerpt)]
    InvalidJson {
        /// The exchange.
        evidence: Evidence,
        /// The parser's complaint.
        detail: String,
    },
    /// The body exceeds the read limit (reading stopped there, before allocating more).
    #[error(
        "{url} returned a body larger than {limit} bytes, the most obsctl reads from one answer: \
         reading stopped there"
    )]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The TLS handshake failed: the server's certificate was not trusted, or the server wants
    /// a client certificate, ... (the detail says which, and which flag fixes it).
    #[error("TLS with {url} failed: {detail}")]
    Tls {
        /// The URL asked.
        url: String,
        /// What rustls found, and what to do.
        detail: String,
    },
    /// Any other transport failure.
    #[error("request to {url} failed: {detail}")]
    Request {
        /// The URL asked.
        url: String,
        /// The underlying error.
        detail: String,
    },
}

impl SourceError {
    /// The exchange's evidence, for variants that got an answer.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Self::Status(e) | Self::HtmlPage(e) => Some(e),
            Self::InvalidJson { evidence, .. } => Some(evidence),
            _ => None,
        }
    }

    /// Whether the source was unreachable (refused, failed to connect or to agree on TLS, or
    /// timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::ConnectRefused { .. }
                | Self::Connect { .. }
                | Self::Tls { .. }
                | Self::Timeout { .. }
        )
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Bound on a whole exchange, body included.
    pub timeout: Duration,
    /// Bound on establishing the connection.
    pub connect_timeout: Duration,
    /// Largest body read.
    pub max_body: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl HttpOptions {
    /// Settings whose bounds derive from the user's `--timeout` (never added to it): one
    /// exchange gets at most that long (within 1 to 10 s: a poll asks again until the
    /// deadline), a connection at most a third of it.
    pub fn within(wait: Duration) -> Self {
        let timeout = wait.clamp(Duration::from_secs(1), Duration::from_secs(10));
        Self {
            timeout,
            connect_timeout: (timeout / 3).max(Duration::from_millis(300)),
            ..Self::default()
        }
    }
}

/// One HTTP answer, body read in full (within the limit).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The full URL asked.
    pub url: String,
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// Time from sending to the end of the body.
    pub elapsed: Duration,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The first `bytes` bytes of the body as text (invalid UTF-8 replaced).
    fn head(&self, bytes: usize) -> Cow<'_, str> {
        String::from_utf8_lossy(self.body.get(..bytes).unwrap_or(&self.body))
    }

    /// The evidence of this exchange.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            url: self.url.clone(),
            status: Some(self.status),
            content_type: self.content_type.clone(),
            // The first characters need only the first bytes: a large body is not copied.
            body_excerpt: excerpt(&self.head(4 * (EXCERPT_CHARS + 1)), EXCERPT_CHARS),
            elapsed_ms: u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Whether the body looks like an HTML page.
    pub fn is_html(&self) -> bool {
        let html_type = self
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("text/html"));
        let head: String = self.head(4096).trim_start().chars().take(15).collect();
        let head = head.to_ascii_lowercase();
        html_type || head.starts_with("<!doctype html") || head.starts_with("<html")
    }

    /// Fail with [`SourceError::Status`] unless the status is 2xx.
    pub fn require_success(self) -> Result<Self, SourceError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(SourceError::Status(self.evidence()))
        }
    }

    /// Decode the body as JSON `T`. An HTML body is [`SourceError::HtmlPage`]; an undecodable
    /// body is [`SourceError::Status`] when the status is not 2xx, else
    /// [`SourceError::InvalidJson`]. The status itself is not checked when the body decodes, so
    /// APIs that send error bodies with error statuses can be read.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        if self.is_html() {
            return Err(SourceError::HtmlPage(self.evidence()));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            if self.is_success() {
                SourceError::InvalidJson {
                    evidence: self.evidence(),
                    detail: e.to_string(),
                }
            } else {
                SourceError::Status(self.evidence())
            }
        })
    }
}

impl HttpResponse {
    /// Like [`HttpResponse::json`], and a decodable body with a non-2xx status is
    /// [`SourceError::Status`] too.
    pub fn json_success<T: DeserializeOwned>(&self) -> Result<T, SourceError> {
        let value = self.json()?;
        if self.is_success() {
            Ok(value)
        } else {
            Err(SourceError::Status(self.evidence()))
        }
    }
}

/// The shared HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    options: HttpOptions,
    /// The TLS settings it was built with, to build a sibling alike.
    tls: Arc<rustls::ClientConfig>,
    /// Headers every request carries (a source's credentials and tenant), marked sensitive.
    credentials: Arc<[(HeaderName, HeaderValue)]>,
}

impl HttpClient {
    /// Build a client with `options`, trusting the system's roots (see [`TlsConfig`]).
    pub fn new(options: HttpOptions) -> Result<Self, SourceError> {
        Self::with_tls(options, &TlsConfig::default())
    }

    /// Build a client with `options` that speaks HTTPS with `tls` (`--cacert`, `--insecure`,
    /// `--cert/--key`).
    pub fn with_tls(options: HttpOptions, tls: &TlsConfig) -> Result<Self, SourceError> {
        let config = tls
            .client_config()
            .map_err(|e| SourceError::Client(e.to_string()))?;
        Self::build(options, config, true, Arc::from(Vec::new()))
    }

    fn build(
        options: HttpOptions,
        tls: Arc<rustls::ClientConfig>,
        keep_alive: bool,
        credentials: Arc<[(HeaderName, HeaderValue)]>,
    ) -> Result<Self, SourceError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .no_proxy()
            .use_preconfigured_tls((*tls).clone());
        if !keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        let client = builder
            .build()
            .map_err(|e| SourceError::Client(e.to_string()))?;
        Ok(Self {
            client,
            options,
            tls,
            credentials,
        })
    }

    /// The same client (connections shared) sending `credentials` with every request: one
    /// client per source, each with its own login and tenant.
    pub fn with_credentials(&self, credentials: &Credentials) -> Self {
        Self {
            credentials: Arc::from(credentials.headers()),
            ..self.clone()
        }
    }

    /// A client with the same settings that opens a new connection for every request: behind
    /// one port, several worker processes then each answer as the OS hands them connections,
    /// where a kept-alive connection always reaches the same one.
    pub fn one_connection_per_request(&self) -> Result<Self, SourceError> {
        Self::build(
            self.options.clone(),
            Arc::clone(&self.tls),
            false,
            Arc::clone(&self.credentials),
        )
    }

    /// The client's settings.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// GET `url` with `query` parameters and an optional `Accept` header; any status is `Ok`.
    pub async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
        accept: Option<&str>,
    ) -> Result<HttpResponse, SourceError> {
        self.get_with_headers(url, query, accept, &[]).await
    }

    /// Asks a readiness endpoint: `Ok(Ok(evidence))` when it answers 2xx, `Ok(Err(evidence))`
    /// when it answers anything else (starting up, unhealthy), `Err` when it cannot be asked.
    pub async fn probe(&self, url: &str) -> Result<Result<Evidence, Evidence>, SourceError> {
        let response = self.get(url, &[], None).await?;
        let evidence = response.evidence();
        Ok(if response.is_success() {
            Ok(evidence)
        } else {
            Err(evidence)
        })
    }

    /// Like [`HttpClient::get`], with extra request `headers` (e.g. `Authorization`, sent marked
    /// sensitive; they replace the client's credentials of the same name). A header that HTTP
    /// cannot carry is [`SourceError::Request`], before sending.
    pub async fn get_with_headers(
        &self,
        url: &str,
        query: &[(&str, String)],
        accept: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, SourceError> {
        let mut builder = self.client.get(url).query(query);
        if let Some(accept) = accept {
            builder = builder.header(reqwest::header::ACCEPT, accept);
        }
        for (name, value) in self.credentials.iter() {
            if !headers
                .iter()
                .any(|(n, _)| name.as_str().eq_ignore_ascii_case(n))
            {
                builder = builder.header(name, value.clone());
            }
        }
        for (name, value) in headers {
            let (name, value) = header(name, value).map_err(|detail| SourceError::Request {
                url: url.to_owned(),
                detail,
            })?;
            builder = builder.header(name, value);
        }
        let request = builder.build().map_err(|e| SourceError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let full_url = without_userinfo(request.url());
        // reqwest's timeout covers the body too; this outer bound is a second line of defence.
        let bound = self.options.timeout + Duration::from_millis(500);
        match tokio::time::timeout(bound, self.exchange(request, &full_url)).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Timeout {
                url: full_url,
                timeout: self.options.timeout,
            }),
        }
    }

    /// GET `url` and decode a JSON body (see [`HttpResponse::json`]).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<(T, Evidence), SourceError> {
        let response = self.get(url, query, Some("application/json")).await?;
        let value = response.json()?;
        Ok((value, response.evidence()))
    }

    async fn exchange(
        &self,
        request: reqwest::Request,
        url: &str,
    ) -> Result<HttpResponse, SourceError> {
        let started = Instant::now();
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.classify(e, url))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_body(&mut response, url).await?;
        Ok(HttpResponse {
            url: url.to_owned(),
            status,
            content_type,
            body,
            elapsed: started.elapsed(),
        })
    }

    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        url: &str,
    ) -> Result<Vec<u8>, SourceError> {
        let limit = self.options.max_body;
        let too_large = || SourceError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(too_large());
        }
        // A declared length (within the limit) is allocated once; others grow up to the limit.
        let declared = response.content_length().unwrap_or(0) as usize;
        let mut body = Vec::with_capacity(declared.min(limit));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e, url))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn classify(&self, error: reqwest::Error, url: &str) -> SourceError {
        let url = url.to_owned();
        if error.is_timeout() {
            return SourceError::Timeout {
                url,
                timeout: self.options.timeout,
            };
        }
        if let Some(detail) = crate::tls::describe(&error) {
            return SourceError::Tls { url, detail };
        }
        if error.is_connect() {
            if has_io_kind(&error, std::io::ErrorKind::ConnectionRefused) {
                return SourceError::ConnectRefused { url };
            }
            return SourceError::Connect {
                url,
                detail: error_chain(&error),
            };
        }
        SourceError::Request {
            url,
            detail: error_chain(&error),
        }
    }
}

/// A request header, its value marked sensitive so that it never appears in debug output.
fn header(
    name: &str,
    value: &str,
) -> Result<(reqwest::header::HeaderName, reqwest::header::HeaderValue), String> {
    let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    let mut value = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name} has characters HTTP cannot carry"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// The URL as evidence shows it: without `user:password@` (reqwest sends it as basic auth).
fn without_userinfo(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// Join a base URL (`http://host:port` or with a path prefix) and an API path.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn has_io_kind(error: &(dyn std::error::Error + 'static), kind: std::io::ErrorKind) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == kind
        {
            return true;
        }
        current = e.source();
    }
    false
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_handles_slashes() {
        assert_eq!(
            join("http://h:1/", "/api/v1/query"),
            "http://h:1/api/v1/query"
        );
        assert_eq!(join("http://h:1/prom", "api"), "http://h:1/prom/api");
    }

    #[test]
    fn excerpt_cuts_on_characters() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("ab", 2), "ab");
    }
}
