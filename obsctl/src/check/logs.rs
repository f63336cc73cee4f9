//! Log checks on the service's own output (captured stdout, a file or stdin): every line a JSON
//! object with the contract keys; request lines with the checklist's fields and types; and, as
//! advice, levels that follow the status and RFC 3339 UTC timestamps.
//!
//! A request line is a line whose request fields hold request values
//! ([`LogLine::is_request_line`]): a formatter that prints `"endpoint": null` on every other line
//! does not turn those lines into requests.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::context::{CheckContext, LogInput};
use super::model::{Finding, Outcome};
use crate::sources::logs::{ALIASES, LogLine};

/// Keys every line carries.
pub const LINE_KEYS: [&str; 4] = ["timestamp", "level", "service", "message"];
/// Keys every request line carries (the checklist's words).
pub const REQUEST_KEYS: [&str; 7] = [
    "timestamp",
    "level",
    "service",
    "endpoint",
    "method",
    "status_code",
    "duration_ms",
];
/// Level names a line may carry (Python's logging names, `CRITICAL` included).
const LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const NO_LOGS: &str = "pass --logs FILE (or - for stdin) with the service's stdout, or use `obsctl verify`, which captures it";
const STDERR_HINT: &str =
    "log to stdout: Python's logging.StreamHandler() writes to stderr unless given sys.stdout";

/// Findings grouped by kind: what is wrong, the lines it is wrong on, and the fix.
#[derive(Default)]
struct Problems {
    by_kind: BTreeMap<String, (String, u64, Vec<String>)>,
    order: Vec<String>,
}

impl Problems {
    fn add(&mut self, kind: impl Into<String>, hint: &str, example: String) {
        let kind = kind.into();
        let entry = self.by_kind.entry(kind.clone()).or_insert_with(|| {
            self.order.push(kind);
            (hint.to_owned(), 0, Vec::new())
        });
        entry.1 += 1;
        if entry.2.len() < super::model::MAX_EXAMPLES {
            entry.2.push(example);
        }
    }

    fn findings(mut self, of: usize, noun: &str) -> Vec<Finding> {
        self.order
            .iter()
            .filter_map(|kind| {
                let (hint, count, examples) = self.by_kind.remove(kind)?;
                Some(
                    Finding::new(format!("{kind} ({count} of {of} {noun})"), count, hint)
                        .examples(examples),
                )
            })
            .collect()
    }
}

/// The lines to judge, or the outcome that says why there are none: `logs-json-stdout` (the
/// `first` check) fails for an empty stdout; the others are then not judged, not failed twice.
async fn lines_or_outcome(
    ctx: &CheckContext,
    first: bool,
) -> Result<(&LogInput, &[LogLine]), Outcome> {
    let (Some(input), Some(lines)) = (&ctx.logs, ctx.log_lines().await) else {
        return Err(Outcome::skip("no log source given", NO_LOGS));
    };
    if lines.is_empty() {
        return Err(if first {
            empty(input)
        } else {
            Outcome::skip(
                format!("not judged: no log lines on {}", input.origin),
                "the logs-json-stdout check says why",
            )
        });
    }
    Ok((input, lines))
}

/// `logs-json-stdout`: every stdout line is a JSON object with timestamp, level, service, message.
pub async fn json_lines(ctx: &CheckContext) -> Outcome {
    let (input, lines) = match lines_or_outcome(ctx, true).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let mut problems = Problems::default();
    for line in lines {
        let Some(issue) = line.issue() else { continue };
        problems.add(
            "lines are not JSON objects",
            "format every log record as one JSON object per line (python-json-logger with a \
             format that names timestamp and level, pino, or a JSON formatter)",
            format!("line {}: {} ({issue})", line.number, clip(&line.text())),
        );
    }
    for line in lines.iter().filter(|l| l.is_object()) {
        for key in LINE_KEYS {
            match line.field(key) {
                None | Some(Value::Null) => problems.add(
                    format!("lines without `{key}`{}", near_miss(line, key)),
                    "every line needs timestamp, level, service and message (python-json-logger \
                     prints only `message` unless its format names the others; add `service` as a \
                     static field)",
                    format!("line {}: {}", line.number, clip(&line.text())),
                ),
                Some(_) => {}
            }
        }
        if let Some(issue) = line
            .field("service")
            .filter(|s| !s.is_null())
            .and_then(|s| wrong_service(&s, &ctx.service))
        {
            problems.add(
                "lines of another service",
                "set `service` to the service's name (OTEL_SERVICE_NAME), or pass --service",
                format!("line {}: {issue}", line.number),
            );
        }
    }
    let outcome = Outcome::judged(
        problems.findings(lines.len(), "lines"),
        format!(
            "{} JSON lines from {}, each with timestamp, level, service, message",
            lines.len(),
            input.origin
        ),
    );
    noting_drops(outcome, input, lines.len())
}

/// `logs-fields`: request lines carry the seven fields of the checklist with the right types.
pub async fn request_fields(ctx: &CheckContext) -> Outcome {
    let (input, lines) = match lines_or_outcome(ctx, false).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let requests: Vec<&LogLine> = lines.iter().filter(|l| l.is_request_line()).collect();
    if requests.is_empty() {
        return no_request_lines(input, lines.len());
    }
    let mut problems = Problems::default();
    for line in &requests {
        for key in REQUEST_KEYS {
            let example = format!("line {}: {}", line.number, clip(&line.text()));
            match line.field(key) {
                None | Some(Value::Null) => problems.add(
                    format!("request lines without `{key}`{}", near_miss(line, key)),
                    "log one line per request after the response, with endpoint, method, \
                     status_code and duration_ms besides timestamp, level and service",
                    example,
                ),
                Some(value) => {
                    if let Some((kind, hint)) = type_problem(key, &value, &ctx.service) {
                        problems.add(kind, hint, example);
                    }
                }
            }
        }
    }
    let outcome = Outcome::judged(
        problems.findings(requests.len(), "request lines"),
        format!(
            "{} request lines, each with {}",
            requests.len(),
            REQUEST_KEYS.join(", ")
        ),
    );
    noting_drops(outcome, input, lines.len())
}

/// `logs-level-by-status`: 5xx at ERROR, 4xx at WARNING, the rest at INFO.
pub async fn level_by_status(ctx: &CheckContext) -> Outcome {
    let (input, lines) = match lines_or_outcome(ctx, false).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let requests: Vec<&LogLine> = lines.iter().filter(|l| l.is_request_line()).collect();
    if requests.is_empty() {
        return Outcome::skip(
            format!("no request lines in {}", input.origin),
            "see the logs-fields check",
        );
    }
    let mut problems = Problems::default();
    for line in &requests {
        let (Some(status), Some(level)) = (line.status_code(), line.str_field("level")) else {
            continue;
        };
        let expected = match status {
            500.. => "ERROR",
            400..=499 => "WARNING",
            _ => "INFO",
        };
        let alias = match expected {
            "ERROR" => "CRITICAL",
            "WARNING" => "WARN",
            _ => expected,
        };
        if !level.eq_ignore_ascii_case(expected) && !level.eq_ignore_ascii_case(alias) {
            problems.add(
                format!("{}xx answers logged at {level}", status / 100),
                "log the request line at the level of its outcome: 5xx ERROR, 4xx WARNING, else \
                 INFO, so a level filter in Grafana finds the failures",
                format!("line {}: status {status} at {level}", line.number),
            );
        }
    }
    let outcome = Outcome::judged(
        problems.findings(requests.len(), "request lines"),
        format!(
            "{} request lines, each at the level of its status",
            requests.len()
        ),
    );
    noting_drops(outcome, input, lines.len())
}

/// `logs-timestamp-format`: timestamps are RFC 3339 with a UTC offset.
pub async fn timestamp_format(ctx: &CheckContext) -> Outcome {
    let (input, lines) = match lines_or_outcome(ctx, false).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let mut problems = Problems::default();
    let mut judged = 0;
    for line in lines {
        let Some(value) = line.field("timestamp").filter(|v| !v.is_null()) else {
            continue;
        };
        judged += 1;
        let example = format!("line {}: timestamp {value}", line.number);
        match value
            .as_str()
            .and_then(|ts| OffsetDateTime::parse(ts, &Rfc3339).ok())
        {
            Some(ts) if ts.offset().is_utc() => {}
            Some(_) => problems.add(
                "timestamps not in UTC",
                "write timestamps in UTC (a `Z` suffix), so lines from every host sort together",
                example,
            ),
            None => problems.add(
                "timestamps that are not RFC 3339",
                "write RFC 3339 timestamps such as 2026-01-01T10:00:00.123Z (python-json-logger: \
                 a formatTime override or `timestamp=True`; pino: `timestamp: pino.stdTimeFunctions.isoTime`)",
                example,
            ),
        }
    }
    if judged == 0 {
        return Outcome::skip(
            "no line carries a timestamp",
            "see the logs-json-stdout check",
        );
    }
    let outcome = Outcome::judged(
        problems.findings(judged, "lines"),
        format!("{judged} timestamps, all RFC 3339 in UTC"),
    );
    noting_drops(outcome, input, lines.len())
}

/// `outcome`, noting the older lines it could not judge: past what obsctl keeps of a log (a
/// byte budget and a line cap), the log checks judge the newest lines only.
pub(super) fn noting_drops(outcome: Outcome, input: &LogInput, judged: usize) -> Outcome {
    let dropped = input.buffer.dropped_lines();
    if dropped == 0 {
        return outcome;
    }
    let limits = input.buffer.limits();
    outcome.evidence(format!(
        "judged on the newest {judged} lines of {}: {dropped} older ones went past what obsctl \
         keeps of a log ({} MiB, {} lines)",
        input.origin,
        limits.max_bytes >> 20,
        limits.max_lines
    ))
}

/// " (the line has `time`: name it `timestamp`)" when the line carries another logger's name
/// for `key`, else nothing.
fn near_miss(line: &LogLine, key: &str) -> String {
    let Some((_, aliases)) = ALIASES.iter().find(|(k, _)| *k == key) else {
        return String::new();
    };
    aliases
        .iter()
        .find(|alias| line.field(alias).is_some_and(|v| !v.is_null()))
        .map(|alias| format!(" (they have `{alias}`: the contract names it `{key}`)"))
        .unwrap_or_default()
}

/// The type a request field must have; the finding's kind and fix when it has another.
fn type_problem(key: &str, value: &Value, service: &str) -> Option<(String, &'static str)> {
    let is_string = value.is_string();
    match key {
        "timestamp" if !is_string => Some((
            format!("`timestamp` is not a string (e.g. {value})"),
            "write the timestamp as an RFC 3339 string",
        )),
        "level" => match value.as_str() {
            Some(level) if LEVELS.contains(&level.to_ascii_uppercase().as_str()) => None,
            _ => Some((
                format!("`level` {value} is not one of DEBUG, INFO, WARNING, ERROR"),
                "write the level's name (pino: a `formatters.level` that returns the label, upper-cased)",
            )),
        },
        "service" => wrong_service(value, service).map(|issue| {
            (
                issue,
                "set `service` to the service's name (OTEL_SERVICE_NAME), or pass --service",
            )
        }),
        "endpoint" => match value.as_str() {
            Some(path) if path.starts_with('/') => None,
            _ => Some((
                format!("`endpoint` is not a path (e.g. {value})"),
                "log the request's path (request.url.path), starting with /",
            )),
        },
        "method" if !is_string => Some((
            format!("`method` is not a string (e.g. {value})"),
            "log the HTTP method as a string",
        )),
        "status_code" => match value {
            Value::Number(n) if n.as_u64().is_some_and(|c| (100..600).contains(&c)) => None,
            Value::String(_) => Some((
                format!("`status_code` is a string ({value}), not a number"),
                "log the status as a JSON number (response.status_code, not str(...)): a string \
                 breaks numeric filters such as | status_code >= 500 in LogQL",
            )),
            _ => Some((
                format!("`status_code` {value} is not a number from 100 to 599"),
                "log the response's status code as a number",
            )),
        },
        "duration_ms" => match value {
            Value::Number(n) if n.as_f64().is_some_and(|ms| ms >= 0.0) => None,
            _ => Some((
                format!("`duration_ms` is not a non-negative number (e.g. {value})"),
                "log the duration in milliseconds as a JSON number",
            )),
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

/// No request line among the lines: say where they might have gone.
fn no_request_lines(input: &LogInput, total: usize) -> Outcome {
    let on_stderr = input
        .stderr
        .as_ref()
        .map(|stderr| {
            stderr
                .lines()
                .iter()
                .filter(|l| l.is_request_line())
                .count()
        })
        .unwrap_or(0);
    if on_stderr > 0 {
        return Outcome::fail(
            format!(
                "no request lines on {}, but {on_stderr} on stderr",
                input.origin
            ),
            STDERR_HINT,
        );
    }
    let found: Vec<String> = ["endpoint", "method", "status_code", "duration_ms"]
        .iter()
        .filter_map(|key| {
            let lines = input.buffer.lines();
            let with = lines.iter().find_map(|l| {
                let miss = near_miss(l, key);
                (!miss.is_empty()).then_some(miss)
            })?;
            Some(
                with.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .replace("they have", "lines have"),
            )
        })
        .collect();
    let outcome = Outcome::fail(
        format!(
            "none of the {total} lines is a request line (with endpoint, method or status_code)"
        ),
        "log one line per request after the response, with endpoint, method, status_code and \
         duration_ms (pino-http's `req`/`res`/`responseTime` objects are not these fields: \
         flatten them with its customProps or a custom log line)",
    );
    found.into_iter().fold(outcome, Outcome::evidence)
}

/// No lines at all: say where they might have gone, and what those lines would still lack.
fn empty(input: &LogInput) -> Outcome {
    let stderr = input.stderr.as_ref().map(|stderr| stderr.lines());
    let json: Vec<&LogLine> = stderr.iter().flatten().filter(|l| l.is_object()).collect();
    let Some(first) = json.first() else {
        return Outcome::fail(
            format!("no log lines from {}", input.origin),
            "the service must log one JSON line per request on stdout",
        );
    };
    let mut outcome = Outcome::fail(
        format!(
            "nothing on {}, but {} JSON lines on stderr",
            input.origin,
            json.len()
        ),
        STDERR_HINT,
    )
    .evidence(format!(
        "stderr line {}: {}",
        first.number,
        clip(&first.text())
    ));
    let lacking: Vec<String> = LINE_KEYS
        .iter()
        .filter_map(|key| {
            let without = json.iter().filter(|l| l.field(key).is_none()).count();
            (without > 0).then(|| format!("`{key}` ({without} of {})", json.len()))
        })
        .collect();
    if !lacking.is_empty() {
        outcome = outcome.evidence(format!(
            "those stderr lines also lack {}: python-json-logger prints only the message and the \
             `extra` fields unless its format names the others",
            lacking.join(", ")
        ));
    }
    outcome
}

/// The first 160 characters of a line, for evidence.
pub fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(160).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}
