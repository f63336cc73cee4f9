//! The `grafana` check against a fake Grafana replaying the documented answers: each test
//! breaks one thing and expects the check to name it.

use std::time::Duration;

use obsctl::check::dashboard;
use obsctl::check::model::{Outcome, Status};
use obsctl::sources::grafana::{Grafana, GrafanaAuth};
use serde_json::Value;

use crate::fixtures::{
    DS_HEALTH_ERROR, HEALTH_DB_FAILING, LOGIN_PAGE, Script, deployed_model, fake_grafana,
};
use crate::helpers::{FakeServer, Reply, bounded, client, context, refused_url};

async fn run(url: String, auth: GrafanaAuth, dashboard: Option<std::path::PathBuf>) -> Outcome {
    let mut ctx = context(Duration::ZERO);
    ctx.grafana = Some(Grafana::new(client(), url).with_auth(auth));
    ctx.dashboard = dashboard;
    bounded(dashboard::grafana(&ctx)).await
}

async fn check(script: Script) -> Outcome {
    let server = fake_grafana(script).await;
    run(server.url(), GrafanaAuth::Anonymous, None).await
}

fn assert_status(outcome: &Outcome, status: Status, needles: &[&str]) {
    assert_eq!(outcome.status, status, "{outcome:#?}");
    let text = format!(
        "{} {:?} {:?}",
        outcome.detail, outcome.hint, outcome.evidence
    );
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in {outcome:#?}");
    }
}

#[tokio::test]
async fn without_grafana_the_check_skips_with_the_flag() {
    let outcome = bounded(dashboard::grafana(&context(Duration::ZERO))).await;
    assert_status(&outcome, Status::Skip, &["--grafana URL"]);
}

#[tokio::test]
async fn a_grafana_provisioned_from_deploy_passes() {
    let outcome = check(Script::default()).await;
    assert_status(
        &outcome,
        Status::Pass,
        &[
            "Grafana 5.1.3 is up",
            "prometheus, loki, tempo",
            "the 8 panels of docs/contract.md",
        ],
    );
}

#[tokio::test]
async fn credentials_from_grafana_user_are_used() {
    let script = Script {
        authorization: Some("Basic YWRtaW46YWRtaW4=".into()),
        ..Script::default()
    };
    let server = fake_grafana(script).await;
    let auth = GrafanaAuth::basic("admin:admin").expect("valid");
    let outcome = run(server.url(), auth, None).await;
    assert_status(&outcome, Status::Pass, &[]);
    assert!(server.seen().len() >= 6, "{:?}", server.seen());
}

#[tokio::test]
async fn a_missing_datasource_fails_naming_its_type() {
    let mut list: Vec<Value> =
        serde_json::from_str(crate::fixtures::DATASOURCES).expect("fixture is JSON");
    list.retain(|d| d["type"] != "loki");
    let script = Script {
        datasources: Reply::json(&Value::Array(list).to_string()),
        ..Script::default()
    };
    let outcome = check(script).await;
    assert_status(&outcome, Status::Fail, &["no datasource of type loki"]);
}

#[tokio::test]
async fn a_datasource_whose_health_says_error_fails_with_grafanas_message() {
    let mut script = Script::default();
    script.datasource_health.insert(
        "loki".into(),
        Reply::with(400, "application/json", DS_HEALTH_ERROR),
    );
    let outcome = check(script).await;
    assert_status(
        &outcome,
        Status::Fail,
        &[
            "Loki (uid loki",
            "unhealthy: ERROR",
            "Unable to connect with Loki",
        ],
    );
}

#[tokio::test]
async fn grafana_without_the_datasource_health_api_is_not_a_failure() {
    let mut script = Script::default();
    script.datasource_health.clear();
    let outcome = check(script).await;
    assert_status(&outcome, Status::Pass, &["health unknown"]);
}

#[tokio::test]
async fn a_failing_database_fails() {
    let script = Script {
        health: Reply::with(503, "application/json", HEALTH_DB_FAILING),
        ..Script::default()
    };
    let outcome = check(script).await;
    assert_status(&outcome, Status::Fail, &["database \"failing\""]);
}

#[tokio::test]
async fn a_dashboard_with_seven_panels_fails_naming_the_missing_one() {
    let mut model = deployed_model();
    if let Some(Value::Array(panels)) = model.get_mut("panels") {
        panels.pop();
    }
    let outcome = check(Script::default().with_dashboard(&model)).await;
    assert_status(
        &outcome,
        Status::Fail,
        &[
            "7 panels where the dashboard of docs/contract.md has 8",
            "missing \"Logger Stream\"",
        ],
    );
}

#[tokio::test]
async fn a_renamed_panel_fails_naming_both_titles() {
    let mut model = deployed_model();
    model["panels"][2]["title"] = Value::from("Errors");
    let outcome = check(Script::default().with_dashboard(&model)).await;
    assert_status(
        &outcome,
        Status::Fail,
        &["missing \"Errors Per Second\"", "unexpected \"Errors\""],
    );
}

#[tokio::test]
async fn a_panel_pointing_at_a_datasource_grafana_lacks_fails() {
    let mut model = deployed_model();
    model["panels"][6]["datasource"]["uid"] = Value::from("prometheus-old");
    model["panels"][6]["targets"][0]["datasource"]["uid"] = Value::from("prometheus-old");
    model["panels"][0]["datasource"] = Value::from("Prometheus");
    model["panels"][0]["targets"][0]["datasource"] = Value::from("Prometheus");
    let outcome = check(Script::default().with_dashboard(&model)).await;
    assert_status(
        &outcome,
        Status::Fail,
        &["panel \"Memory Usage\" uses datasource uid \"prometheus-old\""],
    );
    assert!(
        !outcome.detail.contains("Total Requests"),
        "{}",
        outcome.detail
    );
}

#[tokio::test]
async fn a_dashboard_that_is_not_provisioned_fails() {
    let script = Script {
        dashboard_uid: "something-else".into(),
        ..Script::default()
    };
    let outcome = check(script).await;
    assert_status(
        &outcome,
        Status::Fail,
        &["no dashboard with uid \"fastapi-dashboard\""],
    );
}

#[tokio::test]
async fn the_uid_comes_from_the_dashboard_file_when_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.json");
    let mut model = deployed_model();
    model["uid"] = Value::from("my-uid");
    std::fs::write(&path, model.to_string()).expect("write");
    let script = Script {
        dashboard_uid: "my-uid".into(),
        ..Script::default()
    };
    let server = fake_grafana(script).await;
    let outcome = run(server.url(), GrafanaAuth::Anonymous, Some(path)).await;
    assert_status(&outcome, Status::Pass, &["\"my-uid\""]);
    assert!(
        server
            .seen()
            .iter()
            .any(|s| s.path == "/api/dashboards/uid/my-uid")
    );
}

#[tokio::test]
async fn unauthorized_is_an_error_that_says_to_pass_grafana_user() {
    let script = Script {
        authorization: Some("Basic x".into()),
        ..Script::default()
    };
    let outcome = check(script).await;
    assert_status(&outcome, Status::Error, &["HTTP 401", "--grafana-user"]);
}

#[tokio::test]
async fn forbidden_is_an_error_that_names_the_role() {
    let server = FakeServer::start(|seen| match seen.path.as_str() {
        "/api/health" => Reply::json(crate::fixtures::HEALTH),
        _ => Reply::with(
            403,
            "application/json",
            r#"{"message":"Permission denied"}"#,
        ),
    })
    .await;
    let outcome = run(server.url(), GrafanaAuth::Anonymous, None).await;
    assert_status(&outcome, Status::Error, &["HTTP 403", "Viewer"]);
}

#[tokio::test]
async fn an_html_login_page_is_an_error_that_says_so() {
    let server = FakeServer::start(|_| Reply::with(200, "text/html", LOGIN_PAGE)).await;
    let outcome = run(server.url(), GrafanaAuth::Anonymous, None).await;
    assert_status(&outcome, Status::Error, &["HTML page", "login page"]);
}

#[tokio::test]
async fn garbage_is_an_error() {
    let server = FakeServer::start(|_| Reply::with(200, "application/json", "\u{1}garbage")).await;
    let outcome = run(server.url(), GrafanaAuth::Anonymous, None).await;
    assert_status(&outcome, Status::Error, &["invalid JSON"]);
}

#[tokio::test]
async fn connection_refused_is_an_error_with_what_to_check() {
    let outcome = run(refused_url().await, GrafanaAuth::Anonymous, None).await;
    assert_status(
        &outcome,
        Status::Error,
        &["connection refused", "check the --grafana URL"],
    );
}
