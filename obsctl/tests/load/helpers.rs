//! Test helpers: a counting HTTP server on 127.0.0.1:0 that can stall or delay, shortcuts to
//! build scenarios and configurations, and the `obsctl` binary run with a time bound.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use obsctl::load::{LoadConfig, Overrides};
use obsctl::scenario::Scenario;
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How the test server misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Stall the whole server once: when request number `.0` (0-based) arrives, every request
    /// waits until `.1` has passed.
    pub stall_once: Option<(u64, Duration)>,
    /// Delay every response by this much.
    pub delay: Duration,
    /// Close every connection after one response (`connection: close`).
    pub no_keep_alive: bool,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub traceparent: Option<String>,
    pub run_id: Option<String>,
    /// Every header of the request.
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The sequence number in the request's traceparent.
    pub fn seq(&self) -> Option<u64> {
        let tp = self.traceparent.as_deref()?;
        u64::from_str_radix(tp.get(19..35)?, 16).ok()
    }
}

#[derive(Debug, Default)]
struct State {
    behaviour: Behaviour,
    arrivals: AtomicU64,
    stall_until: Mutex<Option<Instant>>,
    log: Mutex<Vec<Received>>,
}

/// A running test server; stops accepting when dropped.
pub struct TestServer {
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// Counts per (method, path, status).
    pub fn counts(&self) -> HashMap<(String, String, u16), u64> {
        let mut out = HashMap::new();
        for r in self.received() {
            *out.entry((r.method, r.path, r.status)).or_default() += 1;
        }
        out
    }
}

/// Starts a server with `behaviour`. Routes: `/status/{code}` answers `code`, `/sleep/{ms}` 200
/// after `ms` milliseconds; anything else 200.
pub async fn spawn_server(behaviour: Behaviour) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let state = Arc::new(State {
        behaviour,
        ..State::default()
    });
    let shared = Arc::clone(&state);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&shared);
            let service = service_fn(move |req| handle(Arc::clone(&state), req));
            let mut builder = http1::Builder::new();
            builder.keep_alive(!shared.behaviour.no_keep_alive);
            tokio::spawn(builder.serve_connection(TokioIo::new(stream), service));
        }
    });
    TestServer { url, state, task }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let n = state.arrivals.fetch_add(1, Ordering::SeqCst);
    if let Some((after, duration)) = state.behaviour.stall_once
        && n == after
    {
        *state.stall_until.lock().expect("stall lock") = Some(at + duration);
    }
    let stall = *state.stall_until.lock().expect("stall lock");
    if let Some(until) = stall {
        tokio::time::sleep_until(until.into()).await;
    }
    if !state.behaviour.delay.is_zero() {
        tokio::time::sleep(state.behaviour.delay).await;
    }
    // `/sleep/{ms}` answers 200 after that many milliseconds.
    if let Some(ms) = req.uri().path().strip_prefix("/sleep/") {
        let ms = ms.parse::<u64>().unwrap_or(0).min(5_000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (traceparent, run_id) = (header("traceparent"), header("x-obsctl-run-id"));
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let status = path
        .strip_prefix("/status/")
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(200);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.log.lock().expect("log lock").push(Received {
        method,
        path,
        status,
        traceparent,
        run_id,
        headers,
        body,
        at,
    });
    let response = Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("valid response");
    Ok(response)
}

/// Runs the obsctl binary with `args` in `dir`, bounded to 20 s (killed if it runs longer).
pub async fn obsctl(dir: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"));
    command.args(args).current_dir(dir).kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("obsctl ends within 20 s")
        .expect("obsctl starts")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port nothing listens on (bound a moment ago, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Parses a scenario held in a string (named `test.toml` in errors).
pub fn scenario(source: &str) -> Scenario {
    Scenario::parse(source, Path::new("test.toml")).expect("valid test scenario")
}

/// A quiet configuration of `scenario` against `target`.
pub fn config(scenario: Scenario, target: &str) -> LoadConfig {
    config_with(scenario, target, Overrides::default())
}

/// Like [`config`], with overrides.
pub fn config_with(scenario: Scenario, target: &str, overrides: Overrides) -> LoadConfig {
    let overrides = Overrides {
        target: Some(target.to_owned()),
        ..overrides
    };
    let mut config = LoadConfig::new(scenario, overrides).expect("valid config");
    config.progress = false;
    config
}

/// Runs a configuration to its end (no shutdown), bounded by `limit`.
pub async fn run(config: LoadConfig, limit: Duration) -> obsctl::report::RunReport {
    let run = obsctl::load::run(config, std::future::pending());
    tokio::time::timeout(limit, run)
        .await
        .expect("the run ends within its time limit")
        .expect("the run starts")
}

/// A one-stage scenario at `rate` for `duration` with the given `[[requests]]` tables and
/// optional `[thresholds]` body.
pub fn simple(rate: f64, duration: &str, requests: &str, thresholds: &str) -> String {
    format!(
        "name = \"test\"\n[[stages]]\nduration = \"{duration}\"\nrate = {rate}\n{requests}\n{}",
        if thresholds.is_empty() {
            String::new()
        } else {
            format!("[thresholds]\n{thresholds}\n")
        }
    )
}
