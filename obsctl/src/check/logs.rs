//! Log checks on the service's own output (captured stdout, a file or stdin): every line a JSON
//! object with the contract keys, and request lines with the Part 6 fields and types.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::context::{CheckContext, LogInput};
use super::model::Outcome;
use crate::sources::logs::LogLine;

/// Keys every line carries.
pub const LINE_KEYS: [&str; 4] = ["timestamp", "level", "service", "message"];
/// Keys every request line carries (Part 6).
pub const REQUEST_KEYS: [&str; 7] = [
    "timestamp",
    "level",
    "service",
    "endpoint",
    "method",
    "status_code",
    "duration_ms",
];
const LEVELS: [&str; 4] = ["DEBUG", "INFO", "WARNING", "ERROR"];
const NO_LOGS: &str = "pass --logs FILE (or - for stdin) with the service's stdout, or use `obsctl verify`, which captures it";

/// `logs-json-stdout`: every stdout line is a JSON object with timestamp, level, service, message.
pub async fn json_lines(ctx: &CheckContext) -> Outcome {
    let Some(input) = &ctx.logs else {
        return Outcome::skip("no log source given", NO_LOGS);
    };
    let lines = wait_for_request_lines(ctx, input).await;
    if lines.is_empty() {
        return empty(input);
    }
    let not_json: Vec<&LogLine> = lines.iter().filter(|l| l.parsed.is_err()).collect();
    if !not_json.is_empty() {
        let first = not_json[0];
        return Outcome::fail(
            format!(
                "{} of {} lines in {} are not JSON objects",
                not_json.len(),
                lines.len(),
                input.origin
            ),
            "format every log record as one JSON object per line (python-json-logger with a \
             format that includes timestamp and level, or a JSON formatter)",
        )
        .evidence(format!("line {}: {}", first.number, clip(&first.text)));
    }
    let mut problems = Vec::new();
    for line in &lines {
        for key in LINE_KEYS {
            if line.field(key).is_none() {
                problems.push(format!("line {}: no `{key}`", line.number));
            }
        }
        if let Some(issue) = line
            .field("service")
            .and_then(|s| wrong_service(s, &ctx.service))
        {
            problems.push(format!("line {}: {issue}", line.number));
        }
    }
    if !problems.is_empty() {
        return Outcome::fail(
            format!("{} problems in {} JSON lines", problems.len(), lines.len()),
            "every line needs timestamp, level, service and message (python-json-logger prints \
             only `message` unless its format names the others)",
        )
        .evidence(
            problems
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    Outcome::pass(format!(
        "{} JSON lines from {}, each with timestamp, level, service, message",
        lines.len(),
        input.origin
    ))
}

/// `logs-fields`: request lines carry the seven Part 6 fields with the right types.
pub async fn request_fields(ctx: &CheckContext) -> Outcome {
    let Some(input) = &ctx.logs else {
        return Outcome::skip("no log source given", NO_LOGS);
    };
    let lines = wait_for_request_lines(ctx, input).await;
    if lines.is_empty() {
        return empty(input);
    }
    let requests: Vec<&LogLine> = lines.iter().filter(|l| is_request_line(l)).collect();
    if requests.is_empty() {
        let on_stderr = input
            .stderr
            .as_ref()
            .map(|stderr| stderr.lines().into_iter().filter(is_request_line).count())
            .unwrap_or(0);
        if on_stderr > 0 {
            return Outcome::fail(
                format!(
                    "no request lines on {}, but {on_stderr} on stderr",
                    input.origin
                ),
                "log to stdout: logging.StreamHandler() writes to stderr unless given sys.stdout",
            );
        }
        return Outcome::fail(
            format!(
                "none of the {} lines is a request line (with endpoint, method or status_code)",
                lines.len()
            ),
            "log one line per request after the response, with endpoint, method, status_code and duration_ms",
        );
    }
    let mut problems: Vec<String> = Vec::new();
    for line in &requests {
        problems.extend(
            field_problems(line, &ctx.service)
                .into_iter()
                .map(|p| format!("line {}: {p}", line.number)),
        );
    }
    if problems.is_empty() {
        return Outcome::pass(format!(
            "{} request lines, each with {}",
            requests.len(),
            REQUEST_KEYS.join(", ")
        ));
    }
    Outcome::fail(
        format!(
            "{} problems in {} request lines",
            problems.len(),
            requests.len()
        ),
        "each request line needs timestamp (RFC 3339, UTC), level (by status: 5xx ERROR, 4xx \
         WARNING, else INFO), service, endpoint, method, status_code (a number), duration_ms (a \
         number), and trace_id / span_id as the request span's lowercase hex ids",
    )
    .evidence(
        problems
            .iter()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// Whether a line describes a request (and so must carry the request fields).
pub fn is_request_line(line: &LogLine) -> bool {
    ["endpoint", "status_code", "method"]
        .iter()
        .any(|k| line.field(k).is_some())
}

/// Everything wrong with one request line: the Part 6 keys and their types, the level its
/// status calls for, and the correlation ids when the line carries them.
pub fn field_problems(line: &LogLine, service: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for key in REQUEST_KEYS {
        let Some(value) = line.field(key) else {
            problems.push(format!("no `{key}`"));
            continue;
        };
        if let Some(problem) = type_problem(key, value, service) {
            problems.push(problem);
        }
    }
    if let (Some(status), Some(level)) = (
        line.field("status_code").and_then(Value::as_u64),
        line.str_field("level"),
    ) {
        let expected = match status {
            500.. => "ERROR",
            400..=499 => "WARNING",
            _ => "INFO",
        };
        if LEVELS.contains(&level) && level != expected {
            problems.push(format!(
                "status {status} logged at {level} (5xx is ERROR, 4xx WARNING, else INFO)"
            ));
        }
    }
    for (key, digits) in [("trace_id", 32), ("span_id", 16)] {
        if let Some(value) = line.field(key)
            && let Some(problem) = id_problem(key, value, digits)
        {
            problems.push(problem);
        }
    }
    problems
}

/// A `trace_id` / `span_id` must be the span's id as lowercase hex; all zeros is the invalid
/// id a logger writes when no span is active (logging after the span ended, say).
fn id_problem(key: &str, value: &Value, digits: usize) -> Option<String> {
    let Some(id) = value.as_str() else {
        return Some(format!(
            "{key} {value} is not a string of {digits} hex digits"
        ));
    };
    let hex = id.len() == digits
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        Some(format!(
            "{key} {value} is not {digits} lowercase hex digits"
        ))
    } else if id.bytes().all(|b| b == b'0') {
        Some(format!(
            "{key} is all zeros: no span was active when the line was written"
        ))
    } else {
        None
    }
}

fn type_problem(key: &str, value: &Value, service: &str) -> Option<String> {
    match key {
        "timestamp" => match value
            .as_str()
            .and_then(|ts| OffsetDateTime::parse(ts, &Rfc3339).ok())
        {
            Some(ts) if ts.offset().is_utc() => None,
            Some(_) => Some(format!("timestamp {value} is not in UTC")),
            None => Some(format!("timestamp {value} is not RFC 3339")),
        },
        "level" => match value.as_str() {
            Some(level) if LEVELS.contains(&level) => None,
            _ => Some(format!(
                "level {value} is not one of DEBUG, INFO, WARNING, ERROR"
            )),
        },
        "service" => wrong_service(value, service),
        "endpoint" => match value.as_str() {
            Some(path) if path.starts_with('/') => None,
            _ => Some(format!("endpoint {value} is not a path")),
        },
        "method" => value
            .as_str()
            .is_none()
            .then(|| format!("method {value} is not a string")),
        "status_code" => match value.as_u64() {
            Some(code) if (100..600).contains(&code) => None,
            _ => Some(format!(
                "status_code {value} is not a number from 100 to 599"
            )),
        },
        "duration_ms" => match value.as_f64() {
            Some(ms) if ms >= 0.0 => None,
            _ => Some(format!("duration_ms {value} is not a non-negative number")),
        },
        _ => None,
    }
}

fn wrong_service(value: &Value, service: &str) -> Option<String> {
    match value.as_str() {
        Some(s) if s == service => None,
        _ => Some(format!("service is {value}, expected \"{service}\"")),
    }
}

/// The lines, once at least one request line arrived or the deadline passed.
async fn wait_for_request_lines(ctx: &CheckContext, input: &LogInput) -> Vec<LogLine> {
    let found = ctx
        .poll(|| async {
            let lines = input.buffer.lines();
            lines.iter().any(is_request_line).then_some(lines)
        })
        .await;
    found.unwrap_or_else(|| input.buffer.lines())
}

/// No lines at all: say where they might have gone.
fn empty(input: &LogInput) -> Outcome {
    let on_stderr = input
        .stderr
        .as_ref()
        .map(|stderr| stderr.lines())
        .filter(|lines| lines.iter().any(|l| l.parsed.is_ok()));
    match on_stderr {
        Some(lines) => Outcome::fail(
            format!(
                "nothing on {}, but {} JSON lines on stderr",
                input.origin,
                lines.len()
            ),
            "log to stdout: logging.StreamHandler() writes to stderr unless given sys.stdout",
        )
        .evidence(format!(
            "stderr line {}: {}",
            lines[0].number,
            clip(&lines[0].text)
        )),
        None => Outcome::fail(
            format!("no log lines from {}", input.origin),
            "the service must log one JSON line per request on stdout",
        ),
    }
}

fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(160).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}
