//! The exposition parser on the hard cases prometheus-parse gets wrong, and on bodies that are
//! not exposition text at all.

use obsctl::sources::exposition::{ExpositionError, MetricType, parse, parse_bytes};

/// What the backend (and prometheus_client / client_python) emit for the contract's metrics.
const CONTRACT_BODY: &str = r#"# HELP fastapi_requests_total Total HTTP requests
# TYPE fastapi_requests_total counter
fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="200"} 7
fastapi_requests_total{method="POST",path="/api/users",status_code="201"} 2.0
fastapi_requests_total{method="GET",path="<unmatched>",status_code="404"} 1e0
# HELP fastapi_request_duration_seconds HTTP request duration in seconds
# TYPE fastapi_request_duration_seconds histogram
fastapi_request_duration_seconds_bucket{method="GET",path="/api/users/{user_id}",status_code="200",le="0.01"} 3
fastapi_request_duration_seconds_bucket{method="GET",path="/api/users/{user_id}",status_code="200",le="0.025"} 5
fastapi_request_duration_seconds_bucket{method="GET",path="/api/users/{user_id}",status_code="200",le="+Inf"} 7
fastapi_request_duration_seconds_sum{method="GET",path="/api/users/{user_id}",status_code="200"} 0.123
fastapi_request_duration_seconds_count{method="GET",path="/api/users/{user_id}",status_code="200"} 7
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 0.42
"#;

#[test]
fn route_template_label_values_with_braces_are_kept() {
    let exp = parse(CONTRACT_BODY).expect("valid body");
    let requests = exp
        .family("fastapi_requests_total")
        .expect("counter family");
    assert_eq!(requests.kind, MetricType::Counter);
    assert_eq!(requests.help, Some("Total HTTP requests"));
    assert_eq!(requests.samples.len(), 3);
    assert_eq!(
        requests.sum_matching(
            "fastapi_requests_total",
            &[("path", "/api/users/{user_id}")]
        ),
        7.0
    );
    assert_eq!(requests.sum_matching("fastapi_requests_total", &[]), 10.0);
    let names: Vec<_> = requests.label_names().into_iter().collect();
    assert_eq!(names, ["method", "path", "status_code"]);
}

#[test]
fn histogram_suffixes_are_grouped_under_their_family() {
    let exp = parse(CONTRACT_BODY).expect("valid body");
    assert_eq!(
        exp.families().len(),
        3,
        "no stray _bucket/_sum/_count families"
    );
    let hist = exp
        .family("fastapi_request_duration_seconds")
        .expect("histogram");
    assert_eq!(hist.kind, MetricType::Histogram);
    let series = hist.histogram_series();
    assert_eq!(series.len(), 1);
    let s = &series[0];
    assert_eq!(s.labels.get("path"), Some("/api/users/{user_id}"));
    assert!(!s.labels.contains_key("le"));
    let bounds: Vec<f64> = s.buckets.iter().map(|b| b.0).collect();
    assert_eq!(bounds, [0.01, 0.025, f64::INFINITY]);
    assert_eq!(s.sum, Some(0.123));
    assert_eq!(s.count, Some(7.0));
}

#[test]
fn label_values_may_hold_escapes_commas_equals_and_braces() {
    let body = "# TYPE m gauge\n\
        m{a=\"x,y=z}{\",b=\"q\\\"uote\",c=\"back\\\\slash\",d=\"new\\nline\",} 1 1700000000000\n";
    let exp = parse(body).expect("valid");
    let sample = exp
        .family("m")
        .expect("m")
        .samples
        .first()
        .expect("a sample");
    assert_eq!(sample.labels.get("a"), Some("x,y=z}{"));
    assert_eq!(sample.labels.get("b"), Some("q\"uote"));
    assert_eq!(sample.labels.get("c"), Some("back\\slash"));
    assert_eq!(sample.labels.get("d"), Some("new\nline"));
    assert_eq!(sample.timestamp_ms, Some(1_700_000_000_000));
}

#[test]
fn special_values_and_exponents_parse() {
    let body = "a NaN\nb +Inf\nc -Inf\nd 1.5e-3\ne -2E+2\nf 12 -5\n  g\t3  \n";
    let exp = parse(body).expect("valid");
    let first = |n: &str| exp.family(n).expect(n).samples.first().expect(n);
    let value = |n: &str| first(n).value;
    assert!(value("a").is_nan());
    assert_eq!(value("b"), f64::INFINITY);
    assert_eq!(value("c"), f64::NEG_INFINITY);
    assert_eq!(value("d"), 0.0015);
    assert_eq!(value("e"), -200.0);
    assert_eq!(first("f").timestamp_ms, Some(-5));
    assert_eq!(value("g"), 3.0);
    assert_eq!(exp.family("a").expect("a").kind, MetricType::Untyped);
}

#[test]
fn summary_quantiles_sum_and_count_group_under_the_summary() {
    let body = "# TYPE rpc summary\nrpc{quantile=\"0.5\"} 1\nrpc{quantile=\"0.99\"} 2\nrpc_sum 10\nrpc_count 4\n";
    let exp = parse(body).expect("valid");
    assert_eq!(exp.families().len(), 1);
    let rpc = exp.family("rpc").expect("summary");
    assert_eq!(rpc.kind, MetricType::Summary);
    assert_eq!(rpc.samples.len(), 4);
}

#[test]
fn a_json_encoded_string_body_is_diagnosed() {
    // The spec's sample returns generate_latest() from a FastAPI route: JSON, not text.
    let body = "\"# HELP fastapi_requests_total Total\\n# TYPE fastapi_requests_total counter\\n\"";
    assert_eq!(parse(body), Err(ExpositionError::JsonString));
    assert!(
        ExpositionError::JsonString
            .to_string()
            .contains("JSON-encoded string")
    );
}

#[test]
fn html_json_and_empty_bodies_are_errors() {
    assert_eq!(
        parse("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"),
        Err(ExpositionError::Html)
    );
    assert_eq!(parse("<html>oops</html>"), Err(ExpositionError::Html));
    assert_eq!(
        parse("{\"detail\":\"Not Found\"}"),
        Err(ExpositionError::Json)
    );
    assert_eq!(parse(""), Err(ExpositionError::Empty));
    assert_eq!(parse("  \n\n"), Err(ExpositionError::Empty));
    assert_eq!(parse("# just a comment\n"), Err(ExpositionError::Empty));
    assert!(matches!(
        parse_bytes(b"m 1\n\xff\xfe"),
        Err(ExpositionError::NotUtf8 { offset: 4 })
    ));
}

#[test]
fn syntax_errors_name_the_line_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        ("ok 1\nm{a=\"unterminated} 1\n", 2, "closing"),
        ("m{a=b} 1\n", 1, "double-quoted"),
        ("m{a=\"b\" c=\"d\"} 1\n", 1, "',' or '}'"),
        ("m{=\"b\"} 1\n", 1, "label name"),
        ("m\n", 1, "whitespace"),
        ("m one\n", 1, "number"),
        ("m 1 2.5\n", 1, "integer timestamp"),
        ("m 1 2 3\n", 1, "end of the line"),
        ("9m 1\n", 1, "metric name"),
        ("a 1\n\n# TYPE x bogus\n", 3, "a type"),
    ];
    for (body, line, expected) in cases {
        match parse(body) {
            Err(ExpositionError::Syntax {
                line: got,
                expected: what,
                ..
            }) => {
                assert_eq!(got, *line, "{body:?}");
                assert!(what.contains(expected), "{body:?}: {what}");
            }
            other => panic!("{body:?}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn contradictions_are_invalid_with_their_line() {
    let dup_label = parse("m{a=\"1\",a=\"2\"} 1\n");
    assert!(
        matches!(dup_label, Err(ExpositionError::Invalid { line: 1, .. })),
        "{dup_label:?}"
    );
    let dup_type = parse("# TYPE m counter\n# TYPE m gauge\nm 1\n");
    assert!(
        matches!(dup_type, Err(ExpositionError::Invalid { line: 2, .. })),
        "{dup_type:?}"
    );
    let late_type = parse("m 1\n# TYPE m counter\n");
    assert!(
        matches!(late_type, Err(ExpositionError::Invalid { line: 2, .. })),
        "{late_type:?}"
    );
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "{",
        "}",
        "m{",
        "m{a",
        "m{a=",
        "m{a=\"",
        "m{a=\"\\",
        "m{a=\"x\"",
        "m{a=\"x\",",
        "# TYPE",
        "# HELP",
        "# TYPE m",
        "m 1 ",
        "\u{0}",
        "m{é=\"x\"} 1",
        "m 1e999999",
        "m \u{fffd}",
        "[1,2",
        "{\"a\":",
        "m{a=\"x\"}} 1",
    ];
    for input in inputs {
        let _ = parse(input);
    }
    for byte in 0u8..=255 {
        let _ = parse_bytes(&[b'm', b'{', byte, b'}', b' ', b'1']);
    }
}

#[test]
fn help_text_unescapes_backslash_and_newline() {
    let exp = parse("# HELP m a\\\\b\\nc\nm 1\n").expect("valid");
    assert_eq!(exp.family("m").expect("m").help, Some("a\\b\nc"));
}

#[test]
fn series_are_label_sets_without_le() {
    let exp = parse(CONTRACT_BODY).expect("valid body");
    let hist = exp
        .family("fastapi_request_duration_seconds")
        .expect("histogram");
    let series = hist.series();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(
        exp.family("fastapi_requests_total")
            .expect("counter")
            .series()
            .len(),
        3
    );
}

#[test]
fn random_inputs_from_a_hostile_alphabet_never_panic() {
    // A fixed-seed xorshift keeps the test deterministic.
    let alphabet: Vec<char> = "m_:{}=\",\\ \t\n#01.eE+-NaInfHELPTYPEcounterhistogram🦀é\r"
        .chars()
        .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let mut input = String::new();
        let len = (state % 40) as usize;
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            input.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = parse(&input);
    }
}
