//! Bad input answers the documented 4xx with a JSON `detail`, and is counted and logged.

use serde_json::Value;

use crate::helpers::{counter, spawn_app};

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<Vec<u8>>,
    statuses: &'static [u16],
    route: &'static str,
}

fn cases() -> Vec<Case> {
    let post = |what, body: &[u8], statuses| Case {
        what,
        method: "POST",
        path: "/api/users",
        body: Some(body.to_vec()),
        statuses,
        route: "/api/users",
    };
    vec![
        Case {
            what: "non-integer id",
            method: "GET",
            path: "/api/users/abc",
            body: None,
            statuses: &[422, 400],
            route: "/api/users/{user_id}",
        },
        Case {
            what: "unknown id",
            method: "GET",
            path: "/api/users/987654321",
            body: None,
            statuses: &[404],
            route: "/api/users/{user_id}",
        },
        post("malformed JSON", b"{\"name\": ", &[422, 400]),
        post("wrong JSON type", br#"{"name": 42}"#, &[422, 400]),
        post("not an object", br#"["Ann"]"#, &[422, 400]),
        post("missing name", br#"{"email": "a@b.c"}"#, &[422, 400]),
        post("empty body", b"", &[422, 400]),
        post("1 MiB body", &vec![b'a'; 1024 * 1024], &[413]),
    ]
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_is_counted_and_logged_like_any_request() {
    let app = spawn_app().await;
    let cases = cases();
    let before = app.metrics().await;
    for case in &cases {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut request = app.client.request(method, app.url(case.path));
        if let Some(body) = &case.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let status = response.status().as_u16();
        assert!(
            case.statuses.contains(&status),
            "{}: got {status}",
            case.what
        );
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{}",
            case.what
        );
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: {body}",
            case.what
        );
    }
    let after = app.metrics().await;
    let lines = app.wait_for_request_lines(cases.len() + 1).await;
    for (case, line) in cases.iter().zip(lines.iter().skip(1)) {
        let status = line["status_code"].as_u64().unwrap() as u16;
        assert!(
            case.statuses.contains(&status),
            "{}: logged {status}",
            case.what
        );
        assert_eq!(line["endpoint"], case.path, "{}", case.what);
        assert_eq!(line["level"], "WARNING", "{}", case.what);
    }
    for case in &cases {
        let counted: f64 = case
            .statuses
            .iter()
            .map(|s| {
                let s = s.to_string();
                counter(&after, case.method, case.route, &s)
                    - counter(&before, case.method, case.route, &s)
            })
            .sum();
        let same_series = cases
            .iter()
            .filter(|c| {
                c.method == case.method && c.route == case.route && c.statuses == case.statuses
            })
            .count();
        assert_eq!(counted, same_series as f64, "{} is counted", case.what);
    }
    for status in ["500", "502", "503"] {
        assert_eq!(counter(&after, "POST", "/api/users", status), 0.0);
        assert_eq!(counter(&after, "GET", "/api/users/{user_id}", status), 0.0);
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_not_html() {
    let app = spawn_app().await;
    let missing = app.get("/definitely/not/here").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("JSON 404");
    assert_eq!(body["detail"], "Not Found");
    let wrong = app
        .client
        .delete(app.url("/api/users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    let body: Value = wrong.json().await.expect("JSON 405");
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn created_users_can_be_read_back_from_the_store() {
    let app = spawn_app().await;
    let created: Value = app
        .post_json("/api/users", r#"{"name":"  Frank  "}"#)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["name"], "Frank");
    let id = created["id"].as_i64().expect("numeric id");
    let fetched: Value = app
        .get(&format!("/api/users/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, created);
    let seeded: Value = app.get("/api/users/1").await.json().await.unwrap();
    assert_eq!(seeded["id"], 1);
    assert!(seeded["name"].is_string());
}
