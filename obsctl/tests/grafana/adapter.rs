//! The Grafana adapter against Grafana's documented answers and against broken servers.

use obsctl::check::dashboard::panels::Dashboard;
use obsctl::sources::grafana::{Grafana, GrafanaAuth, GrafanaError, HealthStatus};
use obsctl::sources::http::SourceError;

use crate::fixtures::{DS_HEALTH_ERROR, LOGIN_PAGE, Script, UNAUTHORIZED, fake_grafana};
use crate::helpers::{FakeServer, Reply, bounded, client, refused_url};

fn grafana(server: &FakeServer) -> Grafana {
    Grafana::new(client(), server.url())
}

#[tokio::test]
async fn health_reads_the_documented_answer() {
    let server = fake_grafana(Script::default()).await;
    let health = bounded(grafana(&server).health()).await.expect("health");
    assert_eq!(health.version, "5.1.3");
    assert_eq!(health.commit, "087143285");
    assert!(health.database_ok());
    assert_eq!(server.seen()[0].path, "/api/health");
    assert_eq!(
        server.seen()[0].headers.get("accept").map(String::as_str),
        Some("application/json")
    );
}

#[tokio::test]
async fn datasources_are_listed_with_uid_name_type_and_url() {
    let server = fake_grafana(Script::default()).await;
    let datasources = bounded(grafana(&server).datasources())
        .await
        .expect("datasources");
    assert_eq!(datasources.list.len(), 4);
    let loki = datasources.of_type("loki").expect("a loki datasource");
    assert_eq!(
        (loki.uid.as_str(), loki.name.as_str(), loki.url.as_str()),
        ("loki", "Loki", "http://loki:3100")
    );
    assert_eq!(
        datasources.of_type("elasticsearch").map(|d| d.uid.as_str()),
        Some("H8joYFVGz")
    );
    assert!(datasources.of_type("graphite").is_none());
}

#[tokio::test]
async fn datasource_health_is_ok_failing_or_unknown_on_old_grafana() {
    let mut script = Script::default();
    script.datasource_health.insert(
        "loki".into(),
        Reply::with(400, "application/json", DS_HEALTH_ERROR),
    );
    script.datasource_health.remove("tempo");
    let server = fake_grafana(script).await;
    let api = grafana(&server);
    let ok = bounded(api.datasource_health("prometheus"))
        .await
        .expect("ok");
    assert_eq!(ok.status, HealthStatus::Ok);
    assert_eq!(ok.message, "Successfully queried the Prometheus API.");
    let failing = bounded(api.datasource_health("loki")).await.expect("read");
    assert_eq!(failing.status, HealthStatus::Failing("ERROR".into()));
    assert!(failing.message.contains("Unable to connect with Loki"));
    let unknown = bounded(api.datasource_health("tempo")).await.expect("404");
    assert_eq!(unknown.status, HealthStatus::Unknown);
    assert!(
        server
            .seen()
            .iter()
            .any(|s| s.path == "/api/datasources/uid/loki/health")
    );
}

#[tokio::test]
async fn a_dashboard_is_read_by_uid_and_a_missing_one_is_not_found() {
    let server = fake_grafana(Script::default()).await;
    let api = grafana(&server);
    let doc = bounded(api.dashboard("fastapi-dashboard"))
        .await
        .expect("dashboard");
    assert_eq!(doc.meta["slug"], "fastapi-dashboard");
    let dashboard = Dashboard::from_json(&doc.dashboard, &doc.evidence.url).expect("panels");
    assert_eq!(dashboard.panels.len(), 8);
    let missing = bounded(api.dashboard("nope")).await.expect_err("404");
    assert!(
        matches!(&missing, GrafanaError::DashboardNotFound { uid, .. } if uid == "nope"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn basic_and_bearer_credentials_are_sent_as_authorization() {
    let script = Script {
        authorization: Some("Basic YWRtaW46czNjcmV0".into()),
        ..Script::default()
    };
    let server = fake_grafana(script).await;
    let auth = GrafanaAuth::basic("admin:s3cret").expect("valid");
    let health = bounded(grafana(&server).with_auth(auth).health()).await;
    assert!(health.is_ok(), "{health:?}");

    let token = Script {
        authorization: Some("Bearer glsa_abc".into()),
        ..Script::default()
    };
    let server = fake_grafana(token).await;
    let auth = GrafanaAuth::bearer("glsa_abc").expect("valid");
    let datasources = bounded(grafana(&server).with_auth(auth).datasources()).await;
    assert!(datasources.is_ok(), "{datasources:?}");
}

#[tokio::test]
async fn unauthorized_says_to_pass_grafana_user() {
    let script = Script {
        authorization: Some("Basic c29tZW9uZTplbHNl".into()),
        ..Script::default()
    };
    let server = fake_grafana(script).await;
    let anonymous = bounded(grafana(&server).datasources())
        .await
        .expect_err("401");
    assert!(anonymous.is_auth());
    let message = anonymous.to_string();
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(
        message.contains("--grafana-user USER:PASSWORD"),
        "{message}"
    );

    let wrong = GrafanaAuth::basic("admin:wrong").expect("valid");
    let refused = bounded(grafana(&server).with_auth(wrong).datasources())
        .await
        .expect_err("401");
    let message = refused.to_string();
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(
        !message.contains("wrong"),
        "never echo the password: {message}"
    );
    assert!(UNAUTHORIZED.contains("Unauthorized"));
}

#[tokio::test]
async fn an_html_login_page_is_named_as_such() {
    let server =
        FakeServer::start(|_| Reply::with(200, "text/html; charset=utf-8", LOGIN_PAGE)).await;
    let error = bounded(grafana(&server).health()).await.expect_err("html");
    assert!(
        matches!(error, GrafanaError::Source(SourceError::HtmlPage(_))),
        "{error:?}"
    );
    assert!(error.to_string().contains("HTML page"), "{error}");
}

#[tokio::test]
async fn garbage_is_invalid_json_and_a_wrong_shape_is_unexpected() {
    let server = FakeServer::start(|seen| match seen.path.as_str() {
        "/api/health" => Reply::with(200, "application/json", "}{ not json"),
        "/api/datasources" => Reply::json(r#"{"not": "a list"}"#),
        _ => Reply::json(r#"{"dashboard": "a string", "meta": {}}"#),
    })
    .await;
    let api = grafana(&server);
    let health = bounded(api.health()).await.expect_err("garbage");
    assert!(
        matches!(
            health,
            GrafanaError::Source(SourceError::InvalidJson { .. })
        ),
        "{health:?}"
    );
    let list = bounded(api.datasources()).await.expect_err("an object");
    assert!(
        matches!(list, GrafanaError::Source(SourceError::InvalidJson { .. })),
        "{list:?}"
    );
    let dashboard = bounded(api.dashboard("x")).await.expect_err("a string");
    assert!(
        matches!(dashboard, GrafanaError::Unexpected { .. }),
        "{dashboard:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let api = Grafana::new(client(), refused_url().await);
    let error = bounded(api.health()).await.expect_err("refused");
    assert!(
        matches!(&error, GrafanaError::Source(e) if e.is_unreachable()),
        "{error:?}"
    );
    assert!(error.to_string().contains("connection refused"), "{error}");
}
