//! A scripted HTTP/1.1 server on 127.0.0.1:0 that records what it was asked (method, path,
//! query, headers), answers what the test's handler says (optionally after a delay), and stops
//! when dropped; plus a loopback URL where nothing listens. Shared by the test binaries that
//! replay documented API answers (`#[path]`-included: each binary compiles its own copy).

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every test finishes well within this, or fails.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Run `fut` within the test deadline, failing the test when it is exceeded.
pub async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    match tokio::time::timeout(TEST_TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("test exceeded {TEST_TIMEOUT:?}"),
    }
}

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters (last value wins).
    pub query: BTreeMap<String, String>,
    /// Lower-cased header names to values.
    pub headers: BTreeMap<String, String>,
}

/// What the fake server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// A 200 JSON answer.
    pub fn json(body: &str) -> Self {
        Self::with(200, "application/json", body)
    }

    /// An answer with this status, content type and body.
    pub fn with(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer, after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A scripted HTTP server; stops when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Serve `handler` on an ephemeral loopback port.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(accept_loop(listener, handler, Arc::clone(&seen)));
        Self { addr, seen, task }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let handler = Arc::clone(&handler);
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let _ = serve_one(stream, handler, seen).await;
        });
    }
}

async fn serve_one(
    mut stream: TcpStream,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let request = parse_head(&head);
    seen.lock().expect("seen lock").push(request.clone());
    let reply = handler(&request);
    tokio::time::sleep(reply.delay).await;
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(ct) = &reply.content_type {
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.shutdown().await
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn parse_head(head: &str) -> Seen {
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Seen {
        path: path.to_owned(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
    }
}

/// A loopback address where nothing listens (bound, then released).
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
