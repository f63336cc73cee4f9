//! Traces over real OTLP/gRPC: span shape, parent continuation, SDK switch, dead collectors.

use std::time::Duration;

use obsctl::sources::span::{AttrValue, ReceivedSpan, SpanKind};

use crate::helpers::{Options, receiver, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);

fn int(span: &ReceivedSpan, key: &str) -> Option<i64> {
    span.attr(key).and_then(AttrValue::as_i64)
}

fn text<'a>(span: &'a ReceivedSpan, key: &str) -> Option<&'a str> {
    span.attr(key).and_then(AttrValue::as_str)
}

fn servers(spans: &[ReceivedSpan]) -> Vec<&ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.kind() == SpanKind::Server)
        .collect()
}

#[tokio::test]
async fn each_request_yields_one_server_span_with_http_attributes_and_child_spans() {
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    app.get("/api/users/1").await;
    app.post_json("/api/users", r#"{"name":"Eve","secret":"do-not-trace"}"#)
        .await;
    app.get("/missing").await;
    let spans = otlp.wait_for_spans(|s| servers(s).len() >= 3, WAIT).await;
    let server = servers(&spans);
    assert_eq!(server.len(), 3, "one SERVER span per request: {server:#?}");

    let get = server
        .iter()
        .find(|s| s.name() == "GET /api/users/{user_id}")
        .expect("GET span");
    assert_eq!(get.service_name(), Some("fastapi-backend"));
    assert_eq!(text(get, "http.request.method"), Some("GET"));
    assert_eq!(text(get, "http.route"), Some("/api/users/{user_id}"));
    assert_eq!(text(get, "url.path"), Some("/api/users/1"));
    assert_eq!(int(get, "http.response.status_code"), Some(200));
    assert!(!get.status().is_error());

    let child = |parent: &ReceivedSpan, name: &str| -> ReceivedSpan {
        spans
            .iter()
            .find(|s| s.parent_span_id() == Some(parent.span_id()) && s.name() == name)
            .unwrap_or_else(|| panic!("{name} under {}: {spans:#?}", parent.name()))
            .clone()
    };
    let get_user = child(get, "get_user");
    assert_eq!(int(&get_user, "user_id"), Some(1));
    let select = child(&get_user, "SELECT users");
    assert_eq!(select.kind(), SpanKind::Client);
    assert_eq!(text(&select, "db.system"), Some("sqlite"));
    assert_eq!(text(&select, "db.operation.name"), Some("SELECT"));

    let post = server
        .iter()
        .find(|s| s.name() == "POST /api/users")
        .expect("POST span");
    assert_eq!(int(post, "http.response.status_code"), Some(201));
    let create = child(post, "create_user");
    assert!(
        int(&create, "user_id").is_some_and(|id| id > 3),
        "{create:?}"
    );
    let insert = child(&create, "INSERT users");
    assert_eq!(text(&insert, "db.operation.name"), Some("INSERT"));
    for span in &spans {
        for (_, value) in span.attributes().iter() {
            assert!(
                !format!("{value:?}").contains("do-not-trace"),
                "request body leaked into {span:?}"
            );
        }
    }

    let unmatched = server
        .iter()
        .find(|s| s.name() == "GET")
        .expect("unmatched request span");
    assert_eq!(int(unmatched, "http.response.status_code"), Some(404));
    assert_eq!(text(unmatched, "http.route"), None);
}

#[tokio::test]
async fn server_errors_mark_the_span_status_error() {
    let otlp = receiver().await;
    let options = Options::default()
        .exporting_to(&otlp)
        .arg("--fault-error-rate")
        .arg("1");
    let app = spawn_app_with(options).await;
    app.get("/api/users/1").await;
    let spans = otlp.wait_for_spans(|s| !servers(s).is_empty(), WAIT).await;
    let span = servers(&spans)[0];
    assert_eq!(int(span, "http.response.status_code"), Some(500));
    assert!(span.status().is_error(), "{span:?}");
}

#[tokio::test]
async fn an_incoming_traceparent_continues_the_callers_trace() {
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    app.client
        .get(app.url("/api/users/2"))
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .send()
        .await
        .unwrap();
    let spans = otlp.wait_for_spans(|s| !servers(s).is_empty(), WAIT).await;
    let server = servers(&spans)[0];
    assert_eq!(server.trace_id(), trace_id);
    assert_eq!(
        server.parent_span_id().map(|p| p.hex()).as_deref(),
        Some(parent)
    );
    let line = app.wait_for_request_lines(1).await.remove(0);
    assert_eq!(
        line["trace_id"], trace_id,
        "the log line joins the caller's trace too"
    );
}

#[tokio::test]
async fn service_name_comes_from_otel_service_name_for_spans_and_logs() {
    let otlp = receiver().await;
    let options = Options::default()
        .exporting_to(&otlp)
        .env("OTEL_SERVICE_NAME", "users-api")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test");
    let app = spawn_app_with(options).await;
    app.get("/health").await;
    let spans = otlp.wait_for_spans(|s| !servers(s).is_empty(), WAIT).await;
    assert_eq!(servers(&spans)[0].service_name(), Some("users-api"));
    assert_eq!(
        servers(&spans)[0]
            .resource()
            .get("deployment.environment")
            .and_then(AttrValue::as_str),
        Some("test")
    );
    let line = app.wait_for_request_lines(1).await.remove(0);
    assert_eq!(line["service"], "users-api");
}

#[tokio::test]
async fn otel_sdk_disabled_sends_nothing_but_logs_keep_trace_ids() {
    let otlp = receiver().await;
    let options = Options::default()
        .exporting_to(&otlp)
        .env("OTEL_SDK_DISABLED", "true");
    let app = spawn_app_with(options).await;
    for _ in 0..5 {
        app.get("/api/users/1").await;
    }
    let lines = app.wait_for_request_lines(5).await;
    assert_eq!(lines.len(), 5);
    assert!(
        lines
            .iter()
            .all(|l| l["trace_id"].as_str().is_some_and(|t| t.len() == 32))
    );
    // Ten export intervals: a working exporter would have sent by now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(otlp.export_requests(), 0, "no export call may arrive");
    assert!(otlp.spans().is_empty());
    // Nor does /metrics name a trace nobody will ever receive.
    let openmetrics = app
        .client
        .get(app.url("/metrics"))
        .header("accept", "application/openmetrics-text")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(!openmetrics.contains(" # {"), "no exemplar: {openmetrics}");
}

#[tokio::test]
async fn client_secrets_never_reach_logs_or_span_attributes() {
    let otlp = receiver().await;
    let app = spawn_app_with(Options::default().exporting_to(&otlp)).await;
    app.client
        .get(app.url("/api/users/1?token=qs-secret"))
        .header("authorization", "Bearer hdr-secret")
        .header("cookie", "session=cookie-secret")
        .header("user-agent", "ua-secret")
        .header("x-forwarded-for", "xff-secret")
        .send()
        .await
        .unwrap();
    app.post_json("/api/users", r#"{"name":"Ann","password":"body-secret"}"#)
        .await;
    app.post_json("/api/users", r#"{"name": 42, "card":"body-secret-2"}"#)
        .await;
    let spans = otlp.wait_for_spans(|s| servers(s).len() >= 3, WAIT).await;
    assert_eq!(servers(&spans).len(), 3);
    app.wait_for_request_lines(3).await;
    let secrets = [
        "qs-secret",
        "hdr-secret",
        "cookie-secret",
        "ua-secret",
        "xff-secret",
        "body-secret",
    ];
    for span in &spans {
        let text = format!(
            "{:?} {:?} {}",
            span.attributes(),
            span.resource(),
            span.name()
        );
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret} leaked into span {}: {text}",
                span.name()
            );
        }
    }
    for line in app.stdout() {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "{secret} leaked into the log: {line}"
            );
        }
    }
}

#[tokio::test]
async fn an_invalid_exporter_setting_stops_startup_naming_the_variable() {
    let cases = [
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ];
    for (variable, value) in cases {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_backend"))
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("DATABASE_URL", ":memory:")
            .env(variable, value)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(WAIT, output)
            .await
            .expect("a refused configuration exits at once")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        assert!(
            stderr.contains(variable),
            "{variable}={value}: the error names the variable: {stderr}"
        );
    }
}
