//! Exit codes people can rely on: a run in which no request got a response, or none got a
//! status it expects, exits 1 with a one-line reason even without thresholds; connections that
//! could not be opened are not "sent", so they make no rate and `min_rate` cannot pass on them.

use crate::helpers::{
    Behaviour, closed_port, config_with, obsctl, run, scenario, simple, spawn_server, text,
};
use obsctl::load::{Overrides, Rate};
use obsctl::report::RunReport;
use std::path::Path;
use std::time::Duration;

const GET_A: &str = "[[requests]]\nname = \"a\"\npath = \"/a\"\n";

fn write_scenario(dir: &Path, requests: &str, thresholds: &str) -> String {
    let path = dir.join("s.toml");
    std::fs::write(&path, simple(20.0, "300ms", requests, thresholds)).expect("write");
    path.display().to_string()
}

fn read_report(dir: &Path) -> RunReport {
    let json = std::fs::read_to_string(dir.join("r.json")).expect("report written");
    serde_json::from_str(&json).expect("report parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_reached_nothing_exits_1_and_sent_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), GET_A, "");
    let target = format!("http://127.0.0.1:{}", closed_port());
    let args = [
        "load", &scenario, "--target", &target, "--quiet", "--report", "r.json",
    ];
    let out = obsctl(dir.path(), &args).await;

    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "obsctl load: FAIL: none of the 6 requests got a response (connect: 6): check that a \
             service listens at {target}\n"
        )
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("0 sent  0 not started  6 could not connect"),
        "{stdout}"
    );
    let report = read_report(dir.path());
    assert_eq!(report.requests_sent, 0, "a refused connect is not sent");
    assert_eq!(report.overall.count, 0);
    assert_eq!(report.overall.achieved_rate, 0.0);
    assert_eq!(
        report.seq_count, 6,
        "numbered all the same: trace ids are spent"
    );
    assert!(!report.passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_which_everything_timed_out_exits_1() {
    let server = spawn_server(Behaviour {
        delay: Duration::from_secs(3),
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), GET_A, "");
    let args = [
        "load",
        &scenario,
        "--target",
        &server.url,
        "--timeout",
        "200ms",
        "--quiet",
    ];
    let out = obsctl(dir.path(), &args).await;

    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "obsctl load: FAIL: none of the 6 requests got a response (timeout: 6): check that a \
             service listens at {}\n",
            server.url
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_which_every_response_was_unexpected_exits_1() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let requests = "[[requests]]\nname = \"boom\"\npath = \"/status/500\"\nexpect = [200]\n";
    let scenario = write_scenario(dir.path(), requests, "");
    let out = obsctl(
        dir.path(),
        &["load", &scenario, "--target", &server.url, "--quiet"],
    )
    .await;

    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "obsctl load: FAIL: none of the 6 requests succeeded: every response had a status the \
         scenario does not expect (500: 6); check the paths and each request's `expect`\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_success_is_enough_to_pass_without_thresholds() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let requests = "[[requests]]\nname = \"ok\"\npath = \"/status/200\"\n[[requests]]\nname = \"boom\"\npath = \"/status/500\"\nexpect = [200]\nweight = 5\n";
    let scenario = write_scenario(dir.path(), requests, "");
    let out = obsctl(
        dir.path(),
        &["load", &scenario, "--target", &server.url, "--quiet"],
    )
    .await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rps_max_against_a_closed_port_sends_nothing_and_fails_min_rate() {
    let target = format!("http://127.0.0.1:{}", closed_port());
    let overrides = Overrides {
        rps: Some(Rate::Max),
        duration: Some(Duration::from_millis(300)),
        max_in_flight: Some(4),
        ..Overrides::default()
    };
    let cfg = config_with(
        scenario(&simple(1.0, "1s", GET_A, "min_rate = 1")),
        &target,
        overrides,
    );
    let report = run(cfg, Duration::from_secs(10)).await;

    let refused = report.overall.errors_by_kind.get("connect").copied();
    assert!(refused.is_some_and(|n| n > 0), "{refused:?}");
    assert_eq!(report.requests_sent, 0);
    assert_eq!(report.overall.achieved_rate, 0.0);
    let min_rate = report.thresholds.iter().find(|t| t.name == "min_rate");
    assert_eq!(
        min_rate.map(|t| (t.observed, t.passed)),
        Some((None, false))
    );
    assert!(!report.passed);
}
