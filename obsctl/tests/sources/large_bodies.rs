//! Bodies too large to keep: every answer obsctl reads stops at the read limit with an error
//! naming the limit and the URL (announced sizes refused before reading, endless chunked
//! bodies cut off at the limit), and a body of many copies of one series parses in place with
//! its duplicates found in one pass. Peak memory of the real binary: tests/memory.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use obsctl::sources::exposition;
use obsctl::sources::grafana::Grafana;
use obsctl::sources::http::SourceError;
use obsctl::sources::loki::Loki;
use obsctl::sources::prometheus::Prometheus;
use obsctl::sources::tempo::{Tempo, TraceSearch};

use crate::helpers::{FakeServer, Reply, bounded, client_with};

/// A server that answers every connection with a chunked body that never ends; its URL.
async fn endless_chunked_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Transfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                // Until the client hangs up.
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_endless_chunked_body_stops_at_the_limit() {
    bounded(async {
        let url = endless_chunked_server().await;
        let started = Instant::now();
        let err = client_with(Duration::from_secs(20), 1024 * 1024)
            .get(&url, &[], None)
            .await
            .expect_err("an endless body cannot be read whole");
        assert!(
            matches!(
                err,
                SourceError::TooLarge {
                    limit: 1_048_576,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&url) && message.contains("larger than 1048576 bytes"),
            "{message}"
        );
        // Stopped at the limit, not at the 20 s timeout.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn every_stack_api_reads_its_answers_within_the_limit() {
    bounded(async {
        let big = format!(
            "{{\"status\":\"success\",\"data\":\"{}\"}}",
            "x".repeat(10_000)
        );
        let server = FakeServer::start(move |_| Reply::json(&big)).await;
        let client = client_with(Duration::from_secs(2), 1000);
        let base = server.url();
        let errors = [
            Prometheus::new(client.clone(), &base)
                .query("up", None)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Loki::new(client.clone(), &base)
                .labels(None)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Tempo::new(client.clone(), &base)
                .search(&TraceSearch::service("backend", None, 1))
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Grafana::new(client.clone(), &base)
                .health()
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        ];
        for (api, result) in ["prometheus", "loki", "tempo", "grafana"]
            .iter()
            .zip(errors)
        {
            let message = result.expect_err(api);
            assert!(
                message.contains(&base) && message.contains("larger than 1000 bytes"),
                "{api}: {message}"
            );
        }
    })
    .await;
}

#[test]
fn nine_hundred_thousand_copies_of_one_series_are_counted_with_their_lines() {
    let body = "# TYPE m gauge\n".to_owned() + &"m{a=\"x\",b=\"y\"} 1\n".repeat(900_000);
    let parsed = exposition::parse_owned(body.into_bytes()).expect("valid exposition");
    assert_eq!(parsed.sample_count(), 900_000);
    let duplicates = parsed.duplicates().expect("copies are duplicates");
    assert_eq!(duplicates.count, 899_999);
    assert_eq!((duplicates.first.line, duplicates.original_line), (3, 2));
    assert_eq!(duplicates.first.name, "m");
    assert_eq!(duplicates.first.labels.get("b"), Some("y"));
}

#[test]
fn the_same_series_under_two_families_is_a_duplicate_too() {
    // `m_sum` joins histogram `m`; once `m_sum` is declared, the next one joins that family.
    let body = "# TYPE m histogram\nm_sum 1\n# TYPE m_sum gauge\nm_sum 2\n";
    let parsed = exposition::parse(body).expect("valid exposition");
    assert_eq!(parsed.families().len(), 2);
    let duplicates = parsed.duplicates().expect("one series, twice");
    assert_eq!((duplicates.first.line, duplicates.original_line), (4, 2));
}

#[test]
fn a_body_that_does_not_parse_comes_back_with_its_reason() {
    let (error, body) =
        exposition::parse_owned(b"<html>502</html>".to_vec()).expect_err("HTML is not metrics");
    assert_eq!(error, exposition::ExpositionError::Html);
    assert_eq!(body, b"<html>502</html>");
}
