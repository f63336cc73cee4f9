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

const FAST_AND_SLOW: &str = r#"
[[requests]]
name = "fast"
path = "/status/200"
weight = 3
thresholds = { p99_ms = 1000, error_rate = 0 }
[[requests]]
name = "slow"
path = "/sleep/40"
thresholds = { p50_ms = 10 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_names_thresholds_judge_its_own_statistics_only() {
    let server = spawn_server(Behaviour::default()).await;
    // The whole run's p50 is fast (3 of 4 requests are); the slow request's own is not.
    let source = simple(40.0, "1s", FAST_AND_SLOW, "p50_ms = 10");
    let report = run(
        config(scenario(&source), &server.url),
        Duration::from_secs(10),
    )
    .await;
    let results: Vec<(Option<&str>, &str, bool)> = report
        .thresholds
        .iter()
        .map(|t| (t.request.as_deref(), t.name.as_str(), t.passed))
        .collect();
    assert_eq!(
        results,
        [
            (None, "p50_ms", true),
            (Some("fast"), "p99_ms", true),
            (Some("fast"), "error_rate", true),
            (Some("slow"), "p50_ms", false),
        ]
    );
    assert!(!report.passed);
    let summary = obsctl::report::summary::render(&report);
    assert!(
        summary.contains("FAIL  p50_ms") && summary.contains("of slow"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_the_run_once_a_threshold_cannot_hold() {
    let server = spawn_server(Behaviour::default()).await;
    // Every `slow` answer takes 40 ms: its max_ms of 20 is lost with the first one.
    let limits = "abort_on_fail = true\nerror_rate = 0.5";
    let source = simple(40.0, "20s", FAST_AND_SLOW, limits).replace(
        "thresholds = { p50_ms = 10 }",
        "thresholds = { max_ms = 20 }",
    );
    let report = run(
        config(scenario(&source), &server.url),
        Duration::from_secs(30),
    )
    .await;
    let reason = report.aborted.as_deref().unwrap_or_default();
    assert!(
        reason.contains("max_ms <= 20 can no longer hold") && reason.contains("slow"),
        "{reason}"
    );
    assert!(!report.passed && !report.interrupted);
    // Stopped within the first half of the 800 planned requests (the plan's first 10 s): counted
    // in requests, not wall time, so a slow machine cannot make it pass or fail.
    assert!(report.requests_sent < 400, "{}", report.requests_sent);
    assert!(report.duration_s < 10.0, "{}", report.duration_s);
    let summary = obsctl::report::summary::render(&report);
    assert!(summary.contains("ABORTED (abort_on_fail)"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_lets_a_run_that_can_still_pass_go_on() {
    let server = spawn_server(Behaviour::default()).await;
    // 1 request in 10 fails: 10% of errors against a limit of 20% never aborts.
    let limits = "abort_on_fail = true\nerror_rate = 0.2";
    let report = run(
        config(scenario(&simple(50.0, "1s", MIX, limits)), &server.url),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.aborted, None);
    assert!(report.passed, "{:?}", report.thresholds);
    assert_eq!(report.requests_sent, 50);
}
