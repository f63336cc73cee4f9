//! Hostile input: a corpus of hand-written and generated requests never yields a 5xx, a panic,
//! a non-JSON error body, a forged or broken log line, or a metric series beyond the bounded set.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::helpers::{RawResponse, label_values, spawn_app};

/// Every `path` label the backend may ever produce.
const ROUTES: [&str; 5] = [
    "/api/users/{user_id}",
    "/api/users",
    "/health",
    "/metrics",
    "<unmatched>",
];
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "_OTHER",
];

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !body.is_empty() {
        out.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn hand_written() -> Vec<Vec<u8>> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let nested_name = format!("{{\"name\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    let long_name = format!("{{\"name\": \"{}\"}}", "x".repeat(10_000));
    let long_path = format!("/api/users/{}", "9".repeat(4000));
    let mut corpus = vec![
        request("GET", "/api/users/1%00", &[], b""),
        request("GET", "/api/users/%zz", &[], b""),
        request("GET", "/api/users/%ff%fe", &[], b""),
        request("GET", "/api/users/../../etc/passwd", &[], b""),
        request("GET", "/api/users/..%2f..%2fetc%2fpasswd", &[], b""),
        request("GET", "/api/users/-1", &[], b""),
        request("GET", "/api/users/9223372036854775808", &[], b""),
        request("GET", "/api/users/1e3", &[], b""),
        request("GET", "/api/users/%20", &[], b""),
        request("GET", "/api/users/1?secret=hunter2&token=abc", &[], b""),
        request("GET", &long_path, &[], b""),
        request("GET", "/api/users/%E2%80%AE", &[], b""),
        request("GET", "//api//users//1", &[], b""),
        request("GET", "/api/users/1/", &[], b""),
        request("GET", "/health?x=\"}", &[], b""),
        request("PURGE", "/api/users/1", &[], b""),
        request("BREW", "/health", &[], b""),
        request("DELETE", "/metrics", &[], b""),
        request("OPTIONS", "*", &[], b""),
        request(
            "GET",
            "/health",
            &[("X-Forwarded-For", "\"}{\"level\":\"ERROR\"")],
            b"",
        ),
        request("GET", "/health", &[("User-Agent", &"A".repeat(8000))], b""),
        request("GET", "/health", &[("traceparent", "00-zzzz-zzzz-01")], b""),
        request(
            "GET",
            "/health",
            &[(
                "traceparent",
                "00-00000000000000000000000000000000-0000000000000000-01",
            )],
            b"",
        ),
        request("GET", "/health", &[("traceparent", &"0".repeat(5000))], b""),
        request("POST", "/api/users", &[], deep.as_bytes()),
        request("POST", "/api/users", &[], nested_name.as_bytes()),
        request("POST", "/api/users", &[], long_name.as_bytes()),
        request(
            "POST",
            "/api/users",
            &[],
            b"{\"name\": \"a\\r\\n{\\\"level\\\":\\\"ERROR\\\"}\"}",
        ),
        request("POST", "/api/users", &[], b"{\"name\": \"\\u0000\"}"),
        request("POST", "/api/users", &[], b"{\"name\": \"\xff\xfe\"}"),
        request("POST", "/api/users", &[], b"{\"name\": 1e999}"),
        request("POST", "/api/users", &[], b"{\"name\": null}"),
        request(
            "POST",
            "/api/users",
            &[],
            b"{\"name\": \"ok\", \"name\": 5}",
        ),
        request("POST", "/api/users", &[], b"null"),
        request("POST", "/api/users", &[], b"\"just a string\""),
        request("POST", "/api/users", &[], b"{\"name\": \"   \"}"),
        request("POST", "/api/users", &[], &[0u8; 100]),
        request(
            "POST",
            "/api/users",
            &[("Content-Type", "text/plain")],
            b"name=x",
        ),
        request("POST", "/api/users/1", &[], b"{\"name\": \"x\"}"),
        request("PUT", "/api/users", &[], b"{\"name\": \"x\"}"),
    ];
    // A body larger than the limit, declared honestly.
    corpus.push(request("POST", "/api/users", &[], &vec![b'{'; 200 * 1024]));
    corpus
}

fn generated(count: usize) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(0x000b_5c71);
    let segments = [
        "api",
        "users",
        "1",
        "x",
        "%2e%2e",
        "..",
        "%25",
        "{user_id}",
        "health",
        "metrics",
        "%C3%A9",
        "a%0Ab",
        "%22",
        "%7D",
    ];
    let methods = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "FOO", "M-SEARCH",
    ];
    (0..count)
        .map(|i| {
            let depth = rng.random_range(1..6);
            let path: String = (0..depth)
                .map(|_| format!("/{}", segments[rng.random_range(0..segments.len())]))
                .collect();
            let method = methods[rng.random_range(0..methods.len())];
            let body: Vec<u8> = if method == "POST" {
                match i % 4 {
                    0 => format!("{{\"name\": \"gen-{i}\"}}").into_bytes(),
                    1 => format!("{{\"name\": {i}}}").into_bytes(),
                    2 => (0..rng.random_range(1..64))
                        .map(|_| rng.random::<u8>())
                        .collect(),
                    _ => format!("[{i}]").into_bytes(),
                }
            } else {
                Vec::new()
            };
            request(method, &path, &[], &body)
        })
        .collect()
}

fn assert_sane(request: &[u8], response: &RawResponse) {
    let shown = String::from_utf8_lossy(&request[..request.len().min(120)]).into_owned();
    let status = response
        .status
        .unwrap_or_else(|| panic!("no status for {shown:?}: {:?}", response.head));
    assert!(
        status < 500,
        "{status} for {shown:?}: {}",
        String::from_utf8_lossy(&response.body)
    );
    // Every error has a JSON body, those hyper refuses before routing included (a HEAD
    // answer has none).
    if status >= 400 && !request.starts_with(b"HEAD ") {
        let body: Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| panic!("non-JSON error body for {shown:?}: {:?}", response.body));
        assert!(body["detail"].is_string(), "{shown:?}: {body}");
    }
}

#[tokio::test]
async fn a_corpus_of_hostile_requests_gets_no_5xx_no_html_no_broken_logs_and_no_new_series() {
    let app = spawn_app().await;
    let corpus: Vec<Vec<u8>> = hand_written().into_iter().chain(generated(300)).collect();
    assert!(corpus.len() >= 300);
    for request in &corpus {
        let response = app.raw(request).await;
        assert_sane(request, &response);
    }
    assert_eq!(app.get("/health").await.status(), 200, "still serving");

    let stdout = app.stdout();
    for line in &stdout {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("broken log line ({e}): {line}"));
        assert!(parsed.is_object());
        assert_ne!(parsed["message"], "Panic", "{line}");
        assert!(
            !line.contains("hunter2"),
            "query strings must not reach logs: {line}"
        );
    }
    // One line per request, those hyper refused included (the /health above may still be
    // on its way).
    let request_lines = app.wait_for_request_lines(corpus.len()).await.len();
    assert!(
        (corpus.len()..=corpus.len() + 1).contains(&request_lines),
        "{request_lines} request lines for {} requests",
        corpus.len()
    );
    assert!(
        app.request_lines().iter().all(|l| l["level"] != "ERROR"),
        "no request ended in a server error"
    );

    let metrics = app.metrics().await;
    let paths: BTreeSet<String> = label_values(&metrics, "path").into_keys().collect();
    assert!(
        paths.iter().all(|p| ROUTES.contains(&p.as_str())),
        "unbounded path values: {paths:?}"
    );
    let methods: BTreeSet<String> = label_values(&metrics, "method").into_keys().collect();
    assert!(
        methods.iter().all(|m| METHODS.contains(&m.as_str())),
        "unbounded methods: {methods:?}"
    );
}

/// Arbitrary JSON values, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,6}|name", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn any_json_body_gets_201_or_a_json_422_never_a_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let config = ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in json())| {
        let text = serde_json::to_string(&body).unwrap();
        let response = runtime.block_on(app.post_json("/api/users", &text));
        let status = response.status().as_u16();
        let answer: Value = runtime.block_on(response.json()).expect("JSON answer");
        let valid_name = body.get("name").and_then(Value::as_str).is_some_and(|n| {
            let n = n.trim();
            !n.is_empty() && n.chars().count() <= 200
        });
        if valid_name {
            prop_assert_eq!(status, 201, "{} -> {}", text, answer);
        } else {
            prop_assert_eq!(status, 422, "{} -> {}", text, answer);
            prop_assert!(answer["detail"].is_string());
        }
    });
}
