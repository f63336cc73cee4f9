//! Extra headers: the scenario's `[headers]`, a request's own `headers` and `-H` flags reach the
//! server with their templates rendered, in that order of precedence; every header obsctl owns
//! and every bad name or value is refused before any traffic, naming the field; values never
//! reach the run report.

use crate::helpers::{Behaviour, config_with, obsctl, run, scenario, simple, spawn_server, text};
use obsctl::load::Overrides;
use obsctl::scenario::{Header, Scenario};
use std::path::Path;
use std::time::Duration;

const STAGE: &str = "[[stages]]\nduration = \"1s\"\nrate = 10\n";

/// The message of the error that `source` (as `h.toml`) is refused with.
fn error_of(source: &str) -> String {
    match Scenario::parse(source, Path::new("h.toml")) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn flag(text: &str) -> Header {
    Header::parse_flag(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

const LAYERED: &str = r#"
[headers]
X-Api-Key = "k-{{run_id}}"
X-Layer = "wide"
X-Wide = "w"

[[requests]]
name = "own"
path = "/own"
headers = { "X-Layer" = "own-{{seq}}", "X-Pick" = "{{random:7..7}}" }

[[requests]]
name = "plain"
path = "/plain"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_wide_and_own_header_templates_reach_the_server_rendered() {
    let server = spawn_server(Behaviour::default()).await;
    let cfg = config_with(
        scenario(&simple(40.0, "250ms", LAYERED, "")),
        &server.url,
        Overrides::default(),
    );
    let report = run(cfg, Duration::from_secs(10)).await;

    let received = server.received();
    assert_eq!(received.len(), 10);
    for r in &received {
        let seq = r.seq().expect("traceparent with a sequence number");
        let api_key = format!("k-{}", report.run_id);
        assert_eq!(r.header("x-api-key"), Some(api_key.as_str()));
        assert_eq!(r.header("x-wide"), Some("w"));
        match r.path.as_str() {
            "/own" => {
                let own = format!("own-{seq}");
                assert_eq!(r.header("x-layer"), Some(own.as_str()), "its own win");
                assert_eq!(r.header("x-pick"), Some("7"));
            }
            _ => {
                assert_eq!(r.header("x-layer"), Some("wide"));
                assert_eq!(r.header("x-pick"), None);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_win_over_the_scenario_and_the_request() {
    let server = spawn_server(Behaviour::default()).await;
    let overrides = Overrides {
        headers: vec![
            flag("X-Layer: flag-{{seq}}"),
            flag("x-api-key: from-the-flag"),
            flag("X-Only-Flag:\tv"),
        ],
        ..Overrides::default()
    };
    let cfg = config_with(
        scenario(&simple(40.0, "250ms", LAYERED, "")),
        &server.url,
        overrides,
    );
    run(cfg, Duration::from_secs(10)).await;

    let received = server.received();
    assert_eq!(received.len(), 10);
    for r in &received {
        let seq = r.seq().expect("sequence number");
        let layer = format!("flag-{seq}");
        assert_eq!(r.header("x-layer"), Some(layer.as_str()), "{}", r.path);
        assert_eq!(r.header("x-api-key"), Some("from-the-flag"));
        assert_eq!(r.header("x-only-flag"), Some("v"));
        assert_eq!(r.header("x-wide"), Some("w"));
        assert_eq!(r.headers.get_all("x-layer").iter().count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_sends_h_flags_and_keeps_values_out_of_the_report() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.toml"),
        simple(20.0, "200ms", LAYERED, ""),
    )
    .expect("write");
    let out = obsctl(
        dir.path(),
        &[
            "load",
            "s.toml",
            "--target",
            &server.url,
            "-H",
            "X-Api-Key: s3cret-{{seq}}",
            "--header",
            "Authorization: Bearer t0ken",
            "--report",
            "r.json",
            "--quiet",
        ],
    )
    .await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let received = server.received();
    assert_eq!(received.len(), 4);
    for r in &received {
        let key = format!("s3cret-{}", r.seq().expect("seq"));
        assert_eq!(r.header("x-api-key"), Some(key.as_str()));
        assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    }
    let report = std::fs::read_to_string(dir.path().join("r.json")).expect("report");
    let parsed: obsctl::report::RunReport = serde_json::from_str(&report).expect("parses");
    let wide_value = format!("k-{}", parsed.run_id);
    for secret in ["s3cret", "t0ken", wide_value.as_str()] {
        assert!(
            !report.contains(secret),
            "`{secret}` leaked into the report"
        );
    }
    assert!(!text(&out.stdout).contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_type_header_replaces_content_type() {
    let server = spawn_server(Behaviour::default()).await;
    let requests = r#"
[headers]
Content-Type = "application/x-ndjson"
[[requests]]
name = "post"
method = "POST"
path = "/p"
body = '{"n": {{seq}}}'
[[requests]]
name = "xml"
method = "POST"
path = "/x"
body = "<n/>"
headers = { "Content-Type" = "text/xml" }
"#;
    let cfg = config_with(
        scenario(&simple(40.0, "100ms", requests, "")),
        &server.url,
        Overrides::default(),
    );
    run(cfg, Duration::from_secs(10)).await;

    let received = server.received();
    assert_eq!(received.len(), 4);
    for r in &received {
        let want = if r.path == "/x" {
            "text/xml"
        } else {
            "application/x-ndjson"
        };
        assert_eq!(r.header("content-type"), Some(want));
        assert_eq!(r.headers.get_all("content-type").iter().count(), 1);
    }
}

#[test]
fn every_header_obsctl_owns_is_refused_with_the_reason() {
    let owned = [
        (
            "traceparent",
            "obsctl sends its own with every request (its trace id is how `obsctl check` finds the request)",
        ),
        (
            "X-Obsctl-Run-Id",
            "obsctl sends the run id in it (it is how `obsctl check` finds the run)",
        ),
        ("Host", "obsctl sets it from the target URL"),
        ("Content-Length", "the HTTP client sets it from the body"),
        ("Transfer-Encoding", "the HTTP client sets it from the body"),
        (
            "connection",
            "obsctl manages its keep-alive connections itself",
        ),
    ];
    for (name, why) in owned {
        let wide = format!(
            "name = \"x\"\n[headers]\n{name} = \"v\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"/\"\n"
        );
        assert_eq!(
            error_of(&wide),
            format!(
                "h.toml:3:1: headers.{name}: `{name}` cannot be set: {why}\n  3 | {name} = \"v\""
            ),
        );
        let own = format!(
            "name = \"x\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"/\"\nheaders = {{ {name} = \"v\" }}\n"
        );
        assert_eq!(
            error_of(&own),
            format!(
                "h.toml:8:13: requests[0].headers.{name}: `{name}` cannot be set: {why}\n  8 | headers = {{ {name} = \"v\" }}"
            ),
        );
        let flag = Header::parse_flag(&format!("{name}: v")).map_err(|e| e.to_string());
        assert_eq!(flag, Err(format!("`{name}` cannot be set: {why}")));
    }
}

#[test]
fn bad_header_names_and_values_are_refused_naming_the_field() {
    let request = |headers: &str| {
        format!(
            "name = \"x\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"/\"\nheaders = {headers}\n"
        )
    };
    let cases = [
        (
            r#"{ "X Api" = "v" }"#,
            "h.toml:8:13: requests[0].headers.\"X Api\": `X Api` is not a header name: use letters, \
             digits and `-` (or any of !#$%&'*+.^_`|~), with no spaces or `:`",
        ),
        (
            r#"{ "X:A" = "v" }"#,
            "h.toml:8:13: requests[0].headers.\"X:A\": `X:A` is not a header name: use letters, \
             digits and `-` (or any of !#$%&'*+.^_`|~), with no spaces or `:`",
        ),
        (
            r#"{ "" = "v" }"#,
            "h.toml:8:13: requests[0].headers.\"\": a header name cannot be empty",
        ),
        (
            r#"{ X-A = "a\r\nX-Injected: b" }"#,
            "h.toml:8:19: requests[0].headers.X-A: the value of `X-A` cannot contain a line break \
             (CR, LF) or NUL: a header is one line",
        ),
        (
            r#"{ X-A = "a\u0000" }"#,
            "h.toml:8:19: requests[0].headers.X-A: the value of `X-A` cannot contain a line break \
             (CR, LF) or NUL: a header is one line",
        ),
        (
            r#"{ X-A = "bell\u0007" }"#,
            "h.toml:8:19: requests[0].headers.X-A: the value of `X-A` cannot contain control \
             characters (tab is allowed)",
        ),
        (
            r#"{ X-A = "{{uuid}}" }"#,
            "h.toml:8:19: requests[0].headers.X-A: the value of `X-A`: unknown placeholder \
             `{{uuid}}`; expected `{{seq}}`, `{{run_id}}` or `{{random:LO..HI}}` (at character 0 \
             of the template)",
        ),
        (
            r#"{ X-A = "a", x-a = "b" }"#,
            "h.toml:8:24: requests[0].headers.x-a: `x-a` is the same header as `X-A` above (header \
             names ignore case): keep one",
        ),
        (
            r#"{ X-A = 5 }"#,
            "h.toml:8:19: requests[0].headers.X-A: expected a header value in quotes (e.g. \
             \"k-{{run_id}}\"), found the integer 5",
        ),
        (
            r#""X-A: b""#,
            "h.toml:8:11: requests[0].headers: expected a table of header names and values (e.g. \
             { \"X-Api-Key\" = \"k-{{run_id}}\" }), found the string \"X-A: b\"",
        ),
    ];
    for (headers, want) in cases {
        let source = request(headers);
        let got = error_of(&source);
        let first = got.lines().next().unwrap_or_default();
        assert_eq!(first, want, "for headers = {headers}");
    }
}

#[test]
fn content_type_cannot_be_set_twice() {
    let own = format!(
        "name = \"x\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"/\"\ncontent_type = \"text/plain\"\nheaders = {{ Content-Type = \"text/xml\" }}\n"
    );
    let got = error_of(&own);
    assert_eq!(
        got.lines().next(),
        Some(
            "h.toml:8:16: requests[0].content_type: this request's `headers` set Content-Type too: \
             set it in one place"
        )
    );
    let wide = format!(
        "name = \"x\"\n[headers]\nContent-Type = \"text/xml\"\n{STAGE}[[requests]]\nname = \"a\"\npath = \"/\"\ncontent_type = \"text/plain\"\n"
    );
    let got = error_of(&wide);
    assert_eq!(
        got.lines().next(),
        Some(
            "h.toml:10:16: requests[0].content_type: [headers] sets Content-Type for every request: \
             set this request's in its own `headers`, which win over [headers]"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_h_flags_exit_2_before_any_traffic() {
    let server = spawn_server(Behaviour::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str); 4] = [
        (
            "X-Api-Key",
            "error: invalid value 'X-Api-Key' for '--header <NAME: VALUE>': `X-Api-Key` is not \
             NAME: VALUE (e.g. -H 'X-Api-Key: k-{{run_id}}')",
        ),
        (
            "Host: evil",
            "error: invalid value 'Host: evil' for '--header <NAME: VALUE>': `Host` cannot be set: \
             obsctl sets it from the target URL",
        ),
        (
            "X Y: z",
            "error: invalid value 'X Y: z' for '--header <NAME: VALUE>': `X Y` is not a header \
             name: use letters, digits and `-` (or any of !#$%&'*+.^_`|~), with no spaces or `:`",
        ),
        (
            "X-A: {{seq",
            "error: invalid value 'X-A: {{seq' for '--header <NAME: VALUE>': the value of `X-A`: \
             unclosed placeholder: `{{` without a matching `}}` (at character 0 of the template)",
        ),
    ];
    for (value, want) in cases {
        let args = [
            "load",
            "--target",
            &server.url,
            "--rps",
            "50",
            "-d",
            "200ms",
            "-H",
            value,
        ];
        let out = obsctl(dir.path(), &args).await;
        assert_eq!(out.status.code(), Some(2), "{value}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().next(), Some(want), "{value}");
    }
    let twice = [
        "load",
        "--target",
        &server.url,
        "--rps",
        "50",
        "-d",
        "200ms",
        "-H",
        "X-A: 1",
        "-H",
        "x-a: 2",
    ];
    let out = obsctl(dir.path(), &twice).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().last(),
        Some("error: -H x-a: given twice; give each header once")
    );
    assert!(server.received().is_empty(), "no traffic before the checks");
}
