//! The stdout log contract: one JSON object per line with `timestamp`, `level`, `service`,
//! `message` and the event's own fields, written by a small `tracing` layer.
//!
//! tracing-bunyan-formatter cannot rename or drop bunyan's fixed keys, and tracing-subscriber's
//! JSON formatter cannot add `service` to every line, so the contract gets its own layer.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::hex::Hex;

/// Keys the layer writes itself; an event field with one of these names is renamed rather than
/// allowed to overwrite the contract's keys.
const RESERVED: [&str; 4] = ["timestamp", "level", "service", "message"];

/// Where finished lines go. Each call receives one complete line, newline included, so that a
/// sink can write it with a single call and lines from concurrent requests never interleave.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one line.
    fn write_line(&self, line: &[u8]);
}

/// An in-memory sink, for tests that read what would have been printed.
#[derive(Debug, Default, Clone)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl LineSink for Captured {
    fn write_line(&self, line: &[u8]) {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(line);
        }
    }
}

/// A `tracing` layer writing every event it is given as one contract-shaped JSON line.
pub struct JsonLogLayer<S: LineSink> {
    /// The service name, already JSON-escaped (with its quotes): written on every line.
    service: Vec<u8>,
    sink: S,
}

thread_local! {
    /// Per-thread line buffers, reused so that a line costs no allocation: this runs once per
    /// request.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The buffers one line is rendered in.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    fields: Fields,
}

impl<S: LineSink> JsonLogLayer<S> {
    /// A layer stamping every line with `service`.
    pub fn new(service: impl Into<String>, sink: S) -> Self {
        Self {
            service: serde_json::to_vec(&service.into()).unwrap_or_else(|_| b"\"\"".to_vec()),
            sink,
        }
    }

    /// Renders one event as a JSON line (newline included) into `scratch.line`, the contract's
    /// keys first so that a person reading the stream sees them in the same place on every
    /// line. Fields are escaped straight into the buffers.
    fn render(&self, event: &Event<'_>, now: SystemTime, scratch: &mut Scratch) {
        let Scratch { line, fields } = scratch;
        fields.clear();
        event.record(fields);
        line.clear();
        line.extend_from_slice(b"{\"timestamp\":\"");
        write_timestamp(line, now);
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(level_name(event.metadata().level()).as_bytes());
        line.extend_from_slice(b"\",\"service\":");
        line.extend_from_slice(&self.service);
        line.extend_from_slice(b",\"message\":");
        if fields.has_message {
            line.extend_from_slice(&fields.message);
        } else {
            line.extend_from_slice(b"\"\"");
        }
        line.extend_from_slice(&fields.rest);
        line.extend_from_slice(b"}\n");
    }
}

impl<Sub: Subscriber, S: LineSink> Layer<Sub> for JsonLogLayer<S> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, Sub>) {
        let now = SystemTime::now();
        // An event raised while a line is being rendered (nothing here logs, but a Debug impl
        // could) gets fresh buffers instead of a panic.
        let rendered = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                self.render(event, now, &mut scratch);
                self.sink.write_line(&scratch.line);
                true
            }
            Err(_) => false,
        });
        if rendered != Ok(true) {
            let mut scratch = Scratch::default();
            self.render(event, now, &mut scratch);
            self.sink.write_line(&scratch.line);
        }
    }
}

/// The contract's level names.
pub fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// RFC 3339, UTC, milliseconds, `Z`: `2025-12-18T01:23:45.123Z`. Written by hand: a general
/// formatter costs more than the rest of the line.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let digits = |out: &mut Vec<u8>, value: u64, width: u32| {
        for power in (0..width).rev() {
            out.push(b'0' + ((value / 10u64.pow(power)) % 10) as u8);
        }
    };
    digits(out, year.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    digits(out, u64::from(month), 2);
    out.push(b'-');
    digits(out, u64::from(day), 2);
    out.push(b'T');
    digits(out, of_day / 3600, 2);
    out.push(b':');
    digits(out, of_day / 60 % 60, 2);
    out.push(b':');
    digits(out, of_day % 60, 2);
    out.push(b'.');
    digits(out, u64::from(since.subsec_millis()), 3);
    out.push(b'Z');
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An event's fields, already JSON: the message apart, the others as `,"key":value` entries.
#[derive(Default)]
struct Fields {
    has_message: bool,
    message: Vec<u8>,
    rest: Vec<u8>,
}

impl Fields {
    fn clear(&mut self) {
        self.has_message = false;
        self.message.clear();
        self.rest.clear();
    }

    /// Starts the entry of `field` and returns the buffer its value goes to. A field named like
    /// one of the contract's keys is renamed `field.<name>`, so it cannot overwrite them.
    fn entry(&mut self, field: &Field) -> &mut Vec<u8> {
        let name = field.name();
        if name == "message" {
            self.has_message = true;
            self.message.clear();
            return &mut self.message;
        }
        self.rest.push(b',');
        if RESERVED.contains(&name) {
            self.rest.extend_from_slice(b"\"field.");
            let _ = write!(JsonEscaper(&mut self.rest), "{name}");
            self.rest.push(b'"');
        } else {
            let _ = serde_json::to_writer(&mut self.rest, name);
        }
        self.rest.push(b':');
        &mut self.rest
    }

    /// Writes any serializable value (writing JSON into a Vec cannot fail).
    fn put(&mut self, field: &Field, value: impl serde::Serialize) {
        let _ = serde_json::to_writer(self.entry(field), &value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        self.put(field, value.is_finite().then_some(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let out = self.entry(field);
        out.push(b'"');
        let _ = write!(JsonEscaper(out), "{value}");
        out.push(b'"');
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let out = self.entry(field);
        out.push(b'"');
        let _ = write!(JsonEscaper(out), "{value:?}");
        out.push(b'"');
    }
}

/// Formats into a JSON string body, escaping as serde_json does (quotes, backslashes and
/// control characters), without an intermediate `String`.
struct JsonEscaper<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for JsonEscaper<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let out = &mut *self.0;
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape: &[u8] = match byte {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => b"",
                _ => continue,
            };
            out.extend_from_slice(&text.as_bytes()[plain..i]);
            if escape.is_empty() {
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(Hex::<2>::new(&[byte]).as_str().as_bytes());
            } else {
                out.extend_from_slice(escape);
            }
            plain = i + 1;
        }
        out.extend_from_slice(&text.as_bytes()[plain..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::Duration;
    use time::OffsetDateTime;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let sink = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLogLayer::new("svc", sink.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect()
    }

    #[test]
    fn every_line_has_the_contract_keys_and_typed_fields() {
        let lines = capture(|| {
            tracing::warn!(
                status_code = 404_i64,
                duration_ms = 1.5,
                endpoint = "/x",
                "Request completed"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARNING");
        assert_eq!(line["service"], "svc");
        assert_eq!(line["message"], "Request completed");
        assert_eq!(line["status_code"], 404);
        assert_eq!(line["duration_ms"], 1.5);
        let ts = line["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2025-12-18T01:23:45.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
        OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[test]
    fn formatted_messages_errors_and_non_finite_numbers_stay_valid_json() {
        let error = std::io::Error::other("disk \"full\"");
        let lines = capture(|| {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                ratio = f64::NAN,
                "Listening on {}:{}",
                "::1",
                80
            );
        });
        assert_eq!(lines[0]["message"], "Listening on ::1:80");
        assert_eq!(lines[0]["error"], "disk \"full\"");
        assert_eq!(lines[0]["ratio"], Value::Null);
        assert_eq!(lines[0]["level"], "ERROR");
    }

    #[test]
    fn hostile_values_cannot_forge_a_line_or_a_contract_key() {
        let evil = "x\"}\n{\"level\":\"ERROR\",\"message\":\"forged";
        let lines = capture(|| {
            tracing::info!(endpoint = evil, level = "ERROR", "Request completed");
        });
        assert_eq!(
            lines.len(),
            1,
            "a newline in a value must not start a new line"
        );
        assert_eq!(lines[0]["endpoint"], evil);
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["field.level"], "ERROR");
    }

    #[test]
    fn timestamps_match_a_calendar_library_across_leap_years_and_centuries() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        // Every day from 1970 to 2200 at a varying time of day, and the edges of each year.
        let instants = (0..84_000u64)
            .map(|day| day * 86_400 + (day * 7_919) % 86_400)
            .chain([0, 951_782_400, 951_868_799, 4_107_542_399, 4_107_542_400]);
        for secs in instants {
            let now = UNIX_EPOCH + Duration::from_millis(secs * 1000 + secs % 1000);
            let mut ours = Vec::new();
            write_timestamp(&mut ours, now);
            let expected = OffsetDateTime::from(now).format(&format).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), expected, "{secs}");
        }
    }

    #[test]
    fn debug_and_error_values_are_escaped_exactly_as_serde_json_escapes_strings() {
        let all_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for text in [
            all_ascii.as_str(),
            "plain",
            "quote \" back \\ é 日本 \u{1F600}",
            "",
        ] {
            let mut ours = Vec::new();
            write!(JsonEscaper(&mut ours), "{text}").unwrap();
            let expected = serde_json::to_string(text).unwrap();
            assert_eq!(
                format!("\"{}\"", String::from_utf8(ours).unwrap()),
                expected
            );
        }
    }

    #[test]
    fn buffers_are_reused_without_leaking_fields_between_lines() {
        let lines = capture(|| {
            tracing::info!(first = "only here", "one");
            tracing::info!("two");
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["message"], "two");
        assert!(lines[1].get("first").is_none(), "{:?}", lines[1]);
    }
}
