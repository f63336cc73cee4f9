//! SIGTERM: the listener closes at once, connections without a request in progress are
//! dropped, in-flight requests complete, spans are flushed, the process exits 0.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, receiver, spawn_app_with};

#[tokio::test]
async fn sigterm_with_a_half_sent_request_head_refuses_new_connections_and_exits_well_within_the_drain_timeout()
 {
    let options = Options::default()
        .arg("--shutdown-timeout-secs")
        .arg("20")
        .arg("--fault-latency-ms")
        .arg("1500");
    let mut app = spawn_app_with(options).await;
    let mut half_sent = TcpStream::connect(app.addr).await.expect("connect");
    half_sent
        .write_all(b"GET /api/users/1 HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let in_flight = {
        let request = app.client.get(app.url("/api/users/1"));
        tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    app.sigterm();

    // The listener closes at once: connects are refused (not accepted and left hanging) while
    // the in-flight request is still being drained.
    let mut refused_while_draining = false;
    for _ in 0..250 {
        match TcpStream::connect(app.addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused_while_draining = app.is_running();
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(
        refused_while_draining,
        "new connections refused during the drain"
    );

    // The half-sent head is dropped, not waited for.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), half_sent.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the half-sent connection is closed");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));

    assert_eq!(in_flight.await.unwrap().expect("drained"), 200);
    let (exit, stdout) = app.wait_exit(Duration::from_secs(15)).await;
    assert!(exit.success(), "exit status {exit}");
    let elapsed = signalled.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "exit {elapsed:?} after SIGTERM, with a 20 s drain timeout"
    );
    let completed = stdout
        .iter()
        .filter(|l| l.contains("\"Request completed\""))
        .count();
    assert_eq!(
        completed, 1,
        "only the in-flight request was a request: {stdout:?}"
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_flushes_spans_and_exits_zero() {
    let otlp = receiver().await;
    // A long batch delay: the spans can only arrive through the shutdown flush.
    let options = Options::default()
        .exporting_to(&otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .arg("--fault-latency-ms")
        .arg("700");
    let app = spawn_app_with(options).await;
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let request = app.client.get(app.url("/api/users/1"));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    // Let the requests reach the server (they then sleep 700 ms in the fault hoop).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (exit, stdout) = app.terminate().await;
    for request in in_flight {
        let response = request.await.unwrap().expect("in-flight request completes");
        assert_eq!(response.status(), 200);
    }
    assert!(exit.success(), "exit status {exit}");
    let completed = stdout
        .iter()
        .filter(|l| l.contains("\"Request completed\""))
        .count();
    assert_eq!(completed, 5, "{stdout:?}");
    let spans = otlp
        .wait_for_spans(
            |s| {
                s.iter()
                    .filter(|s| s.name() == "GET /api/users/{user_id}")
                    .count()
                    >= 5
            },
            Duration::from_secs(5),
        )
        .await;
    let server = spans
        .iter()
        .filter(|s| s.name() == "GET /api/users/{user_id}")
        .count();
    assert_eq!(server, 5, "every in-flight request's span was flushed");
}

#[tokio::test]
async fn sigterm_during_a_2k_rps_run_loses_no_answered_request_and_flushes_every_span() {
    use obsctl::load::{LoadConfig, Overrides};
    use obsctl::scenario::Scenario;

    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    let scenario = Scenario::parse(
        "name = \"shutdown\"\n[[stages]]\nduration = \"3s\"\nrate = 2000\n\
         [[requests]]\nname = \"get_user\"\npath = \"/api/users/{{random:1..3}}\"\nexpect = [200]\n",
        std::path::Path::new("shutdown.toml"),
    )
    .expect("scenario");
    let overrides = Overrides {
        target: Some(format!("http://{}", app.addr)),
        timeout: Some(Duration::from_secs(2)),
        ..Overrides::default()
    };
    let config = LoadConfig::new(scenario, overrides).expect("config");
    let load = tokio::spawn(obsctl::load::run(config, std::future::pending()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (exit, stdout) = app.terminate().await;
    let run = load.await.unwrap().expect("the run completes");
    assert!(exit.success(), "exit status {exit}");

    let answered: u64 = run
        .requests
        .iter()
        .filter(|r| r.status.is_some())
        .map(|r| r.count)
        .sum();
    assert!(
        answered > 1000,
        "the run was under load when SIGTERM came: {answered} answered"
    );
    assert!(
        run.requests
            .iter()
            .all(|r| r.status.is_none_or(|s| s < 500)),
        "{:?}",
        run.requests
    );
    let logged = stdout
        .iter()
        .filter(|l| l.contains("\"Request completed\"") && l.contains(&run.trace_id_prefix))
        .count() as u64;
    assert_eq!(logged, answered, "every answered request was logged");
    let prefix = run.trace_id_prefix.clone();
    let traces_of_run = |spans: &[obsctl::sources::span::ReceivedSpan]| {
        spans
            .iter()
            .filter(|s| s.trace_id().starts_with(&prefix) && s.name().starts_with("GET /api/users"))
            .map(|s| s.trace_id())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
    };
    let spans = otlp
        .wait_for_spans(|s| traces_of_run(s) >= answered, Duration::from_secs(5))
        .await;
    assert_eq!(
        traces_of_run(&spans),
        answered,
        "every answered request's span was flushed"
    );
}
