//! Helpers of the HTML tests: a tiny target for a real load run, a logging proxy that serves
//! the page and records every request the browser makes, and Debian's `chromium` run headless
//! with a time bound. Everything listens on 127.0.0.1 and ephemeral ports.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use obsctl::load::{LoadConfig, Overrides};
use obsctl::report::RunReport;
use obsctl::scenario::Scenario;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest the browser may take to load and print the page.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

/// Largest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// A server task that stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A target for the load run: `/status/{code}` answers `code`, anything else 200.
pub async fn spawn_target() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service_fn(|req: Request<Incoming>| async move {
                let status = req
                    .uri()
                    .path()
                    .strip_prefix("/status/")
                    .and_then(|code| code.parse::<u16>().ok())
                    .unwrap_or(200);
                let response = Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .expect("valid response");
                Ok::<_, Infallible>(response)
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Server { url, task }
}

/// Runs `scenario` (TOML) against `target` with the library's load engine, bounded to 30 s.
pub async fn load_run(scenario: &str, target: &str) -> RunReport {
    let scenario = Scenario::parse(scenario, Path::new("html.toml")).expect("valid scenario");
    let overrides = Overrides {
        target: Some(target.to_owned()),
        ..Overrides::default()
    };
    let mut config = LoadConfig::new(scenario, overrides).expect("valid config");
    config.progress = false;
    let run = obsctl::load::run(config, std::future::pending());
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends within 30 s")
        .expect("the run starts")
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET http://127.0.0.1:PORT/report.html HTTP/1.1`, `CONNECT host:443 HTTP/1.1`...
    pub line: String,
    /// Its `Referer` header, if any.
    pub referer: Option<String>,
}

/// An HTTP proxy that serves one page at `page_url` and answers 404 to anything else, logging
/// every request. The browser is pointed at it for all its traffic, loopback included.
pub struct Proxy {
    /// The proxy's port.
    pub port: u16,
    /// The URL the page is served at (through the proxy).
    pub page_url: String,
    log: Arc<Mutex<Vec<Logged>>>,
    _server: Server,
}

impl Proxy {
    /// Starts the proxy serving `page`.
    pub async fn serve(page: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let page_url = format!("http://127.0.0.1:{port}/report.html");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (shared, page_line) = (Arc::clone(&log), format!("GET {page_url} HTTP/1.1"));
        let page = Arc::new(page);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, page, page_line) =
                    (Arc::clone(&shared), Arc::clone(&page), page_line.clone());
                tokio::spawn(async move {
                    // A client that never finishes its head is dropped after 10 s.
                    let answer = answer(stream, &log, &page, &page_line);
                    let _ = tokio::time::timeout(Duration::from_secs(10), answer).await;
                });
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        Self {
            port,
            page_url,
            log,
            _server: Server { url, task },
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().expect("log lock").clone()
    }
}

/// Reads one request head, logs it, answers with the page or 404, and closes.
async fn answer(
    mut stream: TcpStream,
    log: &Mutex<Vec<Logged>>,
    page: &str,
    page_line: &str,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    if head.is_empty() {
        // Chromium opens spare connections to its proxy ahead of need: no request, no entry.
        return Ok(());
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default().to_owned();
    let referer = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("referer"))
        .map(|(_, value)| value.trim().to_owned());
    let is_page = line == page_line;
    log.lock().expect("log lock").push(Logged { line, referer });
    let (status, body) = if is_page {
        ("200 OK", page)
    } else {
        ("404 Not Found", "not here")
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Debian's `chromium` (or `chromium-browser`) on the PATH; `None` after printing why the test
/// is skipped, except under CI (`CI` set), where a missing browser is a failure.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let message = "no `chromium` or `chromium-browser` on the PATH \
                       (install Debian's package: apt-get install -y chromium)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}; CI is set, so this is a failure"
        );
        println!("SKIPPED: {message}");
    }
    found
}

/// What the browser printed: the DOM after the page loaded (`--dump-dom`), with all its
/// traffic sent through `proxy`. Bounded to [`BROWSER_LIMIT`]; the browser is killed by its
/// handle when it takes longer.
pub async fn dump_dom(chromium: &Path, proxy: &Proxy) -> String {
    let profile = tempfile::tempdir().expect("a temporary profile directory");
    let mut command = tokio::process::Command::new(chromium);
    command
        .args([
            "--headless",
            // Tests run as root in containers, where the sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            // Less of the browser's own traffic (updates, time, sync); what remains is
            // recognised in `browser_service`.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--disable-sync",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
            "--window-size=1200,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
        // `<-loopback>`: loopback requests go through the proxy too, so the page's own origin
        // is logged as well.
        .arg("--proxy-bypass-list=<-loopback>")
        .arg("--dump-dom")
        .arg(&proxy.page_url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_LIMIT, command.output())
        .await
        .expect("chromium prints the DOM within 60 s")
        .expect("chromium starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chromium failed ({}): {stderr}",
        output.status
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// Hosts of the browser's own services, which Chromium contacts whatever page it shows
/// (component updates and their download redirector, the account check, network time).
const BROWSER_SERVICES: [&str; 4] = [
    "update.googleapis.com",
    "redirector.gvt1.com",
    "accounts.google.com",
    "clients2.google.com",
];

/// True when `request` is the browser's own: to one of [`BROWSER_SERVICES`], and not sent by a
/// page (no `Referer`).
pub fn browser_service(request: &Logged) -> bool {
    let target = request.line.split(' ').nth(1).unwrap_or_default();
    let host = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .unwrap_or(target);
    let host = host.split(['/', ':']).next().unwrap_or_default();
    BROWSER_SERVICES.contains(&host) && request.referer.is_none()
}
