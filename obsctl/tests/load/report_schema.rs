//! Real run reports validate against the committed JSON Schema, and read back unchanged.

use crate::helpers::{Behaviour, config, config_with, run, scenario, simple, spawn_server};
use obsctl::load::{Overrides, Rate};
use obsctl::report::RunReport;
use serde_json::Value;
use std::time::Duration;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/run-report.schema.json");
    let text = std::fs::read_to_string(path).expect("schema file");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Where `instance` breaks the committed run-report schema (empty when it is valid).
pub(crate) fn schema_violations(instance: &Value) -> Vec<String> {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn assert_valid(report: &RunReport) {
    let json = report.to_json().expect("report encodes");
    let instance: Value = serde_json::from_str(&json).expect("report is JSON");
    let errors = schema_violations(&instance);
    assert!(
        errors.is_empty(),
        "schema violations:\n{}\n{json}",
        errors.join("\n")
    );
    let back: RunReport = serde_json::from_str(&json).expect("report reads back");
    assert_eq!(&back, report);
}

const MIX: &str = r#"
[[requests]]
name = "ok"
path = "/status/200?q={{seq}}"
[[requests]]
name = "boom"
method = "POST"
path = "/status/503"
body = '{"name": "x"}'
expect = [201]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_model_report_with_errors_and_thresholds_matches_the_schema() {
    let server = spawn_server(Behaviour::default()).await;
    let limits = "p99_ms = 1000\nerror_rate = 0.1\nmin_rate = 10";
    let report = run(
        config(scenario(&simple(40.0, "300ms", MIX, limits)), &server.url),
        Duration::from_secs(10),
    )
    .await;
    assert!(report.overall.errors > 0);
    assert_eq!(report.thresholds.len(), 3);
    assert_valid(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_report_matches_the_schema() {
    let server = spawn_server(Behaviour::default()).await;
    let overrides = Overrides {
        rps: Some(Rate::Max),
        duration: Some(Duration::from_millis(200)),
        max_in_flight: Some(4),
        ..Overrides::default()
    };
    let report = run(
        config_with(
            scenario(&simple(1.0, "1s", MIX, "")),
            &server.url,
            overrides,
        ),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.plan.planned_requests, None);
    assert_valid(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_any_response_matches_the_schema() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let report = run(
        config(
            scenario(&simple(20.0, "200ms", MIX, "p50_ms = 1")),
            &format!("http://127.0.0.1:{port}"),
        ),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report.overall.latency_ms.p50, None);
    assert_valid(&report);
}

#[test]
fn the_schema_rejects_a_report_missing_its_run_id() {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let broken = serde_json::json!({ "schema_version": 1 });
    assert!(!validator.is_valid(&broken));
}
