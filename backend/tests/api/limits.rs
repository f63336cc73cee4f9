//! Limits: a stuck request times out, overload answers fast 503s, /metrics can require a token;
//! every rejection is counted and logged like any request.

use serde_json::Value;

use crate::helpers::{Options, counter, spawn_app_with};

#[tokio::test]
async fn a_request_over_the_time_limit_answers_503_and_is_counted_and_logged() {
    let options = Options::default()
        .arg("--request-timeout-secs")
        .arg("1")
        .arg("--fault-latency-ms")
        .arg("3000");
    let app = spawn_app_with(options).await;
    let response = app.get("/api/users/1").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("timed out"),
        "{body}"
    );
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "GET", "/api/users/{user_id}", "503"), 1.0);
    let line = app.wait_for_request_lines(1).await.remove(0);
    assert_eq!(line["status_code"], 503);
    assert_eq!(line["level"], "ERROR");
}

#[tokio::test]
async fn overload_answers_fast_503s_with_retry_after_instead_of_queueing() {
    let options = Options::default()
        .arg("--max-concurrency")
        .arg("2")
        .arg("--fault-latency-ms")
        .arg("800");
    let app = spawn_app_with(options).await;
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let request = app.client.get(app.url("/api/users/1"));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        let response = request.await.unwrap().expect("every request is answered");
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let rejected = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + rejected, 6, "{statuses:?}");
    assert!(
        ok >= 2 && rejected >= 1,
        "two slots serve, the rest are turned away: {statuses:?}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        counter(&metrics, "GET", "/api/users/{user_id}", "503"),
        rejected as f64
    );
    assert_eq!(
        counter(&metrics, "GET", "/api/users/{user_id}", "200"),
        ok as f64
    );
}

#[tokio::test]
async fn metrics_token_protects_the_scrape_and_nothing_else() {
    let app = spawn_app_with(Options::default().env("METRICS_TOKEN", "s3cret-token")).await;
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = anonymous.json().await.unwrap();
    assert!(body["detail"].is_string());
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("s3cret-tokex")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let scraped = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains(
            r#"fastapi_requests_total{method="GET",path="/metrics",status_code="401"} 2"#
        ),
        "{text}"
    );
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "other routes stay open"
    );
    assert!(
        !app.stdout().iter().any(|l| l.contains("s3cret")),
        "the token never reaches the logs"
    );
}

#[tokio::test]
async fn overlong_urls_and_header_blocks_get_json_414_and_431_counted_and_logged() {
    let app = crate::helpers::spawn_app().await;
    let long_url = format!("/api/users/{}", "7".repeat(9000));
    let response = app.get(&long_url).await;
    assert_eq!(response.status(), 414);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string());
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string());
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "GET", "/api/users/{user_id}", "414"), 1.0);
    assert_eq!(counter(&metrics, "GET", "/health", "431"), 1.0);
    let lines = app.wait_for_request_lines(2).await;
    let statuses: Vec<_> = lines.iter().map(|l| l["status_code"].as_u64()).collect();
    assert!(
        statuses.contains(&Some(414)) && statuses.contains(&Some(431)),
        "{statuses:?}"
    );
    assert!(lines.iter().all(|l| {
        l["endpoint"]
            .as_str()
            .is_some_and(|e| e.len() < 10_000 + 20)
    }));
}

#[tokio::test]
async fn a_request_whose_client_goes_away_is_still_counted_and_logged_as_499() {
    use tokio::io::AsyncWriteExt;
    let options = Options::default().arg("--fault-latency-ms").arg("5000");
    let app = spawn_app_with(options).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /api/users/1 HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(stream);
    let line = app.wait_for_request_lines(1).await.remove(0);
    assert_eq!(line["status_code"], 499, "{line}");
    assert_eq!(line["level"], "WARNING");
    let metrics = app.metrics().await;
    assert_eq!(counter(&metrics, "GET", "/api/users/{user_id}", "499"), 1.0);
}
