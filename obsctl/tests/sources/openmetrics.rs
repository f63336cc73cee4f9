//! The exposition parser reading OpenMetrics 1.0 text: exemplars, `# EOF`, `# UNIT`, counters
//! declared without `_total`, `_created` samples, timestamps in seconds, the OpenMetrics-only
//! types, and what OpenMetrics forbids (exemplars in the text format, a missing `# EOF`, lines
//! after it).

use obsctl::sources::exposition::{
    EXEMPLAR_MAX_CHARS, ExpositionError, Format, MetricType, parse, parse_as,
};

/// What Python's prometheus_client 0.21 writes for the contract's metrics under OpenMetrics
/// (`prometheus_client.openmetrics.exposition.generate_latest`), with one exemplar added the
/// way `observe(d, exemplar={...})` renders it.
const PYTHON_BODY: &str = r#"# HELP fastapi_requests Total HTTP requests
# TYPE fastapi_requests counter
fastapi_requests_total{method="GET",path="/api/users/{user_id}",status_code="200"} 7.0
fastapi_requests_created{method="GET",path="/api/users/{user_id}",status_code="200"} 1.7331234567890e+09
# HELP fastapi_request_duration_seconds HTTP request duration in seconds
# TYPE fastapi_request_duration_seconds histogram
fastapi_request_duration_seconds_bucket{le="0.01",method="GET",path="/api/users/{user_id}",status_code="200"} 3.0 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.0042 1.7331234568e+09
fastapi_request_duration_seconds_bucket{le="0.025",method="GET",path="/api/users/{user_id}",status_code="200"} 5.0
fastapi_request_duration_seconds_bucket{le="+Inf",method="GET",path="/api/users/{user_id}",status_code="200"} 7.0
fastapi_request_duration_seconds_count{method="GET",path="/api/users/{user_id}",status_code="200"} 7.0
fastapi_request_duration_seconds_sum{method="GET",path="/api/users/{user_id}",status_code="200"} 0.123
fastapi_request_duration_seconds_created{method="GET",path="/api/users/{user_id}",status_code="200"} 1.7331234567890e+09
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="11",patchlevel="7",version="3.11.7"} 1.0
# HELP process_cpu_seconds Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
process_cpu_seconds_total 0.42
# EOF
"#;

fn openmetrics(body: &str) -> Result<obsctl::sources::exposition::Exposition, ExpositionError> {
    parse_as(body, Format::OpenMetrics)
}

#[test]
fn a_counter_declared_without_total_is_found_by_its_sample_name() {
    let exp = openmetrics(PYTHON_BODY).expect("valid OpenMetrics");
    let requests = exp
        .family("fastapi_requests_total")
        .expect("found as _total");
    assert_eq!(requests.name, "fastapi_requests");
    assert_eq!(requests.kind, MetricType::Counter);
    assert_eq!(requests.sum_matching("fastapi_requests_total", &[]), 7.0);
    // `_created` joins the family, as a sample of its own name.
    assert_eq!(requests.samples.len(), 2);
    let cpu = exp.family("process_cpu_seconds_total").expect("cpu");
    assert_eq!(cpu.unit, Some("seconds"));
    assert_eq!(cpu.samples.first().map(|s| s.value), Some(0.42));
    assert_eq!(exp.format(), Format::OpenMetrics);
}

#[test]
fn bucket_exemplars_are_read_with_labels_value_and_timestamp() {
    let exp = openmetrics(PYTHON_BODY).expect("valid OpenMetrics");
    assert_eq!(exp.exemplar_count(), 1);
    let histogram = exp
        .family("fastapi_request_duration_seconds")
        .expect("histogram");
    let series = histogram.histogram_series();
    assert_eq!(series.len(), 1, "_created is not a series of its own");
    assert_eq!(series[0].count, Some(7.0));
    let with: Vec<_> = histogram
        .samples
        .iter()
        .filter_map(|s| s.exemplar.map(|e| (s.labels.get("le"), e)))
        .collect();
    assert_eq!(with.len(), 1);
    let (le, exemplar) = with[0];
    assert_eq!(le, Some("0.01"));
    assert_eq!(
        exemplar.labels.get("trace_id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(exemplar.labels.get("span_id"), Some("00f067aa0ba902b7"));
    assert_eq!(exemplar.value, 0.0042);
    assert_eq!(exemplar.timestamp_ms, Some(1_733_123_456_800));
    assert_eq!(exemplar.label_chars(), 8 + 32 + 7 + 16);
    // The bucket's own labels are not mixed with the exemplar's.
    let bucket = histogram.samples.first().expect("a bucket");
    assert!(!bucket.labels.contains_key("trace_id"));
    assert_eq!(bucket.value, 3.0);
}

#[test]
fn the_backends_exposition_parses_with_counter_exemplars() {
    let body = "# TYPE fastapi_requests counter\n\
        # HELP fastapi_requests Total HTTP requests\n\
        fastapi_requests_total{method=\"GET\",path=\"/health\",status_code=\"200\"} 3 # {trace_id=\"a79a7cd7da56792ee3e742b1530ac852\",span_id=\"cebd6549ece4e47c\"} 1 1796476754.077\n\
        # TYPE fastapi_request_duration_seconds histogram\n\
        fastapi_request_duration_seconds_bucket{method=\"GET\",path=\"/health\",status_code=\"200\",le=\"1.0\"} 3\n\
        fastapi_request_duration_seconds_bucket{method=\"GET\",path=\"/health\",status_code=\"200\",le=\"+Inf\"} 3\n\
        fastapi_request_duration_seconds_sum{method=\"GET\",path=\"/health\",status_code=\"200\"} 0.001\n\
        fastapi_request_duration_seconds_count{method=\"GET\",path=\"/health\",status_code=\"200\"} 3\n\
        # EOF\n";
    let exp = openmetrics(body).expect("valid OpenMetrics");
    let counter = exp.family("fastapi_requests_total").expect("counter");
    let sample = counter.samples.first().expect("a sample");
    let exemplar = sample.exemplar.expect("the counter's exemplar");
    assert_eq!(exemplar.value, 1.0);
    assert_eq!(exemplar.timestamp_ms, Some(1_796_476_754_077));
    let buckets = &exp
        .family("fastapi_request_duration_seconds")
        .expect("histogram")
        .histogram_series()[0]
        .buckets;
    assert_eq!(buckets, &[(1.0, 3.0), (f64::INFINITY, 3.0)]);
}

#[test]
fn exemplar_label_values_may_hold_braces_quotes_and_hashes() {
    let body = "# TYPE m counter\n\
        m_total 1 # {note=\"a } # {b=\\\"c\\\"}\",trace_id=\"ab\"} 2\n\
        # EOF";
    let exp = openmetrics(body).expect("valid OpenMetrics (no final newline is allowed)");
    let exemplar = exp
        .family("m")
        .and_then(|f| f.samples.first())
        .and_then(|s| s.exemplar)
        .expect("an exemplar");
    assert_eq!(exemplar.labels.get("note"), Some("a } # {b=\"c\"}"));
    assert_eq!(exemplar.labels.get("trace_id"), Some("ab"));
    assert_eq!(exemplar.timestamp_ms, None);
}

#[test]
fn timestamps_are_seconds_in_openmetrics_and_milliseconds_in_text() {
    let om = openmetrics("# TYPE g gauge\ng 1 1520879607.789\n# EOF\n").expect("valid");
    let text = parse("# TYPE g gauge\ng 1 1520879607789\n").expect("valid");
    let ts = |exp: &obsctl::sources::exposition::Exposition| {
        exp.family("g")
            .and_then(|f| f.samples.first())
            .and_then(|s| s.timestamp_ms)
    };
    assert_eq!(ts(&om), Some(1_520_879_607_789));
    assert_eq!(ts(&text), Some(1_520_879_607_789));
}

#[test]
fn openmetrics_only_types_are_read() {
    let body = "# TYPE q gaugehistogram\n\
        q_bucket{le=\"1.0\"} 2\nq_bucket{le=\"+Inf\"} 3\nq_gcount 3\nq_gsum 1.5\n\
        # TYPE build info\nbuild_info{version=\"1.2\"} 1\n\
        # TYPE state stateset\nstate{state=\"up\"} 1\nstate{state=\"down\"} 0\n\
        # TYPE u unknown\nu 4\n\
        # EOF\n";
    let exp = openmetrics(body).expect("valid OpenMetrics");
    let kinds: Vec<(&str, MetricType, usize)> = exp
        .families()
        .map(|f| (f.name, f.kind, f.samples.len()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("q", MetricType::GaugeHistogram, 4),
            ("build", MetricType::Info, 1),
            ("state", MetricType::StateSet, 2),
            ("u", MetricType::Untyped, 1),
        ]
    );
    // The text format has none of them.
    assert!(parse("# TYPE build info\nbuild_info 1\n").is_err());
}

#[test]
fn help_escapes_double_quotes_in_openmetrics() {
    let exp = openmetrics("# HELP g say \\\"hi\\\" \\\\ \\n\n# TYPE g gauge\ng 1\n# EOF\n")
        .expect("valid");
    assert_eq!(
        exp.family("g").and_then(|f| f.help),
        Some("say \"hi\" \\ \n")
    );
}

#[test]
fn an_openmetrics_body_without_eof_is_refused() {
    let error = openmetrics("# TYPE g gauge\ng 1\n").expect_err("truncated");
    assert!(
        matches!(&error, ExpositionError::Invalid { line: 2, message } if message.contains("# EOF")),
        "{error}"
    );
}

#[test]
fn nothing_may_follow_eof() {
    let error = openmetrics("# TYPE g gauge\ng 1\n# EOF\ng 2\n").expect_err("after EOF");
    assert!(
        matches!(&error, ExpositionError::Invalid { line: 4, message } if message.contains("after `# EOF`")),
        "{error}"
    );
    // Trailing empty lines are not lines.
    openmetrics("# TYPE g gauge\ng 1\n# EOF\n\n").expect("blank lines after EOF");
    assert!(openmetrics("g 1\n# EOF trailing\n").is_err());
}

#[test]
fn an_exemplar_in_the_text_format_is_a_syntax_error_as_prometheus_says() {
    let body = "# TYPE m counter\nm_total 1 # {trace_id=\"ab\"} 1\n";
    let error = parse(body).expect_err("exemplars are OpenMetrics only");
    assert!(
        matches!(&error, ExpositionError::Syntax { line: 2, expected, .. } if expected.contains("OpenMetrics only")),
        "{error}"
    );
    // In the text format `# EOF` is only a comment.
    parse("g 1\n# EOF\ng 2\n").expect("a comment in the text format");
}

#[test]
fn malformed_exemplars_are_syntax_errors_naming_what_was_expected() {
    for (body, expected) in [
        (
            "m_total 1 #{a=\"b\"} 1\n# EOF\n",
            "a space after the exemplar's '#'",
        ),
        (
            "m_total 1 # a=\"b\" 1\n# EOF\n",
            "the exemplar's label set '{...}'",
        ),
        (
            "m_total 1 # {a=\"b\"}\n# EOF\n",
            "whitespace before the exemplar's value",
        ),
        ("m_total 1 # {a=\"b\"} x\n# EOF\n", "the exemplar's value"),
        (
            "m_total 1 # {a=\"b\"} 1 later\n# EOF\n",
            "a timestamp in seconds",
        ),
        (
            "m_total 1 # {a=\"b} 1\n# EOF\n",
            "a closing '\"' of the label value",
        ),
    ] {
        match openmetrics(body) {
            Err(ExpositionError::Syntax {
                line: 1,
                expected: e,
                ..
            }) => {
                assert_eq!(e, expected, "{body:?}");
            }
            other => panic!("{body:?}: {other:?}"),
        }
    }
}

#[test]
fn a_unit_must_be_the_family_names_suffix() {
    let error =
        openmetrics("# TYPE foo counter\n# UNIT foo seconds\n# EOF\n").expect_err("bad unit");
    assert!(error.to_string().contains("not the suffix"), "{error}");
    openmetrics("# TYPE foo_seconds counter\n# UNIT foo_seconds seconds\n# EOF\n").expect("valid");
}

#[test]
fn the_format_follows_the_content_type() {
    assert_eq!(
        Format::of_content_type(Some(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::of_content_type(Some("text/plain; version=0.0.4")),
        Format::Text
    );
    assert_eq!(Format::of_content_type(None), Format::Text);
}

#[test]
fn the_exemplar_limit_is_the_specifications() {
    assert_eq!(EXEMPLAR_MAX_CHARS, 128);
}
