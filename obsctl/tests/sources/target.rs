//! The target's /metrics endpoint, served by fake targets with and without the classic defects.

use obsctl::sources::exposition::ExpositionError;
use obsctl::sources::http::SourceError;
use obsctl::sources::target::MetricsEndpoint;

use crate::helpers::{FakeServer, Reply, bounded, client, refused_url};

const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

const BODY: &str = r#"# HELP fastapi_requests_total Total HTTP requests
# TYPE fastapi_requests_total counter
fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="200"} 5
fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="404"} 2
# TYPE fastapi_request_duration_seconds histogram
fastapi_request_duration_seconds_bucket{method="GET",path="/api/users/{user_id}",status_code="200",le="0.01"} 4
fastapi_request_duration_seconds_bucket{method="GET",path="/api/users/{user_id}",status_code="200",le="+Inf"} 5
fastapi_request_duration_seconds_sum{method="GET",path="/api/users/{user_id}",status_code="200"} 0.02
fastapi_request_duration_seconds_count{method="GET",path="/api/users/{user_id}",status_code="200"} 5
fastapi_request_duration_seconds_bucket{method="GET",path="/api/users/{user_id}",status_code="404",le="+Inf"} 2
"#;

async fn scrape_of(reply: Reply) -> Result<obsctl::sources::target::MetricsScrape, SourceError> {
    let server = FakeServer::start(move |_| reply.clone()).await;
    MetricsEndpoint::for_target(client(), &server.url())
        .scrape()
        .await
}

#[tokio::test]
async fn a_good_target_is_scraped_and_read_by_labels() {
    bounded(async {
        let server = FakeServer::start(|_| Reply::with(200, TEXT_004, BODY)).await;
        let endpoint = MetricsEndpoint::for_target(client(), &format!("{}/", server.url()));
        assert!(
            endpoint.url().ends_with(
                ":{}/metrics"
                    .replace("{}", &server.addr.port().to_string())
                    .as_str()
            )
        );
        let scrape = endpoint.scrape().await.expect("scrape");
        assert!(scrape.content_type_is_prometheus_text());
        assert_eq!(scrape.evidence.status, Some(200));
        let total = "fastapi_requests_total";
        assert_eq!(scrape.value(total, total, &[]), Some(7.0));
        assert_eq!(
            scrape.value(total, total, &[("status_code", "404")]),
            Some(2.0)
        );
        assert_eq!(scrape.value("absent", "absent", &[]), None);
        let ok = scrape.histogram(
            "fastapi_request_duration_seconds",
            &[("status_code", "200")],
        );
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].count, Some(5.0));
        assert_eq!(ok[0].buckets.len(), 2);
        let seen = &server.seen()[0];
        assert_eq!(seen.path, "/metrics");
        assert!(seen.headers["accept"].starts_with("text/plain;version=0.0.4"));
    })
    .await;
}

#[tokio::test]
async fn a_json_string_body_with_a_json_content_type_is_reported_as_such() {
    bounded(async {
        let body = serde_json::to_string(BODY).expect("encode");
        let scrape = scrape_of(Reply::with(200, "application/json", &body))
            .await
            .expect("2xx");
        assert!(!scrape.content_type_is_prometheus_text());
        assert_eq!(scrape.parsed, Err(ExpositionError::JsonString));
        assert!(scrape.evidence.body_excerpt.starts_with("\"# HELP"));
    })
    .await;
}

#[tokio::test]
async fn error_statuses_and_refusals_are_source_errors() {
    bounded(async {
        let err = scrape_of(Reply::with(
            404,
            "application/json",
            r#"{"detail":"Not Found"}"#,
        ))
        .await
        .expect_err("404");
        assert!(
            matches!(&err, SourceError::Status(e) if e.status == Some(404)),
            "{err:?}"
        );
        let refused = MetricsEndpoint::for_target(client(), &refused_url().await)
            .scrape()
            .await;
        assert!(
            matches!(refused, Err(SourceError::ConnectRefused { .. })),
            "{refused:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_html_body_parses_as_an_html_error() {
    bounded(async {
        let scrape = scrape_of(Reply::with(
            200,
            "text/html",
            "<html><body>hi</body></html>",
        ))
        .await
        .expect("2xx");
        assert_eq!(scrape.parsed, Err(ExpositionError::Html));
        assert!(scrape.family("fastapi_requests_total").is_none());
    })
    .await;
}
