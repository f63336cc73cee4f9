//! Test helpers: a tiny configurable HTTP server on 127.0.0.1:0 (hyper), a server that accepts
//! and never answers, a check context pointed at them, and assertions that show the whole
//! result when they fail.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use obsctl::check::context::{CheckContext, LogInput};
use obsctl::check::model::{CheckResult, Status};
use obsctl::check::report::CheckReport;
use obsctl::sources::http::{HttpClient, HttpOptions};
use obsctl::sources::logs::LogBuffer;
use obsctl::sources::target::MetricsEndpoint;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The service name of the contract, expected in logs and traces.
pub const SERVICE: &str = "fastapi-backend";

/// How long polling checks wait for ingestion: short, so failing checks stay quick.
pub const WAIT: Duration = Duration::from_secs(2);

/// The HTTP timeout of the test client.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// Every test finishes well within this, or fails.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The contract's content type for `/metrics`.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Run `fut` within the test deadline, failing the test when it is exceeded.
pub async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    match tokio::time::timeout(TEST_TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("test exceeded {TEST_TIMEOUT:?}"),
    }
}

/// A client with a short timeout.
pub fn client() -> HttpClient {
    client_with_timeout(HTTP_TIMEOUT)
}

/// A client whose whole exchange is bounded by `timeout`.
pub fn client_with_timeout(timeout: Duration) -> HttpClient {
    HttpClient::new(HttpOptions {
        timeout,
        connect_timeout: Duration::from_secs(1),
        ..HttpOptions::default()
    })
    .expect("the HTTP client builds")
}

/// A context with no sources and the short ingestion wait.
pub fn context() -> CheckContext {
    CheckContext::new(SERVICE, WAIT)
}

/// A context whose target (and its `/metrics`) is `base`, as `obsctl check --target` builds it.
pub fn target_context(base: &str) -> CheckContext {
    target_context_with(base, client())
}

/// Like [`target_context`], with a chosen client.
pub fn target_context_with(base: &str, client: HttpClient) -> CheckContext {
    let mut ctx = context();
    ctx.metrics = Some(MetricsEndpoint::for_target(client, base));
    ctx.target = Some(base.to_owned());
    ctx
}

/// A log input holding `lines`, as `--logs FILE` gives it.
pub fn log_input(lines: &[String]) -> LogInput {
    LogInput {
        buffer: buffer_of(lines),
        origin: "stdout of `app`".to_owned(),
        stderr: None,
    }
}

/// A log buffer holding `lines`.
pub fn buffer_of(lines: &[String]) -> LogBuffer {
    let buffer = LogBuffer::default();
    for line in lines {
        buffer.push(line.clone());
    }
    buffer
}

/// Run every check within the test deadline (not strict).
pub async fn run_checks(ctx: &CheckContext) -> CheckReport {
    bounded(obsctl::check::run(
        ctx,
        &obsctl::check::policy::Policy::defaults(),
    ))
    .await
}

/// The result of check `id`; the report must have it.
pub fn result<'a>(report: &'a CheckReport, id: &str) -> &'a CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in the report"))
}

/// Everything a user reads of a result: detail, evidence and hint.
pub fn said(result: &CheckResult) -> String {
    let mut text = result.detail.clone();
    for line in &result.evidence {
        text.push('\n');
        text.push_str(line);
    }
    if let Some(hint) = &result.hint {
        text.push('\n');
        text.push_str(hint);
    }
    for finding in &result.findings {
        text.push('\n');
        text.push_str(&finding.what);
        for example in &finding.examples {
            text.push('\n');
            text.push_str(example);
        }
        text.push('\n');
        text.push_str(&finding.hint);
    }
    text
}

/// Asserts that check `id` ended with `status` and that its detail, evidence or hint contains
/// every one of `phrases`; returns the result for further assertions.
pub fn assert_check<'a>(
    report: &'a CheckReport,
    id: &str,
    status: Status,
    phrases: &[&str],
) -> &'a CheckResult {
    let result = result(report, id);
    assert_eq!(result.status, status, "{id}: {result:#?}");
    let text = said(result);
    for phrase in phrases {
        assert!(
            text.contains(phrase),
            "{id}: expected {phrase:?} in what the check says:\n{text}"
        );
    }
    result
}

/// What a fake server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, when one is sent.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A 200 answer with this content type and body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::with(200, content_type, body)
    }

    /// A 200 JSON answer.
    pub fn json(body: &str) -> Self {
        Self::ok("application/json", body)
    }

    /// An answer with this status, content type and body.
    pub fn with(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            body: body.into(),
        }
    }

    /// A plain 404.
    pub fn not_found() -> Self {
        Self::with(404, "text/plain; charset=utf-8", "404 page not found\n")
    }
}

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The path, without the query.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The `Accept` header, when sent.
    pub accept: Option<String>,
}

impl Asked {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Asked) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server on an ephemeral loopback port answering with `handler`; it stops,
/// open connections included, when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Serve `handler`.
    pub async fn start(handler: impl Fn(&Asked) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(serve(listener, Arc::new(handler)));
        Self { addr, task }
    }

    /// A target whose `/metrics` answers `metrics` and whose other paths answer 404.
    pub async fn metrics(metrics: Reply) -> Self {
        Self::start(move |asked| match asked.path.as_str() {
            "/metrics" => metrics.clone(),
            _ => Reply::not_found(),
        })
        .await
    }

    /// A target whose `/metrics` answers `body` as Prometheus text, as the contract says.
    pub async fn exposition(body: &str) -> Self {
        Self::metrics(Reply::ok(PROMETHEUS_TEXT, body)).await
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; the connections live in a `JoinSet` owned by this task,
/// so aborting it ends them too.
async fn serve(listener: TcpListener, handler: Handler) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let handler = Arc::clone(&handler);
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let reply = handler(&asked(&request));
                async move { Ok::<_, Infallible>(response(reply)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connections so a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
    }
}

fn asked(request: &Request<Incoming>) -> Asked {
    let query = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    Asked {
        path: request.uri().path().to_owned(),
        query,
        accept: request
            .headers()
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(reply.status);
    if let Some(content_type) = &reply.content_type {
        builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a status and a header make a valid response")
}

/// A server that accepts connections and never answers (a hung process, a blackholing proxy).
pub struct SilentServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SilentServer {
    /// Listen on an ephemeral loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            // Held, never read or written, until the task is aborted.
            let mut held: Vec<TcpStream> = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self { addr, task }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback base URL where nothing listens (bound, then released).
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

/// What in `instance` violates the committed JSON Schema `obsctl/schema/{schema}` (empty when
/// nothing does): machine outputs and the fixtures standing in for them are held to it.
pub fn schema_violations(schema: &str, instance: &serde_json::Value) -> Vec<String> {
    let path = format!("{}/schema/{schema}", env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path} must be committed: {e}"));
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The example concrete paths a run report v2 lists for `path`: up to five renderings of its
/// first `{{random:LO..HI}}` placeholder (LO, LO + 1, ...), none for a constant path.
pub fn example_paths(path: &str) -> Vec<String> {
    let Some((before, rest)) = path.split_once("{{random:") else {
        return Vec::new();
    };
    let Some((range, after)) = rest.split_once("}}") else {
        return Vec::new();
    };
    let bounds = range
        .split_once("..")
        .and_then(|(lo, hi)| Some((lo.parse::<i64>().ok()?, hi.parse::<i64>().ok()?)));
    let Some((lo, hi)) = bounds else {
        return Vec::new();
    };
    (lo..=hi.min(lo + 4))
        .map(|n| format!("{before}{n}{after}"))
        .collect()
}
