//! `obsctl check --grafana / --grafana-user / --dashboard`: bad values are usage errors (exit 2)
//! before any request, and a password never reaches the output.

use std::process::Output;
use std::time::Duration;

use crate::fixtures::{Script, fake_grafana};
use crate::helpers::deployed_dashboard;

async fn obsctl(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"));
    command
        .args(args)
        .env_remove("GRAFANA_AUTH")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("obsctl ends within 20 s")
        .expect("obsctl starts")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn a_dashboard_file_that_does_not_parse_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"panels\": ").expect("write");
    for file in [broken, dir.path().join("missing.json")] {
        let out = obsctl(&["check", "--dashboard", &file.display().to_string()]).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("--dashboard"), "{}", text(&out));
    }
}

#[tokio::test]
async fn verify_rejects_a_bad_dashboard_or_grafana_url_before_starting_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json").display().to_string();
    for (flag, value) in [
        ("--dashboard", missing.as_str()),
        ("--grafana", "grafana:3000"),
    ] {
        let out = obsctl(&[
            "verify",
            "--quiet",
            "--target",
            "http://127.0.0.1:9",
            "--prometheus",
            "off",
            flag,
            value,
        ])
        .await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(flag), "{}", text(&out));
    }
}

#[tokio::test]
async fn grafana_user_without_a_colon_is_a_usage_error_that_does_not_echo_it() {
    let out = obsctl(&[
        "check",
        "--grafana",
        "http://127.0.0.1:9",
        "--grafana-user",
        "adminhunter2",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("USER:PASSWORD"), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));
}

#[tokio::test]
async fn a_grafana_url_that_is_not_http_is_a_usage_error() {
    let out = obsctl(&["check", "--grafana", "localhost:3000"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--grafana"), "{}", text(&out));
}

#[tokio::test]
async fn check_with_grafana_and_the_dashboard_reports_both_checks() {
    let script = Script {
        authorization: Some("Basic YWRtaW46czNjcmV0".into()),
        ..Script::default()
    };
    let grafana = fake_grafana(script).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"));
    command
        .args([
            "check",
            "--grafana",
            &grafana.url(),
            "--dashboard",
            &deployed_dashboard().display().to_string(),
            "--format",
            "json",
            "--timeout",
            "0s",
        ])
        .env("GRAFANA_AUTH", "admin:s3cret")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("bounded")
        .expect("starts");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let status = |id: &str| {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("grafana"), Some("pass".into()), "{}", text(&out));
    // No --prometheus / --loki: every panel is skipped, and the check says so.
    assert_eq!(
        status("dashboard-panels"),
        Some("skip".into()),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("s3cret"));
}
