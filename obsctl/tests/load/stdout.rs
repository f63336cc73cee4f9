//! `-` means stdout: `obsctl load --report -` prints the JSON run report and nothing else on
//! stdout (the summary goes to stderr), and `obsctl check --output -` writes to stdout rather
//! than to a file named `-`.

use crate::helpers::{Behaviour, obsctl, simple, spawn_server, text};
use crate::report_schema::schema_violations;
use serde_json::Value;

const REQUESTS: &str = "[[requests]]\nname = \"ok\"\npath = \"/status/200\"\nexpect = [200]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_dash_prints_valid_json_alone_on_stdout() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.toml"),
        simple(20.0, "300ms", REQUESTS, "p99_ms = 5000"),
    )
    .expect("write");
    let out = obsctl(
        dir.path(),
        &["load", "s.toml", "--target", &server.url, "--report", "-"],
    )
    .await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    let violations = schema_violations(&json);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert_eq!(json["requests_sent"], 6);
    let stderr = text(&out.stderr);
    assert!(stderr.lines().any(|l| l.starts_with("all ")), "{stderr}");
    assert!(
        stderr.contains("PASS"),
        "the summary moved to stderr: {stderr}"
    );
    assert!(!dir.path().join("-").exists(), "no file named `-`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_output_dash_is_stdout() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.toml"),
        simple(20.0, "200ms", REQUESTS, ""),
    )
    .expect("write");
    let load = obsctl(
        dir.path(),
        &[
            "load",
            "s.toml",
            "--target",
            &server.url,
            "--quiet",
            "--report",
            "r.json",
        ],
    )
    .await;
    assert_eq!(load.status.code(), Some(0), "{}", text(&load.stderr));

    let check = obsctl(
        dir.path(),
        &[
            "check",
            "--run-report",
            "r.json",
            "--format",
            "json",
            "--output",
            "-",
        ],
    )
    .await;
    let stdout = text(&check.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {stdout}\n{}",
            text(&check.stderr)
        )
    });
    assert!(json.is_object(), "{stdout}");
    assert!(!dir.path().join("-").exists(), "no file named `-`");
}
