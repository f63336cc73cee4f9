//! The server around the routes: the listen backlog, scrapes and probes that answer while the
//! API is saturated or slow bodies trickle in, the connection cap under descriptor pressure,
//! and requests hyper refuses before routing, answered in JSON, counted and logged.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, TestApp, counter, spawn_app, spawn_app_with};

/// The backlog of the listening socket on `port`, as the kernel reports it (`ss` shows a
/// listening socket's backlog as its Send-Q).
fn listen_backlog(port: u16) -> u32 {
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("run ss (iproute2)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no listener: {text:?}"));
    // State Recv-Q Send-Q Local Peer
    line.split_whitespace()
        .nth(2)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("unexpected ss line: {line:?}"))
}

#[tokio::test]
async fn the_listen_backlog_defaults_to_somaxconn_and_follows_the_flag() {
    let app = spawn_app().await;
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("read somaxconn")
        .trim()
        .parse()
        .expect("somaxconn is a number");
    assert_eq!(listen_backlog(app.addr.port()), somaxconn.min(4096));

    let app = spawn_app_with(Options::default().arg("--backlog").arg("77")).await;
    assert_eq!(listen_backlog(app.addr.port()), 77);
    let app = spawn_app_with(Options::default().env("BACKLOG", "55")).await;
    assert_eq!(listen_backlog(app.addr.port()), 55);
}

#[tokio::test]
async fn a_fresh_start_declares_the_request_families_on_the_first_scrape() {
    let app = spawn_app().await;
    // The first request of the process: nothing has been counted yet.
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "# HELP fastapi_requests_total ",
        "# TYPE fastapi_requests_total counter",
        "# HELP fastapi_request_duration_seconds ",
        "# TYPE fastapi_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    obsctl::sources::exposition::parse(&text).expect("still valid exposition text");
}

/// Starts `n` API requests that hold their slot for the fault latency.
fn hold_slots(app: &TestApp, n: usize) -> Vec<tokio::task::JoinHandle<reqwest::Result<u16>>> {
    (0..n)
        .map(|_| {
            let request = app.client.get(app.url("/api/users/1"));
            tokio::spawn(async move { Ok(request.send().await?.status().as_u16()) })
        })
        .collect()
}

/// Saturates an API of `slots` slots: one request more than it has slots, until the extra one
/// is turned away (a separate probe could take a slot itself before the held requests do).
/// Returns the requests that hold the slots.
async fn saturate(
    app: &TestApp,
    slots: usize,
) -> Vec<tokio::task::JoinHandle<reqwest::Result<u16>>> {
    let mut held = hold_slots(app, slots + 1);
    for _ in 0..250 {
        if let Some(at) = held.iter().position(|h| h.is_finished()) {
            let turned_away = held.remove(at).await.unwrap().expect("answered");
            assert_eq!(turned_away, 503, "the request beyond the slots");
            return held;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the API never became saturated");
}

#[tokio::test]
async fn scrapes_and_probes_answer_200_while_the_api_is_saturated() {
    let options = Options::default()
        .arg("--max-concurrency")
        .arg("2")
        .arg("--fault-latency-ms")
        .arg("5000");
    let app = spawn_app_with(options).await;
    let held = saturate(&app, 2).await;
    for _ in 0..5 {
        assert_eq!(app.get("/metrics").await.status(), 200);
        let health = app.get("/health").await;
        assert_eq!(health.status(), 200);
        assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    }
    for request in held {
        assert_eq!(request.await.unwrap().expect("held request"), 200);
    }
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "GET", "/health", "200"), 5.0);
    assert!(counter(&metrics, "GET", "/api/users/{user_id}", "503") >= 1.0);
}

/// Opens a connection and sends a POST head announcing `length` bytes, then `sent` of them.
async fn slow_body(app: &TestApp, length: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&b"{\"name\":".repeat(length)[..sent])
        .await
        .unwrap();
    stream
}

/// Reads a whole answer (the server closes the connection after it), bounded in time.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_bodies_get_a_json_408_without_holding_a_slot_while_scrapes_and_requests_are_served() {
    let options = Options::default()
        .arg("--max-concurrency")
        .arg("2")
        .arg("--body-timeout-secs")
        .arg("1");
    let app = spawn_app_with(options).await;
    let mut trickling = Vec::new();
    for _ in 0..6 {
        trickling.push(slow_body(&app, 100, 3).await);
    }
    // Three times the slots are taken by bodies that trickle in: the API still serves.
    for _ in 0..3 {
        assert_eq!(app.get("/api/users/1").await.status(), 200);
        assert_eq!(app.get("/metrics").await.status(), 200);
    }
    for stream in &mut trickling {
        let answer = read_answer(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert!(body["detail"].as_str().unwrap().contains("did not arrive"));
    }
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "POST", "/api/users", "408"), 6.0);
    assert_eq!(counter(&metrics, "GET", "/api/users/{user_id}", "200"), 3.0);
    let lines = app.wait_for_request_lines(6 + 3 + 3).await;
    assert_eq!(
        lines.iter().filter(|l| l["status_code"] == 408).count(),
        6,
        "every 408 is logged"
    );
}

/// Opens `n` connections that send nothing, as a descriptor-exhaustion attack does.
async fn idle_connections(app: &TestApp, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    streams
}

/// A request on a fresh connection, answered within 10 s.
async fn fresh_get(app: &TestApp, path: &str) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    client
        .get(app.url(path))
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

#[tokio::test]
async fn idle_connections_beyond_the_descriptor_limit_leave_new_clients_served() {
    // A soft limit of 200 descriptors that the backend raises to the hard 400; its connection
    // cap is then 400 - 128 = 272, and 350 connections that never send a byte try to take it.
    let options = Options::default().nofile(200, 400);
    let app = spawn_app_with(options).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", app.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().nth(3),
        Some("400"),
        "soft limit raised to the hard one: {open_files}"
    );
    let idle = idle_connections(&app, 350).await;
    for round in 0..5 {
        let api = fresh_get(&app, "/api/users/1").await;
        assert_eq!(api, 200, "round {round}");
        let health = fresh_get(&app, "/health").await;
        assert_eq!(health, 200, "round {round}");
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("\nprocess_open_fds "), "{text}");
    assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
    let metrics = obsctl::sources::exposition::parse(&text).unwrap();
    let evicted = metrics
        .family("backend_connections_evicted_total")
        .map_or(0.0, |f| {
            f.sum_matching("backend_connections_evicted_total", &[])
        });
    assert!(evicted >= 50.0, "idle connections were closed: {evicted}");
    assert!(
        !app.stdout()
            .iter()
            .any(|l| l.contains("Accepting connections failed")),
        "descriptors never ran out"
    );
    drop(idle);
}

/// Connections established to the server's `port`, as the kernel reports them.
fn established(port: u16) -> usize {
    let output = std::process::Command::new("ss")
        .args(["-tnH", "state", "established", &format!("sport = :{port}")])
        .output()
        .expect("run ss (iproute2)");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

#[tokio::test]
async fn near_the_connection_cap_the_reserve_serves_scrapes_and_probes_only() {
    let options = Options::default()
        .arg("--max-connections")
        .arg("6")
        .arg("--connection-reserve")
        .arg("2")
        .arg("--fault-latency-ms")
        .arg("5000");
    let app = spawn_app_with(options).await;
    // Four busy connections fill the normal share; none is idle, so none can be evicted.
    let held = hold_slots(&app, 4);
    for _ in 0..250 {
        if established(app.addr.port()) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client sends each request as soon as it is connected.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // One kept-alive connection in the reserve: scrapes and probes are served, the API is not.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let get = |path: &str| client.get(app.url(path)).send();
    assert_eq!(get("/metrics").await.unwrap().status(), 200);
    assert_eq!(get("/health").await.unwrap().status(), 200);
    let api = get("/api/users/1").await.unwrap();
    assert_eq!(api.status(), 503);
    assert_eq!(api.headers()["retry-after"], "1");
    assert_eq!(
        api.headers()["connection"],
        "close",
        "the client reconnects next time"
    );
    let body: Value = api.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("connection limit"),
        "{body}"
    );
    for request in held {
        assert_eq!(request.await.unwrap().expect("held request"), 200);
    }
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "GET", "/api/users/{user_id}", "503"), 1.0);
    assert_eq!(counter(&metrics, "GET", "/api/users/{user_id}", "200"), 4.0);
}

/// Sends `request` on a fresh connection and reads the answer to the end.
async fn exchange(app: &TestApp, request: &[u8]) -> (u16, String, Value) {
    let response = app.raw(request).await;
    let status = response.status.expect("a status line");
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        response.head
    );
    let body = serde_json::from_slice(&response.body).expect("a JSON body");
    (status, response.head, body)
}

#[tokio::test]
async fn requests_hyper_refuses_get_a_json_answer_and_are_counted_and_logged() {
    let app = spawn_app().await;
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            format!("GET /health HTTP/1.1\r\nHost: t\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
        ),
        (b"GET /health HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n b\r\n\r\n".to_vec(), 400),
        (
            b"POST /api/users HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc"
                .to_vec(),
            400,
        ),
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET /health HTTP/9.9\r\n\r\n".to_vec(), 400),
    ];
    for (request, expected) in &cases {
        let (status, head, body) = exchange(&app, request).await;
        assert_eq!(status, *expected, "{head}");
        assert!(body["detail"].is_string(), "{body}");
    }
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "_OTHER", "<unmatched>", "431"), 1.0);
    assert_eq!(counter(&metrics, "_OTHER", "<unmatched>", "414"), 1.0);
    assert_eq!(counter(&metrics, "_OTHER", "<unmatched>", "400"), 4.0);
    let lines = app.wait_for_request_lines(cases.len()).await;
    let rejected: Vec<_> = lines.iter().filter(|l| l["method"] == "_OTHER").collect();
    assert_eq!(rejected.len(), cases.len(), "{lines:?}");
    for line in rejected {
        assert_eq!(line["level"], "WARNING");
        assert!(
            line["trace_id"].as_str().is_some_and(|t| t.len() == 32),
            "{line}"
        );
    }
    assert_eq!(app.get("/health").await.status(), 200, "still serving");
}

/// Connections open on the server, from its own gauge (the scrape's connection included).
async fn open_connections(app: &TestApp) -> f64 {
    let metrics = app.metrics().await;
    metrics
        .family("backend_connections_open")
        .map_or(0.0, |f| f.sum_matching("backend_connections_open", &[]))
}

/// Waits (bounded) until at most `n` connections are open on the server.
async fn wait_for_open_connections(app: &TestApp, n: f64) -> f64 {
    let mut open = open_connections(app).await;
    for _ in 0..100 {
        if open <= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = open_connections(app).await;
    }
    open
}

#[tokio::test]
async fn silent_connections_and_half_sent_heads_are_closed_after_the_header_timeout() {
    let options = Options::default().arg("--header-timeout-secs").arg("1");
    let app = spawn_app_with(options).await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut half_sent = TcpStream::connect(app.addr).await.unwrap();
    half_sent
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    for stream in [&mut silent, &mut half_sent] {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest));
        assert!(read.await.is_ok(), "closed by the server");
    }
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_disconnected_after_the_write_timeout() {
    let options = Options::default().arg("--write-timeout-secs").arg("1");
    let app = spawn_app_with(options).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // A small receive buffer fills fast: the server's writes then make no progress.
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    let requests = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2000);
    // Pipelined requests, their answers never read; the server stops reading them too once its
    // writes stall, so this write may itself stall: bounded.
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&requests)).await;
    let open = wait_for_open_connections(&app, 1.0).await;
    assert_eq!(open, 1.0, "only the scrape's own connection is left");
    assert_eq!(app.get("/health").await.status(), 200);
    drop(stream);
}

#[tokio::test]
async fn accept_errors_when_descriptors_run_out_are_counted_and_logged_once_in_a_while() {
    // A cap above what 200 descriptors allow (the hard limit leaves no room to raise): accepts
    // fail with EMFILE until connections go away.
    let options = Options::default()
        .nofile(200, 200)
        .arg("--max-connections")
        .arg("1000");
    let app = spawn_app_with(options).await;
    let idle = idle_connections(&app, 250).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(idle);
    let mut errors = 0.0;
    for _ in 0..100 {
        let metrics = app.metrics().await;
        errors = metrics
            .family("backend_accept_errors_total")
            .map_or(0.0, |f| f.sum_matching("backend_accept_errors_total", &[]));
        if errors > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(errors >= 2.0, "failed accepts are counted: {errors}");
    let logged = app
        .stdout()
        .iter()
        .filter(|l| l.contains("Accepting connections failed"))
        .count();
    assert!(
        (1..=2).contains(&logged),
        "{errors} failures, {logged} lines: logged at most every 10 s"
    );
    assert_eq!(app.get("/health").await.status(), 200, "serving again");
}
