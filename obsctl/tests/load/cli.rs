//! The `obsctl` binary: exit codes 0 / 1 / 2, the summary on stdout, errors on stderr, and the
//! report file.

use crate::helpers::{Behaviour, obsctl, simple, spawn_server, text};
use std::path::Path;
use std::time::Duration;

const REQUESTS: &str = "[[requests]]\nname = \"ok\"\npath = \"/status/200\"\nexpect = [200]\n";

fn write_scenario(dir: &Path, thresholds: &str) -> String {
    let path = dir.join("s.toml");
    std::fs::write(&path, simple(20.0, "300ms", REQUESTS, thresholds)).expect("write scenario");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_met_exit_0_with_a_summary_and_a_report() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "error_rate = 0\np99_ms = 5000");
    let out = obsctl(
        dir.path(),
        &[
            "load",
            &scenario,
            "--target",
            &server.url,
            "--report",
            "r.json",
        ],
    )
    .await;

    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("open model"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("all ")), "{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
    let report = std::fs::read_to_string(dir.path().join("r.json")).expect("report written");
    let report: obsctl::report::RunReport = serde_json::from_str(&report).expect("report parses");
    assert_eq!(report.requests_sent, 6);
    assert_eq!(server.received().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_threshold_exits_1() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "min_rate = 100000");
    let out = obsctl(
        dir.path(),
        &["load", &scenario, "--target", &server.url, "--quiet"],
    )
    .await;

    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("FAIL"));
    assert!(
        text(&out.stderr).is_empty(),
        "--quiet: {}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_scenario_exits_2_before_any_traffic() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        simple(20.0, "1s", &format!("{REQUESTS}weight = 0\n"), ""),
    )
    .expect("write");
    let out = obsctl(dir.path(), &["load", "bad.toml", "--target", &server.url]).await;

    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: bad.toml:9:"), "{stderr}");
    assert!(stderr.contains("requests[0].weight"), "{stderr}");
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "");
    let cases: [&[&str]; 5] = [
        &[
            "load",
            &scenario,
            "--target",
            "https://u:hunter2@127.0.0.1:1",
        ],
        &["load", &scenario],
        &[
            "load",
            &scenario,
            "--target",
            "http://127.0.0.1:1",
            "--rps",
            "fast",
        ],
        &[
            "load",
            &scenario,
            "--target",
            "http://127.0.0.1:1",
            "--duration",
            "soon",
        ],
        &["load", "missing.toml", "--target", "http://127.0.0.1:1"],
    ];
    for args in cases {
        let out = obsctl(dir.path(), args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} says why");
    }
    let userinfo = text(&obsctl(dir.path(), cases[0]).await.stderr);
    assert!(userinfo.contains("user:password@"), "{userinfo}");
    assert!(!userinfo.contains("hunter2"), "{userinfo}");
    // The OS's reason is said once, not once per layer of the error chain.
    let missing = text(&obsctl(dir.path(), cases[cases.len() - 1]).await.stderr);
    assert_eq!(missing.matches("os error").count(), 1, "{missing}");
    let no_target = obsctl(dir.path(), cases[1]).await;
    assert!(text(&no_target.stderr).contains("--target"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_scenario_it_says_what_it_sends() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = obsctl(
        dir.path(),
        &[
            "load",
            "--target",
            &server.url,
            "--rps",
            "20",
            "--duration",
            "200ms",
        ],
    )
    .await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("sending GET {}", server.url)),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        server.counts().get(&("GET".into(), "/".into(), 200)),
        Some(&4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_scenario_it_uses_scenarios_smoke_toml_when_present() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("scenarios")).expect("mkdir");
    std::fs::write(
        dir.path().join("scenarios/smoke.toml"),
        simple(20.0, "200ms", REQUESTS, ""),
    )
    .expect("write");
    let out = obsctl(dir.path(), &["load", "--target", &server.url]).await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("using scenarios/smoke.toml"));
    assert_eq!(
        server
            .counts()
            .get(&("GET".into(), "/status/200".into(), 200)),
        Some(&4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_teaches_the_model_and_the_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = obsctl(dir.path(), &["load", "--help"]).await;
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for needle in [
        "Open model",
        "--rps max",
        "Exit codes",
        "130",
        "traceparent",
    ] {
        assert!(help.contains(needle), "`{needle}` missing from --help");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_prints_the_partial_summary_and_exits_130() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"))
        .args([
            "load",
            "--target",
            &server.url,
            "--rps",
            "50",
            "--duration",
            "30s",
        ])
        .args(["--report", "r.json"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("obsctl starts");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pid = child.id().expect("running").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(kill.expect("kill runs").success());
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("stops within 10 s of Ctrl-C")
        .expect("output");

    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("INTERRUPTED"),
        "{}",
        text(&out.stdout)
    );
    let report = std::fs::read_to_string(dir.path().join("r.json")).expect("report written");
    let report: obsctl::report::RunReport = serde_json::from_str(&report).expect("parses");
    assert!(report.interrupted);
    assert!(
        report.requests_sent > 0 && report.requests_sent < 100,
        "{}",
        report.requests_sent
    );
}
