//! The shared HTTP client: how each way of failing is classified.

use std::time::{Duration, Instant};

use obsctl::sources::http::{SourceError, USER_AGENT};
use serde_json::Value;

use crate::helpers::{FakeServer, Reply, bounded, client, client_with, refused_url};

#[tokio::test]
async fn connection_refused_is_classified() {
    bounded(async {
        let url = refused_url().await;
        let err = client()
            .get(&url, &[], None)
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, SourceError::ConnectRefused { .. }), "{err:?}");
        assert!(err.is_unreachable());
    })
    .await;
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_bounded_by_the_client() {
    bounded(async {
        let server = FakeServer::start(|_| Reply::json("{}").after(Duration::from_secs(20))).await;
        let started = Instant::now();
        let err = client_with(Duration::from_millis(300), 1024)
            .get(&server.url(), &[], None)
            .await
            .expect_err("too slow");
        assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    bounded(async {
        let big = "x".repeat(10_000);
        let server = FakeServer::start(move |_| Reply::with(200, "text/plain", &big)).await;
        let err = client_with(Duration::from_secs(2), 1000)
            .get(&server.url(), &[], None)
            .await
            .expect_err("too large");
        assert!(
            matches!(err, SourceError::TooLarge { limit: 1000, .. }),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn json_decoding_distinguishes_html_invalid_json_and_error_statuses() {
    bounded(async {
        let server = FakeServer::start(|seen| match seen.path.as_str() {
            "/html" => Reply::with(502, "text/html", "<html><body>Bad Gateway</body></html>"),
            "/html200" => Reply::with(200, "text/plain", "<!DOCTYPE html><html>login</html>"),
            "/garbage" => Reply::with(200, "application/json", "not json at all"),
            "/teapot" => Reply::with(418, "text/plain", "I'm a teapot"),
            _ => Reply::json(r#"{"ok":true}"#),
        })
        .await;
        let get = |path: &'static str| {
            let url = format!("{}{path}", server.url());
            async move { client().get_json::<Value>(&url, &[]).await }
        };
        assert!(matches!(get("/html").await, Err(SourceError::HtmlPage(_))));
        assert!(matches!(
            get("/html200").await,
            Err(SourceError::HtmlPage(_))
        ));
        match get("/garbage").await {
            Err(SourceError::InvalidJson { evidence, .. }) => {
                assert_eq!(evidence.body_excerpt, "not json at all");
                assert_eq!(evidence.status, Some(200));
            }
            other => panic!("expected invalid JSON, got {other:?}"),
        }
        match get("/teapot").await {
            Err(SourceError::Status(evidence)) => assert_eq!(evidence.status, Some(418)),
            other => panic!("expected a status error, got {other:?}"),
        }
        let (value, evidence) = get("/ok").await.expect("valid JSON");
        assert_eq!(value["ok"], true);
        assert!(evidence.url.ends_with("/ok"));
        assert_eq!(evidence.content_type.as_deref(), Some("application/json"));
    })
    .await;
}

#[tokio::test]
async fn requests_carry_the_user_agent_and_query() {
    bounded(async {
        let server = FakeServer::start(|_| Reply::json("{}")).await;
        let response = client()
            .get(
                &server.url(),
                &[("query", "up{job=\"a b\"}".to_owned())],
                Some("text/plain"),
            )
            .await
            .expect("answer");
        assert!(response.url.contains("query=up"), "{}", response.url);
        let seen = &server.seen()[0];
        assert_eq!(seen.headers["user-agent"], USER_AGENT);
        assert_eq!(seen.headers["accept"], "text/plain");
        assert_eq!(seen.query["query"], "up{job=\"a b\"}");
    })
    .await;
}
