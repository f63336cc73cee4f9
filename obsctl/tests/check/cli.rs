//! The `obsctl check` binary: levels from the policy file and the flags, `--strict`, and the
//! exit codes 0 / 1 / 2 (nothing to check is a usage error, never a green run).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use obsctl::check::registry::CHECKS;

use crate::exposition::{
    CONTRACT_BUCKETS, Series, duration_histogram, process_metrics, requests_counter,
};
use crate::helpers::FakeServer;

/// Runs `obsctl check ARGS` in `dir`, bounded to 30 s.
async fn check(dir: &Path, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"));
    command
        .arg("check")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("obsctl ends within 30 s")
        .expect("obsctl starts")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A service whose metrics follow the contract except for raw-URL `path` labels: a warning.
async fn raw_path_service() -> FakeServer {
    let raw: &[Series] = &[
        ("GET", "/api/users/1", 200, 2),
        ("GET", "/api/users/2", 200, 1),
        ("GET", "/health", 200, 1),
    ];
    let body = [
        requests_counter(raw),
        duration_histogram(&CONTRACT_BUCKETS, raw),
        process_metrics(),
    ]
    .concat();
    FakeServer::exposition(&body).await
}

#[tokio::test]
async fn a_warning_exits_0_and_is_listed_apart_with_its_fix() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let service = raw_path_service().await;
    let output = check(dir.path(), &["--target", &service.url(), "--timeout", "1s"]).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("WARN  metrics-cardinality"), "{said}");
    assert!(
        said.contains("Warnings (advice beyond the contract"),
        "{said}"
    );
    assert!(
        said.contains("fix: label with the matched route template"),
        "{said}"
    );
    // The other warning: it serves no OpenMetrics, so no exemplars.
    assert!(said.contains("WARN  exemplars"), "{said}");
    assert!(said.contains("warnings: 2"), "{said}");
}

#[tokio::test]
async fn the_policy_file_denies_a_check_and_a_flag_overrides_the_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("obsctl.toml"),
        "[checks]\nmetrics-cardinality = \"deny\"\n",
    )
    .expect("the policy file is written");
    let service = raw_path_service().await;
    let target = service.url();
    let output = check(dir.path(), &["--target", &target, "--timeout", "1s"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("FAIL  metrics-cardinality"),
        "{}",
        text(&output)
    );
    let output = check(
        dir.path(),
        &[
            "--target",
            &target,
            "--timeout",
            "1s",
            "--warn",
            "metrics-cardinality",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = check(
        dir.path(),
        &[
            "--target",
            &target,
            "--timeout",
            "1s",
            "--allow",
            "metrics-cardinality",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("ALLOW metrics-cardinality"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn strict_turns_warnings_and_skips_into_failures() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let service = raw_path_service().await;
    let output = check(
        dir.path(),
        &[
            "--target",
            &service.url(),
            "--timeout",
            "1s",
            "--strict",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the JSON report parses");
    let cardinality = report["checks"]
        .as_array()
        .expect("a checks array")
        .iter()
        .find(|c| c["id"] == "metrics-cardinality")
        .expect("metrics-cardinality is reported");
    assert_eq!(cardinality["status"], "fail", "{cardinality}");
    assert_eq!(cardinality["level"], "deny", "{cardinality}");
    assert_eq!(cardinality["default_level"], "warn", "{cardinality}");
    assert_eq!(report["strict"], true);
}

#[tokio::test]
async fn no_source_at_all_is_a_usage_error_naming_what_to_pass() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let output = check(dir.path(), &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("nothing to check"),
        "{}",
        text(&output)
    );
    assert!(text(&output).contains("--target URL"), "{}", text(&output));
}

#[tokio::test]
async fn a_run_in_which_every_check_skipped_exits_2() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dashboard = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dashboards/fastapi-dashboard.json"
    );
    // A dashboard alone: its panels need a Prometheus or a Loki to be evaluated.
    let output = check(dir.path(), &["--dashboard", dashboard, "--timeout", "1s"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("nothing could be checked"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn an_unknown_check_id_or_level_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let output = check(
        dir.path(),
        &[
            "--target",
            "http://127.0.0.1:9",
            "--deny",
            "metrics-cardinalty",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("no check is named `metrics-cardinalty`"),
        "{}",
        text(&output)
    );
    std::fs::write(
        dir.path().join("obsctl.toml"),
        "[checks]\nlogs-fields = \"off\"\n",
    )
    .expect("the policy file is written");
    let output = check(dir.path(), &["--target", "http://127.0.0.1:9"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("`off` is not a level"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn help_lists_every_check_with_its_default_level() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let output = check(dir.path(), &["--help"]).await;
    let help = text(&output);
    assert_eq!(output.status.code(), Some(0), "{help}");
    for def in CHECKS {
        assert!(
            help.lines().any(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.first() == Some(&def.id) && words.get(1) == Some(&def.level.name())
            }),
            "{} ({}) is not listed:\n{help}",
            def.id,
            def.level.name()
        );
    }
    assert!(help.contains("obsctl.toml"), "{help}");
}

#[tokio::test]
async fn black_hole_sources_end_within_the_timeout_and_its_grace() {
    // Every source accepts connections and never answers: --timeout bounds the whole command.
    let holes: Vec<crate::helpers::SilentServer> = futures_of(5).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let started = std::time::Instant::now();
    let output = check(
        dir.path(),
        &[
            "--target",
            &holes[0].url(),
            "--prometheus",
            &holes[1].url(),
            "--loki",
            &holes[2].url(),
            "--tempo",
            &holes[3].url(),
            "--grafana",
            &holes[4].url(),
            "--timeout",
            "1s",
        ],
    )
    .await;
    let elapsed = started.elapsed();
    // The contract: --timeout plus the fixed 2 s grace, and process start-up.
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?}\n{}",
        text(&output)
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("ERROR metrics-endpoint"),
        "{}",
        text(&output)
    );
}

async fn futures_of(count: usize) -> Vec<crate::helpers::SilentServer> {
    let mut holes = Vec::with_capacity(count);
    for _ in 0..count {
        holes.push(crate::helpers::SilentServer::start().await);
    }
    holes
}
