//! `/metrics`: format, exact names, labels and buckets, exact counting, bounded cardinality.

use obsctl::sources::exposition::MetricType;

use crate::helpers::{counter, histogram_count, label_values, spawn_app};

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_exposition_content_type() {
    let app = spawn_app().await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(
        !body.starts_with('"'),
        "body must not be a JSON-encoded string"
    );
    obsctl::sources::exposition::parse(&body).expect("Prometheus can parse the body");
}

#[tokio::test]
async fn request_metrics_have_exact_types_labels_and_buckets() {
    let app = spawn_app().await;
    app.get("/api/users/1").await;
    let metrics = app.metrics().await;

    let requests = metrics
        .family("fastapi_requests_total")
        .expect("counter family");
    assert_eq!(requests.kind, MetricType::Counter);
    let duration = metrics
        .family("fastapi_request_duration_seconds")
        .expect("histogram family");
    assert_eq!(duration.kind, MetricType::Histogram);
    for family in [requests, duration] {
        let names: Vec<_> = family.label_names().into_iter().collect();
        assert_eq!(names, ["method", "path", "status_code"], "{}", family.name);
    }
    let expected = [
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        f64::INFINITY,
    ];
    for series in duration.histogram_series() {
        let bounds: Vec<f64> = series.buckets.iter().map(|(le, _)| *le).collect();
        assert_eq!(bounds, expected, "buckets of {:?}", series.labels);
    }
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
        assert!(metrics.family(name).is_some(), "{name} is exposed");
    }
}

#[tokio::test]
async fn every_request_is_counted_exactly_once_under_its_route_template() {
    let app = spawn_app().await;
    let before = app.metrics().await;
    let cases: [(&str, &str, &str, &str, usize); 5] = [
        ("GET", "/api/users/1", "/api/users/{user_id}", "200", 7),
        ("GET", "/api/users/424242", "/api/users/{user_id}", "404", 3),
        ("GET", "/api/users/abc", "/api/users/{user_id}", "422", 2),
        ("GET", "/health", "/health", "200", 4),
        ("GET", "/no/such/route", "<unmatched>", "404", 5),
    ];
    for (_, path, _, _, n) in cases {
        for _ in 0..n {
            app.get(path).await;
        }
    }
    for _ in 0..6 {
        app.post_json("/api/users", r#"{"name":"Dana"}"#).await;
    }
    let after = app.metrics().await;
    let mut expected: Vec<_> = cases
        .iter()
        .map(|(m, _, route, status, n)| (*m, *route, *status, *n))
        .collect();
    expected.push(("POST", "/api/users", "201", 6));
    // The first scrape is counted too, exactly once.
    expected.push(("GET", "/metrics", "200", 1));
    for (method, route, status, n) in expected {
        let counted =
            counter(&after, method, route, status) - counter(&before, method, route, status);
        let observed = histogram_count(&after, method, route, status)
            - histogram_count(&before, method, route, status);
        assert_eq!(counted, n as f64, "counter {method} {route} {status}");
        assert_eq!(
            observed, n as f64,
            "histogram _count {method} {route} {status}"
        );
    }
    let paths = label_values(&after, "path");
    assert!(
        !paths.contains_key("/api/users/1"),
        "raw paths must not become labels: {paths:?}"
    );
}

#[tokio::test]
async fn a_thousand_unknown_paths_add_at_most_one_path_value() {
    let app = spawn_app().await;
    // The first scrape creates the /metrics series itself; measure from the second.
    app.metrics().await;
    let before = label_values(&app.metrics().await, "path");
    for i in 0..1000u32 {
        let path = format!("/random/{}/{}", i.wrapping_mul(2_654_435_761), i);
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404);
    }
    let after = label_values(&app.metrics().await, "path");
    let new: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert!(new.len() <= 1, "new path values: {new:?}");
    assert_eq!(after.get("<unmatched>").copied(), Some(1000.0));
}

#[tokio::test]
async fn invented_methods_share_one_method_value() {
    let app = spawn_app().await;
    for method in ["FOO", "BAR", "PURGE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client
            .request(method, app.url("/health"))
            .send()
            .await
            .unwrap();
    }
    let methods = label_values(&app.metrics().await, "method");
    assert_eq!(methods.get("_OTHER").copied(), Some(3.0), "{methods:?}");
    assert!(!methods.contains_key("FOO"));
}
