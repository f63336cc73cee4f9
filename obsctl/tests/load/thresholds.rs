//! Thresholds pass and fail exactly as written.

use crate::helpers::{Behaviour, config, run, scenario, simple, spawn_server};
use std::time::Duration;

const MIX: &str = r#"
[[requests]]
name = "ok"
path = "/status/200"
weight = 9
[[requests]]
name = "boom"
path = "/status/500"
expect = [200]
"#;

fn verdicts(report: &obsctl::report::RunReport) -> Vec<(String, bool)> {
    report
        .thresholds
        .iter()
        .map(|t| (t.name.clone(), t.passed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generous_thresholds_pass() {
    let server = spawn_server(Behaviour::default()).await;
    let limits = "p50_ms = 1000\np90_ms = 1000\np95_ms = 1000\np99_ms = 2000\np99_9_ms = 2000\nmax_ms = 3000\nerror_rate = 0.2\nmin_rate = 40";
    let report = run(
        config(scenario(&simple(50.0, "400ms", MIX, limits)), &server.url),
        Duration::from_secs(10),
    )
    .await;

    assert!(report.passed, "{:?}", report.thresholds);
    let names: Vec<String> = verdicts(&report).into_iter().map(|(n, _)| n).collect();
    let expected = [
        "p50_ms",
        "p90_ms",
        "p95_ms",
        "p99_ms",
        "p99_9_ms",
        "max_ms",
        "error_rate",
        "min_rate",
    ];
    assert_eq!(names, expected);
    let error_rate = report.thresholds.iter().find(|t| t.name == "error_rate");
    assert_eq!(error_rate.and_then(|t| t.observed), Some(0.1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_thresholds_fail_each_on_its_own_measure() {
    let server = spawn_server(Behaviour {
        delay: Duration::from_millis(20),
        ..Behaviour::default()
    })
    .await;
    let limits = "p99_ms = 5\nerror_rate = 0.05\nmin_rate = 1000\np50_ms = 1000";
    let report = run(
        config(scenario(&simple(50.0, "400ms", MIX, limits)), &server.url),
        Duration::from_secs(10),
    )
    .await;

    assert!(!report.passed);
    let expected = [
        ("p50_ms".to_owned(), true),
        ("p99_ms".to_owned(), false),
        ("error_rate".to_owned(), false),
        ("min_rate".to_owned(), false),
    ];
    assert_eq!(verdicts(&report), expected);
    let p99 = report.thresholds.iter().find(|t| t.name == "p99_ms");
    assert!(p99.and_then(|t| t.observed).unwrap_or(0.0) >= 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_threshold_with_nothing_measured_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let report = run(
        config(
            scenario(&simple(20.0, "200ms", MIX, "p99_ms = 1000")),
            &format!("http://127.0.0.1:{port}"),
        ),
        Duration::from_secs(10),
    )
    .await;

    assert!(!report.passed);
    assert_eq!(report.thresholds[0].observed, None);
}
