//! The log checks on captured output with exactly one defect each: a line that is not JSON,
//! missing keys, wrong types, logs on stderr, another service's name.

use obsctl::check::model::Status;
use serde_json::{Value, json};

use crate::helpers::{assert_check, buffer_of, context, log_input, run_checks};

/// A request line exactly as the contract has it (DESIGN.md, "Logs").
fn request_line(method: &str, endpoint: &str, status: u16) -> Value {
    let level = match status {
        500.. => "ERROR",
        400.. => "WARNING",
        _ => "INFO",
    };
    json!({
        "timestamp": "2026-11-25T09:30:00.123Z",
        "level": level,
        "service": "fastapi-backend",
        "message": "Request completed",
        "endpoint": endpoint,
        "method": method,
        "status_code": status,
        "duration_ms": 3.25,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
    })
}

/// A startup line: every line key, no request fields.
fn startup_line() -> Value {
    json!({
        "timestamp": "2026-11-25T09:29:59.001Z",
        "level": "INFO",
        "service": "fastapi-backend",
        "message": "listening on 127.0.0.1:8000",
    })
}

/// `value` with `key` set (or removed when `None`).
fn with(mut value: Value, key: &str, replacement: Option<Value>) -> Value {
    if let Some(map) = value.as_object_mut() {
        match replacement {
            Some(v) => {
                map.insert(key.to_owned(), v);
            }
            None => {
                map.remove(key);
            }
        }
    }
    value
}

fn lines(values: &[Value]) -> Vec<String> {
    values.iter().map(Value::to_string).collect()
}

async fn check_lines(values: &[Value]) -> obsctl::check::report::CheckReport {
    check_text(&lines(values)).await
}

async fn check_text(text: &[String]) -> obsctl::check::report::CheckReport {
    let mut ctx = context();
    ctx.logs = Some(log_input(text));
    run_checks(&ctx).await
}

#[tokio::test]
async fn contract_log_lines_pass_both_log_checks() {
    let report = check_lines(&[
        startup_line(),
        request_line("GET", "/api/users/1", 200),
        request_line("GET", "/api/users/abc", 422),
    ])
    .await;
    assert_check(&report, "logs-json-stdout", Status::Pass, &["3 JSON lines"]);
    assert_check(&report, "logs-fields", Status::Pass, &["2 request lines"]);
    assert_check(
        &report,
        "logs-timestamp-format",
        Status::Pass,
        &["3 timestamps"],
    );
    assert_check(&report, "logs-level-by-status", Status::Pass, &[]);
}

#[tokio::test]
async fn a_line_that_is_not_json_fails_with_its_line_number() {
    // uvicorn's access log, printed beside the JSON logger's lines.
    let access = "INFO:     127.0.0.1:50312 - \"GET /api/users/1 HTTP/1.1\" 200 OK".to_owned();
    let mut text = lines(&[startup_line(), request_line("GET", "/api/users/1", 200)]);
    text.push(access);
    let report = check_text(&text).await;
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Fail,
        &[
            "1 of 3 lines",
            "not JSON",
            "line 3: INFO:     127.0.0.1:50312",
        ],
    );
}

#[tokio::test]
async fn lines_without_level_and_timestamp_fail() {
    // python-json-logger's JsonFormatter() with no format: the message and the extras only.
    let bare = with(
        with(request_line("GET", "/api/users/1", 200), "level", None),
        "timestamp",
        None,
    );
    let report = check_lines(&[bare]).await;
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Fail,
        &[
            "lines without `timestamp`",
            "lines without `level`",
            "line 1: {",
        ],
    );
    assert_check(
        &report,
        "logs-fields",
        Status::Fail,
        &[
            "request lines without `timestamp`",
            "request lines without `level`",
        ],
    );
}

#[tokio::test]
async fn a_status_code_written_as_a_string_fails_naming_the_field() {
    let line = with(
        request_line("GET", "/api/users/1", 200),
        "status_code",
        Some(json!("200")),
    );
    let report = check_lines(&[line]).await;
    assert_check(
        &report,
        "logs-fields",
        Status::Fail,
        &[
            "`status_code` is a string (\"200\"), not a number",
            "line 1: {",
            "JSON number",
        ],
    );
    // Every line is still a JSON object with the line keys.
    assert_check(&report, "logs-json-stdout", Status::Pass, &[]);
}

#[tokio::test]
async fn a_request_line_without_duration_ms_fails_naming_the_field() {
    let complete = request_line("GET", "/api/users/1", 200);
    let partial = with(request_line("POST", "/api/users", 201), "duration_ms", None);
    let report = check_lines(&[complete, partial]).await;
    let failed = assert_check(
        &report,
        "logs-fields",
        Status::Fail,
        &[
            "request lines without `duration_ms` (1 of 2 request lines)",
            "line 2: {",
        ],
    );
    assert!(!failed.evidence.join(" ").contains("line 1"), "{failed:#?}");
}

#[tokio::test]
async fn json_logs_on_stderr_and_nothing_on_stdout_fail_mentioning_stderr() {
    // logging.StreamHandler() writes to stderr (the spec's sample).
    let mut ctx = context();
    let mut input = log_input(&[]);
    input.stderr = Some(buffer_of(&lines(&[
        startup_line(),
        request_line("GET", "/api/users/1", 200),
    ])));
    ctx.logs = Some(input);
    let report = run_checks(&ctx).await;
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Fail,
        &[
            "nothing on stdout of `app`",
            "2 JSON lines on stderr",
            "sys.stdout",
        ],
    );
}

#[tokio::test]
async fn no_log_lines_at_all_fail() {
    let report = check_text(&[]).await;
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Fail,
        &["no log lines from stdout of `app`"],
    );
}

#[tokio::test]
async fn lines_of_another_service_fail() {
    let other = |v: Value| with(v, "service", Some(json!("unknown_service")));
    let report = check_lines(&[
        other(startup_line()),
        other(request_line("GET", "/api/users/1", 200)),
    ])
    .await;
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Fail,
        &["line 1: service is \"unknown_service\", expected \"fastapi-backend\""],
    );
    assert_check(&report, "logs-fields", Status::Fail, &["unknown_service"]);
}

#[tokio::test]
async fn a_numeric_level_fails_the_request_fields_a_lower_case_name_does_not() {
    // pino's default: the level as a number.
    let numeric = with(
        request_line("GET", "/api/users/1", 200),
        "level",
        Some(json!(30)),
    );
    let report = check_lines(&[numeric]).await;
    assert_check(
        &report,
        "logs-fields",
        Status::Fail,
        &[
            "`level` 30 is not one of DEBUG, INFO, WARNING, ERROR",
            "formatters.level",
        ],
    );
    // structlog, winston and zap write `info`: the name, which Loki reads alike.
    let lower = with(
        request_line("GET", "/api/users/1", 200),
        "level",
        Some(json!("info")),
    );
    let report = check_lines(&[lower]).await;
    assert_check(&report, "logs-fields", Status::Pass, &[]);
    assert_check(&report, "logs-level-by-status", Status::Pass, &[]);
}

#[tokio::test]
async fn a_python_asctime_timestamp_warns_as_not_rfc3339() {
    // python-json-logger with rename_fields={"asctime": "timestamp"} keeps logging's default
    // asctime format.
    let line = with(
        request_line("GET", "/api/users/1", 200),
        "timestamp",
        Some(json!("2026-11-25 09:30:00,123")),
    );
    let report = check_lines(&[line]).await;
    assert_check(
        &report,
        "logs-timestamp-format",
        Status::Warn,
        &[
            "timestamps that are not RFC 3339",
            "line 1: timestamp \"2026-11-25 09:30:00,123\"",
        ],
    );
    // The field is there: the checklist item holds.
    assert_check(&report, "logs-fields", Status::Pass, &[]);
}

#[tokio::test]
async fn a_4xx_or_5xx_logged_at_info_warns_naming_the_status() {
    // A logger that writes every request at INFO: alerting on ERROR lines never fires.
    let line = |status| {
        with(
            request_line("GET", "/api/users/1", status),
            "level",
            Some(json!("INFO")),
        )
    };
    let report = check_lines(&[line(200), line(404), line(500)]).await;
    assert_check(
        &report,
        "logs-level-by-status",
        Status::Warn,
        &[
            "4xx answers logged at INFO (1 of 3 request lines)",
            "5xx answers logged at INFO (1 of 3 request lines)",
            "line 2: status 404 at INFO",
            "line 3: status 500 at INFO",
        ],
    );
    assert_check(&report, "logs-fields", Status::Pass, &[]);
}

#[tokio::test]
async fn correlation_ids_that_lead_to_no_span_warn() {
    // Logged after the span ended (OpenTelemetry's invalid all-zero ids), as an integer, in
    // upper case, truncated.
    let base = || request_line("GET", "/api/users/1", 200);
    let report = check_lines(&[
        with(base(), "trace_id", Some(json!("0".repeat(32)))),
        with(base(), "trace_id", Some(json!(12345))),
        with(base(), "span_id", Some(json!("00F067AA0BA902B7"))),
        with(base(), "span_id", Some(json!("00f067aa"))),
    ])
    .await;
    assert_check(
        &report,
        "logs-trace-correlation",
        Status::Warn,
        &[
            "trace_id is all zeros: no span was active",
            "trace_id is not 32 lowercase hex digits",
            "line 2: trace_id 12345",
            "span_id is not 16 lowercase hex digits",
            "line 3: span_id \"00F067AA0BA902B7\"",
            "line 4: span_id \"00f067aa\"",
        ],
    );
}

#[tokio::test]
async fn a_local_time_timestamp_warns_but_any_utc_spelling_passes() {
    let at = |ts: &str| {
        with(
            request_line("GET", "/api/users/1", 200),
            "timestamp",
            Some(json!(ts)),
        )
    };
    let report = check_lines(&[at("2026-11-25T10:30:00.123+01:00")]).await;
    assert_check(
        &report,
        "logs-timestamp-format",
        Status::Warn,
        &[
            "timestamps not in UTC",
            "line 1: timestamp \"2026-11-25T10:30:00.123+01:00\"",
        ],
    );
    let report = check_lines(&[
        at("2026-11-25T09:30:00.123Z"),
        at("2026-11-25T09:30:00.123456+00:00"),
    ])
    .await;
    assert_check(&report, "logs-fields", Status::Pass, &["2 request lines"]);
    assert_check(
        &report,
        "logs-timestamp-format",
        Status::Pass,
        &["2 timestamps"],
    );
}

#[tokio::test]
async fn pino_defaults_are_named_with_the_fields_the_contract_wants_instead() {
    // pino + pino-http out of the box: numeric level, epoch `time`, `msg`, and the request as
    // `req` / `res` objects with `responseTime`.
    let line = json!({
        "level": 30, "time": 1_764_063_000_000_i64, "pid": 7, "hostname": "h",
        "service": "fastapi-backend", "msg": "request completed",
        "req": {"method": "GET", "url": "/api/users/1"}, "res": {"statusCode": 200},
        "responseTime": 3,
    });
    let report = check_lines(&[line]).await;
    assert_check(
        &report,
        "logs-json-stdout",
        Status::Fail,
        &[
            "lines without `timestamp` (they have `time`: the contract names it `timestamp`)",
            "lines without `message` (they have `msg`: the contract names it `message`)",
        ],
    );
    assert_check(
        &report,
        "logs-fields",
        Status::Fail,
        &[
            "none of the 1 lines is a request line",
            "lines have `req`: the contract names it `endpoint`",
            "pino-http",
        ],
    );
}
