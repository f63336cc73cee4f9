//! Spawning the real backend binary on an ephemeral port, with its stdout captured.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obsctl::sources::exposition::{self, Exposition};
use obsctl::sources::otlp::OtlpReceiver;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest wait for the backend to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// How the backend is started: environment and extra flags on top of the test defaults.
#[derive(Default, Clone)]
pub struct Options {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    /// Soft and hard open-file limits to start the backend with.
    pub nofile: Option<(u64, u64)>,
}

impl Options {
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the backend under these open-file limits (soft, then hard).
    pub fn nofile(mut self, soft: u64, hard: u64) -> Self {
        self.nofile = Some((soft, hard));
        self
    }

    /// Spans go to `receiver`, exported every 100 ms so tests wait little.
    pub fn exporting_to(self, receiver: &OtlpReceiver) -> Self {
        self.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
    }
}

/// A running backend process, killed on drop.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts the backend with an in-memory store and no collector (the port it would export to is
/// closed), and waits until it accepts connections.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// Starts the backend with `options` on top of the test defaults.
pub async fn spawn_app_with(options: Options) -> TestApp {
    let addr = free_port();
    let binary = env!("CARGO_BIN_EXE_backend");
    let mut command = match options.nofile {
        // The shell sets the limits and then becomes the backend (same pid).
        Some((soft, hard)) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!(
                    "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""
                ))
                .arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", addr.port().to_string())
        .env("DATABASE_URL", ":memory:")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", free_port()),
        )
        .args(&options.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in &options.env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn the backend binary");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    collect_lines(
        child.stdout.take().expect("piped stdout"),
        Arc::clone(&stdout),
    );
    collect_lines(
        child.stderr.take().expect("piped stderr"),
        Arc::clone(&stderr),
    );

    // Poll the port rather than parse the startup line: some tests silence INFO lines.
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "backend exited with {status} before listening; stderr: {:?}",
                stderr.lock().unwrap()
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backend did not listen within {STARTUP_TIMEOUT:?}; stdout: {:?}",
            stdout.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    TestApp {
        addr,
        client,
        child,
        stdout,
        stderr,
    }
}

fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    });
}

/// A port that was free a moment ago (bound, then released): for the backend to bind, or, left
/// alone, an address where nothing listens.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    listener.local_addr().expect("probe address")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST")
    }

    /// Scrapes and parses `/metrics` (the scrape itself is counted after it is answered).
    pub async fn metrics(&self) -> Exposition {
        let body = self
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body");
        exposition::parse(&body).expect("metrics parse")
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The `Request completed` lines so far, parsed.
    pub fn request_lines(&self) -> Vec<Value> {
        self.stdout()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == "Request completed")
            .collect()
    }

    /// Waits (bounded) until at least `n` request lines were printed.
    pub async fn wait_for_request_lines(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.request_lines();
            if lines.len() >= n || tokio::time::Instant::now() >= deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running child has a pid")
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub async fn terminate(self) -> (std::process::ExitStatus, Vec<String>) {
        self.sigterm();
        self.wait_exit(Duration::from_secs(20)).await
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits at most `within` for the exit status, and the stdout lines.
    pub async fn wait_exit(mut self, within: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let exit = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("backend exits within {within:?} of SIGTERM"))
            .expect("wait for backend");
        // Let the reader tasks drain the pipes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (exit, self.stdout())
    }
}

/// Value of the counter sample `fastapi_requests_total` with exactly these labels (0 if absent).
pub fn counter(metrics: &Exposition, method: &str, path: &str, status: &str) -> f64 {
    let labels = [("method", method), ("path", path), ("status_code", status)];
    metrics
        .family("fastapi_requests_total")
        .map_or(0.0, |f| f.sum_matching("fastapi_requests_total", &labels))
}

/// `_count` of the duration histogram for these labels (0 if absent).
pub fn histogram_count(metrics: &Exposition, method: &str, path: &str, status: &str) -> f64 {
    let labels = [("method", method), ("path", path), ("status_code", status)];
    metrics
        .family("fastapi_request_duration_seconds")
        .map_or(0.0, |f| {
            f.sum_matching("fastapi_request_duration_seconds_count", &labels)
        })
}

/// Distinct values of `label` in the request counter.
pub fn label_values(metrics: &Exposition, label: &str) -> HashMap<String, f64> {
    let mut values = HashMap::new();
    if let Some(family) = metrics.family("fastapi_requests_total") {
        for sample in &family.samples {
            if let Some(value) = sample.labels.get(label) {
                *values.entry(value.to_owned()).or_insert(0.0) += sample.value;
            }
        }
    }
    values
}

/// Starts an OTLP receiver on an ephemeral port.
pub async fn receiver() -> OtlpReceiver {
    OtlpReceiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start OTLP receiver")
}

/// A response read off a raw socket: the status (None when the server closed without one),
/// the header block and the body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: Option<u16>,
    pub head: String,
    pub body: Vec<u8>,
}

impl TestApp {
    /// Sends `request` byte for byte (it should say `Connection: close`) and reads the answer to
    /// the end, for requests that no well-behaved client would send.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
            // The server may answer and close before the whole request is written.
            let _ = stream.write_all(request).await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("raw exchange within 10 s")
            .expect("connect");
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n");
        let (head, body) = match split {
            Some(at) => (&answer[..at], answer[at + 4..].to_vec()),
            None => (&answer[..], Vec::new()),
        };
        let head = String::from_utf8_lossy(head).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        RawResponse { status, head, body }
    }
}
