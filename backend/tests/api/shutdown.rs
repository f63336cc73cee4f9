//! SIGTERM: in-flight requests complete, spans are flushed, the process exits 0.

use std::time::Duration;

use crate::helpers::{Options, receiver, spawn_app_with};

#[tokio::test]
async fn sigterm_drains_in_flight_requests_flushes_spans_and_exits_zero() {
    let otlp = receiver().await;
    // A long batch delay: the spans can only arrive through the shutdown flush.
    let options = Options::default()
        .exporting_to(&otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .arg("--fault-latency-ms")
        .arg("700");
    let app = spawn_app_with(options).await;
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let request = app.client.get(app.url("/api/users/1"));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    // Let the requests reach the server (they then sleep 700 ms in the fault hoop).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (exit, stdout) = app.terminate().await;
    for request in in_flight {
        let response = request.await.unwrap().expect("in-flight request completes");
        assert_eq!(response.status(), 200);
    }
    assert!(exit.success(), "exit status {exit}");
    let completed = stdout
        .iter()
        .filter(|l| l.contains("\"Request completed\""))
        .count();
    assert_eq!(completed, 5, "{stdout:?}");
    let spans = otlp
        .wait_for_spans(
            |s| {
                s.iter()
                    .filter(|s| s.name == "GET /api/users/{user_id}")
                    .count()
                    >= 5
            },
            Duration::from_secs(5),
        )
        .await;
    let server = spans
        .iter()
        .filter(|s| s.name == "GET /api/users/{user_id}")
        .count();
    assert_eq!(server, 5, "every in-flight request's span was flushed");
}
