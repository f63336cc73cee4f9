//! `obsctl report`: summary, hgrm and compare on the report of a real run; compare's exit codes
//! on identical and regressed runs.

use crate::helpers::{Behaviour, obsctl, simple, spawn_server, text};
use serde_json::Value;
use std::path::Path;

const REQUESTS: &str = "[[requests]]\nname = \"ok\"\npath = \"/status/200\"\nexpect = [200]\n\
[[requests]]\nname = \"user\"\npath = \"/api/users/{{random:1..9}}\"\n";

/// Runs a 4 s load against a local server and writes its report as `run.json` in `dir`.
async fn real_report(dir: &Path) -> Value {
    let server = spawn_server(Behaviour::default()).await;
    let scenario = dir.join("s.toml");
    std::fs::write(&scenario, simple(50.0, "4s", REQUESTS, "")).expect("write scenario");
    let scenario = scenario.display().to_string();
    let args = [
        "load",
        &scenario,
        "--target",
        &server.url,
        "--report",
        "run.json",
        "-q",
    ];
    let out = obsctl(dir, &args).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json = std::fs::read_to_string(dir.join("run.json")).expect("report written");
    serde_json::from_str(&json).expect("report is JSON")
}

/// `report` with every latency multiplied by `factor`, as a slower build would give.
fn slower(report: &Value, factor: f64) -> Value {
    let mut slow = report.clone();
    let scale = |latency: &mut Value| {
        if let Some(fields) = latency.as_object_mut() {
            for (key, value) in fields.iter_mut() {
                let is_latency = key != "samples" && key != "t";
                if let (true, Some(v)) = (is_latency, value.as_f64()) {
                    *value = Value::from(v * factor);
                }
            }
        }
    };
    scale(&mut slow["overall"]["latency_ms"]);
    for named in slow["by_name"].as_array_mut().into_iter().flatten() {
        scale(&mut named["stats"]["latency_ms"]);
    }
    for second in slow["timeline"].as_array_mut().into_iter().flatten() {
        for key in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            if let Some(v) = second[key].as_f64() {
                second[key] = Value::from(v * factor);
            }
        }
    }
    slow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_exits_0_on_the_same_run_and_1_on_a_regression_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = real_report(dir.path()).await;
    let write = |name: &str, value: &Value| {
        std::fs::write(dir.path().join(name), value.to_string()).expect("write report");
    };
    write("slow.json", &slower(&report, 3.0));

    let same = obsctl(dir.path(), &["report", "compare", "run.json", "run.json"]).await;
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));
    assert!(
        text(&same.stdout).contains("no regression"),
        "{}",
        text(&same.stdout)
    );

    let regressed = obsctl(dir.path(), &["report", "compare", "run.json", "slow.json"]).await;
    let stdout = text(&regressed.stdout);
    assert_eq!(regressed.status.code(), Some(1), "{stdout}");
    let all_p99 = stdout
        .lines()
        .skip_while(|l| !l.starts_with("all "))
        .find(|l| l.contains("p99 ms"))
        .unwrap_or_default();
    assert!(
        all_p99.contains("+200.0%") && all_p99.contains("REGRESSION"),
        "{stdout}"
    );

    // Faster is never a regression; a limit above the change passes.
    let faster = obsctl(dir.path(), &["report", "compare", "slow.json", "run.json"]).await;
    assert_eq!(faster.status.code(), Some(0), "{}", text(&faster.stdout));
    let lenient = [
        "report",
        "compare",
        "run.json",
        "slow.json",
        "--max-regression",
        "250%",
    ];
    let lenient = obsctl(dir.path(), &lenient).await;
    assert_eq!(lenient.status.code(), Some(0), "{}", text(&lenient.stdout));

    let bad = obsctl(
        dir.path(),
        &["report", "compare", "run.json", "missing.json"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("missing.json"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_hgrm_read_a_saved_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = real_report(dir.path()).await;
    let summary = obsctl(dir.path(), &["report", "summary", "run.json"]).await;
    assert_eq!(summary.status.code(), Some(0));
    let summary = text(&summary.stdout);
    assert!(
        summary.contains(report["run_id"].as_str().unwrap_or("?")),
        "{summary}"
    );
    assert!(summary.lines().any(|l| l.starts_with("user ")), "{summary}");

    let hgrm = obsctl(
        dir.path(),
        &["report", "hgrm", "run.json", "--name", "user"],
    )
    .await;
    assert_eq!(hgrm.status.code(), Some(0), "{}", text(&hgrm.stderr));
    let hgrm = text(&hgrm.stdout);
    let user_count = report["by_name"][1]["stats"]["latency_ms"]["samples"].as_u64();
    assert!(hgrm.contains("1/(1-Percentile)"), "{hgrm}");
    let total = format!("Total count    = {:>12}", user_count.unwrap_or(0));
    assert!(hgrm.contains(&total), "{total} in {hgrm}");

    let unknown = obsctl(
        dir.path(),
        &["report", "hgrm", "run.json", "--name", "nope"],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("ok, user"),
        "{}",
        text(&unknown.stderr)
    );
}
